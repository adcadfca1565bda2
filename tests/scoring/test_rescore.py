"""Rescore jobs: many enterprises folded in spawned processes equal a full replay of the
ledger under the new policy; an enterprise folded from a snapshot takes in what the worker
appended meanwhile. Jobs are rows the worker runs: of two runners one holds a job, a job whose
worker was SIGKILLed is resumed by the next and finishes with no enterprise folded twice or
skipped."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from scoring_events import inspected, random_event, registered
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scoring import domain, policy, services
from scoring import rescore as rescoring
from scoring.__main__ import SPEC
from scoring.consumers import timers
from scoring.models import EnterpriseAssessment, LedgerEntry, RescoreChunk, RescoreJob
from scoring.settings import POLICIES, Settings
from servicekit.broker import EmbeddedBroker
from servicekit.clock import clock
from servicekit.consumer import ticker
from servicekit.db import is_sqlite, make_engine, session_factory
from servicekit.settings import BaseServiceSettings

import factories
from helpers import ADMIN, consume, service_client
from stack_support import wait_for

POLICY = policy.load(Settings().policy_path)


def stricter(tmp_path: Path) -> Path:
    """The default policy with a quality tolerance of 10 %: any enterprise failing more
    moves."""
    text: dict[str, Any] = yaml.safe_load(Settings().policy_path.read_text())
    text["version"] = "v2-strict"
    text["components"]["quality"]["tolerance"] = 0.10
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(text))
    return path


def assert_states_are_a_replay(
    database_url: str, rules: policy.Policy, count: int
) -> list[EnterpriseAssessment]:
    """``count`` enterprises, each one's stored state, score and tier a replay of the ledger
    under ``rules``, whose version it carries. The rows, for the caller's own checks."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            replayed = domain.replay(rules, services.ledger_entries(session))
            rows = list(session.scalars(select(EnterpriseAssessment)))
    finally:
        engine.dispose()
    assert {r.uscc for r in rows} == set(replayed) and len(rows) == count
    for row in rows:
        state = domain.State.from_json(row.state)
        assert state == replayed[row.uscc], row.uscc
        assert (row.score, row.tier, row.policy_version) == (state.score, state.tier, rules.version)
    return rows


def run_jobs(settings: BaseServiceSettings) -> None:
    """One tick of the worker's rescore timer on the worker's engine: it runs the job waiting."""
    engine = make_engine(settings.database_url)
    try:
        (timer,) = [t for t in timers(settings) if t.name == "scoring-rescore"]
        asyncio.run(ticker(engine, timer)())
    finally:
        engine.dispose()


def test_a_job_folds_enterprises_in_processes_and_equals_a_replay_under_the_new_policy(
    database_url: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    clients = service_client(SPEC, database_url)
    _client, settings = next(clients)
    rng = random.Random(11)
    batch, failing = [], set()
    for _ in range(30):
        uscc = factories.uscc(rng=rng)
        fails = rng.choice([0, 0, 2])  # 2 in 12: over the strict 10 %, within v2's
        batch += [registered(uscc) for _ in range(12)]
        batch += [inspected(uscc, "fail" if i < fails else "pass") for i in range(12)]
        if fails:
            failing.add(uscc)
    consume(SPEC, settings, *batch)
    next(clients, None)

    path = stricter(tmp_path)
    # 30 enterprises: four chunks for two processes
    strict_clients = service_client(
        SPEC, database_url, policy_path=path, rescore_processes=2, rescore_chunk=8
    )
    strict, strict_settings = next(strict_clients)
    started = strict.post("/v1/rescore", json={}, headers=ADMIN)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running" and started.json()["done"] == 0
    run_jobs(strict_settings)
    job = strict.get(f"/v1/rescore/{started.json()['id']}", headers=ADMIN).json()
    next(strict_clients, None)
    assert (job["status"], job["total"], job["done"]) == ("done", 30, 30), job
    assert job["changed"] == len(failing) > 0

    # the work ran in the spawned processes, one log line per chunk
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines() if '"rescore"' in x]
    chunks = [x for x in lines if x.get("event") == "enterprises rescored"]
    assert len(chunks) == 4 and sum(x["enterprises"] for x in chunks) == 30, lines
    assert os.getpid() not in {x["pid"] for x in chunks}

    rows = assert_states_are_a_replay(database_url, policy.load(path), 30)
    assert {r.uscc for r in rows if r.tier != "good"} == failing


