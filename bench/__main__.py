"""``python -m bench``: print one markdown table and write it to bench/results/latest.md.

Knobs (environment): BENCH_N vehicles posted in the closed-loop saturation run (2000),
BENCH_CONCURRENCY its connections (16), BENCH_RATE the open-loop offered rate (300 requests/s)
for BENCH_OPEN_SECONDS (10), BENCH_POSTGRES_URL the server the registry is also measured on
(postgresql://postgres@127.0.0.1:5432/postgres; a fresh database is created and dropped; when
unreachable the PostgreSQL column reads n/a), BENCH_EVENTS events scored (20000),
BENCH_ENTERPRISES USCCs keying them (300), BENCH_SCORING_TIMEOUT seconds the scoring worker gets
(100; past it the figure is partial).

The second table (inspection and customs): BENCH_SERVICE_N requests in each closed-loop run
(2000: the bare route then runs long enough to be steady; each VIN is used once, so N +
open-loop requests + 50 vehicles are seeded),
BENCH_INSPECTION_RATE (250/s) and BENCH_WEBHOOK_RATE (200/s) offered for BENCH_OPEN_SECONDS,
BENCH_DELIVERIES outbound deliveries queued (2000).

The third table (scoring): BENCH_RESCORE_EVENTS ledger entries (1,000,000) over
BENCH_RESCORE_ENTERPRISES (5000) folded from nothing, in memory (the pure fold, one process)
and by the rescore job from a SQLite ledger in BENCH_RESCORE_PROCESSES (2);
BENCH_FRESH_COUNT inspections (500) at BENCH_FRESH_RATE (50/s) through the whole embedded
stack, each timed until the assessment shows it.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import assessment, customs, data, http, inspection, pg, report, scoring
from bench.procs import BenchError, Proc, say
from servicekit.broker import EmbeddedBroker
from servicekit.ports import free_port
from servicekit.topics import provision

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
NOOP_TIMEOUT_S = 60.0
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SUMMARY_TITLE = "**Every figure beside its baseline (the README's table)**"
DETAILS_TITLE = "**Details: registration and the scoring worker**"
SERVICES_TITLE = "**Inspection ingestion, inbound customs webhooks, outbound deliveries**"
ASSESSMENT_TITLE = "**Scoring: live rate, rescore, end-to-end freshness (issue 6)**"


@dataclass(frozen=True)
class Config:
    n: int
    concurrency: int
    rate: float
    open_seconds: float
    events: int
    enterprises: int
    scoring_timeout_s: float
    service_n: int
    inspection_rate: float
    webhook_rate: float
    deliveries: int
    rescore_events: int
    rescore_enterprises: int
    rescore_processes: int
    fresh_rate: float
    fresh_count: int
    postgres_url: str = field(repr=False)

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            n=int(os.environ.get("BENCH_N", "2000")),
            concurrency=int(os.environ.get("BENCH_CONCURRENCY", "16")),
            rate=float(os.environ.get("BENCH_RATE", "300")),
            open_seconds=float(os.environ.get("BENCH_OPEN_SECONDS", "10")),
            events=int(os.environ.get("BENCH_EVENTS", "20000")),
            enterprises=int(os.environ.get("BENCH_ENTERPRISES", "300")),
            scoring_timeout_s=float(os.environ.get("BENCH_SCORING_TIMEOUT", "100")),
            service_n=int(os.environ.get("BENCH_SERVICE_N", "2000")),
            inspection_rate=float(os.environ.get("BENCH_INSPECTION_RATE", "250")),
            webhook_rate=float(os.environ.get("BENCH_WEBHOOK_RATE", "200")),
            deliveries=int(os.environ.get("BENCH_DELIVERIES", "2000")),
            rescore_events=int(os.environ.get("BENCH_RESCORE_EVENTS", "1000000")),
            rescore_enterprises=int(os.environ.get("BENCH_RESCORE_ENTERPRISES", "5000")),
            rescore_processes=int(os.environ.get("BENCH_RESCORE_PROCESSES", "2")),
            fresh_rate=float(os.environ.get("BENCH_FRESH_RATE", "50")),
            fresh_count=int(os.environ.get("BENCH_FRESH_COUNT", "500")),
            postgres_url=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        )

    @property
    def load(self) -> http.Load:
        return http.Load(self.n, self.concurrency, self.rate, self.open_seconds)

    def service_load(self, rate: float) -> http.Load:
        return http.Load(self.service_n, self.concurrency, rate, self.open_seconds)

    def describe(self) -> str:
        return f"{self}, postgres={pg.redacted(self.postgres_url)}"


def _stop_all(procs: list[Proc]) -> None:
    for proc in reversed(procs):
        proc.stop()


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # Like Ctrl-C: asyncio.run cancels its tasks cleanly, and the ExitStack then stops the
    # children, the broker and removes the temp dir.
    raise KeyboardInterrupt


def _registry_on_postgres(
    config: Config, workdir: Path, procs: list[Proc]
) -> http.Registration | str:
    why = pg.unreachable(config.postgres_url)
    if why is not None:
        say(f"registration: no PostgreSQL at {pg.redacted(config.postgres_url)} ({why})")
        return why
    say("registration: registry api on PostgreSQL")
    with pg.database(config.postgres_url) as url:
        try:
            return http.registry("registry-api-postgres", workdir, url, config.load, procs)
        finally:
            procs[-1].stop()  # before the database is dropped under it


Measure = Callable[[str, Path, str, http.Load, list[Proc]], http.Registration]


def _on_postgres(
    config: Config, label: str, measure: Measure, load: http.Load, workdir: Path, procs: list[Proc]
) -> http.Registration | str:
    why = pg.unreachable(config.postgres_url)
    if why is not None:
        say(f"{label}: no PostgreSQL at {pg.redacted(config.postgres_url)} ({why})")
        return why
    say(f"{label}: api on PostgreSQL")
    with pg.database(config.postgres_url) as url:
        try:
            return measure(f"{label}-api-postgres", workdir, url, load, procs)
        finally:
            procs[-1].stop()  # before the database is dropped under it


def _section(
    config: Config,
    label: str,
    measure: Measure,
    bare: Callable[[Path, http.Load, list[Proc]], http.Registration],
    load: http.Load,
    workdir: Path,
    procs: list[Proc],
) -> tuple[http.Registration, http.Registration | str, http.Registration]:
    say(
        f"{label}: bare FastAPI route; {load.n} requests on {load.concurrency} connections, "
        f"then {load.rate:g}/s offered for {load.open_seconds:g} s"
    )
    baseline = bare(workdir, load, procs)
    procs[-1].stop()
    say(f"{label}: api on SQLite")
    sqlite = measure(f"{label}-api-sqlite", workdir, f"sqlite:///{workdir / label}.db", load, procs)
    procs[-1].stop()
    return sqlite, _on_postgres(config, label, measure, load, workdir, procs), baseline


def run_services(config: Config, workdir: Path, procs: list[Proc]) -> report.ServiceFigures:
    """Inspection ingestion, inbound customs webhooks and outbound deliveries: table two."""
    load = config.service_load(config.inspection_rate)
    sqlite, postgres, bare = _section(
        config, "inspection", inspection.inspection, inspection.baseline, load, workdir, procs
    )
    inspections = report.Section(
        "POST /v1/inspections, full checklist (inspection api)", load, sqlite, postgres, bare,
        report.INSPECTION_MIN_RATIO, report.INSPECTION_MAX_P99_MS, 201,
    )  # fmt: skip
    load = config.service_load(config.webhook_rate)
    sqlite, postgres, bare = _section(
        config, "customs", customs.webhooks, customs.baseline, load, workdir, procs
    )
    webhooks = report.Section(
        "POST /v1/webhooks/brokers/{id}, signed declaration.lodged (customs api)", load, sqlite,
        postgres, bare, report.WEBHOOK_MIN_RATIO, report.WEBHOOK_MAX_P99_MS, 202,
    )  # fmt: skip
    deliveries = customs.deliveries(workdir, config.deliveries, procs)
    return report.ServiceFigures(inspections, webhooks, deliveries)


def run(config: Config, workdir: Path, broker: EmbeddedBroker, procs: list[Proc]) -> str:
    load = config.load
    say(
        f"registration: bare FastAPI baseline; {load.n} requests on {load.concurrency} "
        f"connections, then {load.rate:g} req/s offered for {load.open_seconds:g} s"
    )
    baseline = http.baseline(workdir, load, procs)
    procs[-1].stop()
    say("registration: registry api on SQLite")
    sqlite_url = f"sqlite:///{workdir / 'registry.db'}"
    sqlite = http.registry("registry-api-sqlite", workdir, sqlite_url, load, procs)
    procs[-1].stop()
    postgres = _registry_on_postgres(config, workdir, procs)
    services = run_services(config, workdir, procs)

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
    say(f"scoring: rescore, {config.rescore_events:,} ledger entries, pure fold")
    rescored = assessment.rescore(
        workdir, config.rescore_events, config.rescore_enterprises, config.rescore_processes
    )
    say(f"scoring: pure fold {rescored.seconds:.1f} s; rescore job {rescored.job_seconds:.1f} s")
    say("scoring: freshness through the whole embedded stack")
    base = free_port(1, 2, 3, 100, 101, 102, 103, 200, 201, 202, 203)
    fresh = assessment.freshness(workdir, broker, base, config.fresh_rate, config.fresh_count)
    figures = report.Figures(load, sqlite, postgres, baseline, produce_rate, worker, noop)
    scoring_table = report.assessment_table(worker, noop, rescored, fresh)
    everything = report.Everything(figures, services, rescored, fresh)
    return (
        f"{SUMMARY_TITLE}\n\n{report.summary(everything)}\n\n{DETAILS_TITLE}\n\n"
        f"{report.table(figures)}\n\n{SERVICES_TITLE}\n\n{report.services_table(services)}"
        f"\n\n{ASSESSMENT_TITLE}\n\n{scoring_table}"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_results(table: str, config: Config, elapsed_s: float, load_before: str) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.write_text(
        f"# ucx bench, {stamp}\n\n"
        f"{os.cpu_count()} CPUs; {elapsed_s:.0f} s in all; load average before {load_before}, "
        f"after {_load()} (other work on the machine skews every figure); {config.describe()}\n\n"
        f"{table}\n\n{report.BASELINES}\n\n{report.SERVICE_BASELINES}\n"
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
    say(
        f"done in {elapsed:.0f} s; load average before {load_before}, after {_load()}; "
        f"written to {RESULTS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
