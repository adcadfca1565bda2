"""``Idempotency-Key`` on POSTs (draft-ietf-httpapi-idempotency-key-header): same key + same
body replays the first answer (``idempotent-replayed: true``); same key + other body is 422
``idempotency-key-reused``. Keys are scoped by route and caller (a digest of the credentials).

The answer is remembered in the SAME transaction as the effect it answers for (``answer_in``,
run by ``Writer.run_idempotent`` or ``answer_once``): a crash loses both or neither, so a retry
after a crash finds the first answer, or runs as the first request. Nothing is claimed before
the effect; a duplicate that arrives while a request with its key runs in this process is 409
``idempotency-key-in-flight`` (``IdempotencyMiddleware``). Across processes, the second to
commit fails on the primary key and is judged again: it finds the first one's answer.

Customs remembers inbound ``webhook-id``s with the same record functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import anyio
from fastapi import Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import audit
from servicekit.clock import clock
from servicekit.problem_http import problem_response
from servicekit.problems import PROBLEM_JSON, Problem, Unprocessable
from servicekit.tables import idempotency_keys as keys

HEADER = "idempotency-key"
REPLAYED = "idempotent-replayed"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Stored:
    request_hash: str
    status_code: int | None
    content_type: str | None
    body: bytes | None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as bytes: what is remembered, and what a replay sends again."""

    status: int
    body: bytes
    content_type: str = "application/json"
    replayed: bool = False

    @classmethod
    def of(cls, model: BaseModel, status: int = 200) -> Answer:
        return cls(status, model.model_dump_json().encode())

    @classmethod
    def of_problem(cls, exc: Problem) -> Answer:
        body = problem_response(exc.status, exc.type_, exc.title, exc.detail, **exc.extra).body
        return cls(exc.status, bytes(body), PROBLEM_JSON)

    def response(self) -> Response:
        headers = {REPLAYED: "true"} if self.replayed else None
        return Response(self.body, self.status, headers=headers, media_type=self.content_type)


@dataclass(frozen=True)
class Attempt:
    """One request carrying an Idempotency-Key: where its answer is remembered, and its body's
    digest (a second body under the same key is refused)."""

    scope: str
    key: str
    request_hash: str


Unit = Callable[[Session], Answer]
IntegrityMap = Callable[[IntegrityError], Exception]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_scope(path: str, authorization: str) -> str:
    return f"{path}|{digest(authorization.encode())[:16]}"


_STORED = select(keys.c.request_hash, keys.c.status_code, keys.c.content_type, keys.c.body).where(
    keys.c.scope == bindparam("scope"), keys.c.key == bindparam("key")
)
_REMEMBER = insert(keys)
_FORGET = delete(keys).where(keys.c.scope == bindparam("scope"), keys.c.key == bindparam("key"))


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


def _reused() -> Problem:
    return Unprocessable(
        "idempotency-key-reused",
        "This Idempotency-Key was used with a different request body.",
        title="Idempotency-Key reused",
    )


def replay_in(session: Session, attempt: Attempt) -> Answer | None:
    """The answer this attempt gets without running: the first one, replayed, or 422 for
    another body. A row without an answer is a claim written before answers were remembered
    with their effect, by a request that died: it is dropped, and the attempt runs."""
    stored = stored_in(session, attempt.scope, attempt.key)
    if stored is None:
        return None
    if stored.status_code is None:
        session.connection().execute(_FORGET, {"scope": attempt.scope, "key": attempt.key})
        return None
    if stored.request_hash != attempt.request_hash:
        return Answer.of_problem(_reused())
    content_type = stored.content_type or "application/json"
    return Answer(stored.status_code, stored.body or b"", content_type, replayed=True)


def answer_in(
    session: Session, attempt: Attempt, unit: Unit, on_integrity_error: IntegrityMap | None = None
) -> Answer:
    """Replay, or run ``unit`` in a savepoint and remember its answer beside its effect. A
    refusal (a 4xx problem, or a constraint ``on_integrity_error`` turns into one) is final:
    its writes roll back and the refusal is remembered like any answer."""

    def run() -> Answer:
        try:
            with session.begin_nested():
                answer = unit(session)
                session.flush()
        except IntegrityError as exc:
            if on_integrity_error is None:
                raise
            raise on_integrity_error(exc) from exc
        return answer

    return _replayed_or_remembered(session, attempt, run)


def _replayed_or_remembered(
    session: Session, attempt: Attempt, run: Callable[[], Answer]
) -> Answer:
    replayed = replay_in(session, attempt)
    if replayed is not None:
        return replayed
    try:
        answer = run()
    except Problem as exc:
        if exc.status >= 500:
            raise
        answer = Answer.of_problem(exc)
    _store(session, attempt, answer)
    return answer


