"""Customs: inbound signed broker webhooks, and outbound webhook deliveries.

Inbound: ``POST /v1/webhooks/brokers/{id}`` with ``declaration.lodged`` messages signed per
Standard Webhooks (the ``standardwebhooks`` package, the broker's secret from
``POST /v1/brokers``). The service verifies the signature, claims the ``webhook-id``, evaluates
the gates against its projections and writes the outcome to its outbox; the projections
(enterprise admitted, each VIN registered and inspected with a valid certificate) are filled
before the API starts by customs' own consumer handlers, called in-process. Signatures carry a
timestamp the service accepts for 5 minutes, so each phase's requests are signed right before
the phase. Every message lodges a new declaration that passes every gate: 202, "accepted".

Outbound: one subscription to a local receiver that answers 200 at once
(:mod:`bench.receiver`), M ``declaration.accepted`` deliveries queued with customs' own
``enqueue`` handler, then one process (:mod:`bench.deliver`) runs ``Deliverer.run_once`` until
none is pending.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from bench import data, http
from bench.client import Expect, post
from bench.http import ADMIN_TOKEN, HOST, WARMUP, Build, Load, Registration, call, drive
from bench.procs import Proc, base_env, say
from contracts import events
from contracts.envelope import CloudEvent, new_event
from customs import subscriptions as customs_subscriptions
from customs.consumers import subscriptions
from customs.models import Delivery, DeliveryAttempt
from customs.settings import Settings
from servicekit.db import make_engine
from servicekit.ports import free_port

SECRET_KEY = "bench-customs-secret-key-not-a-secret"
EXPECT = Expect(202, b'"status":"accepted"')
"""A 202 whose declaration passed every gate."""
PORT_OF_LOADING = "CNXMN"
ENQUEUE_BATCH = 500
DELIVERY_TIMEOUT_S = 90.0
_BASELINE_SECRET = "whsec_YmVuY2gtYmFzZWxpbmUtc2VjcmV0LWtleQ=="
"""Signs the baseline's messages the same way (the bare route does not verify them)."""


@dataclass(frozen=True)
class Car:
    vin: str
    serial: int

    @property
    def certificate_no(self) -> str:
        return f"FZ-CERT-2026-{self.serial:06d}"

    @property
    def declaration_no(self) -> str:
        return f"3501202600{self.serial:08d}"


def cars(load: Load) -> list[Car]:
    ids = data.Ids()
    return [Car(ids.vin(), i) for i in range(1, WARMUP + load.n + load.open_requests + 1)]


def _status_changed(uscc: str, at: datetime) -> events.EnterpriseStatusChanged:
    return events.EnterpriseStatusChanged.model_validate(
        {"enterprise_uscc": uscc, "from": "applied", "to": "admitted", "actor": "admin",
         "reason": "benchmark enterprise, admitted", "changed_at": at}
    )  # fmt: skip


def _car_events(uscc: str, car: Car, at: datetime) -> list[events.EventData]:
    return [
        data.registered(uscc, car.vin, at),
        events.VehicleInspected(
            enterprise_uscc=uscc, inspection_id=f"insp-{car.serial}", vin=car.vin,
            station_id="FZ-MVIC-01", inspected_at=at, odometer_km=38950, verdict="pass",
            first_inspection=True,
            items=[events.InspectionItem(code=c, result="pass", severity="major")
                   for c in data.CHECKLIST],
            failed_items=[], certificate_no=car.certificate_no,
            valid_until=at.date() + timedelta(days=90),
        ),
    ]  # fmt: skip


