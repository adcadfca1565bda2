import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from standardwebhooks import Webhook

from contracts import envelope, events
from customs.__main__ import SPEC
from customs.settings import Settings
from servicekit.db import make_engine

import factories
from helpers import ADMIN, consume, service_client


@pytest.fixture
def customs(database_url: str) -> Iterator[tuple[TestClient, Settings]]:
    for client, settings in service_client(SPEC, database_url):
        assert isinstance(settings, Settings)
        yield client, settings


def deliver(settings: Settings, event: envelope.CloudEvent) -> None:
    consume(SPEC, settings, event)


class Broker:
    def __init__(self, client: TestClient, enterprises: list[str]) -> None:
        r = client.post(
            "/v1/brokers",
            headers=ADMIN,
            json={
                "name": "Xiamen Haitong Customs Brokerage",
                "customs_code": "3502980123",
                "enterprises": enterprises,
            },
        )
        assert r.status_code == 201, r.text
        self.client, self.id, self.secret = client, r.json()["id"], r.json()["secret"]

    def send(
        self,
        type_: str,
        data: dict[str, Any],
        *,
        msg_id: str | None = None,
        at: datetime | None = None,
        secret: str | None = None,
    ) -> Any:
        body = json.dumps({"type": type_, "timestamp": datetime.now(UTC).isoformat(), "data": data})
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        at = at or datetime.now(UTC)
        signature = Webhook(secret or self.secret).sign(msg_id, at, body)
        return self.client.post(
            f"/v1/webhooks/brokers/{self.id}",
            content=body,
            headers={
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": signature,
                "content-type": "application/json",
            },
        )


def ready_vehicle(settings: Settings, uscc: str, vin: str | None = None) -> tuple[str, str]:
    """A registered, passed vehicle of an admitted enterprise, as customs' projections see it."""
    vin, cert = vin or factories.vin(), f"EXC-2611-{uuid.uuid4().hex[:16].upper()}-7"
    now = datetime.now(UTC)
    deliver(
        settings,
        envelope.new_event(
            events.EnterpriseStatusChanged.model_validate(
                {
                    "enterprise_uscc": uscc,
                    "from": "applied",
                    "to": "admitted",
                    "actor": "admin",
                    "reason": "ok",
                    "changed_at": now,
                }
            ),
            source="ucx/registry",
        ),
    )
    deliver(
        settings,
        envelope.new_event(
            events.VehicleRegistered(
                enterprise_uscc=uscc,
                vin=vin,
                make="Volkswagen",
                model="Lavida",
                model_year=2022,
                first_registration_date="2022-04-18",
                mileage_km=38_200,
                registered_at=now,
            ),
            source="ucx/registry",
        ),
    )
    deliver(
        settings,
        envelope.new_event(
            events.VehicleInspected(
                enterprise_uscc=uscc,
                inspection_id=str(uuid.uuid4()),
                vin=vin,
                station_id="s1",
                inspected_at=now,
                odometer_km=39_000,
                verdict="pass",
                first_inspection=True,
                items=[],
                failed_items=[],
                certificate_no=cert,
                valid_until=date.today() + timedelta(days=90),
            ),
            source="ucx/inspection",
        ),
    )
    return vin, cert


def outbox_topics(settings: Settings) -> list[str]:
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT topic FROM outbox ORDER BY id")).scalars().all()
    engine.dispose()
    return list(rows)


def test_a_vehicle_is_declared_released_and_exported(customs: tuple[TestClient, Settings]) -> None:
    client, settings = customs
    uscc = factories.uscc()
    vin, cert = ready_vehicle(settings, uscc)
    broker = Broker(client, [uscc])
    declaration = factories.declaration(vin, uscc, cert)
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


