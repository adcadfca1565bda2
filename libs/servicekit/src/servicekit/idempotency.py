"""``Idempotency-Key`` on POSTs (draft-ietf-httpapi-idempotency-key-header):
same key + same body replays the first answer; same key + other body is 422; a first request
still in flight is 409. Keys are scoped by route and caller (a digest of the credentials).

The record functions are also what customs uses to remember inbound ``webhook-id``s.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import anyio
from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.clock import clock
from servicekit.problems import problem_response
from servicekit.tables import idempotency_keys as keys

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Stored:
    request_hash: str
    status_code: int | None
    content_type: str | None
    body: bytes | None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lookup(engine: Engine, scope: str, key: str) -> Stored | None:
    with Session(engine) as session:
        return stored_in(session, scope, key)


STALE_AFTER = timedelta(seconds=60)
"""An in-flight claim older than this belongs to a request that died: it may be taken over."""


_STORED = select(keys.c.request_hash, keys.c.status_code, keys.c.content_type, keys.c.body).where(
    keys.c.scope == bindparam("scope"), keys.c.key == bindparam("key")
)
_REMEMBER = insert(keys)


def stored_in(session: Session, scope: str, key: str) -> Stored | None:
    """The remembered answer, read inside the caller's transaction."""
    row = session.connection().execute(_STORED, {"scope": scope, "key": key}).first()
    if row is None:
        return None
    body = bytes(row.body) if row.body is not None else None
    return Stored(row.request_hash, row.status_code, row.content_type, body)


def remember_in(
    session: Session,
    scope: str,
    key: str,
    request_hash: str,
    status_code: int,
    content_type: str,
    body: bytes,
) -> None:
    """Remember the answer in the same transaction as the effect it answers for: a crash
    loses both or neither. A concurrent duplicate fails on the primary key."""
    session.connection().execute(
        _REMEMBER,
        {
            "scope": scope,
            "key": key,
            "request_hash": request_hash,
            "status_code": status_code,
            "content_type": content_type,
            "body": body,
            "created_at": clock.now(),
        },
    )


def claim(engine: Engine, scope: str, key: str, request_hash: str) -> bool:
    """Record the key as in flight; False if someone holds it already."""
    now = clock.now()
    with engine.begin() as conn:  # drop a claim abandoned by a crashed request
        conn.execute(
            delete(keys).where(
                keys.c.scope == scope,
                keys.c.key == key,
                keys.c.status_code.is_(None),
                keys.c.created_at < now - STALE_AFTER,
            )
        )
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(keys).values(scope=scope, key=key, request_hash=request_hash, created_at=now)
            )
        return True
    except IntegrityError:
        return False


def complete(
    engine: Engine, scope: str, key: str, status_code: int, content_type: str, body: bytes
) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(keys)
            .where(keys.c.scope == scope, keys.c.key == key)
            .values(status_code=status_code, content_type=content_type, body=body)
        )


def release(engine: Engine, scope: str, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(keys).where(keys.c.scope == scope, keys.c.key == key))


_HEADER_BYTES = HEADER.encode()  # ASGI servers give header names lower-cased


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not any(k == _HEADER_BYTES for k, _ in scope["headers"]):  # most requests
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers[HEADER]
        if not key or len(key) > MAX_KEY_LENGTH:
            await problem_response(
                400,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.",
            )(scope, receive, send)
            return

        body = await _read_body(receive)
        key_scope = f"{scope['path']}|{digest(headers.get('authorization', '').encode())[:16]}"
        request_hash = digest(body)
        stored = await anyio.to_thread.run_sync(lookup, self.engine, key_scope, key)
        if stored is None and await anyio.to_thread.run_sync(
            claim, self.engine, key_scope, key, request_hash
        ):
            await self._run_and_store(scope, body, send, key_scope, key)
            return
        stored = stored or await anyio.to_thread.run_sync(lookup, self.engine, key_scope, key)
        if stored is not None and stored.request_hash != request_hash:
            response = problem_response(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "This Idempotency-Key was used with a different request body.",
            )
        elif stored is None or stored.status_code is None:
            response = problem_response(
                409,
                "idempotency-key-in-flight",
                "Request in flight",
                "A request with this Idempotency-Key is still being processed; retry later.",
            )
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": stored.status_code,
                    "headers": [
                        (b"content-type", (stored.content_type or "application/json").encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": stored.body or b""})
            return
        await response(scope, _replay(body), send)

    async def _run_and_store(
        self, scope: Scope, body: bytes, send: Send, key_scope: str, key: str
    ) -> None:
        status = 500
        content_type = "application/json"
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-type":
                        content_type = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replay(body), capture)
        finally:
            if status < 500:
                await anyio.to_thread.run_sync(
                    complete, self.engine, key_scope, key, status, content_type, b"".join(chunks)
                )
            else:  # a server error is not an answer worth replaying: let the client retry
                await anyio.to_thread.run_sync(release, self.engine, key_scope, key)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
