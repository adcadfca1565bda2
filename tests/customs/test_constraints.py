"""Every primary-key and unique constraint of customs' tables, read from the models' metadata
(a new one fails ``test_every_constraint_is_accounted_for`` until it is added here), and
for each the input that would violate it: a final answer (a 4xx problem remembered for its
webhook-id, or a recorded decision), never a 500 and never an answer a broker would retry
forever. Constraints no partner input can reach say why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from customs_support import (
    Broker,
    Ready,
    deliver,
    departed,
    ready_vehicle,
    status_changed,
)
from fastapi.testclient import TestClient

from customs.models import Base
from customs.settings import Settings

import factories
from helpers import ADMIN, constraint_names, sql

Proof = Callable[[TestClient, Settings], None]


def final_problem(r: Any, status: int, type_suffix: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith(type_suffix)


def twice(broker: Broker, type_: str, data: dict[str, Any], msg_id: str) -> tuple[Any, Any]:
    """The message and the broker's retry of it (same webhook-id): the retry gets the first
    answer, so the first answer is final."""
    first = broker.send(type_, data, msg_id=msg_id)
    retry = broker.send(type_, data, msg_id=msg_id)
    assert (retry.status_code, retry.content) == (first.status_code, first.content)
    assert retry.headers["webhook-replayed"] == "true"
    return first, retry


def customs_code_twice(client: TestClient, _settings: Settings) -> None:
    body = {
        "name": "Xiamen Haitong",
        "customs_code": "3502980123",
        "enterprises": [factories.uscc()],
    }
    assert client.post("/v1/brokers", headers=ADMIN, json=body).status_code == 201
    final_problem(client.post("/v1/brokers", headers=ADMIN, json=body), 409, "broker-exists")


def enterprise_listed_twice(client: TestClient, _settings: Settings) -> None:
    uscc = factories.uscc()
    body = {"name": "Xiamen Haitong", "customs_code": "3502980124", "enterprises": [uscc, uscc]}
    assert client.post("/v1/brokers", headers=ADMIN, json=body).status_code == 201
    assert sql(client, "SELECT count(*) FROM broker_enterprises WHERE uscc = :u", u=uscc) == [(1,)]


def declaration_number_twice(client: TestClient, settings: Settings) -> None:
    ready = Ready.of(client, settings)
    lodging = ready.lodging()
    assert ready.broker.send("declaration.lodged", lodging).status_code == 202
    again, _retry = twice(ready.broker, "declaration.lodged", lodging, "msg_same_number_new_id")
    final_problem(again, 409, "declaration-exists")


def vin_lodged_while_open(client: TestClient, settings: Settings) -> None:
    """Not a problem but a recorded decision (a rejection is what the assessment must see);
    the race between two connections is test_gates_hold's two-lodgings test."""
    ready = Ready.of(client, settings)
    ready.broker.send("declaration.lodged", ready.lodging())
    second, _retry = twice(ready.broker, "declaration.lodged", ready.lodging(), "msg_open_vin")
    assert (second.status_code, second.json()["reasons"]) == (202, ["declaration_open"])


def vin_on_one_bill_twice(client: TestClient, settings: Settings) -> None:
    """No input reaches it: a VIN departs once (its export and its declaration's status are
    checked first, under the vehicle's row lock). The safety net every constraint has is shown
    on a state no input can make: an exported declaration of the VIN on the same B/L while
    the vehicle reads as not exported. The departure is a final 409, remembered."""
    ready = Ready.of(client, settings)
    no = ready.lodged_and_released()
    sql(
        client,
        "INSERT INTO declarations (declaration_no, vin, enterprise_uscc, broker_id, status, "
        "reasons, reason_details, port_of_loading, destination_country, declared_at, lodged_at, "
        "bill_of_lading) SELECT 'D-IMPOSSIBLE', vin, enterprise_uscc, broker_id, 'exported', "
        "reasons, reason_details, port_of_loading, destination_country, declared_at, lodged_at, "
        "'COSU6312458790' FROM declarations WHERE declaration_no = :no",
        no=no,
    )
    r, _retry = twice(ready.broker, "shipment.departed", departed(no), "msg_impossible_bl")
    final_problem(r, 409, "constraint-violated")
    assert "bill_of_lading" in r.json()["constraint"]  # as PostgreSQL and SQLite name it
    assert sql(client, "SELECT count(*) FROM known_vehicles WHERE exported") == [(0,)]


def webhook_id_twice(client: TestClient, settings: Settings) -> None:
    """A duplicate webhook-id replays the first answer (a concurrent duplicate is told
    ``webhook-in-flight`` until the first commits; then it gets the replay)."""
    ready = Ready.of(client, settings)
    twice(ready.broker, "declaration.lodged", ready.lodging(), "msg_once")


def projections_twice(client: TestClient, settings: Settings) -> None:
    """Kafka input, not partner input: projections are upserts keyed by VIN or USCC, so a second
    registration, inspection or status change of the same key applies (or is ignored)."""
    uscc = factories.uscc()
    vin, _cert = ready_vehicle(settings, uscc)
    ready_vehicle(settings, uscc, vin)  # the same VIN registered and inspected again
    deliver(settings, status_changed(uscc, "warned"), status_changed(uscc, "admitted", "warned"))
    assert sql(client, "SELECT count(*) FROM known_vehicles") == [(1,)]
    assert sql(client, "SELECT count(*) FROM latest_inspections") == [(1,)]
    assert sql(client, "SELECT status FROM enterprise_standing") == [("admitted",)]


SERVER_MADE = "no input reaches it: the key is made by the server (UUID or autoincrement)"
CONSTRAINTS: dict[str, Proof | str] = {
    "pk_brokers": SERVER_MADE,
    "uq_brokers_customs_code": customs_code_twice,
    "pk_broker_enterprises": enterprise_listed_twice,
    "pk_broker_secrets": SERVER_MADE,
    "pk_declarations": declaration_number_twice,
    "uq_declarations_open_vin": vin_lodged_while_open,
    "uq_declarations_bill_of_lading_vin": vin_on_one_bill_twice,
    "pk_refused_departures": SERVER_MADE,
    "pk_idempotency_keys": webhook_id_twice,
    "pk_enterprise_standing": projections_twice,
    "pk_known_vehicles": projections_twice,
    "pk_latest_inspections": projections_twice,
    "pk_inbox": "Kafka input, not partner input: the consumer skips an event id it recorded",
    "pk_outbox": SERVER_MADE,
    "uq_outbox_event_id": SERVER_MADE + " (event ids are UUIDv7)",
    "pk_subscriptions": SERVER_MADE,
    "pk_subscription_secrets": SERVER_MADE,
    "pk_deliveries": "derived from (subscription, event id); enqueue looks it up first, and "
    "an event is applied once (inbox)",
    "uq_deliveries_subscription_id": "(subscription, event id): as pk_deliveries",
    "pk_delivery_attempts": SERVER_MADE,
    "pk_audit_log": SERVER_MADE,
}


def test_every_constraint_is_accounted_for() -> None:
    assert constraint_names(Base.metadata) == set(CONSTRAINTS)


PROOFS = sorted({p.__name__: p for p in CONSTRAINTS.values() if callable(p)}.items())


@pytest.mark.parametrize("proof", [p for _name, p in PROOFS], ids=[n for n, _p in PROOFS])
def test_the_input_that_would_violate_a_constraint_gets_a_final_answer(
    customs: tuple[TestClient, Settings], proof: Proof
) -> None:
    client, settings = customs
    proof(client, settings)
