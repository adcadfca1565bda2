"""A partner's API key judged before its request body: a route's dependency answers 401/403
first, whatever the body (FastAPI solves dependencies before it validates the body).

The judgement is kept per key digest for ``ttl_s`` when it lets the caller in, so the hot path
pays no extra round trip; the unit of work still checks the key in its own transaction and is
what decides. A key revoked (or a partner suspended) within the last ``ttl_s`` is therefore
refused by the unit, after its body is judged, instead of by this dependency: it changes
nothing either way. Refusals are never kept.

A service builds the dependency once, with :func:`partner_key`, and names it in the routes'
signatures::

    EnterpriseKey = Annotated[str, Depends(partner_key(ENTERPRISE_KEY, judge_enterprise_key))]"""

# no ``from __future__ import annotations``: FastAPI reads ``partner_key``'s inner signature at
# runtime, and its annotation names the closure's ``scheme``, which a string could not reach
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from servicekit.auth import BearerAuth, hash_key
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


def partner_key(
    scheme: BearerAuth, check: Check, ttl_s: float = 5.0
) -> Callable[..., Awaitable[str]]:
    """The FastAPI dependency that reads ``scheme``'s bearer key (so OpenAPI names the scheme)
    and judges it with ``check`` before the body: it returns the key, or raises its 401/403.

    Each app keeps its own :class:`PartnerKeys` (on ``app.state``, by the scheme's name, made
    on the first request), judging against its own ``app.state.engine``: two apps in one
    process, as in the tests, never share admissions."""
    attribute = f"partner_keys_{scheme.scheme_name}"

    async def judged_key(request: Request, key: Annotated[str, Depends(scheme)]) -> str:
        state = request.app.state
        keys: PartnerKeys | None = getattr(state, attribute, None)
        if keys is None:
            keys = PartnerKeys(check, ttl_s)
            setattr(state, attribute, keys)
        await keys.judge(state.engine, key)
        return key

    return judged_key
