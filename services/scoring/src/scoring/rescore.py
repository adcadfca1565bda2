"""Rescore jobs: every enterprise (or one) recomputed from its ledger entries alone with the
loaded policy, the differences emitted (``POST /v1/rescore``).

A job is rows: the job (counts, status, lease) and its plan, the enterprises in chunks fixed
when it starts (``rescore_chunks``). The api only writes them; the scoring worker runs them
(its ``scoring-rescore`` timer calls :func:`run_pending`). The worker owns them because it is
the process that already folds with the policy a rescore applies (it takes only jobs of its
own policy version) and it ticks anyway: a job whose runner died is taken over as soon as the
lease has passed, whatever process is restarted or not.

A runner claims a job with a lease it renews after every chunk. A chunk's enterprises, its
``done`` mark and the job's counts commit in one transaction, and a chunk already marked done
rolls back: a job resumed after a crash, or run by a second runner after a lease ran out,
folds no enterprise twice and skips none.

Enterprises are independent, so a runner folds chunks in ``SCORING_RESCORE_PROCESSES`` spawned
processes. Each chunk is folded from a read-only snapshot of the ledger, then locked, brought
up to date with what the worker appended meanwhile and stored (:func:`scoring.services.rescore`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Engine, or_, select, update
from sqlalchemy.orm import Session

from scoring import services
from scoring.models import EnterpriseAssessment, RescoreChunk, RescoreJob
from scoring.policy import Policy
from scoring.settings import Settings
from servicekit import logs
from servicekit.clock import clock
from servicekit.db import make_engine, session_factory
from servicekit.lifetime import child_pool

log = structlog.get_logger()

CHUNK = Settings.model_fields["rescore_chunk"].default


def _runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Runner:
    """One process's claim on jobs: its name in the lease, its policy, and a stop request
    (set when the worker stops: the job ends after the chunks under way and is let go)."""

    settings: Settings
    policy: Policy
    name: str = field(default_factory=_runner_name)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.rescore_lease_s)


def start(session: Session, policy: Policy, uscc: str | None, chunk: int = CHUNK) -> RescoreJob:
    """The job and its plan, nobody running it yet."""
    with session.begin():
        if uscc is not None:
            usccs = [services.get_row(session, uscc).uscc]
        else:
            ordered = select(EnterpriseAssessment.uscc).order_by(EnterpriseAssessment.uscc)
            usccs = list(session.scalars(ordered))
        job = RescoreJob(
            id=str(uuid.uuid4()),
            uscc=uscc and usccs[0],
            status="running",
            total=len(usccs),
            done=0,
            changed=0,
            policy_version=policy.version,
            started_at=clock.now(),
        )
        session.add(job)
        session.flush()
        session.add_all(
            RescoreChunk(job_id=job.id, number=n, usccs=usccs[i : i + chunk], done=False)
            for n, i in enumerate(range(0, len(usccs), chunk))
        )
    return job


def _free(now: datetime) -> ColumnElement[bool]:
    """Unfinished, and nobody holds it (or their lease has passed)."""
    job = RescoreJob
    return (job.status == "running") & or_(job.leased_until.is_(None), job.leased_until <= now)


def claim(session: Session, job_id: str, runner: Runner) -> bool:
    """Take the job if it is unfinished and nobody holds it (or their lease has passed): one
    conditional UPDATE, so of two runners at once exactly one gets it."""
    now = clock.now()
    job = RescoreJob
    with session.begin():
        taken = session.execute(
            update(job)
            .where(job.id == job_id, _free(now))
            .values(runner=runner.name, leased_until=now + runner.lease)
        )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def run_pending(engine: Engine, runner: Runner) -> str | None:
    """The worker's timer: claim one unfinished job of this runner's policy version and run
    it (to its end, or until the runner stops). The id of the job it ran, if any."""
    with session_factory(engine)() as session:
        with session.begin():
            waiting = list(
                session.execute(
                    select(RescoreJob.id, RescoreJob.policy_version)
                    .where(_free(clock.now()))
                    .order_by(RescoreJob.started_at)
                )
            )
        for job_id, version in waiting:
            if version != runner.policy.version:
                log.warning(
                    "rescore job waits for a worker with its policy",
                    job_id=job_id,
                    policy_version=version,
                    worker_policy=runner.policy.version,
                )
            elif not runner.stopping.is_set() and claim(session, job_id, runner):
                run_claimed(session, job_id, runner)
                return str(job_id)
    return None


def run(session: Session, policy: Policy, job_id: str, settings: Settings) -> None:
    """A new job to its end in this process (the bench)."""
    runner = Runner(settings, policy)
    if not claim(session, job_id, runner):
        raise RuntimeError(f"rescore job {job_id} is finished or held by another runner")
    run_claimed(session, job_id, runner)


def run_claimed(session: Session, job_id: str, runner: Runner) -> None:
    """The chunks not yet done, then ``done``; or ``failed`` with the error (chunks stored
    stay stored; a new job starts over). Stops, letting the job go, when the runner stops or
    has lost its lease; a job of one chunk runs in this process."""
    try:
        with session.begin():
            chunks = session.execute(
                select(RescoreChunk.number, RescoreChunk.usccs)
                .where(RescoreChunk.job_id == job_id, RescoreChunk.done.is_(False))
                .order_by(RescoreChunk.number)
            ).all()
        plan = [(job_id, number, usccs) for number, usccs in chunks]
        with contextlib.closing(_chunks_run(runner, plan)) as folded:
            for _ in folded:
                if not _renew(session, job_id, runner):
                    log.warning("rescore job taken over by another runner", job_id=job_id)
                    return
                if runner.stopping.is_set():
                    _end(session, job_id, runner)  # free at once for the next runner
                    log.info("rescore job let go at stop", job_id=job_id)
                    return
        _end(session, job_id, runner, status="done")
    except Exception as exc:
        session.rollback()
        _end(session, job_id, runner, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise


Chunk = tuple[str, int, Sequence[str]]
"""(job id, chunk number, its enterprises)."""


def _chunks_run(runner: Runner, plan: Sequence[Chunk]) -> Generator[tuple[int, int]]:
    """(enterprises stored, changed) per chunk as each commits; closing it cancels the chunks
    not begun (those under way finish: each commits whole or not at all)."""
    settings, policy = runner.settings, runner.policy
    processes = min(settings.rescore_processes, len(plan))
    if processes > 1:
        pool = child_pool(processes, _child_start, settings, policy)
        try:
            yield from pool.map(_child_rescore, plan)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    rescorer = Rescorer(settings.database_url, policy)
    try:
        yield from map(rescorer, plan)
    finally:
        rescorer.close()


class _ChunkDone(Exception):
    """Another runner stored this chunk first."""


class Rescorer:
    """Rescores chunks on its own engines: one that writes, one for snapshots."""

    def __init__(self, database_url: str, policy: Policy) -> None:
        self.policy = policy
        self.engine = make_engine(database_url)
        self.snapshots = make_engine(database_url, read_only=True)

    def __call__(self, chunk: Chunk) -> tuple[int, int]:
        job_id, number, usccs = chunk
        # the transaction takes its connection (on SQLite the write lock) at its first
        # statement: after the fold from the snapshot
        try:
            with (
                Session(self.engine) as session,
                Session(self.snapshots) as snapshot,
                session.begin(),
            ):
                changed = services.rescore(session, self.policy, usccs, snapshot=snapshot)
                _mark_done(session, job_id, number, len(usccs), changed)
        except _ChunkDone:
            log.warning("rescore chunk already stored", job_id=job_id, chunk=number)
            return 0, 0
        log.info("enterprises rescored", enterprises=len(usccs), changed=changed, pid=os.getpid())
        return len(usccs), changed

    def close(self) -> None:
        self.engine.dispose()
        self.snapshots.dispose()


def _mark_done(session: Session, job_id: str, number: int, enterprises: int, changed: int) -> None:
    """In the chunk's own transaction: the chunk done, the job's counts moved."""
    chunk = RescoreChunk
    marked = session.execute(
        update(chunk)
        .where(chunk.job_id == job_id, chunk.number == number, chunk.done.is_(False))
        .values(done=True, changed=changed)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        raise _ChunkDone
    session.execute(
        update(RescoreJob)
        .where(RescoreJob.id == job_id)
        .values(done=RescoreJob.done + enterprises, changed=RescoreJob.changed + changed)
    )


_CHILD: list[Rescorer] = []


def _child_start(settings: Settings, policy: Policy) -> None:
    logs.configure(settings.service_name, "rescore", settings.log_level)
    try:
        _CHILD.append(Rescorer(settings.database_url, policy))
    except Exception:  # the job only sees a broken pool: the cause is in this log line
        log.exception("rescore process could not start")
        raise


def _child_rescore(chunk: Chunk) -> tuple[int, int]:
    return _CHILD[0](chunk)


def _renew(session: Session, job_id: str, runner: Runner) -> bool:
    """Push the lease on; false if the job is no longer this runner's."""
    with session.begin():
        renewed = session.execute(
            update(RescoreJob)
            .where(RescoreJob.id == job_id, RescoreJob.runner == runner.name)
            .values(leased_until=clock.now() + runner.lease)
        )
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def _end(session: Session, job_id: str, runner: Runner, **values: Any) -> None:
    """Let the job go (and finish it, with ``status``), if it is still this runner's."""
    if "status" in values:
        values["finished_at"] = clock.now()
    with session.begin():
        session.execute(
            update(RescoreJob)
            .where(RescoreJob.id == job_id, RescoreJob.runner == runner.name)
            .values(runner=None, leased_until=None, **values)
        )