def answer_once(
    engine: Engine, attempt: Attempt | None, unit: Unit, act_of: audit.ActOf = lambda: None
) -> Answer:
    """For a POST that opens its own transaction (``with session.begin()``) instead of going
    through the writer: the unit's session joins an outer transaction as a savepoint, and the
    answer is remembered in that outer transaction. A concurrent duplicate that committed
    the same key first (primary key) is replayed by a second pass. An official's act
    (``act_of``) is recorded with the unit's commit (servicekit.audit)."""
    if attempt is None:
        with audit.watch(Session(engine, expire_on_commit=False), act_of) as session:
            return unit(session)
    for last in (False, True):
        try:
            with engine.begin() as connection:
                return _replayed_or_remembered(
                    Session(connection), attempt, lambda: _joined(connection, unit, act_of)
                )
        except IntegrityError:
            if last:
                raise
    raise AssertionError("unreachable")


def _joined(connection: Connection, unit: Unit, act_of: audit.ActOf) -> Answer:
    """``unit`` on a session whose transactions are savepoints of ``connection``'s: what it
    leaves uncommitted on a refusal is rolled back, the outer transaction stays."""
    session = Session(connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    with audit.watch(session, act_of):
        try:
            return unit(session)
        except BaseException:
            session.rollback()
            raise


def prune(engine: Engine, retention: timedelta) -> int:
    """Forget answers older than ``retention``; returns how many."""
    with engine.begin() as connection:
        result = connection.execute(delete(keys).where(keys.c.created_at < clock.now() - retention))
    return int(result.rowcount or 0)


async def attempt_of(request: Request) -> Attempt | None:
    """Dependency of every POST that takes the header: the attempt, or None without one.
    The body was read already by FastAPI (Starlette keeps it), so this costs a digest."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    scope = key_scope(request.url.path, request.headers.get("authorization", ""))
    return Attempt(scope, key, digest(await request.body()))


AttemptDep = Annotated[Attempt | None, Depends(attempt_of)]
_HEADER_BYTES = HEADER.encode()  # ASGI servers give header names lower-cased


class IdempotencyMiddleware:
    """What must happen before the unit: the key's syntax (400), and 409 while a request with
    the same key runs in this process. Routes declaring ``AttemptDep`` remember their answer
    in their own transaction; a POST route that does not yet (in another service) gets the
    older best effort: its answer remembered after its effect (a crash in between lets a
    retry run it again), never a claim that could block retries."""

    def __init__(self, app: ASGIApp, engine: Engine, routes: list[BaseRoute] | None = None) -> None:
        self.app = app
        self.engine = engine
        self.routes = routes or []
        self.running: set[tuple[str, str]] = set()

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
        held = (key_scope(scope["path"], headers.get("authorization", "")), key)
        if held in self.running:
            await problem_response(
                409,
                "idempotency-key-in-flight",
                "Request in flight",
                "A request with this Idempotency-Key is still being processed; retry later.",
            )(scope, receive, send)
            return
        self.running.add(held)
        try:
            if self._remembers_itself(scope):
                await self.app(scope, receive, send)
            else:
                await self._remember_after(scope, receive, send, held)
        finally:
            self.running.discard(held)

    def _remembers_itself(self, scope: Scope) -> bool:
        for route in flat_routes(self.routes):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return any(getattr(d, "call", None) is attempt_of for d in _dependencies(route))
        return True  # no route: a 404 or 405 is not remembered

    async def _remember_after(
        self, scope: Scope, receive: Receive, send: Send, held: tuple[str, str]
    ) -> None:
        body = await _read_body(receive)
        attempt = Attempt(held[0], held[1], digest(body))
        replayed = await anyio.to_thread.run_sync(_replay, self.engine, attempt)
        if replayed is not None:
            await replayed.response()(scope, _replay_body(body), send)
            return
        status, content_type, chunks = 500, "application/json", []

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

        await self.app(scope, _replay_body(body), capture)
        if status < 500:  # a server error is not an answer worth replaying
            answer = Answer(status, b"".join(chunks), content_type)
            await anyio.to_thread.run_sync(_remember, self.engine, attempt, answer)


def flat_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes as matched: FastAPI keeps an included router's routes inside it."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from flat_routes(candidates())
        else:
            yield route


def _dependencies(route: BaseRoute) -> list[object]:
    dependant = getattr(route, "dependant", None)
    return list(dependant.dependencies) if dependant is not None else []


def _store(session: Session, attempt: Attempt, answer: Answer) -> None:
    remember_in(
        session,
        attempt.scope,
        attempt.key,
        attempt.request_hash,
        answer.status,
        answer.content_type,
        answer.body,
    )


def _replay(engine: Engine, attempt: Attempt) -> Answer | None:
    with Session(engine) as session, session.begin():
        return replay_in(session, attempt)


def _remember(engine: Engine, attempt: Attempt, answer: Answer) -> None:
    try:
        with Session(engine) as session, session.begin():
            _store(session, attempt, answer)
    except IntegrityError:
        pass  # another process answered the same key first: its answer stands


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay_body(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
