import json
from datetime import UTC, datetime, timedelta

from customs_support import (
    Broker,
    Ready,
    deliver,
    departed,
    inspected,
    outbox_topics,
    ready_vehicle,
    revoked,
)
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from customs.settings import Settings
from servicekit.clock import clock

import factories
from helpers import ADMIN, sql


def test_a_vehicle_is_declared_released_and_exported(ready: Ready) -> None:
    client, settings, broker = ready.client, ready.settings, ready.broker
    declaration = ready.lodging()
    r = broker.send("declaration.lodged", declaration)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"
    no = declaration["declaration_no"]
    assert (
        broker.send(
            "declaration.released",
            {"declaration_no": no, "released_at": datetime.now(UTC).isoformat()},
        ).json()["status"]
        == "released"
    )
    r = broker.send(
        "shipment.departed",
        {
            "declaration_no": no,
            "bill_of_lading": "COSU6312458790",
            "vessel_name": "COSCO Fortune",
            "vessel_imo": "IMO 9074729",
            "port_of_loading": "CNXMN",
            "departed_at": datetime.now(UTC).isoformat(),
        },
    )
    assert r.json()["status"] == "exported"
    assert outbox_topics(settings) == ["vehicle.declared.v1", "vehicle.exported.v1"]
    assert client.get(f"/v1/declarations/{no}", headers=ADMIN).json()["status"] == "exported"


def test_bad_signature_stale_timestamp_and_replay_change_nothing(ready: Ready) -> None:
    broker, data = ready.broker, ready.lodging()
    forged = broker.send("declaration.lodged", data, secret="whsec_" + "A" * 43)
    assert forged.status_code == 401
    stale = broker.send("declaration.lodged", data, at=datetime.now(UTC) - timedelta(minutes=6))
    assert stale.status_code == 401
    assert outbox_topics(ready.settings) == []
    first = broker.send("declaration.lodged", data, msg_id="msg_replayed_once")
    replay = broker.send("declaration.lodged", data, msg_id="msg_replayed_once")
    assert first.status_code == replay.status_code == 202
    assert replay.json() == first.json()
    assert replay.headers["webhook-replayed"] == "true"
    assert outbox_topics(ready.settings) == ["vehicle.declared.v1"]


def test_gates_reject_with_every_reason(ready: Ready) -> None:
    lodging = ready.lodging(certificate_no="EXC-WRONG", export_licence_no=None)
    r = ready.broker.send("declaration.lodged", lodging)
    assert r.json()["status"] == "rejected"
    assert r.json()["reasons"] == ["certificate_mismatch", "licence_missing"]
    assert outbox_topics(ready.settings) == ["vehicle.declared.v1"]