def test_enterprises_folded_from_a_snapshot_take_in_what_the_worker_appended_meanwhile(
    database_url: str,
) -> None:
    clients = service_client(SPEC, database_url)
    _client, settings = next(clients)
    first, second = factories.uscc(), factories.uscc()
    # the second's entries lie after the first's: the catch-up must not fold them twice
    consume(SPEC, settings, *[registered(first) for _ in range(3)])
    consume(SPEC, settings, *[registered(second) for _ in range(3)])
    engine = make_engine(database_url)
    snapshots = make_engine(database_url, read_only=True)
    count = select(func.count()).select_from(LedgerEntry)
    try:
        with Session(snapshots) as snapshot:
            before = snapshot.scalar(count)  # the snapshot's transaction begins
            appended = [inspected(u, "fail") for u in (first, second, first, second)]
            consume(SPEC, settings, *appended)
            if is_sqlite(engine):  # a WAL snapshot: the new entries are not in it
                assert snapshot.scalar(count) == before
            with Session(engine) as session, session.begin():
                # the stored states are the worker's, so the same policy changes nothing ...
                rescored = services.rescore(session, POLICY, [first, second], snapshot=snapshot)
                assert rescored == 0
        with Session(engine) as session:
            replayed = domain.replay(POLICY, services.ledger_entries(session))
            for uscc in (first, second):
                stored = domain.State.from_json(services.get_row(session, uscc).state)
                # ... and what was appended after the snapshot was folded once, under the lock
                assert stored.events == 5
                assert stored == replayed[uscc]
    finally:
        engine.dispose()
        snapshots.dispose()
        next(clients, None)


