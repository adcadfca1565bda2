"""A minimal HTTP/1.1 load driver over asyncio streams, cheap enough not to steal the server's CPU.

httpx costs the driver ~3 ms of CPU per request, which on a 2-core machine caps the very rate
we measure. Here a request is a pre-serialised ``bytes`` written to a keep-alive connection;
an answer is its status line and headers (up to the blank line) and then exactly
Content-Length bytes of body (chunked bodies and read-to-close are handled too, for errors).
An answer carrying ``Connection: close``, and any transport failure, drops the connection; the
next request on it reconnects. A request that got no answer counts as status 0.

Two modes:

* closed loop (:func:`closed_loop`): C connections, each sending its next request as soon as
  the previous answer arrives: the saturation rate.
* open loop (:func:`open_loop`): requests scheduled at a fixed offered rate; each is sent by a
  task taking a connection from a pool (up to 64 keep-alive connections, opened on demand),
  and its latency runs from its SCHEDULED send time, so time spent queueing for a connection or
  behind a slow server counts (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

TRANSPORT_ERROR = 0
"""The status we count for a request that got no answer (refused, reset, timed out)."""
WRONG_BODY = 1
"""The status we count for the expected status whose body lacks the expected marker."""
REQUEST_TIMEOUT_S = 60.0
IDLE_REOPEN_S = 4.0
"""Reopen a keep-alive connection idle this long: uvicorn closes them after 5 s."""
POOL_LIMIT = 64
_KEPT_ERRORS = 3


def post(
    host: str,
    port: int,
    path: str,
    body: bytes,
    authorization: str | None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """One pre-serialised ``POST`` with a JSON body (and any extra ``headers``)."""
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"{auth}{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Connection:
    """One keep-alive connection, (re)opened lazily by the request that needs it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.connects = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._idle_since = 0.0

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        """Send ``payload``; returns (status, body), or (0, error text) if no answer came.

        A server drops keep-alive connections idle for a while (uvicorn: 5 s); one idle for
        over ``IDLE_REOPEN_S`` is reopened first, and if a reused one is closed under us before
        a single byte of answer, the request is sent once more on a fresh connection (the server
        never read it), as HTTP clients do."""
        if self._writer is not None and time.perf_counter() - self._idle_since > IDLE_REOPEN_S:
            self.close()
        reused = self._writer is not None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                try:
                    return await self._exchange(payload)
                except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
                    answered = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                    if not reused or answered:
                        raise
                    self.close()
                    return await self._exchange(payload)
        except (OSError, EOFError, ValueError, TimeoutError) as exc:
            # ConnectionError is an OSError; IncompleteReadError an EOFError; ValueError a
            # garbled status line or header, or a header block over the reader's limit.
            self.close()
            return TRANSPORT_ERROR, f"{type(exc).__name__}: {exc}".encode()
        finally:
            self._idle_since = time.perf_counter()

    async def _exchange(self, payload: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        self._writer.write(payload)
        return await self._answer(self._reader)

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self.connects += 1

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])  # b"HTTP/1.1 201 Created\r\n..."
        length = -1
        close = chunked = False
        for line in head[:-4].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = b"close" in value.lower()
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if chunked:
            body = await _read_chunked(reader)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:  # no framing: the body runs to the end of the connection
            body, close = await reader.read(), True
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


