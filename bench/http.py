"""Registration ingestion: ``POST /v1/vehicles`` against the registry and a bare baseline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import data
from bench.procs import Proc, base_env, free_port, run, say, tail

ADMIN_TOKEN = "bench-admin-token-not-a-secret"
TRANSPORT_ERROR = 0
"""The status we count for a request that got no answer (refused, reset, timed out)."""
WARMUP = 50
"""Extra vehicles posted first and left out of the figures (imports, caches, first connects)."""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    elapsed_s: float
    latencies_ms: list[float]
    non_201: int
    statuses: dict[int, int]
    peak_rss_mib: float | None

    @property
    def failures(self) -> str:
        """The non-201 count, with its statuses when there are any (0 = no answer)."""
        others = {code: n for code, n in sorted(self.statuses.items()) if code != 201}
        if not others:
            return "0"
        return f"{self.non_201} ({', '.join(f'{code}: {n}' for code, n in others.items())})"

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def _drive(
    url: str, headers: dict[str, str], bodies: Sequence[dict[str, Any]], concurrency: int
) -> tuple[float, list[float], dict[int, int], list[str]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    pending: Iterator[dict[str, Any]] = iter(bodies)

    async def one_client() -> None:
        # One client (one keep-alive connection) per simulated partner: a single shared
        # httpx pool costs the driver more CPU per request as concurrency grows.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60.0) as client:
            for body in pending:  # shared iterator: each body is sent once
                started = time.perf_counter()
                try:
                    response = await client.post(url, json=body)
                    code = response.status_code
                    if code != 201 and len(errors) < 3:
                        errors.append(f"{code}: {response.text[:300]}")
                except httpx.TransportError as exc:
                    code = TRANSPORT_ERROR
                    if len(errors) < 3:
                        errors.append(f"no answer: {type(exc).__name__}: {exc}")
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[code] = statuses.get(code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return elapsed, latencies, statuses, errors


def drive(
    url: str,
    headers: dict[str, str],
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
    proc: Proc,
) -> LoadResult:
    """Warm up on the first ``WARMUP`` bodies, then measure the rest."""
    asyncio.run(_drive(url, headers, bodies[:WARMUP], concurrency))
    elapsed, latencies, statuses, errors = asyncio.run(
        _drive(url, headers, bodies[WARMUP:], concurrency)
    )
    non_201 = sum(n for code, n in statuses.items() if code != 201)
    if non_201:
        say(f"{proc.name}: {non_201} non-201 answers; first ones: {errors}")
        say(f"{proc.name} log tail:\n{tail(proc.log)}")
    return LoadResult(len(latencies), elapsed, latencies, non_201, statuses, proc.peak_rss_mib())


def _admitted_enterprise(base: str, ids: data.Ids) -> tuple[str, str]:
    """Apply and approve one enterprise; returns its USCC and its API key (shown once)."""
    uscc = ids.uscc()
    with httpx.Client(base_url=base, timeout=30.0) as client:
        client.post("/v1/enterprises", json=data.enterprise(uscc)).raise_for_status()
        answer = client.post(
            f"/v1/enterprises/{uscc}/decisions",
            json={"action": "approve", "reason": "benchmark enterprise, admitted"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        answer.raise_for_status()
        return uscc, str(answer.json()["api_key"])


def registry(workdir: Path, n: int, concurrency: int, procs: list[Proc]) -> LoadResult:
    port = free_port(100, 200)
    env = base_env(
        REGISTRY_DATABASE_URL=f"sqlite:///{workdir / 'registry.db'}",
        REGISTRY_PORT=str(port),
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",  # the API only writes the outbox
        UCX_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    run(["-m", "registry", "migrate"], env, workdir, workdir / "registry-migrate.log")
    api = Proc("registry-api", ["-m", "registry", "api"], env, workdir)
    procs.append(api)
    api.wait_for_port(port)
    base = f"http://127.0.0.1:{port}"
    ids = data.Ids()
    uscc, api_key = _admitted_enterprise(base, ids)
    today = datetime.now(UTC).date()
    bodies = [data.vehicle(uscc, ids.vin(), today) for _ in range(WARMUP + n)]
    headers = {"Authorization": f"Bearer {api_key}"}
    result = drive(f"{base}/v1/vehicles", headers, bodies, concurrency, api)
    api.check_alive()
    return result


def baseline(workdir: Path, n: int, concurrency: int, procs: list[Proc]) -> LoadResult:
    port = free_port()
    api = Proc("baseline-api", ["-m", "bench.baseline_api", str(port)], base_env(), workdir)
    procs.append(api)
    api.wait_for_port(port)
    ids = data.Ids()
    uscc = ids.uscc()
    today = datetime.now(UTC).date()
    bodies = [data.vehicle(uscc, ids.vin(), today) for _ in range(WARMUP + n)]
    result = drive(f"http://127.0.0.1:{port}/v1/vehicles", {}, bodies, concurrency, api)
    api.check_alive()
    return result