def seed_projections(database_url: str, uscc: str, known: list[Car]) -> None:
    """Customs' projections, filled by its own consumer handlers (every subscription that
    handles the event's type), as the Kafka consumer would."""
    at = datetime.now(UTC) - timedelta(days=1)
    settings = Settings(database_url=database_url, secret_key=SECRET_KEY)
    subs = subscriptions(settings)
    stream: list[events.EventData] = [_status_changed(uscc, at)]
    for car in known:
        stream.extend(_car_events(uscc, car, at))
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            for item in stream:
                event = new_event(item, source="bench")
                for sub in subs:
                    handler = sub.handlers.get(event.type)
                    if handler is not None and handler.apply is not None:
                        handler.apply(session, item, event)
    finally:
        engine.dispose()


def lodged(uscc: str, car: Car, now: str) -> dict[str, Any]:
    return {
        "type": "declaration.lodged",
        "timestamp": now,
        "data": {
            "declaration_no": car.declaration_no,
            "vin": car.vin,
            "enterprise_uscc": uscc,
            "export_licence_no": f"EL-2026-{car.serial:06d}",
            "certificate_no": car.certificate_no,
            "port_of_loading": PORT_OF_LOADING,
            "destination_country": "KZ",
            "declared_at": now,
        },
    }


def builder(port: int, broker_id: str, secret: str, uscc: str, known: list[Car]) -> Build:
    """Signed messages for the next cars, signed when serialised (right before their phase)."""
    rest = iter(known)
    webhook = Webhook(secret)
    path = f"/v1/webhooks/brokers/{broker_id}"

    def build(count: int) -> list[bytes]:
        signed_at = datetime.now(UTC)
        stamp, now = str(int(signed_at.timestamp())), signed_at.isoformat()
        out = []
        for _ in range(count):
            car = next(rest)
            body = json.dumps(lodged(uscc, car, now), separators=(",", ":"))
            msg_id = f"msg_bench_{car.serial:08d}"
            headers = (
                ("webhook-id", msg_id),
                ("webhook-timestamp", stamp),
                ("webhook-signature", webhook.sign(msg_id, signed_at, body)),
            )
            out.append(post(HOST, port, path, body.encode(), None, headers))
        return out

    return build


def _broker(base: str, uscc: str) -> tuple[str, str]:
    answer = call(
        f"{base}/v1/brokers",
        {"name": "Xiamen Haitong Customs Brokerage", "customs_code": "3502BENCH7",
         "enterprises": [uscc]},
        ADMIN_TOKEN,
    )  # fmt: skip
    return str(answer["id"]), str(answer["secret"])


def webhooks(
    name: str, workdir: Path, database_url: str, load: Load, procs: list[Proc]
) -> Registration:
    port = free_port(100, 200)
    env = http.api_env("customs", name, workdir, database_url, port, CUSTOMS_SECRET_KEY=SECRET_KEY)
    uscc, known = data.Ids().uscc(), cars(load)
    say(f"{name}: enterprise and {len(known)} vehicles + inspections into the projections")
    seed_projections(database_url, uscc, known)
    api = http.serve(name, ["-m", "customs", "api"], env, workdir, port, procs)
    broker_id, secret = _broker(f"http://{HOST}:{port}", uscc)
    return drive(name, port, builder(port, broker_id, secret, uscc, known), load, api, EXPECT)


def baseline(workdir: Path, load: Load, procs: list[Proc]) -> Registration:
    """The bare webhook route (bench.baseline_api), same signed messages (not verified)."""
    name = "baseline-api-webhooks"
    port, api = http.serve_baseline(name, workdir, procs)
    build = builder(port, "broker-bench", _BASELINE_SECRET, data.Ids().uscc(), cars(load))
    return drive(name, port, build, load, api, EXPECT)


# --- outbound deliveries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Deliveries:
    queued: int
    delivered: int
    failed_attempts: int
    elapsed_s: float
    """First round's start to last round's end, in the delivery process."""
    latencies_ms: list[float]
    startup_s: float
    peak_rss_mib: float | None
    receiver_rss_mib: float | None

    @property
    def rate(self) -> float:
        return self.delivered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _declared(uscc: str, car: Car) -> CloudEvent:
    return new_event(
        events.VehicleDeclared(
            enterprise_uscc=uscc, declaration_no=car.declaration_no, vin=car.vin,
            broker_id="broker-bench", outcome="accepted", reasons=[],
            export_licence_no=f"EL-2026-{car.serial:06d}", certificate_no=car.certificate_no,
            port_of_loading=PORT_OF_LOADING, destination_country="KZ",
            declared_at=datetime.now(UTC),
        ),
        source="bench",
    )  # fmt: skip


