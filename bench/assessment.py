"""Scoring beyond the live rate: rescore (the pure fold over a big ledger, no Kafka) and
end-to-end freshness (inspection POSTed -> the enterprise's assessment reflects it, through the
inspection api, its outbox relay, the broker and the scoring worker, relay polling included)."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.orm import Session

from bench import data, inspection
from bench.procs import BenchError, base_env, peak_rss_mib, run, say, tail
from scoring import domain, services
from scoring import policy as policies
from scoring import rescore as rescoring
from scoring.models import EnterpriseAssessment, LedgerEntry, RescoreJob
from scoring.settings import Settings
from servicekit.broker import EmbeddedBroker
from servicekit.db import make_engine, session_factory
from servicekit.stack import Stack

ADMIN_TOKEN = "bench-admin-token-not-a-secret"
TYPES = ("vehicle.registered", "vehicle.inspected", "vehicle.declared", "vehicle.exported")


@dataclass(frozen=True)
class Rescore:
    events: int
    enterprises: int
    seconds: float
    """The pure fold: ``domain.replay`` over the entries in memory, one process."""
    job_seconds: float
    """The rescore job (``POST /v1/rescore``'s code) over the same entries in a SQLite ledger:
    read, fold, store and emit every enterprise, in ``processes`` processes."""
    processes: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def job_rate(self) -> float:
        return self.events / self.job_seconds


def ledger(events: int, enterprises: int, seed: int = 1) -> list[domain.Entry]:
    """A year-and-a-half ledger: vehicles registered, inspected (10 % fail), declared (5 %
    refused at a gate) and exported, spread over ``enterprises``."""
    rng = random.Random(seed)
    ids = data.Ids(rng=random.Random(seed))
    usccs = [ids.uscc() for _ in range(enterprises)]  # valid: the rescore job emits for them
    start = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(days=540) / events
    entries = []
    for i in range(events):
        at = start + step * i
        kind = TYPES[i % 4]
        if kind == "vehicle.inspected":
            fail = rng.random() < 0.1
            payload: dict[str, object] = {
                "first_inspection": True, "verdict": "fail" if fail else "pass",
                "failed_items": ["BRAKES"] if fail else [], "fraud_signals": [],
            }  # fmt: skip
        elif kind == "vehicle.declared":
            payload = {"reasons": ["inspection_missing"] if rng.random() < 0.05 else []}
        else:
            payload = {"vin": f"V{i:016d}"}
        uscc = usccs[rng.randrange(enterprises)]
        entries.append(domain.Entry(f"e{i}", kind, uscc, at, payload, at))
    return entries


def rescore(workdir: Path, events: int, enterprises: int, processes: int) -> Rescore:
    policy = policies.load(Settings().policy_path)
    entries = ledger(events, enterprises)
    started = time.perf_counter()
    states = domain.replay(policy, entries)
    seconds = time.perf_counter() - started
    if len(states) != enterprises:
        raise BenchError(f"rescore: {len(states)} enterprises, expected {enterprises}")
    url = f"sqlite:///{workdir / 'rescore.db'}"
    env = base_env(SCORING_DATABASE_URL=url)
    run(["-m", "scoring", "migrate"], env, workdir, workdir / "rescore-migrate.log")
    engine = make_engine(url)
    try:
        _store_ledger(engine, entries, enterprises)
        del entries
        say(f"scoring: {events:,} entries in a SQLite ledger; rescore job, {processes} processes")
        settings = Settings(database_url=url, rescore_processes=processes, log_level="WARNING")
        with session_factory(engine)() as session:  # as the api's: nothing expires on commit
            job = rescoring.start(session, policy, None)
            started = time.perf_counter()
            rescoring.run(session, policy, job.id, settings)
            job_seconds = time.perf_counter() - started
            _check_job(session, job.id, states)
    finally:
        engine.dispose()
    return Rescore(events, enterprises, seconds, job_seconds, processes)


def _store_ledger(engine: Engine, entries: list[domain.Entry], enterprises: int) -> None:
    """The entries as the worker would have written them (canonical data, hash chains), and
    each enterprise's state row as if nothing had been folded yet: every one moves."""
    heads: dict[str, str] = {}
    now = datetime.now(UTC)
    ledger_table = cast(Table, LedgerEntry.__table__)
    for start in range(0, len(entries), 50_000):
        rows = []
        for e in entries[start : start + 50_000]:
            text = services.canonical(e.data)
            prev = heads.get(e.uscc, services.GENESIS)
            heads[e.uscc] = services.chain_hash(prev, e.event_id, e.type, text)
            rows.append(
                {
                    "event_id": e.event_id, "uscc": e.uscc, "type": e.type, "subject": None,
                    "time": e.time, "data": text, "prev_hash": prev, "hash": heads[e.uscc],
                    "recorded_at": e.recorded_at,
                }
            )  # fmt: skip
        with engine.begin() as conn:
            conn.execute(insert(ledger_table), rows)
    empty = domain.State().to_json()
    states = [
        {
            "uscc": uscc, "province": services.province_of(uscc), "state": empty,
            "last_hash": head, "score": 0.0, "tier": "good", "exports": 0, "volume_band": 0,
            "window_end": 0, "events_counted": 0, "emitted_score": None, "emitted_tier": None,
            "policy_version": "none", "updated_at": now,
        }
        for uscc, head in heads.items()
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(cast(Table, EnterpriseAssessment.__table__)), states)
    if len(states) != enterprises:
        raise BenchError(f"rescore: {len(states)} enterprises stored, expected {enterprises}")


def _check_job(session: Session, job_id: str, expected: dict[str, domain.State]) -> None:
    """The job finished, and every stored state is the pure fold's."""
    # the runner writes the job's row with UPDATEs: the object start() returned is stale
    job = session.get(RescoreJob, job_id, populate_existing=True)
    if job is None or job.status != "done" or job.done != len(expected):
        raise BenchError(f"rescore job: {job and (job.status, job.done, job.error)}")
    for uscc, text in session.execute(
        select(EnterpriseAssessment.uscc, EnterpriseAssessment.state)
    ):
        if domain.State.from_json(text) != expected[uscc]:
            raise BenchError(f"rescore job: {uscc}'s state differs from the pure fold's")


@dataclass(frozen=True)
class Freshness:
    inspections: int
    rate: float
    latencies_ms: list[float]
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    """Every process of the stack after the run (VmHWM)."""

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)