def test_bad_signature_stale_timestamp_and_replay_change_nothing(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    vin, cert = ready_vehicle(settings, uscc)
    broker = Broker(client, [uscc])
    data = factories.declaration(vin, uscc, cert)
    forged = broker.send("declaration.lodged", data, secret="whsec_" + "A" * 43)
    assert forged.status_code == 401
    stale = broker.send("declaration.lodged", data, at=datetime.now(UTC) - timedelta(minutes=6))
    assert stale.status_code == 401
    assert outbox_topics(settings) == []
    first = broker.send("declaration.lodged", data, msg_id="msg_replayed_once")
    replay = broker.send("declaration.lodged", data, msg_id="msg_replayed_once")
    assert first.status_code == replay.status_code == 202
    assert replay.json() == first.json()
    assert replay.headers["webhook-replayed"] == "true"
    assert outbox_topics(settings) == ["vehicle.declared.v1"]


def test_gates_reject_with_every_reason(customs: tuple[TestClient, Settings]) -> None:
    client, settings = customs
    uscc = factories.uscc()
    vin, _cert = ready_vehicle(settings, uscc)
    broker = Broker(client, [uscc])
    r = broker.send(
        "declaration.lodged", factories.declaration(vin, uscc, "EXC-WRONG", export_licence_no=None)
    )
    assert r.json()["status"] == "rejected"
    assert r.json()["reasons"] == ["certificate_mismatch", "licence_missing"]
    assert outbox_topics(settings) == ["vehicle.declared.v1"]


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


def test_a_revoked_certificate_fails_the_inspection_gate(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    vin, cert = ready_vehicle(settings, uscc)
    deliver(
        settings,
        envelope.new_event(
            events.CertificateRevoked(
                enterprise_uscc=uscc,
                certificate_no=cert,
                vin=vin,
                inspection_id="i",
                reason="forged photos",
                forged=True,
                revoked_at=datetime.now(UTC),
            ),
            source="ucx/inspection",
        ),
    )
    broker = Broker(client, [uscc])
    r = broker.send("declaration.lodged", factories.declaration(vin, uscc, cert))
    assert (r.json()["status"], r.json()["reasons"]) == ("rejected", ["certificate_revoked"])


def departed(no: str) -> dict[str, Any]:
    return {
        "declaration_no": no,
        "bill_of_lading": "COSU6312458790",
        "vessel_name": "COSCO Fortune",
        "vessel_imo": "IMO 9074729",
        "port_of_loading": "CNXMN",
        "departed_at": datetime.now(UTC).isoformat(),
    }


def test_departure_without_release_is_refused_recorded_and_emitted(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    vin, cert = ready_vehicle(settings, uscc)
    broker = Broker(client, [uscc])
    declaration = factories.declaration(vin, uscc, cert)
    broker.send("declaration.lodged", declaration)
    r = broker.send("shipment.departed", departed(declaration["declaration_no"]))
    assert r.status_code == 409
    assert r.json()["type"].endswith("declaration-not-released")
    assert outbox_topics(settings) == ["vehicle.declared.v1", "vehicle.departure-refused.v1"]
    assert (
        client.get(f"/v1/declarations/{declaration['declaration_no']}", headers=ADMIN).json()[
            "status"
        ]
        == "accepted"
    )


def test_a_vin_is_exported_once(customs: tuple[TestClient, Settings]) -> None:
    client, settings = customs
    uscc = factories.uscc()
    vin, cert = ready_vehicle(settings, uscc)
    broker = Broker(client, [uscc])
    first, second = factories.declaration(vin, uscc, cert), factories.declaration(vin, uscc, cert)
    for declaration in (first, second):
        broker.send("declaration.lodged", declaration)
        broker.send(
            "declaration.released",
            {
                "declaration_no": declaration["declaration_no"],
                "released_at": datetime.now(UTC).isoformat(),
            },
        )
    assert broker.send("shipment.departed", departed(first["declaration_no"])).status_code == 202
    again = broker.send("shipment.departed", departed(second["declaration_no"]))
    assert again.status_code == 409 and again.json()["type"].endswith("already-exported")
    assert outbox_topics(settings).count("vehicle.exported.v1") == 1
    assert outbox_topics(settings)[-1] == "vehicle.departure-refused.v1"


def test_tampered_body_unknown_type_and_malformed_payload_change_nothing(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    vin, cert = ready_vehicle(settings, uscc)
    broker = Broker(client, [uscc])
    body = json.dumps(
        {
            "type": "declaration.lodged",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": factories.declaration(vin, uscc, cert),
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


def test_broker_secret_rotation_keeps_both_secrets_valid_during_the_overlap(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    vin, cert = ready_vehicle(settings, uscc)
    broker = Broker(client, [uscc])
    old = broker.secret
    rotated = client.post(f"/v1/brokers/{broker.id}/secrets", headers=ADMIN).json()
    assert (
        broker.send(
            "declaration.lodged", factories.declaration(vin, uscc, cert), secret=old
        ).status_code
        == 202
    )
    vin2, cert2 = ready_vehicle(settings, uscc)
    assert (
        broker.send(
            "declaration.lodged", factories.declaration(vin2, uscc, cert2), secret=rotated["secret"]
        ).status_code
        == 202
    )
    from helpers import sql

    sql(
        client,
        "UPDATE broker_secrets SET expires_at = :t WHERE expires_at IS NOT NULL",
        t=datetime.now(UTC) - timedelta(seconds=1),
    )
    vin3, cert3 = ready_vehicle(settings, uscc)
    assert (
        broker.send(
            "declaration.lodged", factories.declaration(vin3, uscc, cert3), secret=old
        ).status_code
        == 401
    )
