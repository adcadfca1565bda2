"""``python -m bench``: print one markdown table and write it to bench/results/latest.md.

Knobs (environment): BENCH_N vehicles posted (2000), BENCH_CONCURRENCY clients (16),
BENCH_EVENTS events scored (20000), BENCH_ENTERPRISES USCCs keying them (300),
BENCH_SCORING_TIMEOUT seconds the scoring worker gets (100; past it the figure is partial).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import data, http, report, scoring
from bench.procs import BenchError, Proc, say
from servicekit.broker import EmbeddedBroker
from servicekit.topics import provision

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
NOOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Config:
    n: int
    concurrency: int
    events: int
    enterprises: int
    scoring_timeout_s: float

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            n=int(os.environ.get("BENCH_N", "2000")),
            concurrency=int(os.environ.get("BENCH_CONCURRENCY", "16")),
            events=int(os.environ.get("BENCH_EVENTS", "20000")),
            enterprises=int(os.environ.get("BENCH_ENTERPRISES", "300")),
            scoring_timeout_s=float(os.environ.get("BENCH_SCORING_TIMEOUT", "100")),
        )


def _stop_all(procs: list[Proc]) -> None:
    for proc in reversed(procs):
        proc.stop()


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # Like Ctrl-C: asyncio.run cancels its tasks cleanly, and the ExitStack then stops the
    # children, the broker and removes the temp dir.
    raise KeyboardInterrupt


def run(config: Config, workdir: Path, broker: EmbeddedBroker, procs: list[Proc]) -> str:
    say(f"registration: registry api, {config.n} vehicles, {config.concurrency} clients")
    registry = http.registry(workdir, config.n, config.concurrency, procs)
    procs[-1].stop()
    say("registration: bare FastAPI baseline")
    baseline = http.baseline(workdir, config.n, config.concurrency, procs)
    procs[-1].stop()

    say(f"scoring: building and producing {config.events} events")
    provision(broker.bootstrap_servers)
    records = data.scoring_records(config.events, config.enterprises, data.Ids())
    produce_rate = scoring.produce(broker.bootstrap_servers, records)
    say("scoring: scoring worker")
    worker = scoring.scoring_worker(
        broker.bootstrap_servers, workdir, config.events, config.scoring_timeout_s, procs
    )
    procs[-1].stop()
    say("scoring: no-op faust agent")
    noop = scoring.noop_agent(
        broker.bootstrap_servers, workdir, config.events, NOOP_TIMEOUT_S, procs
    )
    procs[-1].stop()
    figures = report.Figures(
        config.n, config.concurrency, registry, baseline, produce_rate, worker, noop
    )
    return report.table(figures)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_results(table: str, config: Config, elapsed_s: float, load_before: str) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.write_text(
        f"# ucx bench, {stamp}\n\n"
        f"{os.cpu_count()} CPUs; {elapsed_s:.0f} s in all; load average before {load_before}, "
        f"after {_load()} (other work on the machine skews every figure); {config}\n\n"
        f"{table}\n\n{report.BASELINES}\n"
    )


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    config = Config.from_env()
    load_before = _load()
    started = time.monotonic()
    procs: list[Proc] = []
    try:
        with ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ucx-bench-")))
            broker = stack.enter_context(EmbeddedBroker())
            stack.callback(_stop_all, procs)  # LIFO: children stop before broker and dir
            table = run(config, workdir, broker, procs)
    except BenchError as exc:
        say(f"failed: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; every child process stopped, temp dir removed")
        return 130
    elapsed = time.monotonic() - started
    write_results(table, config, elapsed, load_before)
    print(table)
    say(f"done in {elapsed:.0f} s; written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