def _stack(workdir: Path, broker: EmbeddedBroker, base: int) -> Stack:
    services = {
        name: base + i for i, name in enumerate(("registry", "inspection", "customs", "scoring"))
    }
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "UCX_ADMIN_TOKEN": ADMIN_TOKEN,
        "PYTHONUNBUFFERED": "1",
        "INSPECTION_SIGNING_KEY_FILE": str(workdir / "freshness-signing-key"),
    }
    for name, port in services.items():
        env[f"{name.upper()}_PORT"] = str(port)
        env[f"{name.upper()}_DATABASE_URL"] = f"sqlite:///{workdir / f'fresh-{name}.db'}"
    return Stack(env=env, services=services, log=(workdir / "freshness-stack.log").open("w"))


SETUP_TIMEOUT_S = 60.0
"""For the setup calls: the first requests to a stack that has just started (twelve processes
warming up on two cores) took over httpx's default 5 s once."""


def _wait(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchError(f"freshness: {what} not within {timeout_s:.0f} s")


def freshness(
    workdir: Path, broker: EmbeddedBroker, base: int, rate: float, count: int
) -> Freshness:
    stack = _stack(workdir, broker, base)
    stack.migrate()
    stack.start()
    try:
        stack.wait_healthy(90)
        for name, port in stack.services.items():
            _wait(
                lambda p=port: httpx.get(f"http://127.0.0.1:{p + 100}/readyz").status_code == 200,
                90, f"{name} worker (port {port + 100}) ready",
            )  # fmt: skip
        measured = _measure(stack, rate, count)
        return replace(measured, peak_rss_mib=_peak_rss(stack))
    except BenchError as exc:
        log = tail(workdir / "freshness-stack.log")
        raise BenchError(f"{exc}; the stack's log ends:\n{log}") from exc
    finally:
        stack.stop()


def _peak_rss(stack: Stack) -> dict[str, float]:
    peaks = {name: peak_rss_mib(proc.pid) for name, proc in stack.processes.items()}
    return {name: mib for name, mib in peaks.items() if mib is not None}


def _measure(stack: Stack, rate: float, count: int) -> Freshness:
    url = {name: f"http://127.0.0.1:{port}" for name, port in stack.services.items()}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ids = data.Ids()
    uscc = ids.uscc()
    with httpx.Client(timeout=SETUP_TIMEOUT_S) as http:
        http.post(
            f"{url['registry']}/v1/enterprises", json=data.enterprise(uscc)
        ).raise_for_status()
        approved = http.post(
            f"{url['registry']}/v1/enterprises/{uscc}/decisions",
            json={"action": "approve", "reason": "benchmark"}, headers=admin,
        )  # fmt: skip
        key = {"Authorization": f"Bearer {approved.json()['api_key']}"}
        today = datetime.now(UTC).date()
        vins = [ids.vin() for _ in range(count + 1)]
        for chunk in range(0, len(vins), 500):
            rows = [data.vehicle(uscc, vin, today) for vin in vins[chunk : chunk + 500]]
            answer = http.post(
                f"{url['registry']}/v1/vehicles:batch", json={"vehicles": rows}, headers=key
            )
            answer.raise_for_status()
        bearer = {"Authorization": f"Bearer {inspection.station(url['inspection'])}"}
        say(f"freshness: {len(vins)} vehicles registered; waiting for the projections")
        _wait(
            lambda: http.post(
                f"{url['inspection']}/v1/inspections", json=_report(vins[-1]), headers=bearer
            ).status_code == 201,
            120, "inspection projection",
        )  # fmt: skip
        assessment = f"{url['scoring']}/v1/enterprises/{uscc}/assessment"
        _wait(
            lambda: http.get(assessment).json().get("events_by_type", {}).get("vehicle.inspected")
            == 1,
            120, "scoring caught up",
        )  # fmt: skip
        say(f"freshness: {count} inspections at {rate:g}/s, polling the assessment")
        return asyncio.run(_drive(url["inspection"], assessment, bearer, vins[:count], rate))


def _report(vin: str) -> dict[str, object]:
    return inspection.report(vin, datetime.now(UTC).isoformat())


async def _drive(
    inspection_url: str, assessment: str, bearer: dict[str, str], vins: list[str], rate: float
) -> Freshness:
    sent: list[float] = [0.0] * len(vins)
    seen: list[float | None] = [None] * len(vins)
    done = asyncio.Event()

    async def poll(client: httpx.AsyncClient) -> None:
        marked = 0
        while not done.is_set():
            body = (await client.get(assessment)).json()
            now = time.perf_counter()
            count = body["events_by_type"].get("vehicle.inspected", 0) - 1  # minus the warm-up
            while marked < min(count, len(vins)):
                seen[marked] = now
                marked += 1
            if marked == len(vins):
                done.set()
            await asyncio.sleep(0.005)

    async with httpx.AsyncClient(timeout=30) as client, httpx.AsyncClient(timeout=30) as poller:
        poller_task = asyncio.create_task(poll(poller))
        start = time.perf_counter() + 0.2
        for i, vin in enumerate(vins):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent[i] = time.perf_counter()
            answer = await client.post(
                f"{inspection_url}/v1/inspections", json=_report(vin), headers=bearer
            )
            if answer.status_code != 201:
                raise BenchError(f"freshness: inspection answered {answer.status_code}")
        try:
            await asyncio.wait_for(done.wait(), 60)
        finally:
            done.set()
            await poller_task
    latencies = [(s - t) * 1000 for s, t in zip(seen, sent, strict=True) if s is not None]
    if len(latencies) != len(vins):
        raise BenchError(f"freshness: {len(vins) - len(latencies)} inspections never showed")
    return Freshness(len(vins), rate, latencies)
