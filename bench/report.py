"""The one markdown table ``make bench`` prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.http import Load, Registration
from bench.scoring import StreamResult

MIN_RATIO = 0.30
"""The issue's target: the registry at >= 30% of the bare endpoint's saturation rate ..."""
MAX_OPEN_P99_MS = 50.0
"""... and p99 under 50 ms at the offered open-loop rate (300 requests/s)."""


@dataclass(frozen=True)
class Figures:
    load: Load
    sqlite: Registration
    postgres: Registration | str
    """The PostgreSQL figures, or why there are none."""
    http_baseline: Registration
    produce_rate: float
    worker: StreamResult
    noop: StreamResult


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(ucx: float | None, baseline: float | None) -> str:
    if ucx is None or not baseline:
        return "n/a"
    return f"{ucx / baseline:.2f}"


def _events_label(result: StreamResult) -> str:
    if result.events >= result.expected:
        return f"{result.expected:,} events"
    return f"PARTIAL: {result.events:,} of {result.expected:,} events before the timeout"


def _verdict(reg: Registration, bare: Registration) -> str:
    misses = []
    ratio = reg.saturation.rps / bare.saturation.rps if bare.saturation.rps else 0.0
    if ratio < MIN_RATIO:
        misses.append(f"rate {ratio:.2f} of bare")
    p99 = reg.open.percentile(99)
    if not p99 < MAX_OPEN_P99_MS:
        misses.append(f"p99 {p99:.0f} ms")
    if reg.saturation.non_201 or reg.open.non_201:
        misses.append("non-201 answers")
    return "**yes**" if not misses else f"**no** ({'; '.join(misses)})"


def table(f: Figures) -> str:
    load, bare = f.load, f.http_baseline
    pg = f.postgres if isinstance(f.postgres, Registration) else None
    no_pg = "n/a (no PostgreSQL)"
    cells = (f.sqlite, pg, bare)

    def row(metric: str, cell: Callable[[Registration], str], target: str = "") -> str:
        values = [no_pg if r is None else cell(r) for r in cells]
        return f"| {metric} | {' | '.join(values)} | {target} |"

    def srow(metric: str, ucx: float | None, base: float | None, digits: int = 0) -> str:
        return (
            f"| {metric} | {_num(ucx, digits)} | - | {_num(base, digits)} | {_ratio(ucx, base)} |"
        )

    def ratio(r: Registration) -> str:
        return _ratio(r.saturation.rps, bare.saturation.rps)

    closed = f"saturation ({load.n:,} requests, closed loop, {load.concurrency} connections)"
    offered = (
        f"open loop ({load.rate:,.0f} req/s offered for {load.open_seconds:g} s; "
        "latency from scheduled send)"
    )
    worker, noop = f.worker, f.noop
    return "\n".join(
        [
            "| metric | registry, SQLite | registry, PostgreSQL | bare FastAPI | target |",
            "|---|--:|--:|--:|---|",
            row(f"POST /v1/vehicles {closed}: 201 answers/s", lambda r: _num(r.saturation.rps)),
            row("… saturation p50 latency (ms)", lambda r: _num(r.saturation.percentile(50), 1)),
            row("… saturation p99 latency (ms)", lambda r: _num(r.saturation.percentile(99), 1)),
            row("… saturation rate / bare FastAPI rate", ratio, f"≥ {MIN_RATIO:.2f}"),
            row(f"POST /v1/vehicles {offered}: achieved 201 answers/s", lambda r: _num(r.open.rps),
                f"{load.rate:,.0f}"),
            row("… open-loop p50 latency (ms)", lambda r: _num(r.open.percentile(50), 1)),
            row("… open-loop p99 latency (ms)", lambda r: _num(r.open.percentile(99), 1),
                f"< {MAX_OPEN_P99_MS:.0f}"),
            row("non-201 answers, saturation", lambda r: r.saturation.failures, "0"),
            row("non-201 answers, open loop", lambda r: r.open.failures, "0"),
            row("peak RSS of the api process (MiB)", lambda r: _num(r.peak_rss_mib, 1)),
            f"| **registration targets met** | {_verdict(f.sqlite, bare)} | "
            f"{no_pg if pg is None else _verdict(pg, bare)} | - | both |",
            "| **scoring** (columns here: scoring worker on SQLite; -; no-op faust agent; "
            "worker / no-op) | **scoring worker** | | **no-op agent** | **ratio** |",
            srow(f"scoring: events/s, first to last event handled ({_events_label(worker)})",
                 worker.rate, noop.rate),
            srow("scoring: process start to first event (s; imports + group join)",
                 worker.startup_s, noop.startup_s, 1),
            srow("scoring: peak RSS of the worker process (MiB)", worker.peak_rss_mib,
                 noop.peak_rss_mib, 1),
            f"| scoring: pre-produce with kafka-python (events/s) | {_num(f.produce_rate)} "
            "| - | - | - |",
        ]
    )  # fmt: skip


BASELINES = (
    "Columns: registration rows = the registry api (one uvicorn worker) on SQLite and on a "
    "fresh PostgreSQL database, against a bare FastAPI app (one sync POST /v1/vehicles taking "
    "the same JSON body and answering 201, same uvicorn settings), all driven by the same "
    "asyncio-streams HTTP/1.1 client in the same run; scoring rows = the scoring worker (on "
    "SQLite) against a no-op faust agent (servicekit's build_app, no subscriptions, fresh "
    "consumer group) iterating stream.events() over the same four topics on the same broker. "
    "Targets (from the issue): registry saturation rate ≥ 30% of the bare endpoint's, and "
    "open-loop p99 < 50 ms at 300 req/s offered."
)
