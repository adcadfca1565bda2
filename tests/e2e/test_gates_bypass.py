"""Issue 13's bypasses, each replayed against the running services (real processes, the
embedded broker): every one is refused with its documented reason and changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

import factories
from helpers import ADMIN, bearer
from stack_support import RunningStack, admitted_enterprise, signed, wait_for


class Exporter:
    """An admitted enterprise with its broker and a station, as the stack knows them."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.registry = stack.client("registry")
        self.inspection = stack.client("inspection")
        self.customs = stack.client("customs")
        self.uscc, self.key = admitted_enterprise(self.registry)
        station = self.inspection.post("/v1/stations", json=factories.station(), headers=ADMIN)
        assert station.status_code == 201, station.text
        self.station_key = station.json()["api_key"]
        broker = self.customs.post(
            "/v1/brokers",
            headers=ADMIN,
            json={
                "name": "Xiamen Haitong Customs Brokerage",
                "customs_code": f"35{uuid.uuid4().int % 10**8:08d}",
                "enterprises": [self.uscc],
            },
        )
        assert broker.status_code == 201, broker.text
        self.broker_id, self.secret = broker.json()["id"], broker.json()["secret"]
        wait_for(lambda: stack.standing("customs", self.uscc) == "admitted")
        wait_for(lambda: stack.standing("inspection", self.uscc) == "admitted")

    def register(self, **overrides: Any) -> str:
        vehicle = factories.vehicle(self.uscc, **overrides)
        r = self.registry.post("/v1/vehicles", json=vehicle, headers=bearer(self.key))
        assert r.status_code == 201, r.text
        return str(vehicle["vin"])

    def inspect(self, vin: str, inspected_at: datetime | None = None) -> httpx.Response:
        body = factories.inspection(vin)
        if inspected_at is not None:
            body["inspected_at"] = inspected_at.isoformat()

        def posted() -> httpx.Response | None:
            r = self.inspection.post("/v1/inspections", json=body, headers=bearer(self.station_key))
            return None if r.status_code == 404 else r  # 404 until the worker has the car

        return wait_for(posted)

    def passed(self, **overrides: Any) -> tuple[str, str]:
        """A registered car with a passing inspection that customs knows of."""
        vin = self.register(**overrides)
        r = self.inspect(vin)
        assert r.status_code == 201 and r.json()["verdict"] == "pass", r.text
        certificate = r.json()["certificate_no"]
        wait_for(
            lambda: self.stack.rows(
                "customs", "SELECT 1 FROM latest_inspections WHERE certificate_no = ?", certificate
            )
        )
        return vin, certificate

    def send(self, type_: str, data: dict[str, Any]) -> httpx.Response:
        body, headers = signed(self.secret, type_, data)
        return self.customs.post(
            f"/v1/webhooks/brokers/{self.broker_id}", content=body, headers=headers
        )

    def lodge(self, vin: str, certificate: str, **overrides: Any) -> httpx.Response:
        return self.send(
            "declaration.lodged", factories.declaration(vin, self.uscc, certificate, **overrides)
        )

    def declaration(self, no: str) -> httpx.Response:
        return self.customs.get(f"/v1/declarations/{no}", headers=ADMIN)

    def release(self, no: str) -> httpx.Response:
        return self.send(
            "declaration.released",
            {"declaration_no": no, "released_at": datetime.now(UTC).isoformat()},
        )

    def depart(self, no: str, bill_of_lading: str) -> httpx.Response:
        return self.send(
            "shipment.departed",
            {
                "declaration_no": no,
                "bill_of_lading": bill_of_lading,
                "vessel_name": "Glovis Sunrise",
                "vessel_imo": "9074729",
                "port_of_loading": "CNXMN",
                "departed_at": datetime.now(UTC).isoformat(),
            },
        )


def _rules(r: httpx.Response) -> list[tuple[str, str]]:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return [(e["field"], e["rule"]) for e in r.json().get("errors", [])]


@pytest.fixture(scope="module")
def exporter(stack: RunningStack) -> Exporter:
    return Exporter(stack)


def test_a_backdated_declaration_does_not_skip_the_after_sales_letter(exporter: Exporter) -> None:
    today = datetime.now(UTC).date()
    first_registered = today - timedelta(days=30)
    vin, certificate = exporter.passed(
        vin=factories.vin(model_year=first_registered.year),
        model_year=first_registered.year,
        first_registration_date=first_registered.isoformat(),
    )
    claim = factories.declaration(
        vin, exporter.uscc, certificate, declared_at="2025-12-31T10:00:00+08:00"
    )
    backdated = exporter.send("declaration.lodged", claim)
    assert backdated.status_code == 422, backdated.text
    assert ("data.declared_at", "time_out_of_range") in _rules(backdated)
    assert exporter.declaration(claim["declaration_no"]).status_code == 404

    honest = exporter.lodge(vin, certificate)
    assert honest.status_code == 202, honest.text
    assert honest.json()["status"] == "rejected"
    assert "after_sales_letter_missing" in honest.json()["reasons"]

    # the refusal counts in the assessment (policy v1 counted it nowhere)
    scoring = exporter.stack.client("scoring")

    def gate_compliance() -> dict[str, Any] | None:
        r = scoring.get(f"/v1/enterprises/{exporter.uscc}/assessment")
        found = r.json()["components"]["gate_compliance"] if r.status_code == 200 else None
        return found if found and found["numerator"] >= 1 else None

    counted = wait_for(gate_compliance)
    assert counted["numerator"] == 1, counted


