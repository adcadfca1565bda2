"""Crashes and outages on the running stack: nothing acknowledged is lost or doubled."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

import factories
from helpers import ADMIN, bearer
from stack_support import RunningStack, admitted_enterprise, wait_for


def ledger_registrations(stack: RunningStack, uscc: str) -> tuple[int, int]:
    ((total, distinct),) = stack.rows(
        "scoring",
        "SELECT count(*), count(DISTINCT event_id) FROM ledger "
        "WHERE uscc = ? AND type = 'vehicle.registered'",
        uscc,
    )
    return int(total), int(distinct)


def register_many(
    stack: RunningStack,
    uscc: str,
    key: str,
    n: int,
    on_progress: object = None,
    pace_s: float = 0.0,
) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        with httpx.Client(base_url=stack.url("registry"), timeout=30) as client:
            r = client.post("/v1/vehicles", json=factories.vehicle(uscc), headers=bearer(key))
        with lock:
            statuses.append(r.status_code)
            if on_progress is not None:
                on_progress(len(statuses))  # type: ignore[operator]
        if pace_s:
            time.sleep(pace_s)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(n)))
    return statuses


@pytest.mark.long  # a fault run: make test-reliability
def test_relay_sigkilled_mid_stream_loses_and_doubles_nothing(stack: RunningStack) -> None:
    registry = stack.client("registry")
    uscc, key = admitted_enterprise(registry)
    killed = threading.Event()

    def kill_at_300(done: int) -> None:
        if done >= 300 and not killed.is_set():
            killed.set()
            stack.stack.kill("registry.relay", signal.SIGKILL)
            stack.stack.start_process("registry.relay")

    statuses = register_many(stack, uscc, key, 1000, on_progress=kill_at_300)
    assert killed.is_set()
    assert statuses.count(201) == 1000
    wait_for(lambda: ledger_registrations(stack, uscc)[0] >= 1000, timeout_s=120)
    time.sleep(2)  # let any re-sent duplicates arrive: they must change nothing
    assert ledger_registrations(stack, uscc) == (1000, 1000)


OUTAGE_S = 60


def checks(answer: httpx.Response) -> dict[str, str]:
    return {c["name"]: c["status"] for c in answer.json()["checks"]}


def lag_and_backlog(stack: RunningStack) -> float:
    """Every worker's lag plus every relay's backlog (each process must answer)."""
    total = 0.0
    for name, proc in stack.stack.processes.items():
        assert proc.poll() is None, f"{name} exited with {proc.returncode}"
    for port in stack.ports.values():
        for process_port in (port + 100, port + 200):
            text = httpx.get(f"http://127.0.0.1:{process_port}/metrics", timeout=10).text
            for line in text.splitlines():
                if line.startswith(("ucx_consumer_lag{", "ucx_outbox_backlog ")):
                    total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.long  # make test-reliability
def test_broker_outage_loses_nothing_and_the_outbox_refills_a_fresh_broker(
    stack: RunningStack,
) -> None:
    registry = stack.client("registry")
    uscc, key = admitted_enterprise(registry)
    wait_for(lambda: ledger_registrations(stack, uscc) == (0, 0))
    started = datetime.now(UTC)
    stopped_at: list[float] = []
    outage = threading.Thread(
        target=lambda: (time.sleep(2), stack.broker.stop(), stopped_at.append(time.monotonic()))
    )
    outage.start()
    statuses = register_many(stack, uscc, key, 200, pace_s=0.1)  # about 2.5 s of traffic
    outage.join()
    during = register_many(stack, uscc, key, 100)  # broker down: the API still accepts
    # readiness tells ops what is wrong: the api stays ready (the outbox absorbs the outage),
    # the relay and the worker are not ready, each naming the broker
    port = stack.ports["registry"]
    api = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert api.status_code == 200 and checks(api)["broker"] == "down"
    for process_port in (port + 200, port + 100):
        ready = httpx.get(f"http://127.0.0.1:{process_port}/readyz", timeout=10)
        assert ready.status_code == 503 and checks(ready)["broker"] == "down", ready.text
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at[0])))  # no broker meanwhile
    assert statuses.count(201) == 200 and during.count(201) == 100

    stack.broker.start()  # a fresh, empty broker on the same port
    for service in ("registry", "inspection", "customs", "scoring"):
        subprocess.run(
            [sys.executable, "-m", service, "replay", "--from", started.isoformat()],
            env=stack.stack.env,
            check=True,
            capture_output=True,
        )
    wait_for(lambda: ledger_registrations(stack, uscc)[0] >= 300, timeout_s=180)
    time.sleep(2)
    assert ledger_registrations(stack, uscc) == (300, 300)
    wait_for(lambda: lag_and_backlog(stack) == 0, timeout_s=60)  # every lag back to zero


@pytest.mark.long  # a fault run: make test-reliability
def test_customs_worker_killed_with_deliveries_queued_loses_and_doubles_nothing(
    stack: RunningStack,
) -> None:
    from customs_receiver import Receiver

    customs = stack.client("customs")
    with Receiver() as receiver:
        receiver.default = 503  # the partner is down at first
        r = customs.post(
            "/v1/subscriptions",
            headers=ADMIN,
            json={"url": receiver.url, "event_types": ["declaration.accepted"]},
        )
        receiver.secret = r.json()["secret"]
        subscription = r.json()["id"]
        ids = {
            customs.post(f"/v1/subscriptions/{subscription}/test", headers=ADMIN).json()[
                "webhook_id"
            ]
            for _ in range(20)
        }
        wait_for(lambda: len(set(receiver.received)) == 20)  # every one tried (and failed)
        stack.stack.kill("customs.worker", signal.SIGKILL)
        receiver.default = 200  # the partner recovers while our worker is down
        stack.stack.start_process("customs.worker")
        wait_for(lambda: set(receiver.verified) == ids, timeout_s=90)
        time.sleep(1)
        assert sorted(receiver.verified) == sorted(ids)  # each webhook-id accepted once
