"""Idempotency-Key, on servicekit's own app and tables (no service needed): the answer is
remembered in the effect's own transaction, through the group-commit writer
(``Writer.run_idempotent``) and outside it (``answer_once``), and replayed to a retry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import APIRouter, Request, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Column, Engine, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

from servicekit import idempotency, tables, writer
from servicekit.clock import clock
from servicekit.db import new_metadata
from servicekit.http import WriterDep, answer_once, create_service_app
from servicekit.idempotency import Answer, AttemptDep, digest, key_scope
from servicekit.problems import Conflict, Problem
from servicekit.settings import BaseServiceSettings

metadata: MetaData = new_metadata()
tables.define(metadata)
notes = Table(
    "notes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("text", String(200), nullable=False),
)


class Note(BaseModel):
    id: str
    text: str


def _write(session: Session, note: Note) -> Note:
    """The effect: one row; a note saying ``refused`` is written, then refused (422)."""
    session.connection().execute(insert(notes), note.model_dump())
    if note.text == "refused":
        raise Problem("note-refused", "This note is refused.", status=422)
    return note


def _exists(note: Note) -> Conflict:
    return Conflict("note-exists", f"Note {note.id} exists.")


router = APIRouter(prefix="/v1")


@router.post("/notes", status_code=201, response_model=Note)
async def post_note(note: Note, writer: WriterDep, attempt: AttemptDep) -> Response:
    answer = await writer.run_idempotent(
        attempt,
        lambda s: _write(s, note),
        lambda n: Answer.of(n, 201),
        on_integrity_error=lambda _exc: _exists(note),
    )
    return answer.response()


@router.post("/own-notes", status_code=201, response_model=Note)
def post_own_note(note: Note, request: Request, attempt: AttemptDep) -> Response:
    """A POST whose service opens its own transaction."""

    def unit(session: Session) -> Answer:
        with session.begin():
            return Answer.of(_write(session, note), 201)

    return answer_once(request, attempt, unit)


@router.post("/plain-notes", status_code=201, response_model=Note)
def post_plain_note(note: Note, request: Request) -> Note:
    """A POST that does not declare the attempt: its answer is remembered after its effect."""
    with Session(request.app.state.engine) as session, session.begin():
        return _write(session, note)


@pytest.fixture
def engine(engine_with: Callable[[MetaData], Engine]) -> Engine:
    return engine_with(metadata)


def client_for(engine: Engine, **settings: Any) -> TestClient:
    config = BaseServiceSettings(database_url=engine.url.render_as_string(False), **settings)
    app = create_service_app(config, title="notes", routers=[router])
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with client_for(engine) as client:
        yield client


def count(engine: Engine, table: Table = notes) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def note(text: str = "call the Fuzhou station back") -> dict[str, str]:
    return {"id": f"n-{time.monotonic_ns()}", "text": text}


ROUTES = ["/v1/notes", "/v1/own-notes", "/v1/plain-notes"]
KEY = {"Idempotency-Key": "7d1e4a90-notes-0001"}


@pytest.mark.parametrize("path", ROUTES)
def test_a_retry_gets_the_first_answer_and_the_effect_happens_once(
    client: TestClient, engine: Engine, path: str
) -> None:
    body = note()
    first = client.post(path, json=body, headers=KEY)
    again = client.post(path, json=body, headers=KEY)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.content == first.content and again.json() == body
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count(engine) == 1


@pytest.mark.parametrize("path", ROUTES)
def test_the_same_key_with_another_body_is_422(
    client: TestClient, engine: Engine, path: str
) -> None:
    assert client.post(path, json=note(), headers=KEY).status_code == 201
    other = client.post(path, json=note(), headers=KEY)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert count(engine) == 1


def test_keys_are_scoped_by_caller(client: TestClient, engine: Engine) -> None:
    """Another caller's request under the same key is its own: judged, not replayed."""
    body = note()
    answers = [
        client.post("/v1/notes", json=body, headers={**KEY, "Authorization": caller})
        for caller in ("Bearer ucx_ent_alpha", "Bearer ucx_ent_beta")
    ]
    assert [r.status_code for r in answers] == [201, 409]  # the same note id: it exists
    assert "idempotent-replayed" not in answers[1].headers
    assert count(engine) == 1