def test_inspections_dated_out_of_bounds_are_refused_and_validity_runs_from_the_inspection(
    exporter: Exporter,
) -> None:
    endorsed = datetime.now(UTC).date() - timedelta(days=3)
    vin = exporter.register(transfer_endorsed_on=endorsed.isoformat())
    now = datetime.now(UTC)
    for inspected_at, rule in (
        (now - timedelta(days=100), "time_out_of_range"),
        (now + timedelta(days=1), "time_out_of_range"),
        (now - timedelta(days=5), "inspected_before_transfer_endorsement"),
    ):
        r = exporter.inspect(vin, inspected_at)
        assert r.status_code == 422, r.text
        assert ("inspected_at", rule) in _rules(r)
    assert exporter.stack.rows("inspection", "SELECT 1 FROM inspections WHERE vin = ?", vin) == []

    two_days_ago = now - timedelta(days=2)
    r = exporter.inspect(vin, two_days_ago)
    assert r.status_code == 201, r.text
    valid_until = date.fromisoformat(r.json()["valid_until"])
    assert valid_until == two_days_ago.date() + timedelta(days=90)


def test_a_second_declaration_of_one_vin_is_refused_while_the_first_is_open(
    exporter: Exporter,
) -> None:
    vin, certificate = exporter.passed()
    first = exporter.lodge(vin, certificate, after_sales_letter_ref="ASL-2026-0042")
    assert first.status_code == 202 and first.json()["status"] == "accepted", first.text
    second = exporter.lodge(vin, certificate, after_sales_letter_ref="ASL-2026-0042")
    assert second.status_code == 202, second.text
    assert second.json()["status"] == "rejected"
    assert "declaration_open" in second.json()["reasons"]
    details = exporter.declaration(second.json()["declaration_no"]).json()["reason_details"]
    assert first.json()["declaration_no"] in details["declaration_open"]


def test_one_bill_of_lading_carries_many_cars(exporter: Exporter) -> None:
    bill = f"COSU{uuid.uuid4().hex[:10].upper()}"
    for _ in range(2):
        vin, certificate = exporter.passed()
        lodged = exporter.lodge(vin, certificate)
        assert lodged.json()["status"] == "accepted", lodged.text
        no = lodged.json()["declaration_no"]
        assert exporter.release(no).status_code == 202
        departed = exporter.depart(no, bill)
        assert departed.status_code == 202, departed.text
        assert departed.json()["status"] == "exported"


def test_a_suspension_after_acceptance_stops_release_and_departure(stack: RunningStack) -> None:
    exporter = Exporter(stack)  # its own enterprise: this test suspends it
    vin, certificate = exporter.passed()
    accepted = exporter.lodge(vin, certificate)
    assert accepted.json()["status"] == "accepted", accepted.text
    no = accepted.json()["declaration_no"]
    suspended = exporter.registry.post(
        f"/v1/enterprises/{exporter.uscc}/decisions",
        headers=ADMIN,
        json={"action": "suspend", "reason": "site inspection found unrectified violations"},
    )
    assert suspended.status_code == 200, suspended.text
    wait_for(lambda: stack.standing("customs", exporter.uscc) == "suspended")

    refused = exporter.release(no)
    assert refused.status_code == 409, refused.text
    assert "enterprise_not_in_good_standing" in refused.json()["reasons"]
    assert exporter.declaration(no).json()["status"] == "accepted"
    refused = exporter.depart(no, f"COSU{uuid.uuid4().hex[:10].upper()}")
    assert refused.status_code == 409, refused.text
    assert exporter.declaration(no).json()["status"] == "accepted"
    recorded = stack.rows(
        "customs", "SELECT step FROM refused_departures WHERE declaration_no = ? ORDER BY 1", no
    )
    assert recorded == [("departure",), ("release",)]


def test_vin_year_codes_are_judged_where_they_are_mandatory(exporter: Exporter) -> None:
    european = "WVWZZZ1JZZW386752"  # position 10 'Z' is no year code; not mandatory here
    r = exporter.registry.post(
        "/v1/vehicles",
        json=factories.vehicle(exporter.uscc, vin=european, model_year=2019),
        headers=bearer(exporter.key),
    )
    assert r.status_code == 201, r.text
    assert "vin_year_code" in r.json()["warnings"]

    r = exporter.registry.post(
        "/v1/vehicles",
        json=factories.vehicle(
            exporter.uscc, model_year=2022, first_registration_date="2012-05-04"
        ),
        headers=bearer(exporter.key),
    )
    assert r.status_code == 422, r.text
    assert ("model_year", "model_year_after_first_registration") in _rules(r)
