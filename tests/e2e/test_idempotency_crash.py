"""A registry api killed (SIGKILL) after its registration committed and before it answered:
the retry with the same Idempotency-Key and body gets the first answer, and the vehicle exists
once. The process is real (``python -m registry api`` on a free port); a test-only env hook
holds the writer's answers after each commit, so the kill lands in exactly that window."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.__main__ import SPEC
from servicekit import migrate
from servicekit.ports import free_port

import factories
from helpers import ADMIN_TOKEN, bearer
from stack_support import admitted_enterprise

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def registry_api(database_url: str, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "registry", "api"],
        cwd=ROOT,
        env={
            **os.environ,
            "REGISTRY_DATABASE_URL": database_url,
            "REGISTRY_PORT": str(port),
            "UCX_ADMIN_TOKEN": ADMIN_TOKEN,
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: _healthy(url), "the api to start")
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def until(check: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def rows(database_url: str, statement: str, **params: Any) -> list[Any]:
    from sqlalchemy import create_engine, text

    from servicekit.db import normalise_url

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(statement), params))
    finally:
        engine.dispose()


@pytest.fixture
def database(database_url: str) -> str:
    migrate.upgrade(SPEC.migrations, database_url)
    return database_url


def test_a_registration_killed_after_its_commit_is_answered_by_the_retry(database: str) -> None:
    vehicle: dict[str, Any] = {}
    headers: dict[str, str] = {}
    with registry_api(database, UCX_TEST_PAUSE_AFTER_COMMIT_S="60") as (url, process):
        with httpx.Client(base_url=url) as registry:
            uscc, key = admitted_enterprise(registry)
        vehicle = factories.vehicle(uscc)
        headers = {**bearer(key), "Idempotency-Key": "3f9c2a71-xm-0001"}
        with pytest.raises(httpx.ReadTimeout):  # committed, then held: no answer comes
            httpx.post(f"{url}/v1/vehicles", json=vehicle, headers=headers, timeout=0.1)
        until(
            lambda: rows(database, "SELECT status_code FROM idempotency_keys") == [(201,)],
            "the registration and its answer to commit",
        )
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert rows(database, "SELECT vin FROM vehicles") == [(vehicle["vin"],)]
    [(remembered,)] = rows(database, "SELECT body FROM idempotency_keys")

    with registry_api(database) as (url, _process):
        retried = httpx.post(f"{url}/v1/vehicles", json=vehicle, headers=headers)
        assert retried.status_code == 201, retried.text
        assert retried.headers["idempotent-replayed"] == "true"
        assert retried.content == bytes(remembered)
        assert retried.json()["vin"] == vehicle["vin"]
        reused = httpx.post(
            f"{url}/v1/vehicles",
            json=factories.vehicle(vehicle["enterprise_uscc"]),
            headers=headers,
        )
        assert reused.status_code == 422
        assert reused.json()["type"].endswith("/idempotency-key-reused")
    assert rows(database, "SELECT count(*) FROM vehicles") == [(1,)]
    registered = "SELECT count(*) FROM outbox WHERE topic = 'vehicle.registered.v1'"
    assert rows(database, registered) == [(1,)]