def test_rescore_moves_every_enterprise_assessed_under_v1_to_v2(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1_clients = service_client(SPEC, database_url, policy_path=POLICIES / "v1.yaml")
    v1, v1_settings = next(v1_clients)
    rng = random.Random(13)
    vins: list[str] = []
    history = [random_event(rng, vins) for _ in range(300)]  # refusals, complaints, exits
    thin = factories.uscc("440300")  # the example: 11 vehicles, 1 of 2 inspections failed
    example = [registered(thin) for _ in range(11)] + [inspected(thin), inspected(thin, "fail")]
    for start in range(0, len(history), 50):
        consume(SPEC, v1_settings, *history[start : start + 50])
    consume(SPEC, v1_settings, *example)
    assert v1.get(f"/v1/enterprises/{thin}/assessment").json()["tier"] == "warning"
    next(v1_clients, None)

    # 4 enterprises: two chunks, two processes
    v2_clients = service_client(SPEC, database_url, rescore_processes=2, rescore_chunk=2)
    v2, v2_settings = next(v2_clients)
    started = v2.post("/v1/rescore", json={}, headers=ADMIN)
    assert started.status_code == 202, started.text
    run_jobs(v2_settings)
    job = v2.get(f"/v1/rescore/{started.json()['id']}", headers=ADMIN).json()
    assert (job["status"], job["done"], job["policy_version"]) == ("done", 4, "v2"), job
    assert job["changed"] >= 1
    body = v2.get(f"/v1/enterprises/{thin}/assessment").json()
    assert (body["score"], body["tier"], body["policy_version"]) == (83.5, "good", "v2")
    next(v2_clients, None)

    assert_states_are_a_replay(database_url, policy.load(POLICIES / "v2.yaml"), 4)


def enterprises(settings: BaseServiceSettings, count: int, seed: int) -> set[str]:
    """``count`` enterprises of 12 vehicles and 12 inspections each; the failing ones (2 fails
    in 12, over the strict policy's 10 %) are returned: a strict rescore moves exactly them."""
    rng = random.Random(seed)
    batch, failing = [], set()
    for _ in range(count):
        uscc = factories.uscc(rng=rng)
        fails = rng.choice([0, 0, 2])
        batch += [registered(uscc) for _ in range(12)]
        batch += [inspected(uscc, "fail" if i < fails else "pass") for i in range(12)]
        if fails:
            failing.add(uscc)
    consume(SPEC, settings, *batch)
    return failing


def test_of_runners_racing_for_a_job_one_holds_it_until_its_lease_passes(
    database_url: str, tmp_path: Path
) -> None:
    clients = service_client(SPEC, database_url, rescore_chunk=2)
    _client, assessed = next(clients)
    failing = enterprises(assessed, 6, seed=5)
    settings = assessed.model_copy(update={"policy_path": stricter(tmp_path)})
    assert isinstance(settings, Settings)
    strict = policy.load(settings.policy_path)
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    try:
        with sessions() as session:
            job = rescoring.start(session, strict, None, chunk=2)
        runners = [rescoring.Runner(settings, strict) for _ in range(6)]
        won: list[rescoring.Runner] = []
        gate = threading.Barrier(len(runners))

        def race(runner: rescoring.Runner) -> None:
            gate.wait()
            with sessions() as session:
                if rescoring.claim(session, job.id, runner):
                    won.append(runner)

        threads = [threading.Thread(target=race, args=(r,)) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1
        (holder,) = won
        late = next(r for r in runners if r is not holder)
        assert rescoring.run_pending(engine, late) is None  # held: nothing for another runner

        # the holder stores chunk 0, then stalls past its lease: the late runner takes over
        chunk = (job.id, 0, _plan(engine, job.id)[0])
        rescorer = rescoring.Rescorer(database_url, strict)
        try:
            assert rescorer(chunk) == (2, len(failing & set(chunk[2])))
            with clock.frozen(clock.now() + timedelta(seconds=settings.rescore_lease_s + 1)):
                assert rescoring.run_pending(engine, late) == job.id
            # the stalled holder comes back with the chunk it had begun: nothing is counted twice
            assert rescorer(chunk) == (0, 0)
        finally:
            rescorer.close()
        with sessions() as session:
            done = session.get(RescoreJob, job.id)
            assert done is not None
            assert (done.status, done.done, done.total) == ("done", 6, 6)
            assert done.changed == len(failing) and done.runner is None
    finally:
        engine.dispose()
        next(clients, None)


def _plan(engine: Any, job_id: str) -> list[list[str]]:
    with session_factory(engine)() as session:
        chunks = session.scalars(
            select(RescoreChunk).where(RescoreChunk.job_id == job_id).order_by(RescoreChunk.number)
        )
        return [list(c.usccs) for c in chunks]


@pytest.mark.long  # a fault run: make test-reliability
def test_a_job_whose_worker_is_sigkilled_mid_way_is_resumed_by_the_next_worker_exactly(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'scoring.db'}"
    path = stricter(tmp_path)
    clients = service_client(SPEC, url)
    _client, settings = next(clients)
    failing = enterprises(settings, 200, seed=17)
    next(clients, None)
    clients = service_client(SPEC, url, policy_path=path, rescore_chunk=1)
    client, _ = next(clients)
    emitted = "SELECT COUNT(*) FROM outbox WHERE topic = 'enterprise.assessed.v1'"
    engine = make_engine(url)
    with engine.connect() as conn:
        emitted_before = conn.exec_driver_sql(emitted).scalar()
    started = client.post("/v1/rescore", json={}, headers=ADMIN)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    next(clients, None)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "SCORING_DATABASE_URL": url,
        "SCORING_POLICY_PATH": str(path),
        "SCORING_PORT": "0",
        "SCORING_WORKER_PORT": "0",
        "SCORING_RESCORE_POLL_INTERVAL_S": "0.2",
        "SCORING_RESCORE_LEASE_S": "3",
        "SCORING_RESCORE_PROCESSES": "2",
        "SCORING_RESCORE_CHUNK": "1",
    }

    def worker(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "scoring", "worker"]
        return subprocess.Popen(command, env=env, stdout=log, stderr=log)

    def job() -> RescoreJob:
        with session_factory(engine)() as session:
            row = session.get(RescoreJob, job_id)
            assert row is not None
            return row

    first = worker("first")
    try:
        wait_for(lambda: job().done >= 20, 120, every_s=0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed = job()
        assert killed.status == "running" and killed.done < killed.total == 200, (
            "killed too late to prove anything"
        )
        assert killed.runner is not None  # its lease is still on the row: the next must wait
        second = worker("second")
        try:
            finished = wait_for(lambda: (j := job()).status != "running" and j, 120)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    assert (finished.status, finished.done, finished.total) == ("done", 200, 200), finished.error
    assert finished.changed == len(failing)  # every enterprise that moved, counted once
    with session_factory(engine)() as session:
        chunks = session.scalars(select(RescoreChunk).where(RescoreChunk.job_id == job_id)).all()
        assert len(chunks) == 200 and all(c.done for c in chunks)
        assert sum(c.changed or 0 for c in chunks) == len(failing)
    assert_states_are_a_replay(url, policy.load(path), 200)
    with engine.connect() as conn:  # each move emitted once
        assert conn.exec_driver_sql(emitted).scalar() - emitted_before == len(failing)
    engine.dispose()
