"""Customs over its real ASGI app: a signing broker, the projections' events as the worker
would apply them, and what customs wrote. Times come from servicekit's clock, so a test that
moves it gets data of the moved time (webhook signatures keep wall time: receivers check it)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from standardwebhooks import Webhook

from contracts import envelope, events
from customs.__main__ import SPEC
from customs.settings import Settings
from servicekit.clock import clock
from servicekit.db import make_engine

import factories
from helpers import ADMIN, consume, service_client


def customs_app(database_url: str) -> Iterator[tuple[TestClient, Settings]]:
    """The body of a ``customs`` fixture: customs on a fresh database; the clock is put back
    afterwards."""
    try:
        for client, settings in service_client(SPEC, database_url):
            assert isinstance(settings, Settings)
            yield client, settings
    finally:
        clock.reset()


def deliver(settings: Settings, *events_: envelope.CloudEvent) -> None:
    consume(SPEC, settings, *events_)


class Broker:
    def __init__(self, client: TestClient, enterprises: list[str]) -> None:
        r = client.post(
            "/v1/brokers",
            headers=ADMIN,
            json={
                "name": "Xiamen Haitong Customs Brokerage",
                "customs_code": f"35029{uuid.uuid4().int % 10**5:05d}",
                "enterprises": enterprises,
            },
        )
        assert r.status_code == 201, r.text
        self.client, self.id, self.secret = client, r.json()["id"], r.json()["secret"]

    def signed(
        self,
        type_: str,
        data: dict[str, Any],
        *,
        msg_id: str | None = None,
        at: datetime | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"type": type_, "timestamp": clock.now().isoformat(), "data": data})
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        at = at or datetime.now(UTC)  # the signature's wall time, not the moved clock
        return body.encode(), {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret or self.secret).sign(msg_id, at, body),
            "content-type": "application/json",
        }

    def send(self, type_: str, data: dict[str, Any], **kw: Any) -> Any:
        body, headers = self.signed(type_, data, **kw)
        return self.client.post(f"/v1/webhooks/brokers/{self.id}", content=body, headers=headers)


@dataclass
class Ready:
    """Customs with an admitted enterprise's registered, passed vehicle (as its projections see
    it at the clock's now) and a broker acting for the enterprise: where most tests start."""

    client: TestClient
    settings: Settings
    uscc: str
    vin: str
    cert: str
    broker: Broker

    @classmethod
    def of(cls, client: TestClient, settings: Settings, **vehicle: Any) -> Ready:
        """``vehicle``: ``ready_vehicle``'s keywords (first registration, validity)."""
        uscc = factories.uscc()
        vin, cert = ready_vehicle(settings, uscc, **vehicle)
        return cls(client, settings, uscc, vin, cert, Broker(client, [uscc]))

    def another_vehicle(self) -> tuple[str, str]:
        """One more ready vehicle of the same enterprise: (VIN, certificate)."""
        return ready_vehicle(self.settings, self.uscc)

    def lodging(self, vehicle: tuple[str, str] | None = None, **data: Any) -> dict[str, Any]:
        """A ``declaration.lodged`` of the vehicle (or ``vehicle``) that passes every gate,
        changed by ``data``."""
        vin, cert = vehicle or (self.vin, self.cert)
        return factories.declaration(vin, self.uscc, cert, **data)

    def lodged_and_released(self, vehicle: tuple[str, str] | None = None) -> str:
        """A declaration of the vehicle lodged (accepted) and released; its number."""
        lodging = self.lodging(vehicle)
        assert self.broker.send("declaration.lodged", lodging).json()["status"] == "accepted"
        no: str = lodging["declaration_no"]
        assert self.broker.send("declaration.released", released(no)).status_code == 202
        return no


def status_changed(uscc: str, to: str, from_: str = "admitted") -> envelope.CloudEvent:
    return envelope.new_event(
        events.EnterpriseStatusChanged.model_validate(
            {
                "enterprise_uscc": uscc,
                "from": from_,
                "to": to,
                "actor": "admin" if to == "admitted" else "policy",
                "reason": "documents and site verified" if to == "admitted" else "score 52",
                "changed_at": clock.now(),
            }
        ),
        source="ucx/registry",
    )


def ready_vehicle(
    settings: Settings,
    uscc: str,
    vin: str | None = None,
    *,
    first_registration: date = date(2022, 4, 18),
    valid_days: int = 90,
) -> tuple[str, str]:
    """A registered, passed vehicle of an admitted enterprise, as customs' projections see it
    at the clock's now."""
    vin, cert = vin or factories.vin(), f"EXC-2611-{uuid.uuid4().hex[:16].upper()}-7"
    now = clock.now()
    deliver(settings, status_changed(uscc, "admitted", from_="applied"))
    deliver(
        settings,
        envelope.new_event(
            events.VehicleRegistered(
                enterprise_uscc=uscc,
                vin=vin,
                make="Volkswagen",
                model="Lavida",
                model_year=2022,
                first_registration_date=first_registration,
                mileage_km=38_200,
                registered_at=now,
            ),
            source="ucx/registry",
        ),
    )
    deliver(
        settings,
        inspected(uscc, vin, cert, now, valid_until=now.date() + timedelta(days=valid_days)),
    )
    return vin, cert


def inspected(
    uscc: str, vin: str, cert: str, at: datetime, *, valid_until: date
) -> envelope.CloudEvent:
    """A passed inspection of the vehicle at ``at``, issuing ``cert``."""
    return envelope.new_event(
        events.VehicleInspected(
            enterprise_uscc=uscc,
            inspection_id=str(uuid.uuid4()),
            vin=vin,
            station_id="s1",
            inspected_at=at,
            odometer_km=39_000,
            verdict="pass",
            first_inspection=True,
            items=[],
            failed_items=[],
            certificate_no=cert,
            valid_until=valid_until,
        ),
        source="ucx/inspection",
    )


def revoked(uscc: str, vin: str, cert: str) -> envelope.CloudEvent:
    return envelope.new_event(
        events.CertificateRevoked(
            enterprise_uscc=uscc,
            certificate_no=cert,
            vin=vin,
            inspection_id="i",
            reason="forged photos",
            forged=True,
            revoked_at=clock.now(),
        ),
        source="ucx/inspection",
    )


def released(no: str, at: datetime | None = None) -> dict[str, Any]:
    return {"declaration_no": no, "released_at": (at or clock.now()).isoformat()}


def departed(no: str, bill_of_lading: str = "COSU6312458790", **kw: Any) -> dict[str, Any]:
    return {
        "declaration_no": no,
        "bill_of_lading": bill_of_lading,
        "vessel_name": "COSCO Fortune",
        "vessel_imo": "IMO 9074729",
        "port_of_loading": "CNXMN",
        "departed_at": clock.now().isoformat(),
        **kw,
    }


def outbox(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """Every event customs wrote, in order: (topic, CloudEvent data)."""
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT topic, value FROM outbox ORDER BY id")).all()
    engine.dispose()
    return [(topic, json.loads(bytes(value))["data"]) for topic, value in rows]


def outbox_topics(settings: Settings) -> list[str]:
    return [topic for topic, _data in outbox(settings)]
