from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from servicekit.db import normalise_url

import factories
from helpers import ADMIN, bearer
from stack_support import admitted_enterprise


def outbox_types(registry: TestClient) -> list[str]:
    engine = create_engine(normalise_url(registry.app.state.settings.database_url))  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT topic FROM outbox ORDER BY id")).scalars().all()
    engine.dispose()
    return list(rows)


def test_apply_approve_and_register_a_vehicle_writes_one_event_each(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    vehicle = factories.vehicle(uscc)
    r = registry.post("/v1/vehicles", json=vehicle, headers=bearer(key))
    assert r.status_code == 201, r.text
    assert r.json()["stage"] == "registered"
    assert registry.get(f"/v1/vehicles/{vehicle['vin']}").json()["enterprise_uscc"] == uscc
    assert outbox_types(registry) == [
        "enterprise.status-changed.v1",
        "enterprise.status-changed.v1",
        "vehicle.registered.v1",
    ]
    timeline = registry.get(f"/v1/vehicles/{vehicle['vin']}/timeline").json()
    assert [e["type"] for e in timeline["events"]] == ["vehicle.registered"]


def test_approval_returns_the_api_key_once(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    assert key.startswith("ucx_ent_")
    assert "api_key" not in registry.get(f"/v1/enterprises/{uscc}").json()


def test_invalid_vin_check_digit_is_422_naming_the_field_and_writes_nothing(
    registry: TestClient,
) -> None:
    uscc, key = admitted_enterprise(registry)
    vin = factories.vin()
    wrong = vin[:8] + ("0" if vin[8] != "0" else "1") + vin[9:]
    r = registry.post("/v1/vehicles", json=factories.vehicle(uscc, vin=wrong), headers=bearer(key))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == "vin"
    assert r.json()["errors"][0]["rule"] == "vin_check_digit"
    assert "vehicle.registered.v1" not in outbox_types(registry)


def test_invalid_uscc_check_character_is_422(registry: TestClient) -> None:
    body = factories.enterprise()
    body["uscc"] = body["uscc"][:-1] + ("0" if body["uscc"][-1] != "0" else "1")
    r = registry.post("/v1/enterprises", json=body)
    assert r.status_code == 422
    assert r.json()["errors"][0] == {
        "field": "uscc",
        "rule": "uscc_check_character",
        "message": r.json()["errors"][0]["message"],
    }
    assert outbox_types(registry) == []


def test_malformed_json_and_missing_fields_are_422_problems(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    headers = {**bearer(key), "content-type": "application/json"}
    r = registry.post("/v1/vehicles", content=b'{"vin": "LSV', headers=headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["rule"] == "json_invalid"
    body = factories.vehicle(uscc)
    del body["engine_no"]
    r = registry.post("/v1/vehicles", json=body, headers=bearer(key))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "engine_no"
    assert r.json()["errors"][0]["rule"] == "missing"
    assert outbox_types(registry).count("vehicle.registered.v1") == 0


def test_a_vin_is_registered_once(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    vehicle = factories.vehicle(uscc)
    assert registry.post("/v1/vehicles", json=vehicle, headers=bearer(key)).status_code == 201
    again = registry.post("/v1/vehicles", json=vehicle, headers=bearer(key))
    assert again.status_code == 409
    assert again.json()["vehicle"] == f"/v1/vehicles/{vehicle['vin']}"


def test_suspended_enterprise_cannot_register(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    r = registry.post(
        f"/v1/enterprises/{uscc}/decisions",
        json={"action": "suspend", "reason": "audit"},
        headers=ADMIN,
    )
    assert r.json()["status"] == "suspended"
    r = registry.post("/v1/vehicles", json=factories.vehicle(uscc), headers=bearer(key))
    assert r.status_code == 403
    assert r.json()["enterprise_status"] == "suspended"


def test_transition_outside_the_status_machine_is_409_with_allowed_actions(
    registry: TestClient,
) -> None:
    body = factories.enterprise()
    registry.post("/v1/enterprises", json=body)
    r = registry.post(
        f"/v1/enterprises/{body['uscc']}/decisions",
        json={"action": "suspend", "reason": "x"},
        headers=ADMIN,
    )
    assert r.status_code == 409
    assert r.json()["current_status"] == "applied"
    assert r.json()["allowed_actions"] == ["approve", "reject"]


def test_decisions_need_the_admin_token(registry: TestClient) -> None:
    body = factories.enterprise()
    registry.post("/v1/enterprises", json=body)
    url = f"/v1/enterprises/{body['uscc']}/decisions"
    payload = {"action": "approve", "reason": "x"}
    assert registry.post(url, json=payload).status_code == 401
    assert registry.post(url, json=payload, headers=bearer("guess")).status_code == 401


def test_dealer_with_too_few_appraisers_is_refused_with_the_rule(registry: TestClient) -> None:
    r = registry.post("/v1/enterprises", json=factories.enterprise(appraiser_count=2))
    assert r.status_code == 422
    assert r.json()["errors"][0]["rule"] == "dealer_min_appraisers"


def test_idempotency_key_replays_the_first_answer(registry: TestClient) -> None:
    uscc, key = admitted_enterprise(registry)
    vehicle = factories.vehicle(uscc)
    headers = {**bearer(key), "Idempotency-Key": "5e0b1c8e-reg-1"}
    first = registry.post("/v1/vehicles", json=vehicle, headers=headers)
    second = registry.post("/v1/vehicles", json=vehicle, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = registry.post("/v1/vehicles", json=factories.vehicle(uscc), headers=headers)
    assert other.status_code == 422
    assert outbox_types(registry).count("vehicle.registered.v1") == 1


def test_oversized_body_is_413(registry: TestClient) -> None:
    r = registry.post(
        "/v1/enterprises",
        content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["status"] == 413


def test_health_and_readiness(registry: TestClient) -> None:
    assert registry.get("/healthz").json()["status"] == "ok"
    ready = registry.get("/readyz")
    assert ready.status_code == 200  # the broker is reported but not critical for an API
    checks = {c["name"]: c for c in ready.json()["checks"]}
    assert checks["database"]["status"] == "ok"
    assert (
        "ucx_http_requests_total" in registry.get("/metrics").text
        or registry.get("/metrics").status_code == 200
    )


def test_applying_again_while_admitted_is_409_and_rejected_may_reapply(
    registry: TestClient,
) -> None:
    uscc, _key = admitted_enterprise(registry)
    again = registry.post("/v1/enterprises", json=factories.enterprise(uscc))
    assert again.status_code == 409
    assert again.json()["current_status"] == "admitted"
    other = factories.enterprise()
    registry.post("/v1/enterprises", json=other)
    registry.post(
        f"/v1/enterprises/{other['uscc']}/decisions",
        headers=ADMIN,
        json={"action": "reject", "reason": "no sales site"},
    )
    assert registry.post("/v1/enterprises", json=other).json()["status"] == "applied"
