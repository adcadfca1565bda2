"""The scoring worker's batches are applied in a child process: a child that dies is replaced
and the batch applied again, and a batch it had already committed changes nothing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

from scoring_events import random_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts import envelope
from scoring.__main__ import SPEC
from scoring.consumers import subscriptions
from scoring.models import LedgerEntry
from scoring.settings import Settings
from servicekit import migrate
from servicekit.consumer import ChildApplier, Outcomes, Record
from servicekit.db import make_engine

from stack_support import children_of


def records(count: int, seed: int) -> list[Record]:
    rng, vins = random.Random(seed), []
    batch = [random_event(rng, vins) for _ in range(count)]
    return [
        Record(e.topic, 0, i, e.enterpriseid.encode(), envelope.encode(e))
        for i, e in enumerate(batch)
    ]


def test_a_killed_child_is_replaced_and_nothing_is_applied_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scoring.db'}"
    migrate.upgrade(SPEC.migrations, url)
    settings = Settings(database_url=url, consumer_apply_in_child=True)
    first, second = records(50, 1), records(50, 2)

    async def run() -> tuple[Outcomes, Outcomes, Outcomes, int, int]:
        child = ChildApplier(subscriptions, settings, "scoring-ledger")
        await child.start()
        (pid,) = children_of(os.getpid())
        applied = await child.apply(first)
        os.kill(pid, signal.SIGKILL)
        again = await child.apply(first)  # on a new child
        (new_pid,) = children_of(os.getpid())
        later = await child.apply(second)
        return applied, again, later, pid, new_pid

    applied, again, later, pid, new_pid = asyncio.run(run())
    assert applied == Outcomes(processed=50)
    assert again == Outcomes(duplicate=50)
    assert later == Outcomes(processed=50)
    assert new_pid != pid
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 100
    engine.dispose()
