"""One customs delivery process: ``python -m bench.deliver``.

Runs ``customs.delivery.Deliverer(engine, settings).run_once()`` in a loop, as customs' own
delivery timer does, until ``BENCH_EXPECT`` deliveries are no longer pending; then writes
``BENCH_RESULT`` (JSON: first round's start, last round's end, rounds, peak RSS). Environment:
``BENCH_DATABASE_URL``, ``BENCH_SECRET_KEY``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
from pathlib import Path

from sqlalchemy import func, select

from customs.delivery import Deliverer
from customs.models import Delivery
from customs.settings import Settings
from servicekit.db import make_engine, session_factory

IDLE_S = 0.05
TIMEOUT_S = 80.0


async def main() -> None:
    url, result = os.environ["BENCH_DATABASE_URL"], Path(os.environ["BENCH_RESULT"])
    settings = Settings(database_url=url, secret_key=os.environ["BENCH_SECRET_KEY"])
    engine = make_engine(url)
    sessions = session_factory(engine)
    deliverer = Deliverer(engine, settings)

    def pending() -> int:
        with sessions() as session:
            query = select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
            return int(session.scalar(query) or 0)

    rounds = attempted = 0
    first_at = last_at = time.time()
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            done = await deliverer.run_once()
            rounds, attempted = rounds + 1, attempted + done
            if done:
                last_at = time.time()  # the end of the last round that delivered anything
            else:
                if pending() == 0:
                    break
                await asyncio.sleep(IDLE_S)
    finally:
        await deliverer.close()
        engine.dispose()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tmp = result.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "first_at": first_at,
                "last_at": last_at,
                "rounds": rounds,
                "attempted": attempted,
                "peak_rss_mib": peak_kib / 1024,
            }
        )
    )
    tmp.rename(result)


if __name__ == "__main__":
    asyncio.run(main())
