"""Registration ingestion: ``POST /v1/vehicles`` against the registry and a bare baseline.

Each target is one uvicorn process, driven by :mod:`bench.client`: a warm-up, then the
closed-loop saturation run, then the open-loop run at the offered rate. Every request carries a
fresh VIN (the registry refuses duplicates), serialised before the clock starts.
"""

from __future__ import annotations

import asyncio
import gc
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import data
from bench.client import CREATED, Expect, LoadResult, closed_loop, open_loop, post
from bench.procs import BenchError, Proc, base_env, run, say, tail
from servicekit.ports import free_port

ADMIN_TOKEN = "bench-admin-token-not-a-secret"
HOST = "127.0.0.1"
PATH = "/v1/vehicles"
WARMUP = 50
"""Extra vehicles posted first and left out of the figures (imports, caches, first connects)."""


@dataclass(frozen=True)
class Load:
    n: int
    """Requests in the closed-loop (saturation) run."""
    concurrency: int
    rate: float
    """Offered requests/s in the open-loop run."""
    open_seconds: float

    @property
    def open_requests(self) -> int:
        return round(self.rate * self.open_seconds)


Build = Callable[[int], list[bytes]]
"""Serialises the next ``count`` requests; called right before each phase (warm-up, closed
loop, open loop), so that signed, timestamped requests are fresh when they are sent."""


def from_list(payloads: list[bytes]) -> Build:
    """A :data:`Build` handing out ``payloads`` in order (serialised all at once, up front)."""
    rest = iter(payloads)

    def build(count: int) -> list[bytes]:
        return [next(rest) for _ in range(count)]

    return build


@dataclass(frozen=True)
class Registration:
    saturation: LoadResult
    open: LoadResult
    peak_rss_mib: float | None


def _payloads(port: int, authorization: str, uscc: str, ids: data.Ids, count: int) -> list[bytes]:
    today = datetime.now(UTC).date()
    return [
        post(
            HOST, port, PATH,
            json.dumps(data.vehicle(uscc, ids.vin(), today), separators=(",", ":")).encode(),
            authorization,
        )
        for _ in range(count)
    ]  # fmt: skip


def _report(name: str, mode: str, result: LoadResult, proc: Proc, cpu_before: float | None) -> None:
    code = result.expected
    cpu_after = proc.cpu_s()
    server = ""
    if cpu_before is not None and cpu_after is not None:
        per_request = (cpu_after - cpu_before) / max(result.requests, 1) * 1000
        busy = (cpu_after - cpu_before) / result.elapsed_s * 100
        server = f", server CPU {per_request:.2f} ms/request ({busy:.0f}% of a core)"
    lag = ""
    if result.send_lag_ms:
        lag = f", driver send lag p99 {result.percentile(99, result.send_lag_ms):.1f} ms"
    say(
        f"{name} {mode}: {result.requests} requests, {result.rps:,.0f} {code}/s, "
        f"p50 {result.percentile(50):.1f} ms, p99 {result.percentile(99):.1f} ms, "
        f"{result.connections} connections opened, driver CPU "
        f"{result.driver_us_per_request:.0f} us/request{lag}{server}"
    )
    if result.non_201:
        say(f"{name} {mode}: {result.failures} non-{code} answers; first ones: {result.errors}")
        say(f"{name} log tail:\n{tail(proc.log)}")


def drive(
    name: str, port: int, build: Build, load: Load, proc: Proc, expect: Expect = CREATED
) -> Registration:
    """Warm up, then saturate (closed loop), then offer ``load.rate`` (open loop)."""
    asyncio.run(closed_loop(HOST, port, build(WARMUP), load.concurrency, expect))
    try:
        return _measure(name, port, build, load, proc, expect)
    finally:
        gc.unfreeze()


def _quiet() -> None:
    """Move what exists now (payloads, imports) out of the collector's way: a full collection
    in the driver mid-run would show up as a latency spike charged to the server."""
    gc.collect()
    gc.freeze()


