from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from contracts import envelope, events
from inspection import domain
from inspection.__main__ import SPEC
from servicekit.clock import clock
from servicekit.db import make_engine
from servicekit.standing import in_good_standing

import factories
from helpers import bearer, service_client, sql


@pytest.fixture
def inspection(database_url: str) -> Iterator[TestClient]:
    for client, _ in service_client(SPEC, database_url):
        yield client


Registered = Callable[..., tuple[str, str]]
Station = Callable[..., dict[str, str]]
Deliver = Callable[..., None]


def test_a_passing_inspection_gets_a_certificate_and_one_event(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    _uscc, vin = registered()
    r = inspection.post(
        "/v1/inspections", json=factories.inspection(vin), headers=bearer(station()["api_key"])
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["verdict"] == "pass" and body["first_inspection"] is True
    assert body["certificate_no"].startswith("EXC-")
    engine = make_engine(inspection.app.state.settings.database_url)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT topic FROM outbox")).scalars().all() == [
            "vehicle.inspected.v1"
        ]
    engine.dispose()


def test_failed_items_are_named_and_a_reinspection_is_not_first(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    _uscc, vin = registered()
    key = station()["api_key"]
    first = inspection.post(
        "/v1/inspections", json=factories.inspection(vin, fail=("BRAKES",)), headers=bearer(key)
    ).json()
    assert first["verdict"] == "fail"
    assert first["failed_items"] == [{"code": "BRAKES", "severity": "critical"}]
    again = inspection.post(
        "/v1/inspections", json=factories.inspection(vin, odometer_km=39_000), headers=bearer(key)
    ).json()
    assert again["verdict"] == "pass" and again["first_inspection"] is False


def test_the_answer_the_row_and_the_event_say_the_same_of_one_inspection(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    uscc, vin = registered(mileage_km=41_800)
    report = factories.inspection(vin, odometer_km=41_200, fail=("CORROSION",))
    report["items"][0]["note"] = "plate riveted, legible"
    answer = inspection.post(
        "/v1/inspections", json=report, headers=bearer(station()["api_key"])
    ).json()
    ((value, event_id),) = sql(
        inspection, "SELECT value, event_id FROM outbox WHERE topic = 'vehicle.inspected.v1'"
    )
    event = envelope.decode(bytes(value))
    data = event.parse_data(events.VehicleInspected)
    ((row_id, station_id, row_event_id, row_uscc, verdict, cert),) = sql(
        inspection,
        "SELECT id, station_id, event_id, enterprise_uscc, verdict, certificate_no"
        " FROM inspections",
    )
    assert (data.inspection_id, data.station_id, data.enterprise_uscc) == (row_id, station_id, uscc)
    assert row_event_id == event_id == event.id and row_uscc == uscc
    assert (data.verdict, data.certificate_no) == (verdict, cert) == ("fail", None)
    assert (answer["id"], answer["verdict"]) == (row_id, "fail")
    assert data.fraud_signals == answer["fraud_signals"] == ["odometer_rollback"]
    assert data.items[0].model_dump() == {
        "code": report["items"][0]["code"],
        "result": "pass",
        "severity": "critical",
        "note": "plate riveted, legible",
    }
    assert (data.received_at, data.policy_version) == (
        datetime.fromisoformat(answer["received_at"]),
        answer["policy_version"],
    )


def test_odometer_rollback_is_caught(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    _uscc, vin = registered(mileage_km=80_000)
    r = inspection.post(
        "/v1/inspections",
        json=factories.inspection(vin, odometer_km=41_000),
        headers=bearer(station()["api_key"]),
    )
    assert r.json()["verdict"] == "fail"
    assert r.json()["fraud_signals"] == ["odometer_rollback"]


def test_unknown_vin_is_404_and_incomplete_checklist_is_422(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    key = station()["api_key"]
    r = inspection.post(
        "/v1/inspections", json=factories.inspection(factories.vin()), headers=bearer(key)
    )
    assert r.status_code == 404
    assert "register" in r.json()["detail"]
    _uscc, vin = registered()
    body = factories.inspection(vin)
    body["items"] = body["items"][1:]
    r = inspection.post("/v1/inspections", json=body, headers=bearer(key))
    assert r.status_code == 422
    assert r.json()["errors"][0]["rule"] == "checklist_missing_codes"


def test_suspended_enterprise_is_409_and_bad_keys_are_401(
    inspection: TestClient, registered: Registered, station: Station, deliver: Deliver
) -> None:
    uscc, vin = registered()
    deliver(
        envelope.new_event(
            events.EnterpriseStatusChanged.model_validate(
                {
                    "enterprise_uscc": uscc,
                    "from": "admitted",
                    "to": "suspended",
                    "actor": "policy",
                    "reason": "score below 60",
                    "changed_at": clock.now(),
                }
            ),
            source="ucx/registry",
        ),
    )
    key = station()["api_key"]
    r = inspection.post("/v1/inspections", json=factories.inspection(vin), headers=bearer(key))
    assert r.status_code == 409
    assert r.json()["enterprise_status"] == "suspended"
    r = inspection.post(
        "/v1/inspections", json=factories.inspection(vin), headers=bearer("ucx_stn_forged")
    )
    assert r.status_code == 401


def test_a_later_status_change_wins_and_a_late_older_one_does_not(
    inspection: TestClient, registered: Registered, station: Station, deliver: Deliver
) -> None:
    uscc, vin = registered()
    now = clock.now()

    def change(to: str, at: datetime) -> envelope.CloudEvent:
        return envelope.new_event(
            events.EnterpriseStatusChanged.model_validate(
                {
                    "enterprise_uscc": uscc,
                    "from": None,
                    "to": to,
                    "actor": "admin",
                    "reason": "r",
                    "changed_at": at,
                }
            ),
            source="ucx/registry",
        )

    deliver(change("admitted", now - timedelta(minutes=2)))
    deliver(change("suspended", now - timedelta(minutes=1)))
    deliver(change("admitted", now - timedelta(minutes=3)))  # late, older
    key = station()["api_key"]
    r = inspection.post("/v1/inspections", json=factories.inspection(vin), headers=bearer(key))
    assert r.status_code == 409
    deliver(change("admitted", now))
    r = inspection.post("/v1/inspections", json=factories.inspection(vin), headers=bearer(key))
    assert r.status_code == 201


# -- one definition of good standing (contracts.events.GOOD_STANDING) at this gate: an unknown
# standing passes by name (its event may still be on its way); any known status outside good
# standing is refused, `applied` included (the old block-list let it through)
def test_good_standing_is_one_allow_list_and_unknown_is_the_callers_named_choice() -> None:
    assert {
        s for s in events.EnterpriseStatus.__args__ if in_good_standing(s, unknown_passes=False)
    } == {
        "admitted",
        "warned",
    }
    assert in_good_standing(None, unknown_passes=True)
    assert not in_good_standing(None, unknown_passes=False)
    assert domain.UNKNOWN_STANDING_PASSES is True


def status_change(uscc: str, to: str) -> envelope.CloudEvent:
    data = {"enterprise_uscc": uscc, "from": None, "to": to, "actor": "admin", "reason": "r"}
    return envelope.new_event(
        events.EnterpriseStatusChanged.model_validate({**data, "changed_at": clock.now()}),
        source="ucx/registry",
    )


@pytest.mark.parametrize(
    ("standing", "expected"),
    [
        (None, 201),
        ("admitted", 201),
        ("warned", 201),
        ("applied", 409),
        ("suspended", 409),
        ("exited", 409),
        ("expired", 409),
        ("rejected", 409),
    ],
)
def test_the_inspection_gate_allows_good_standing_only(
    inspection: TestClient,
    registered: Registered,
    station: Station,
    deliver: Deliver,
    standing: str | None,
    expected: int,
) -> None:
    uscc, vin = registered()
    if standing is not None:
        deliver(status_change(uscc, standing))
    r = inspection.post(
        "/v1/inspections", json=factories.inspection(vin), headers=bearer(station()["api_key"])
    )
    assert r.status_code == expected, r.text
    if expected == 409:
        assert r.json()["enterprise_status"] == standing