def test_a_declaration_waits_for_late_events_and_is_decided_when_they_arrive(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    broker = Broker(client, [uscc])
    vin = factories.vin()
    declaration = factories.declaration(vin, uscc, "EXC-UNKNOWN-YET")
    assert broker.send("declaration.lodged", declaration).json()["status"] == "pending"
    assert outbox_topics(settings) == []
    _vin, cert = ready_vehicle(settings, uscc, vin)  # registration and inspection arrive late
    decided = client.get(f"/v1/declarations/{declaration['declaration_no']}", headers=ADMIN).json()
    assert decided["status"] == "rejected"  # decided at once, never accepted without the gate
    assert decided["reasons"] == ["certificate_mismatch"]
    assert outbox_topics(settings) == ["vehicle.declared.v1"]
    assert cert != declaration["certificate_no"]


def test_a_broker_acts_only_for_its_enterprises(customs: tuple[TestClient, Settings]) -> None:
    client, settings = customs
    mine, theirs = factories.uscc(), factories.uscc()
    vin, cert = ready_vehicle(settings, theirs)
    broker = Broker(client, [mine])
    r = broker.send("declaration.lodged", factories.declaration(vin, theirs, cert))
    assert r.status_code == 403
    assert outbox_topics(settings) == []


def test_invalid_message_is_422_naming_the_field(customs: tuple[TestClient, Settings]) -> None:
    client, _settings = customs
    uscc = factories.uscc()
    broker = Broker(client, [uscc])
    r = broker.send(
        "declaration.lodged", factories.declaration(factories.vin(), uscc, "X", port_of_loading="C")
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "declaration.lodged.data.port_of_loading"


def test_a_revoked_certificate_fails_the_inspection_gate(ready: Ready) -> None:
    deliver(ready.settings, revoked(ready.uscc, ready.vin, ready.cert))
    r = ready.broker.send("declaration.lodged", ready.lodging())
    assert (r.json()["status"], r.json()["reasons"]) == ("rejected", ["certificate_revoked"])


def test_departure_without_release_is_refused_recorded_and_emitted(ready: Ready) -> None:
    lodging = ready.lodging()
    no = lodging["declaration_no"]
    ready.broker.send("declaration.lodged", lodging)
    r = ready.broker.send("shipment.departed", departed(no))
    assert r.status_code == 409
    assert r.json()["type"].endswith("declaration-not-released")
    topics = ["vehicle.declared.v1", "vehicle.departure-refused.v1"]
    assert outbox_topics(ready.settings) == topics
    declaration = ready.client.get(f"/v1/declarations/{no}", headers=ADMIN).json()
    assert declaration["status"] == "accepted"


def test_a_vin_is_exported_once(ready: Ready) -> None:
    broker, first = ready.broker, ready.lodged_and_released()
    assert broker.send("shipment.departed", departed(first)).status_code == 202
    lodged = broker.send("declaration.lodged", ready.lodging()).json()
    assert (lodged["status"], lodged["reasons"]) == ("rejected", ["already_exported"])
    again = broker.send("shipment.departed", departed(first))
    assert again.status_code == 409 and again.json()["type"].endswith("already-exported")
    assert outbox_topics(ready.settings).count("vehicle.exported.v1") == 1
    assert outbox_topics(ready.settings)[-1] == "vehicle.departure-refused.v1"


def test_tampered_body_unknown_type_and_malformed_payload_change_nothing(ready: Ready) -> None:
    client, settings, broker = ready.client, ready.settings, ready.broker
    body = json.dumps(
        {
            "type": "declaration.lodged",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": ready.lodging(),
        }
    )
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_tamper",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(broker.secret).sign("msg_tamper", now, body),
    }
    tampered = body.replace("KZ", "RU")
    r = client.post(f"/v1/webhooks/brokers/{broker.id}", content=tampered, headers=headers)
    assert r.status_code == 401
    assert broker.send("declaration.cancelled", {"declaration_no": "D1"}).status_code == 422
    assert broker.send("declaration.lodged", {"declaration_no": "D1"}).status_code == 422
    r = client.post(
        f"/v1/webhooks/brokers/{broker.id}",
        content=b"not json at all",
        headers={
            "webhook-id": "msg_raw",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(broker.secret).sign("msg_raw", now, "not json at all"),
        },
    )
    assert r.status_code == 422
    assert (
        client.post(
            "/v1/webhooks/brokers/no-such-broker", content=body, headers=headers
        ).status_code
        == 401
    )
    assert outbox_topics(settings) == []


def test_broker_secret_rotation_keeps_both_secrets_valid_during_the_overlap(ready: Ready) -> None:
    client, broker = ready.client, ready.broker
    old = broker.secret
    rotated = client.post(f"/v1/brokers/{broker.id}/secrets", headers=ADMIN).json()
    assert broker.send("declaration.lodged", ready.lodging(), secret=old).status_code == 202
    second = ready.lodging(ready.another_vehicle())
    with_new = broker.send("declaration.lodged", second, secret=rotated["secret"])
    assert with_new.status_code == 202
    sql(
        client,
        "UPDATE broker_secrets SET expires_at = :t WHERE expires_at IS NOT NULL",
        t=datetime.now(UTC) - timedelta(seconds=1),
    )
    third = ready.lodging(ready.another_vehicle())
    assert broker.send("declaration.lodged", third, secret=old).status_code == 401


def test_the_latest_inspection_is_the_newest_whatever_the_order_they_arrive_in(
    ready: Ready,
) -> None:
    """customs' copy of the vehicle's latest inspection: an older one arriving late changes
    nothing; a newer one replaces it (its own certificate, not revoked)."""
    settings, broker, now = ready.settings, ready.broker, clock.now()
    valid = now.date() + timedelta(days=90)
    older = inspected(
        ready.uscc, ready.vin, "EXC-OLDER", now - timedelta(days=2), valid_until=valid
    )
    deliver(settings, older, revoked(ready.uscc, ready.vin, ready.cert))
    r = broker.send("declaration.lodged", ready.lodging())
    assert (r.json()["status"], r.json()["reasons"]) == ("rejected", ["certificate_revoked"])
    newer_cert = "EXC-NEWER"
    deliver(settings, inspected(ready.uscc, ready.vin, newer_cert, clock.now(), valid_until=valid))
    stale = broker.send("declaration.lodged", ready.lodging())
    assert (stale.json()["status"], stale.json()["reasons"]) == (
        "rejected",
        ["certificate_mismatch"],
    )
    current = broker.send("declaration.lodged", ready.lodging(certificate_no=newer_cert))
    assert current.json()["status"] == "accepted"
    assert sql(ready.client, "SELECT certificate_no, revoked FROM latest_inspections") == [
        (newer_cert, False)
    ]
