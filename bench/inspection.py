"""Inspection ingestion: ``POST /v1/inspections`` with the full checklist, against a bare route.

The inspection service only inspects vehicles it knows: before its API starts, its own
``vehicle.registered`` consumer handler is called in-process, once per VIN, to fill its
projection (as the Kafka consumer would). A station is created through the admin API; each
request then reports one known VIN, all 19 checklist items passed. Each VIN is inspected once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from bench import data, http
from bench.client import Expect, post
from bench.http import ADMIN_TOKEN, HOST, WARMUP, Build, Load, Registration, call, drive
from bench.procs import Proc, say
from inspection.consumers import vehicle_registered
from servicekit.db import make_engine
from servicekit.ports import free_port

PATH = "/v1/inspections"
ODOMETER_KM = data.MILEAGE_KM + 750
"""A little more than at registration."""
EXPECT = Expect(201, b'"verdict":"pass"')
"""A 201 that passed: a failed verdict would mean the bench sent a report the service doubts."""


def vins(load: Load) -> list[str]:
    ids = data.Ids()
    return [ids.vin() for _ in range(WARMUP + load.n + load.open_requests)]


def seed_vehicles(database_url: str, uscc: str, vins: list[str]) -> None:
    """The service's projection of registered vehicles, filled by its own consumer handler."""
    at = datetime.now(UTC) - timedelta(days=1)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            for vin in vins:
                vehicle_registered(session, data.registered(uscc, vin, at))
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
    key_file = str(workdir / f"{name}-signing-key")
    env = http.api_env(
        "inspection", name, workdir, database_url, port, INSPECTION_SIGNING_KEY_FILE=key_file
    )
    ids = data.Ids()
    uscc, known = ids.uscc(), vins(load)
    say(f"{name}: {len(known)} vehicles into the projection (its consumer handler, in-process)")
    seed_vehicles(database_url, uscc, known)
    api = http.serve(name, ["-m", "inspection", "api"], env, workdir, port, procs)
    api_key = station(f"http://{HOST}:{port}")
    return drive(name, port, builder(port, f"Bearer {api_key}", known), load, api, EXPECT)


def baseline(workdir: Path, load: Load, procs: list[Proc]) -> Registration:
    """The bare ``POST /v1/inspections`` (bench.baseline_api) with the same reports."""
    name = "baseline-api-inspections"
    port, api = http.serve_baseline(name, workdir, procs)
    build = builder(port, "Bearer bench-baseline-ignores-this-key", vins(load))
    return drive(name, port, build, load, api, EXPECT)