def _measure(
    name: str, port: int, build: Build, load: Load, proc: Proc, expect: Expect
) -> Registration:
    closed = build(load.n)
    _quiet()
    cpu = proc.cpu_s()
    saturation = asyncio.run(closed_loop(HOST, port, closed, load.concurrency, expect))
    _report(name, "saturation", saturation, proc, cpu)
    proc.check_alive()
    opened = build(load.open_requests)
    _quiet()
    cpu = proc.cpu_s()
    steady = asyncio.run(open_loop(HOST, port, opened, load.rate, expect=expect))
    _report(name, f"open loop at {load.rate:g}/s", steady, proc, cpu)
    proc.check_alive()
    return Registration(saturation, steady, proc.peak_rss_mib())


def call(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as exc:
        raise BenchError(f"POST {url}: {exc.code} {exc.read()[:500]!r}") from exc


def _admitted_enterprise(base: str, ids: data.Ids) -> tuple[str, str]:
    """Apply and approve one enterprise; returns its USCC and its API key (shown once)."""
    uscc = ids.uscc()
    call(f"{base}/v1/enterprises", data.enterprise(uscc))
    answer = call(
        f"{base}/v1/enterprises/{uscc}/decisions",
        {"action": "approve", "reason": "benchmark enterprise, admitted"},
        ADMIN_TOKEN,
    )
    return uscc, str(answer["api_key"])


def api_env(
    service: str, name: str, workdir: Path, database_url: str, port: int, **extra: str
) -> dict[str, str]:
    """A service api's environment, its database migrated: its port, a broker nobody listens
    on (the API only writes the outbox), the bench's admin token, and ``extra``."""
    prefix = service.upper()
    env = base_env(
        **{f"{prefix}_DATABASE_URL": database_url, f"{prefix}_PORT": str(port)},
        KAFKA_BOOTSTRAP_SERVERS=f"{HOST}:{free_port()}",
        UCX_ADMIN_TOKEN=ADMIN_TOKEN,
        **extra,
    )
    run(["-m", service, "migrate"], env, workdir, workdir / f"{name}-migrate.log")
    return env


def serve(
    name: str, args: list[str], env: dict[str, str], workdir: Path, port: int, procs: list[Proc]
) -> Proc:
    """Start ``python <args>`` (an api) and wait until it listens on ``port``."""
    api = Proc(name, args, env, workdir)
    procs.append(api)
    api.wait_for_port(port)
    return api


def serve_baseline(name: str, workdir: Path, procs: list[Proc]) -> tuple[int, Proc]:
    """The bare routes (:mod:`bench.baseline_api`) on a port of their own."""
    port = free_port()
    return port, serve(
        name, ["-m", "bench.baseline_api", str(port)], base_env(), workdir, port, procs
    )


def registry(
    name: str, workdir: Path, database_url: str, load: Load, procs: list[Proc]
) -> Registration:
    port = free_port(100, 200)
    env = api_env("registry", name, workdir, database_url, port)
    api = serve(name, ["-m", "registry", "api"], env, workdir, port, procs)
    ids = data.Ids()
    uscc, api_key = _admitted_enterprise(f"http://{HOST}:{port}", ids)
    count = WARMUP + load.n + load.open_requests
    payloads = _payloads(port, f"Bearer {api_key}", uscc, ids, count)
    return drive(name, port, from_list(payloads), load, api)


def baseline(workdir: Path, load: Load, procs: list[Proc]) -> Registration:
    port, api = serve_baseline("baseline-api", workdir, procs)
    ids = data.Ids()
    count = WARMUP + load.n + load.open_requests
    # The same header block as the registry's requests (the baseline ignores the key).
    payloads = _payloads(port, "Bearer bench-baseline-ignores-this-key", ids.uscc(), ids, count)
    return drive("baseline-api", port, from_list(payloads), load, api)
