"""The ledger test: vehicles registered, inspected and declared across three services while,
at moments chosen by a seeded random clock, an api, a relay, a consumer worker, the scoring
worker and the broker itself (restarted empty, outboxes replayed) are killed. At the end every
committed event is applied exactly once by every consumer of its topic, every acknowledged
request is among them, the scoring states equal a full replay of the ledger, and no request
got a 5xx."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.events import BY_TYPE
from customs.__main__ import SPEC as CUSTOMS
from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from scoring import domain, policy, services
from scoring.__main__ import SPEC as SCORING
from scoring.models import EnterpriseAssessment
from servicekit.cli import ServiceSpec
from servicekit.db import make_engine

import factories
from helpers import ADMIN, bearer
from stack_support import RunningStack, admitted_enterprise, signed, wait_for

VEHICLES = int(os.environ.get("UCX_RELIABILITY_VEHICLES", "90"))
SEED = int(os.environ.get("UCX_RELIABILITY_SEED", "20261128"))
SPECS: dict[str, ServiceSpec] = {
    "registry": REGISTRY, "inspection": INSPECTION, "customs": CUSTOMS, "scoring": SCORING,
}  # fmt: skip


@dataclass
class Load:
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: dict[str, set[str]] = field(
        default_factory=lambda: {"vehicles": set(), "inspections": set(), "declarations": set()}
    )
    done: int = 0
    finished: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1


def until_answered(
    load: Load, send: Callable[[], httpx.Response], retry_on: set[int]
) -> httpx.Response:
    """Send until an answer that is not a dropped connection or a status in ``retry_on``
    (e.g. 404 while a projection catches up); every status is recorded."""
    deadline = time.monotonic() + 180
    while True:
        try:
            answer = send()
        except httpx.HTTPError:
            answer = None  # the process was killed under us: not an answer, try again
        if answer is not None:
            load.record(answer.status_code)
            if answer.status_code not in retry_on:
                return answer
        assert time.monotonic() < deadline, "no answer in 180 s"
        time.sleep(0.3)


def one_vehicle(stack: RunningStack, load: Load, ctx: dict[str, Any]) -> None:
    vehicle = factories.vehicle(ctx["uscc"])
    vin = vehicle["vin"]
    with httpx.Client(timeout=15) as client:
        registered = until_answered(
            load,
            lambda: client.post(
                f"{stack.url('registry')}/v1/vehicles", json=vehicle, headers=bearer(ctx["key"])
            ),
            set(),
        )
        # 201, or 409 when the api was killed after committing and before answering
        assert registered.status_code in (201, 409), registered.text
        if registered.status_code == 201:
            load.acknowledged["vehicles"].add(vin)
        report = factories.inspection(vin)  # one body: a retry carries the same Idempotency-Key
        keys = iter(range(1000))
        key = f"insp-{vin}-{next(keys)}"

        def inspect() -> httpx.Response:
            nonlocal key
            answer = client.post(
                f"{stack.url('inspection')}/v1/inspections",
                json=report,
                headers={**bearer(ctx["station"]), "Idempotency-Key": key},
            )
            if answer.status_code == 404:  # the projection is behind: a remembered answer,
                key = f"insp-{vin}-{next(keys)}"  # so the next try is a new request
            return answer

        # 404 until the projection has the vehicle; 409 while a killed try is still in flight
        inspected = until_answered(load, inspect, {404, 409})
        assert inspected.status_code == 201, inspected.text
        load.acknowledged["inspections"].add(inspected.json()["id"])
        declaration_no = f"D{uuid.uuid4().int % 10**17:017d}"
        body, headers = signed(
            ctx["secret"],
            "declaration.lodged",
            {
                "declaration_no": declaration_no, "vin": vin, "enterprise_uscc": ctx["uscc"],
                "export_licence_no": "EL-2026-35-00871",
                "certificate_no": inspected.json()["certificate_no"], "port_of_loading": "CNXMN",
                "destination_country": "KZ", "declared_at": datetime.now(UTC).isoformat(),
            },
        )  # fmt: skip
        hook = f"{stack.url('customs')}/v1/webhooks/brokers/{ctx['broker']}"
        lodged = until_answered(
            load, lambda: client.post(hook, content=body, headers=headers), set()
        )
        assert lodged.status_code == 202, lodged.text
        load.acknowledged["declarations"].add(declaration_no)
    with load.lock:
        load.done += 1


def chaos(stack: RunningStack, load: Load, started: datetime, log: list[str]) -> None:
    """Each fault once, in a random order, at random points of the run."""
    rng = random.Random(SEED)
    faults = ["registry.api", "inspection.relay", "customs.worker", "scoring.worker", "broker"]
    rng.shuffle(faults)
    points = sorted(rng.uniform(0.1, 0.8) for _ in faults)
    for fault, point in zip(faults, points, strict=True):
        wait_for(
            lambda p=point: load.done >= p * VEHICLES or load.finished.is_set(),
            timeout_s=300,
            every_s=0.05,
        )
        if load.finished.is_set():
            return  # the load failed or ended early: the test reports that
        log.append(f"{fault} at {load.done}/{VEHICLES}")
        if fault == "broker":
            stack.broker.stop()
            time.sleep(3)
            stack.broker.start()  # empty: every topic and committed offset is gone
            replays = [
                subprocess.Popen(
                    [sys.executable, "-m", service, "replay", "--from", started.isoformat()],
                    env=stack.stack.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for service in SPECS
            ]
            assert all(p.wait(60) == 0 for p in replays)
            # The runbook's step for a broker that came back EMPTY: running consumers still
            # hold their positions in the old logs, which mean nothing in the new ones;
            # restarted, they read from the start and their inboxes skip what they applied.
            for service in SPECS:
                stack.stack.kill(f"{service}.worker", signal.SIGTERM)
                stack.stack.start_process(f"{service}.worker")
        else:
            stack.stack.kill(fault, signal.SIGKILL)
            time.sleep(1)
            stack.stack.start_process(fault)


def unapplied(stack: RunningStack) -> dict[str, int]:
    """Per subscription: committed events of its topics that its inbox has not processed."""
    missing: dict[str, int] = {}
    for producer in SPECS:
        events = stack.rows(
            producer, "SELECT event_id, topic FROM outbox WHERE topic NOT LIKE '%.dlq'"
        )
        for consumer, spec in SPECS.items():
            for subscription in spec.subscriptions(spec.settings()):
                mine = {e for e, t in events if t in subscription.topics}
                if not mine:
                    continue
                processed = stack.rows(
                    consumer,
                    "SELECT event_id FROM inbox WHERE event_id LIKE ? AND outcome = 'processed'",
                    f"{subscription.name}:%",
                )
                seen = {row[0].split(":", 1)[1] for row in processed}
                missing[f"{producer}->{subscription.name}"] = len(mine - seen)
    return missing


@pytest.mark.long  # make test-reliability
@pytest.mark.timeout(600)
def test_every_acknowledged_request_is_applied_exactly_once_through_every_fault(
    stack: RunningStack,
) -> None:
    registry = stack.client("registry")
    inspection = stack.client("inspection")
    customs = stack.client("customs")
    uscc, key = admitted_enterprise(registry)
    # the gates decide on each service's own copy of the standing: start once both have it
    wait_for(lambda: all(stack.standing(s, uscc) == "admitted" for s in ("inspection", "customs")))
    station = inspection.post("/v1/stations", json=factories.station(), headers=ADMIN).json()
    broker = customs.post(
        "/v1/brokers",
        headers=ADMIN,
        json={"name": "Xiamen Brokerage", "customs_code": "3502980123", "enterprises": [uscc]},
    ).json()
    ctx = {"uscc": uscc, "key": key, "station": station["api_key"], "secret": broker["secret"],
           "broker": broker["id"]}  # fmt: skip
    load, faults = Load(), []
    started = datetime.now(UTC)
    fault_thread = threading.Thread(target=chaos, args=(stack, load, started, faults))
    fault_thread.start()
    started_vehicles = itertools.count()

    def drive() -> None:
        # at least VEHICLES, and traffic until the last fault has happened
        while next(started_vehicles) < VEHICLES or fault_thread.is_alive():
            one_vehicle(stack, load, ctx)

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            for future in [pool.submit(drive) for _ in range(6)]:
                future.result()
    finally:
        load.finished.set()
        fault_thread.join()
    assert len(faults) == 5, faults
    total = load.done

    assert not [s for s in load.statuses if s >= 500], load.statuses

    def settled() -> bool:
        """Nothing unapplied, twice 2 s apart: the databases are read one after another, and
        the policy's status changes keep events flowing for a moment after the load stops."""
        if any(unapplied(stack).values()):
            return False
        time.sleep(2)
        return not any(unapplied(stack).values())

    wait_for(settled, timeout_s=240, every_s=2)

    # every acknowledged request is a committed fact, once
    vins = {r[0] for r in stack.rows("registry", "SELECT vin FROM vehicles")}
    assert load.acknowledged["vehicles"] <= vins and len(vins) == total
    inspections = [r[0] for r in stack.rows("inspection", "SELECT id FROM inspections")]
    assert load.acknowledged["inspections"] == set(inspections) and len(inspections) == total
    declared = [r[0] for r in stack.rows("customs", "SELECT declaration_no FROM declarations")]
    assert load.acknowledged["declarations"] == set(declared) and len(declared) == total

    # the ledger holds each event once, and the assessments equal a full replay
    ledger = stack.rows(
        "scoring",
        "SELECT type, count(*), count(DISTINCT event_id) FROM ledger GROUP BY type",
    )
    by_type = {t: (n, d) for t, n, d in ledger}
    for type_ in ("vehicle.registered", "vehicle.inspected", "vehicle.declared"):
        assert by_type[type_] == (total, total), (type_, by_type, faults)
    assert set(by_type) <= set(BY_TYPE) | {domain.TICK}
    engine = make_engine(f"sqlite:///{stack.db['scoring']}")
    try:
        with Session(engine) as session:
            replayed = domain.replay(
                policy.load(SCORING.settings().policy_path),  # type: ignore[attr-defined]
                services.ledger_entries(session),
            )
            for row in session.scalars(select(EnterpriseAssessment)):
                assert domain.State.from_json(row.state) == replayed[row.uscc], row.uscc
            assert services.verify_chain(session)[1] == []
    finally:
        engine.dispose()
