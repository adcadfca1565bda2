"""Inspection ingestion: ``POST /v1/inspections`` with the full checklist, against a bare route.

The inspection service only inspects vehicles it knows: before its API starts, its own
``vehicle.registered`` consumer handler is called in-process, once per VIN, to fill its
projection (as the Kafka consumer would). A station is created through the admin API; each
request then reports one known VIN, all 19 checklist items passed. Each VIN is inspected once.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from bench import data
from bench.client import Expect, post
from bench.http import ADMIN_TOKEN, HOST, WARMUP, Build, Load, Registration, call, drive
from bench.procs import Proc, base_env, run, say
from contracts import events
from inspection.consumers import vehicle_registered
from servicekit.db import make_engine
from servicekit.ports import free_port

PATH = "/v1/inspections"
REGISTERED_MILEAGE_KM = 38200
ODOMETER_KM = 38950
EXPECT = Expect(201, b'"verdict":"pass"')
"""A 201 that passed: a failed verdict would mean the bench sent a report the service doubts."""


def vins(load: Load) -> list[str]:
    ids = data.Ids()
    return [ids.vin() for _ in range(WARMUP + load.n + load.open_requests)]


def _registered(uscc: str, vin: str, at: datetime) -> events.VehicleRegistered:
    return events.VehicleRegistered(
        enterprise_uscc=uscc, vin=vin, make="Volkswagen", model="Lavida Plus 1.5L",
        model_year=data.MODEL_YEAR, first_registration_date=date(2022, 4, 18),
        mileage_km=REGISTERED_MILEAGE_KM, registration_certificate_no="350100123456",
        engine_no="DMB428761", fuel_type="petrol", hs_code="8703232910",
        destination_country="KZ", transfer_endorsed_on=at.date() - timedelta(days=3),
        registered_at=at,
    )  # fmt: skip


def seed_vehicles(database_url: str, uscc: str, vins: list[str]) -> None:
    """The service's projection of registered vehicles, filled by its own consumer handler."""
    at = datetime.now(UTC) - timedelta(days=1)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            for vin in vins:
                vehicle_registered(session, _registered(uscc, vin, at))
    finally:
        engine.dispose()


def report(vin: str, inspected_at: str) -> dict[str, Any]:
    return {
        "vin": vin,
        "inspected_at": inspected_at,
        "odometer_km": ODOMETER_KM,
        "inspector": "Lin Wei",
        "items": [{"code": code, "result": "pass"} for code in data.CHECKLIST],
    }


def builder(port: int, authorization: str, vins: list[str]) -> Build:
    """Reports for the next VINs, stamped with the time they are serialised (just before the
    phase that sends them)."""
    rest = iter(vins)

    def build(count: int) -> list[bytes]:
        now = datetime.now(UTC).isoformat()
        return [
            post(HOST, port, PATH,
                 json.dumps(report(next(rest), now), separators=(",", ":")).encode(),
                 authorization)
            for _ in range(count)
        ]  # fmt: skip

    return build


def station(base: str) -> str:
    """Create an accredited station; returns its API key (shown once)."""
    answer = call(
        f"{base}/v1/stations",
        {
            "name": "Fuzhou Motor Vehicle Inspection Centre No. 1",
            "accreditation": "CNAS L1234",
            "province": "350000",
            "accreditation_valid_until": (
                datetime.now(UTC).date() + timedelta(days=365)
            ).isoformat(),
        },
        ADMIN_TOKEN,
    )
    return str(answer["api_key"])


def inspection(
    name: str, workdir: Path, database_url: str, load: Load, procs: list[Proc]
) -> Registration:
    port = free_port(100, 200)
    env = base_env(
        INSPECTION_DATABASE_URL=database_url,
        INSPECTION_PORT=str(port),
        INSPECTION_SIGNING_KEY_FILE=str(workdir / f"{name}-signing-key"),
        KAFKA_BOOTSTRAP_SERVERS=f"{HOST}:{free_port()}",  # the API only writes the outbox
        UCX_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    run(["-m", "inspection", "migrate"], env, workdir, workdir / f"{name}-migrate.log")
    ids = data.Ids()
    uscc, known = ids.uscc(), vins(load)
    say(f"{name}: {len(known)} vehicles into the projection (its consumer handler, in-process)")
    seed_vehicles(database_url, uscc, known)
    api = Proc(name, ["-m", "inspection", "api"], env, workdir)
    procs.append(api)
    api.wait_for_port(port)
    api_key = station(f"http://{HOST}:{port}")
    return drive(name, port, builder(port, f"Bearer {api_key}", known), load, api, EXPECT)


def baseline(workdir: Path, load: Load, procs: list[Proc]) -> Registration:
    """The bare ``POST /v1/inspections`` (bench.baseline_api) with the same reports."""
    port = free_port()
    name = "baseline-api-inspections"
    api = Proc(name, ["-m", "bench.baseline_api", str(port)], base_env(), workdir)
    procs.append(api)
    api.wait_for_port(port)
    build = builder(port, "Bearer bench-baseline-ignores-this-key", vins(load))
    return drive(name, port, build, load, api, EXPECT)