@dataclass
class LoadResult:
    """What one load run saw. ``elapsed_s`` runs from the first (scheduled) send to the last
    answer; ``latencies_ms`` has one entry per request, failures included."""

    requests: int
    elapsed_s: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    errors: list[str]
    connections: int
    driver_cpu_s: float
    send_lag_ms: list[float] = field(default_factory=list)
    """Open loop only: how late the driver got each request onto a connection."""
    expected: int = 201
    """The status a request should get (201 Created; 202 for an accepted webhook)."""

    @property
    def ok(self) -> int:
        return self.statuses.get(self.expected, 0)

    @property
    def non_201(self) -> int:
        """Answers other than the expected status (with its marker): the name is historical."""
        return self.requests - self.ok

    @property
    def failures(self) -> str:
        """The unexpected-answer count, with their statuses when there are any (0 = no answer,
        1 = the expected status without the expected body marker)."""
        others = {code: n for code, n in sorted(self.statuses.items()) if code != self.expected}
        if not others:
            return "0"
        return f"{self.non_201} ({', '.join(f'{code}: {n}' for code, n in others.items())})"

    @property
    def rps(self) -> float:
        """Expected answers (201, or 202 for webhooks) per second."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, p: float, values: Sequence[float] | None = None) -> float:
        ordered = sorted(self.latencies_ms if values is None else values)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    @property
    def driver_us_per_request(self) -> float:
        return self.driver_cpu_s / max(self.requests, 1) * 1e6


@dataclass(frozen=True)
class Expect:
    """What a good answer looks like: its status and, optionally, a ``"key":"value"`` marker
    its JSON body contains (compact, or with the space ``json.dumps`` puts after the colon)."""

    status: int = 201
    marker: bytes | None = None

    def body_ok(self, body: bytes) -> bool:
        marker = self.marker
        return marker is None or marker in body or marker.replace(b'":', b'": ', 1) in body


CREATED = Expect()


class _Tally:
    def __init__(self, expect: Expect) -> None:
        self.expect = expect
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []

    def record(self, latency_s: float, status: int, body: bytes) -> None:
        self.latencies.append(latency_s * 1000)
        if status == self.expect.status and not self.expect.body_ok(body):
            status = WRONG_BODY
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != self.expect.status and len(self.errors) < _KEPT_ERRORS:
            label = "no answer" if status == TRANSPORT_ERROR else str(status)
            self.errors.append(f"{label}: {body[:300].decode(errors='replace')}")


async def closed_loop(
    host: str, port: int, payloads: Sequence[bytes], concurrency: int, expect: Expect = CREATED
) -> LoadResult:
    """Each of ``concurrency`` connections sends its next payload when its answer is in."""
    tally = _Tally(expect)
    pending = iter(payloads)  # shared: each payload is sent once
    connections = [Connection(host, port) for _ in range(concurrency)]

    async def one_client(conn: Connection) -> None:
        clock = time.perf_counter
        try:
            for payload in pending:
                started = clock()
                status, body = await conn.request(payload)
                tally.record(clock() - started, status, body)
        finally:
            conn.close()

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in connections))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return LoadResult(
        len(tally.latencies), elapsed, tally.latencies, tally.statuses, tally.errors,
        sum(c.connects for c in connections), cpu, expected=expect.status,
    )  # fmt: skip


class _Pool:
    """Idle keep-alive connections; a new one is opened while fewer than ``limit`` exist."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self._host, self._port, self._limit = host, port, limit
        self.all: list[Connection] = []
        self._idle: list[Connection] = []
        self._waiters: deque[asyncio.Future[Connection]] = deque()

    async def acquire(self) -> Connection:
        if self._idle:
            return self._idle.pop()
        if len(self.all) < self._limit:
            conn = Connection(self._host, self._port)
            self.all.append(conn)
            return conn
        waiter: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    def release(self, conn: Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def close(self) -> None:
        for conn in self.all:
            conn.close()


async def open_loop(
    host: str,
    port: int,
    payloads: Sequence[bytes],
    rate: float,
    pool_limit: int = POOL_LIMIT,
    expect: Expect = CREATED,
) -> LoadResult:
    """Send payload i at start + i / rate, whatever the earlier ones are doing."""
    tally = _Tally(expect)
    lags: list[float] = []
    pool = _Pool(host, port, pool_limit)
    clock = time.perf_counter
    last_answer = 0.0

    async def one(due: float, payload: bytes) -> None:
        nonlocal last_answer
        conn = await pool.acquire()
        lags.append((clock() - due) * 1000)
        try:
            status, body = await conn.request(payload)
        finally:
            pool.release(conn)
        last_answer = clock()
        tally.record(last_answer - due, status, body)

    tasks: list[asyncio.Task[None]] = []
    cpu, start = time.process_time(), clock()
    try:
        for i, payload in enumerate(payloads):
            due = start + i / rate
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, payload)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        pool.close()
    cpu = time.process_time() - cpu
    return LoadResult(
        len(tally.latencies), last_answer - start, tally.latencies, tally.statuses, tally.errors,
        sum(c.connects for c in pool.all), cpu, lags, expect.status,
    )  # fmt: skip
