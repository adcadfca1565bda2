"""A partner's API key judged before its request body: a route's dependency answers 401/403
first, whatever the body (FastAPI solves dependencies before it validates the body).

The judgement is kept per key digest for ``ttl_s`` when it lets the caller in, so the hot path
pays no extra round trip; the unit of work still checks the key in its own transaction and is
what decides. A key revoked (or a partner suspended) within the last ``ttl_s`` is therefore
refused by the unit, after its body is judged, instead of by this dependency: it changes
nothing either way. Refusals are never kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import anyio
from sqlalchemy import Connection, Engine

from servicekit.auth import hash_key
from servicekit.clock import clock

Check = Callable[[Connection, str, datetime], object]
"""Raises Unauthorized/Forbidden for the key digest at that moment; returns if it may call."""


class PartnerKeys:
    def __init__(self, check: Check, ttl_s: float = 5.0, max_entries: int = 10_000) -> None:
        self._check = check
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._admitted: dict[str, float] = {}

    async def judge(self, engine: Engine, api_key: str) -> None:
        """Returns if the key may call now; raises its 401/403 problem otherwise."""
        key_hash = hash_key(api_key)
        now = time.monotonic()
        if self._admitted.get(key_hash, 0.0) > now:
            return
        await anyio.to_thread.run_sync(self._judge_now, engine, key_hash)
        if len(self._admitted) >= self._max_entries:
            self._admitted.clear()
        self._admitted[key_hash] = now + self._ttl_s

    def _judge_now(self, engine: Engine, key_hash: str) -> None:
        with engine.connect() as connection:
            self._check(connection, key_hash, clock.now())
