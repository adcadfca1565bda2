"""The one markdown table ``make bench`` prints."""

from __future__ import annotations

from dataclasses import dataclass

from bench.http import LoadResult
from bench.scoring import StreamResult


@dataclass(frozen=True)
class Figures:
    n: int
    concurrency: int
    registry: LoadResult
    http_baseline: LoadResult
    produce_rate: float
    worker: StreamResult
    noop: StreamResult


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(ucx: float | None, baseline: float | None) -> str:
    if ucx is None or not baseline:
        return "n/a"
    return f"{ucx / baseline:.2f}"


def _row(metric: str, ucx: float | None, base: float | None, digits: int = 0) -> str:
    return f"| {metric} | {_num(ucx, digits)} | {_num(base, digits)} | {_ratio(ucx, base)} |"


def _events_label(result: StreamResult) -> str:
    if result.events >= result.expected:
        return f"{result.expected:,} events"
    return f"PARTIAL: {result.events:,} of {result.expected:,} events before the timeout"


def table(f: Figures) -> str:
    reg, base, worker, noop = f.registry, f.http_baseline, f.worker, f.noop
    load = f"{f.n:,} x POST /v1/vehicles, {f.concurrency} clients"
    return "\n".join(
        [
            "| metric | ucx | baseline | ucx / baseline |",
            "|---|--:|--:|--:|",
            _row(f"registration: requests/s ({load})", reg.rps, base.rps),
            _row("registration: p50 latency (ms)", reg.percentile(50), base.percentile(50), 1),
            _row("registration: p99 latency (ms)", reg.percentile(99), base.percentile(99), 1),
            f"| registration: non-201 answers | {reg.failures} | {base.failures} | - |",
            _row("registration: peak RSS of the api process (MiB)", reg.peak_rss_mib,
                 base.peak_rss_mib, 1),
            _row(f"scoring: events/s, first to last event handled ({_events_label(worker)})",
                 worker.rate, noop.rate),
            _row("scoring: process start to first event (s; imports + group join)",
                 worker.startup_s, noop.startup_s, 1),
            _row("scoring: peak RSS of the worker process (MiB)", worker.peak_rss_mib,
                 noop.peak_rss_mib, 1),
            f"| scoring: pre-produce with kafka-python (events/s) | {_num(f.produce_rate)} "
            "| - | - |",
        ]
    )  # fmt: skip


BASELINES = (
    "Baselines: registration = a bare FastAPI app, one sync POST /v1/vehicles taking the same "
    "JSON body and answering 201, same uvicorn settings; scoring = a no-op faust agent "
    "(servicekit's build_app, no subscriptions, fresh consumer group) iterating "
    "stream.events() over the same four topics on the same broker."
)
