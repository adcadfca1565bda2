"""Rescore jobs: every enterprise (or one) recomputed from its ledger entries alone with the
loaded policy, the differences emitted (``POST /v1/rescore``).

Enterprises are independent, so a job folds them in ``SCORING_RESCORE_PROCESSES`` spawned
processes, a chunk of enterprises at a time, progress committed per chunk. Each chunk is
folded from a read-only snapshot of the ledger, then locked, brought up to date with what the
worker appended meanwhile and stored in one transaction (:func:`scoring.services.rescore`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from scoring import services
from scoring.models import EnterpriseAssessment, RescoreJob
from scoring.policy import Policy
from scoring.settings import Settings
from servicekit import logs
from servicekit.clock import clock
from servicekit.db import make_engine
from servicekit.lifetime import child_pool

log = structlog.get_logger()

CHUNK = 100
"""Enterprises per task: progress moves per chunk; a process starts on the next at once."""


def start(session: Session, policy: Policy, uscc: str | None) -> RescoreJob:
    with session.begin():
        if uscc is not None:
            services.get_row(session, uscc)
        count = select(func.count()).select_from(EnterpriseAssessment)
        total = session.scalar(count.where(EnterpriseAssessment.uscc == uscc) if uscc else count)
        job = RescoreJob(
            id=str(uuid.uuid4()),
            uscc=uscc,
            status="running",
            total=total or 0,
            done=0,
            changed=0,
            policy_version=policy.version,
            started_at=clock.now(),
        )
        session.add(job)
    return job


def run(session: Session, policy: Policy, job_id: str, settings: Settings) -> None:
    """The job to its end: ``done`` (with how many enterprises changed) or ``failed`` (with
    the error; enterprises already stored stay stored — chunks the other processes had begun
    finish first, so ``done`` may count fewer — and a new job starts over). A job of one chunk
    runs in this process."""
    try:
        with session.begin():
            job = session.get(RescoreJob, job_id)
            assert job is not None
            usccs = (
                [job.uscc] if job.uscc else list(session.scalars(select(EnterpriseAssessment.uscc)))
            )
        chunks = [usccs[i : i + CHUNK] for i in range(0, len(usccs), CHUNK)]
        done = changed = 0
        for chunk_done, chunk_changed in _outcomes(settings, policy, chunks):
            done, changed = done + chunk_done, changed + chunk_changed
            _progress(session, job_id, done=done, changed=changed)
        _progress(session, job_id, status="done")
    except Exception as exc:
        session.rollback()
        _progress(session, job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise


def _outcomes(
    settings: Settings, policy: Policy, chunks: list[list[str]]
) -> Iterator[tuple[int, int]]:
    """(enterprises done, changed) per chunk, in order."""
    processes = min(settings.rescore_processes, len(chunks))
    if processes > 1:
        with child_pool(processes, _child_start, settings, policy) as pool:
            yield from pool.map(_child_rescore, chunks)
        return
    rescorer = Rescorer(settings.database_url, policy)
    try:
        yield from map(rescorer, chunks)
    finally:
        rescorer.close()


class Rescorer:
    """Rescores enterprises on its own engines: one that writes, one for snapshots."""

    def __init__(self, database_url: str, policy: Policy) -> None:
        self.policy = policy
        self.engine = make_engine(database_url)
        self.snapshots = make_engine(database_url, read_only=True)

    def __call__(self, usccs: Sequence[str]) -> tuple[int, int]:
        # the transaction takes its connection (on SQLite the write lock) at its first
        # statement: after the fold from the snapshot
        with (
            Session(self.engine) as session,
            Session(self.snapshots) as snapshot,
            session.begin(),
        ):
            changed = services.rescore(session, self.policy, usccs, snapshot=snapshot)
        log.info("enterprises rescored", enterprises=len(usccs), changed=changed, pid=os.getpid())
        return len(usccs), changed

    def close(self) -> None:
        self.engine.dispose()
        self.snapshots.dispose()


_CHILD: list[Rescorer] = []


def _child_start(settings: Settings, policy: Policy) -> None:
    logs.configure(settings.service_name, "rescore", settings.log_level)
    try:
        _CHILD.append(Rescorer(settings.database_url, policy))
    except Exception:  # the job only sees a broken pool: the cause is in this log line
        log.exception("rescore process could not start")
        raise


def _child_rescore(usccs: Sequence[str]) -> tuple[int, int]:
    return _CHILD[0](usccs)


def _progress(session: Session, job_id: str, **values: Any) -> None:
    if values.get("status") in ("done", "failed"):
        values["finished_at"] = clock.now()
    with session.begin():
        session.execute(update(RescoreJob).where(RescoreJob.id == job_id).values(**values))
