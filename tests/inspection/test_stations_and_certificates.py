from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from inspection.__main__ import SPEC
from inspection.signing import verify
from servicekit.clock import clock

import factories
from helpers import ADMIN, bearer, service_client, sql


@pytest.fixture
def inspection(database_url: str, tmp_path: object, now: datetime) -> Iterator[TestClient]:
    for client, _ in service_client(
        SPEC, database_url, signing_key_file=f"{tmp_path}/signing-key", verify_rate_per_minute=30
    ):
        yield client


Registered = Callable[..., tuple[str, str]]
Station = Callable[..., dict[str, str]]


def inspected_events(client: TestClient) -> int:
    return int(
        sql(client, "SELECT count(*) FROM outbox WHERE topic = 'vehicle.inspected.v1'")[0][0]
    )


def test_rotated_keys_work_for_the_grace_period_then_stop_and_revoked_keys_stop_at_once(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    _uscc, vin = registered()
    s = station()
    rotated = inspection.post(f"/v1/stations/{s['id']}/keys", headers=ADMIN).json()
    for key in (s["api_key"], rotated["api_key"]):  # both work during the window
        r = inspection.post("/v1/inspections", json=factories.inspection(vin), headers=bearer(key))
        assert r.status_code == 201
    grace_ends = datetime.fromisoformat(rotated["previous_keys_valid_until"])
    assert grace_ends == clock.now() + timedelta(hours=24)
    clock.advance(timedelta(hours=24))  # the grace period's last moment has passed
    old = inspection.post(
        "/v1/inspections", json=factories.inspection(vin), headers=bearer(s["api_key"])
    )
    assert old.status_code == 401
    assert old.json()["type"].endswith("key-expired")
    inspection.delete(f"/v1/stations/{s['id']}/keys/{rotated['key_id']}", headers=ADMIN)
    r = inspection.post(
        "/v1/inspections", json=factories.inspection(vin), headers=bearer(rotated["api_key"])
    )
    assert r.status_code == 401
    assert inspected_events(inspection) == 2


def test_suspended_station_and_expired_accreditation_are_403(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    _uscc, vin = registered()
    s = station()
    inspection.post(
        f"/v1/stations/{s['id']}/status",
        headers=ADMIN,
        json={"status": "suspended", "reason": "CNAS audit pending"},
    )
    r = inspection.post(
        "/v1/inspections", json=factories.inspection(vin), headers=bearer(s["api_key"])
    )
    assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (403, "station-suspended")
    lapsed = station(accreditation_valid_until=(clock.now() - timedelta(days=1)).date().isoformat())
    r = inspection.post(
        "/v1/inspections", json=factories.inspection(vin), headers=bearer(lapsed["api_key"])
    )
    assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (403, "accreditation-expired")
    assert inspected_events(inspection) == 0


def test_idempotency_key_replays_the_first_answer_and_emits_one_event(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    _uscc, vin = registered()
    s = station()
    body = factories.inspection(vin)
    headers = {**bearer(s["api_key"]), "Idempotency-Key": "insp-2026-11-27-0001"}
    first = inspection.post("/v1/inspections", json=body, headers=headers)
    second = inspection.post("/v1/inspections", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    other = inspection.post(
        "/v1/inspections", json=factories.inspection(vin, odometer_km=40_000), headers=headers
    )
    assert other.status_code == 422
    assert inspected_events(inspection) == 1


def test_certificates_verify_valid_expired_revoked_and_not_found_with_a_signature(
    inspection: TestClient, registered: Registered, station: Station
) -> None:
    _uscc, vin = registered(make="Toyota", model="Corolla")
    s = station()
    cert = inspection.post(
        "/v1/inspections", json=factories.inspection(vin), headers=bearer(s["api_key"])
    ).json()["certificate_no"]
    public = inspection.get("/v1/certificates/public-key").json()

    def check(number: str, vin_: str) -> dict[str, object]:
        r = inspection.get(f"/v1/certificates/{number}", params={"vin": vin_})
        assert r.status_code == 200, r.text
        answer = dict(r.json())
        signed = {
            k: v for k, v in answer.items() if k not in ("signature", "key_id") and v is not None
        }
        assert answer["key_id"] == public["key_id"]
        assert verify(public["public_key"], signed, str(answer["signature"]))  # offline
        return answer

    valid = check(cert, vin)
    assert (valid["status"], valid["make"], valid["model_year"]) == ("valid", "Toyota", 2022)
    assert "station_id" not in valid and "odometer_km" not in valid  # nothing private
    assert check(cert, factories.vin())["status"] == "not_found"  # wrong VIN: no enumeration
    assert check("EXC-2611-0000000000000000-0", vin)["status"] == "not_found"
    clock.advance(timedelta(days=91))  # inspected today: valid through today + 90 days
    assert check(cert, vin)["status"] == "expired"
    r = inspection.post(
        f"/v1/certificates/{cert}/revoke",
        headers=ADMIN,
        json={"reason": "photos reused from another vehicle", "forged": True},
    )
    assert r.status_code == 200
    assert check(cert, vin)["status"] == "revoked"
    revoked = sql(
        inspection, "SELECT count(*) FROM outbox WHERE topic = 'vehicle.certificate-revoked.v1'"
    )
    assert revoked[0][0] == 1
    tampered = {**valid, "status": "valid", "model_year": 2024}
    signed = {
        k: v for k, v in tampered.items() if k not in ("signature", "key_id") and v is not None
    }
    assert not verify(public["public_key"], signed, str(valid["signature"]))


def test_certificate_checks_are_rate_limited_per_client(inspection: TestClient) -> None:
    vin = factories.vin()
    codes = [
        inspection.get("/v1/certificates/EXC-1", params={"vin": vin}).status_code for _ in range(35)
    ]
    assert codes[:30] == [200] * 30
    assert 429 in codes[30:]
    limited = inspection.get("/v1/certificates/EXC-1", params={"vin": vin})
    assert limited.json()["status"] == 429
