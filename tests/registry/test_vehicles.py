"""Vehicle registration: every bad input class refused with field and rule, nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.identifiers import vin_check_digit
from servicekit.clock import clock

import factories
from helpers import ADMIN, bearer, sql
from stack_support import admitted_enterprise

# after tomorrow: in the future in China (UTC+8) whatever the hour in UTC
AFTER_TOMORROW = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()


def registrations(registry: TestClient) -> tuple[int, int]:
    vehicles = sql(registry, "SELECT count(*) FROM vehicles")[0][0]
    events = sql(registry, "SELECT count(*) FROM outbox WHERE topic = 'vehicle.registered.v1'")[0][
        0
    ]
    return int(vehicles), int(events)


def wrong_digit(vin: str) -> str:
    return vin[:8] + ("0" if vin[8] != "0" else "1") + vin[9:]


BAD_INPUTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "vin charset": ({"vin": "LSVAU2180N21832I4"}, "vin", "vin_format"),
    "china vin check digit": ({"vin": wrong_digit(factories.vin())}, "vin", "vin_check_digit"),
    "bad uscc": (
        {"enterprise_uscc": "91350100M000100Y44"},
        "enterprise_uscc",
        "uscc_check_character",
    ),
    "unknown country": ({"destination_country": "XK"}, "destination_country", "country_code"),
    "hs code": ({"hs_code": "8711"}, "hs_code", "hs_code"),
    "future first registration": (
        {"first_registration_date": AFTER_TOMORROW},
        "first_registration_date",
        "time_out_of_range",
    ),
    "future endorsement": (
        {"transfer_endorsed_on": AFTER_TOMORROW},
        "transfer_endorsed_on",
        "time_out_of_range",
    ),
    "endorsement before first registration": (
        {"first_registration_date": "2022-04-18", "transfer_endorsed_on": "2022-04-17"},
        "transfer_endorsed_on",
        "endorsed_before_first_registration",
    ),
    "first registration before any car": (
        {"first_registration_date": "1970-01-01"},
        "first_registration_date",
        "time_out_of_range",
    ),
    "model year after first registration": (
        {"model_year": 2022, "first_registration_date": "2012-05-02"},  # VIN code N: 2022
        "model_year",
        "model_year_after_first_registration",
    ),
    "stale endorsement": (
        {"transfer_endorsed_on": "2026-01-01"},
        "transfer_endorsed_on",
        "transfer_endorsement_expired",
    ),
    "model year vs vin": ({"model_year": 2019}, "model_year", "vin_model_year_mismatch"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_each_bad_input_class_is_refused_naming_field_and_rule(
    registry: TestClient, case: str
) -> None:
    uscc, key = admitted_enterprise(registry)
    override, field, rule = BAD_INPUTS[case]
    r = registry.post(
        "/v1/vehicles", json={**factories.vehicle(uscc), **override}, headers=bearer(key)
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert {"field": field, "rule": rule} in [
        {"field": e["field"], "rule": e["rule"]} for e in r.json()["errors"]
    ]
    assert registrations(registry) == (0, 0)


def test_a_foreign_vin_with_a_wrong_check_digit_is_accepted_with_a_warning(
    registry: TestClient,
) -> None:
    uscc, key = admitted_enterprise(registry)
    draft = "JTDBR32E" + "0" + "N" + "0123456"  # Japan: the check digit is advisory
    bad = draft[:8] + ("1" if vin_check_digit(draft) != "1" else "2") + draft[9:]
    r = registry.post("/v1/vehicles", json=factories.vehicle(uscc, vin=bad), headers=bearer(key))
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == ["vin_check_digit"]


def test_duplicate_vin_unauthorised_key_and_bad_standing(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    vehicle = factories.vehicle(uscc)
    assert registry.post("/v1/vehicles", json=vehicle, headers=bearer(key)).status_code == 201
    assert registry.post("/v1/vehicles", json=vehicle, headers=bearer(key)).status_code == 409
    assert (
        registry.post(
            "/v1/vehicles", json=factories.vehicle(uscc), headers=bearer("nope")
        ).status_code
        == 401
    )
    assert registry.post("/v1/vehicles", json=factories.vehicle(uscc)).status_code == 401
    other_uscc, other_key = admitted_enterprise(registry)
    r = registry.post("/v1/vehicles", json=factories.vehicle(uscc), headers=bearer(other_key))
    assert r.status_code == 403
    for action, status in (("suspend", "suspended"), ("exit", "exited")):
        registry.post(
            f"/v1/enterprises/{other_uscc}/decisions",
            headers=ADMIN,
            json={"action": action, "reason": "audit"},
        )
        r = registry.post(
            "/v1/vehicles", json=factories.vehicle(other_uscc), headers=bearer(other_key)
        )
        assert r.status_code == 403
        assert r.json()["enterprise_status"] == status
    assert registrations(registry) == (1, 1)


def test_a_batch_of_500_valid_rows_commits_with_500_events(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    rows = [factories.vehicle(uscc) for _ in range(500)]
    r = registry.post("/v1/vehicles:batch", json={"vehicles": rows}, headers=bearer(key))
    assert r.status_code == 207
    assert (r.json()["created"], r.json()["rejected"]) == (500, 0)
    assert registrations(registry) == (500, 500)


def test_a_mixed_batch_reports_each_row_and_commits_the_valid_ones(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    good = factories.vehicle(uscc)
    rows = [
        good,
        factories.vehicle(uscc, vin=wrong_digit(factories.vin())),
        good,
        {"vin": "x"},
        factories.vehicle(uscc, transfer_endorsed_on="2025-01-01"),
    ]
    body = registry.post("/v1/vehicles:batch", json={"vehicles": rows}, headers=bearer(key)).json()
    assert [r["status"] for r in body["results"]] == [
        "created",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert body["results"][1]["errors"][0]["rule"] == "vin_check_digit"
    assert body["results"][2]["errors"][0]["rule"] == "vehicle_already_registered"
    assert body["results"][4]["errors"][0]["rule"] == "transfer_endorsement_expired"
    assert registrations(registry) == (1, 1)


def test_a_batch_over_500_is_refused_whole(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    rows = [factories.vehicle(uscc) for _ in range(501)]
    assert (
        registry.post(
            "/v1/vehicles:batch", json={"vehicles": rows}, headers=bearer(key)
        ).status_code
        == 422
    )
    assert registrations(registry) == (0, 0)


def test_lists_filter_and_page_with_a_cursor(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    other, other_key = admitted_enterprise(registry)
    for _ in range(5):
        registry.post("/v1/vehicles", json=factories.vehicle(uscc), headers=bearer(key))
    registry.post("/v1/vehicles", json=factories.vehicle(other), headers=bearer(other_key))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"enterprise": uscc, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = registry.get("/v1/vehicles", params=params).json()
        seen += [v["vin"] for v in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen)
    assert registry.get("/v1/vehicles", params={"cursor": "%%%"}).status_code == 422
    admitted_list = registry.get("/v1/enterprises", params={"status": "admitted"}).json()["items"]
    assert {e["uscc"] for e in admitted_list} == {uscc, other}
    assert registry.get("/v1/enterprises", params={"status": "nonsense"}).status_code == 422


def test_vehicles_not_exported_60_days_after_registration_are_stalled(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    vehicle = factories.vehicle(uscc)
    registry.post("/v1/vehicles", json=vehicle, headers=bearer(key))
    sql(
        registry,
        "UPDATE vehicles SET registered_at = :t WHERE vin = :v",
        t=datetime.now(UTC) - timedelta(days=61),
        v=vehicle["vin"],
    )
    assert registry.get(f"/v1/vehicles/{vehicle['vin']}").json()["stage"] == "stalled"
    stalled = registry.get("/v1/vehicles", params={"stage": "stalled"}).json()["items"]
    assert [v["vin"] for v in stalled] == [vehicle["vin"]]
    assert registry.get("/v1/vehicles", params={"stage": "registered"}).json()["items"] == []


def european_vin(year_code: str) -> str:
    """A Volkswagen Wolfsburg VIN (WMI WVW) with a correct check digit and ``year_code`` at
    position 10; ISO 3779 alone does not make position 10 a year code."""
    draft = f"WVWZZZAUZ{year_code}W{factories.vin()[-6:]}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def test_a_european_vin_whose_tenth_character_is_no_year_code_registers_with_a_warning(
    registry: TestClient,
) -> None:
    uscc, key = admitted_enterprise(registry)
    vin = european_vin("U")  # U is no model-year code
    r = registry.post(
        "/v1/vehicles",
        json=factories.vehicle(uscc, vin=vin, make="Volkswagen"),
        headers=bearer(key),
    )
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == ["vin_year_code"]
    assert registry.get(f"/v1/vehicles/{vin}").json()["warnings"] == ["vin_year_code"]


def test_a_european_year_code_is_not_judged_against_the_model_year(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    vin = european_vin("K")  # would be 2019 under the mandatory rule
    body = factories.vehicle(uscc, vin=vin, model_year=2021, first_registration_date="2021-03-02")
    r = registry.post("/v1/vehicles", json=body, headers=bearer(key))
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == []


def test_a_chinese_vin_with_a_wrong_year_code_is_still_refused(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    body = factories.vehicle(uscc, vin=factories.vin(model_year=2019), model_year=2022)
    r = registry.post("/v1/vehicles", json=body, headers=bearer(key))
    assert r.status_code == 422
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [
        ("model_year", "vin_model_year_mismatch")
    ]
    assert registrations(registry) == (0, 0)


def test_a_model_year_one_year_after_the_first_registration_is_accepted(
    registry: TestClient,
) -> None:
    """Sold in autumn as next year's model: the limit is one year, no more (policy data)."""
    uscc, key = admitted_enterprise(registry)
    body = factories.vehicle(uscc, model_year=2022, first_registration_date="2021-09-20")
    assert registry.post("/v1/vehicles", json=body, headers=bearer(key)).status_code == 201