@pytest.mark.parametrize("path", ["/v1/notes", "/v1/own-notes"])
def test_a_refusal_is_final_remembered_and_its_writes_rolled_back(
    client: TestClient, engine: Engine, path: str
) -> None:
    body = note("refused")
    first = client.post(path, json=body, headers=KEY)
    assert first.status_code == 422 and first.json()["type"].endswith("/note-refused")
    again = client.post(path, json=body, headers=KEY)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert count(engine) == 0
    assert count(engine, metadata.tables["idempotency_keys"]) == 1


def test_a_constraint_refusal_is_remembered(client: TestClient, engine: Engine) -> None:
    body = note()
    assert client.post("/v1/notes", json=body).status_code == 201
    duplicate = client.post("/v1/notes", json=body, headers=KEY)
    assert duplicate.status_code == 409
    replay = client.post("/v1/notes", json=body, headers=KEY)
    assert replay.status_code == 409 and replay.headers["idempotent-replayed"] == "true"
    assert count(engine) == 1


@pytest.mark.parametrize("path", ROUTES)
def test_a_claim_left_by_a_dead_process_never_blocks_a_retry(
    client: TestClient, engine: Engine, path: str
) -> None:
    """Before answers were remembered with their effect, a claim row (no answer) was written
    first; a process killed after it left the row behind. It is dropped, the retry runs."""
    body = note()
    raw = json.dumps(body).encode()
    with engine.begin() as conn:
        conn.execute(
            insert(metadata.tables["idempotency_keys"]),
            {
                "scope": key_scope(path, ""),
                "key": KEY["Idempotency-Key"],
                "request_hash": digest(raw),
                "created_at": datetime.now(UTC),
            },
        )
    r = client.post(path, content=raw, headers={**KEY, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert count(engine) == 1


def test_a_duplicate_while_the_first_runs_here_is_409_in_flight(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "_PAUSE_AFTER_COMMIT_S", 0.5)
    body = note()
    answers: list[int] = []

    def post() -> None:
        answers.append(client.post("/v1/notes", json=body, headers=KEY).status_code)

    first = threading.Thread(target=post)
    first.start()
    time.sleep(0.2)  # the first is committed and held
    duplicate = client.post("/v1/notes", json=body, headers=KEY)
    first.join()
    assert duplicate.status_code == 409
    assert duplicate.json()["type"].endswith("/idempotency-key-in-flight")
    assert answers == [201]
    monkeypatch.setattr(writer, "_PAUSE_AFTER_COMMIT_S", 0)
    replay = client.post("/v1/notes", json=body, headers=KEY)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_a_key_out_of_bounds_is_400(client: TestClient, engine: Engine, key: str) -> None:
    r = client.post("/v1/notes", json=note(), headers={"Idempotency-Key": key})
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-idempotency-key")
    assert count(engine) == 0


def test_pruning_forgets_answers_older_than_their_retention_only(
    client: TestClient, engine: Engine
) -> None:
    old, recent = note(), note()
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with clock.frozen(start):
        client.post("/v1/notes", json=old, headers={"Idempotency-Key": "old"})
    with clock.frozen(start + timedelta(hours=23)):
        client.post("/v1/notes", json=recent, headers={"Idempotency-Key": "recent"})
    with clock.frozen(start + timedelta(hours=24, minutes=1)):
        assert idempotency.prune(engine, timedelta(hours=24)) == 1
    keys = metadata.tables["idempotency_keys"]
    with engine.connect() as conn:
        assert conn.execute(select(keys.c.key)).scalars().all() == ["recent"]
    # the forgotten key runs as a new request: the note exists already, so 409
    again = client.post("/v1/notes", json=old, headers={"Idempotency-Key": "old"})
    assert again.status_code == 409 and "idempotent-replayed" not in again.headers


def test_the_api_prunes_on_a_timer(engine: Engine) -> None:
    with client_for(engine, idempotency_prune_interval_s=0.05) as client:
        with clock.frozen(datetime.now(UTC) - timedelta(hours=25)):
            client.post("/v1/notes", json=note(), headers={"Idempotency-Key": "yesterday"})
        client.post("/v1/notes", json=note(), headers={"Idempotency-Key": "today"})
        keys = metadata.tables["idempotency_keys"]
        deadline = time.monotonic() + 5
        while count(engine, keys) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        with engine.connect() as conn:
            assert conn.execute(select(keys.c.key)).scalars().all() == ["today"]
