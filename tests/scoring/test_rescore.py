"""Rescore jobs: many enterprises folded in spawned processes equal a full replay of the
ledger under the new policy; an enterprise folded from a snapshot takes in what the worker
appended meanwhile."""

from __future__ import annotations

import json
import os
import random
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
from scoring.models import EnterpriseAssessment, LedgerEntry
from scoring.settings import POLICIES, Settings
from servicekit.db import is_sqlite, make_engine

import factories
from helpers import ADMIN, consume, service_client

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


def test_a_job_folds_enterprises_in_processes_and_equals_a_replay_under_the_new_policy(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(rescoring, "CHUNK", 8)  # 30 enterprises: four chunks for two processes
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
    strict_clients = service_client(SPEC, database_url, policy_path=path, rescore_processes=2)
    strict, _ = next(strict_clients)
    started = strict.post("/v1/rescore", json={}, headers=ADMIN)
    assert started.status_code == 202, started.text
    job = strict.get(f"/v1/rescore/{started.json()['id']}", headers=ADMIN).json()
    next(strict_clients, None)
    assert (job["status"], job["total"], job["done"]) == ("done", 30, 30), job
    assert job["changed"] == len(failing) > 0

    # the work ran in the spawned processes, one log line per chunk
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines() if '"rescore"' in x]
    chunks = [x for x in lines if x.get("event") == "enterprises rescored"]
    assert len(chunks) == 4 and sum(x["enterprises"] for x in chunks) == 30, lines
    assert os.getpid() not in {x["pid"] for x in chunks}

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            replayed = domain.replay(policy.load(path), services.ledger_entries(session))
            rows = session.scalars(select(EnterpriseAssessment)).all()
            assert len(rows) == 30
            for row in rows:
                assert domain.State.from_json(row.state) == replayed[row.uscc], row.uscc
                assert row.policy_version == "v2-strict"
                assert (row.tier == "good") == (row.uscc not in failing)
    finally:
        engine.dispose()


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
    monkeypatch.setattr(rescoring, "CHUNK", 2)  # 4 enterprises: two chunks, two processes
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

    v2_clients = service_client(SPEC, database_url, rescore_processes=2)
    v2, _ = next(v2_clients)
    started = v2.post("/v1/rescore", json={}, headers=ADMIN)
    assert started.status_code == 202, started.text
    job = v2.get(f"/v1/rescore/{started.json()['id']}", headers=ADMIN).json()
    assert (job["status"], job["done"], job["policy_version"]) == ("done", 4, "v2"), job
    assert job["changed"] >= 1
    body = v2.get(f"/v1/enterprises/{thin}/assessment").json()
    assert (body["score"], body["tier"], body["policy_version"]) == (83.5, "good", "v2")
    next(v2_clients, None)

    v2_policy = policy.load(POLICIES / "v2.yaml")
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            replayed = domain.replay(v2_policy, services.ledger_entries(session))
            rows = session.scalars(select(EnterpriseAssessment)).all()
            assert {r.uscc for r in rows} == set(replayed) and len(rows) == 4
            for row in rows:
                assert row.policy_version == "v2", row.uscc
                state = domain.State.from_json(row.state)
                assert state == replayed[row.uscc], row.uscc
                assert (row.score, row.tier) == (state.score, state.tier)
    finally:
        engine.dispose()