# 17:00 UTC on 10 March is 01:00 on 11 March in Fuzhou, where the certificates are dated
EVENING_IN_UTC = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("endorsed_on", "status", "rule"),
    [
        ("2026-03-11", 201, None),  # today in China
        ("2026-03-12", 422, "time_out_of_range"),  # tomorrow in China
        ("2026-01-10", 201, None),  # 60 days old in China
        ("2026-01-09", 422, "transfer_endorsement_expired"),  # 61 days (policy: 60)
    ],
)
def test_the_endorsement_date_is_judged_by_the_servers_clock_in_chinas_civil_date(
    registry: TestClient, endorsed_on: str, status: int, rule: str | None
) -> None:
    with clock.frozen(EVENING_IN_UTC):
        uscc, key = admitted_enterprise(registry)
        body = factories.vehicle(uscc, transfer_endorsed_on=endorsed_on)
        r = registry.post("/v1/vehicles", json=body, headers=bearer(key))
    assert r.status_code == status, r.text
    if rule is None:
        assert r.json()["registered_at"] == "2026-03-10T17:00:00Z"  # the server's time
        assert r.json()["transfer_endorsed_on"] == endorsed_on  # the claim, kept
    else:
        assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [
            ("transfer_endorsed_on", rule)
        ]
        assert registrations(registry) == (0, 0)