def _queue(engine: Engine, settings: Settings, url: str, count: int) -> None:
    with Session(engine) as session:
        customs_subscriptions.create(session, settings, url, ["declaration.accepted"], None)
    ids = data.Ids()
    uscc = ids.uscc()
    pending = [_declared(uscc, Car(ids.vin(), i)) for i in range(1, count + 1)]
    for start in range(0, count, ENQUEUE_BATCH):
        with Session(engine) as session, session.begin():
            for event in pending[start : start + ENQUEUE_BATCH]:
                customs_subscriptions.enqueue(session, event.typed_data(), event)


def _attempts(engine: Engine) -> tuple[list[float], int, int]:
    """Per-attempt latencies, delivered deliveries, and attempts that did not get a 2xx."""
    with Session(engine) as session:
        latencies = [float(x) for x in session.scalars(select(DeliveryAttempt.latency_ms))]
        delivered = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == "delivered")
        )
        failed = session.scalar(
            select(func.count())
            .select_from(DeliveryAttempt)
            .where(
                (DeliveryAttempt.status_code.is_(None))
                | (DeliveryAttempt.status_code < 200)
                | (DeliveryAttempt.status_code >= 300)
            )
        )
    return latencies, int(delivered or 0), int(failed or 0)


def deliveries(workdir: Path, count: int, procs: list[Proc]) -> Deliveries:
    database_url = f"sqlite:///{workdir / 'customs-delivery.db'}"
    port = free_port()  # nothing listens: api_env migrates the delivery database
    http.api_env(
        "customs", "customs-delivery", workdir, database_url, port, CUSTOMS_SECRET_KEY=SECRET_KEY
    )
    receiver_port = free_port()
    args = ["-m", "bench.receiver", str(receiver_port)]
    receiver = http.serve("webhook-receiver", args, base_env(), workdir, receiver_port, procs)
    settings = Settings(database_url=database_url, secret_key=SECRET_KEY)
    engine = make_engine(database_url)
    try:
        say(f"deliveries: queueing {count} declaration.accepted deliveries")
        _queue(engine, settings, f"http://{HOST}:{receiver_port}/hooks/ucx", count)
        result = workdir / "deliver-result.json"
        env = base_env(
            BENCH_DATABASE_URL=database_url,
            BENCH_SECRET_KEY=SECRET_KEY,
            BENCH_EXPECT=str(count),
            BENCH_RESULT=str(result),
        )
        say("deliveries: one delivery process (Deliverer.run_once until none is pending)")
        deliverer = Proc("customs-deliverer", ["-m", "bench.deliver"], env, workdir)
        procs.append(deliverer)
        deliverer.wait_for_file(result, DELIVERY_TIMEOUT_S, f"did not finish {count} deliveries")
        deliverer.stop()
        summary = json.loads(result.read_text())
        latencies, delivered, failed = _attempts(engine)
    finally:
        engine.dispose()
    figures = Deliveries(
        count, delivered, failed, summary["last_at"] - summary["first_at"], latencies,
        summary["first_at"] - deliverer.started_at, summary["peak_rss_mib"],
        receiver.peak_rss_mib(),
    )  # fmt: skip
    receiver.stop()
    say(
        f"deliveries: {delivered} of {count} delivered in {figures.elapsed_s:.1f} s, "
        f"{figures.rate:,.0f}/s; attempt latency p50 {figures.percentile(50):.1f} ms, "
        f"p99 {figures.percentile(99):.1f} ms; {failed} failed attempts"
    )
    return figures
