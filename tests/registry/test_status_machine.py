"""The enterprise status machine of DOMAIN.md §3, transition by transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from contracts import envelope, events
from registry import domain, services
from servicekit.db import make_engine

import factories
from helpers import ADMIN, sql

ACTIONS = ["approve", "reject", "renew", "warn", "suspend", "reinstate", "exit"]
PATHS = {  # how an enterprise gets into each status through the API
    "applied": [],
    "admitted": ["approve"],
    "warned": ["approve", "warn"],
    "suspended": ["approve", "suspend"],
    "exited": ["approve", "exit"],
    "rejected": ["reject"],
    "expired": ["approve", "<lapse>"],
}


def decide(registry: TestClient, uscc: str, action: str) -> object:
    return registry.post(
        f"/v1/enterprises/{uscc}/decisions",
        headers=ADMIN,
        json={"action": action, "reason": f"{action} per inspection report"},
    )


def enterprise_in(registry: TestClient, status: str) -> str:
    body = factories.enterprise()
    assert registry.post("/v1/enterprises", json=body).status_code == 201
    for step in PATHS[status]:
        if step == "<lapse>":  # a year passes without renewal
            sql(
                registry,
                "UPDATE enterprises SET admission_valid_until = :d WHERE uscc = :u",
                d=(datetime.now(UTC) - timedelta(days=1)).date(),
                u=body["uscc"],
            )
        else:
            assert decide(registry, body["uscc"], step).status_code == 200  # type: ignore[attr-defined]
    assert registry.get(f"/v1/enterprises/{body['uscc']}").json()["status"] == status
    return str(body["uscc"])


def events_of(registry: TestClient, uscc: str) -> int:
    rows = sql(registry, "SELECT count(*) FROM status_changes WHERE uscc = :u", u=uscc)
    outbox = sql(registry, "SELECT count(*) FROM outbox WHERE key = :u", u=uscc)
    assert rows[0][0] == outbox[0][0]  # every change is an event, and only changes are
    return int(rows[0][0])


@pytest.mark.parametrize("status", list(PATHS))
def test_every_action_from_every_status(registry: TestClient, status: str) -> None:
    for action in ACTIONS:
        uscc = enterprise_in(registry, status)
        before = events_of(registry, uscc)
        r = decide(registry, uscc, action)
        target = domain.TRANSITIONS[action].get(status)
        if target is None:
            assert r.status_code == 409, (status, action)  # type: ignore[attr-defined]
            assert r.json()["current_status"] == status  # type: ignore[attr-defined]
            assert r.json()["allowed_actions"] == domain.allowed_actions(status)  # type: ignore[attr-defined]
            assert events_of(registry, uscc) == before
        else:
            assert r.status_code == 200, (status, action, r.text)  # type: ignore[attr-defined]
            assert r.json()["status"] == target  # type: ignore[attr-defined]
            assert events_of(registry, uscc) == before + 1
            last = registry.get(f"/v1/enterprises/{uscc}/history").json()[-1]
            assert (last["from_status"], last["to_status"], last["actor"]) == (
                status,
                target,
                "admin",
            )


def test_admission_expires_by_itself_after_a_year_and_is_emitted(registry: TestClient) -> None:
    uscc = enterprise_in(registry, "admitted")
    sql(
        registry,
        "UPDATE enterprises SET admission_valid_until = :d WHERE uscc = :u",
        d=(datetime.now(UTC) - timedelta(days=1)).date(),
        u=uscc,
    )
    engine = make_engine(registry.app.state.settings.database_url)  # type: ignore[attr-defined]
    with Session(engine) as session, session.begin():  # the worker's timer
        assert services.expire_overdue(session, datetime.now(UTC)) == 1
    engine.dispose()
    last = registry.get(f"/v1/enterprises/{uscc}/history").json()[-1]
    assert (last["to_status"], last["actor"]) == ("expired", "system")
    r = registry.post(
        "/v1/enterprises/" + uscc + "/decisions",
        headers=ADMIN,
        json={"action": "renew", "reason": "annual review passed"},
    )
    assert r.json()["status"] == "admitted"
    assert r.json()["admission_valid_until"] > datetime.now(UTC).date().isoformat()


def test_an_exited_enterprise_may_reapply_only_after_twelve_months(registry: TestClient) -> None:
    uscc = enterprise_in(registry, "exited")
    body = factories.enterprise(uscc)
    early = registry.post("/v1/enterprises", json=body)
    assert early.status_code == 409
    assert early.json()["type"].endswith("reapply-too-early")
    sql(
        registry,
        "UPDATE status_changes SET changed_at = :t WHERE uscc = :u AND to_status = 'exited'",
        t=datetime.now(UTC) - timedelta(days=366),
        u=uscc,
    )
    assert registry.post("/v1/enterprises", json=body).json()["status"] == "applied"


def assessed(uscc: str, action: str, at: datetime, tier: str = "warning") -> envelope.CloudEvent:
    return envelope.new_event(
        events.EnterpriseAssessed(
            enterprise_uscc=uscc,
            score=55.0,
            tier=tier,
            components={},
            recommended_action=action,
            causes=[],
            policy_version="v1",
            assessed_at=at,
        ),
        source="ucx/scoring",
    )


def deliver(registry: TestClient, event: envelope.CloudEvent) -> None:
    engine = make_engine(registry.app.state.settings.database_url)  # type: ignore[attr-defined]
    with Session(engine) as session, session.begin():
        services.apply_assessment(session, event)
    engine.dispose()


def test_assessments_drive_warn_suspend_reinstate_and_exit(registry: TestClient) -> None:
    uscc = enterprise_in(registry, "admitted")
    later = datetime.now(UTC) + timedelta(seconds=5)
    steps = [
        ("warn", "warned"),
        ("suspend", "suspended"),
        ("reinstate", "admitted"),
        ("exit", "exited"),
    ]
    for i, (action, status) in enumerate(steps):
        event = assessed(uscc, action, later + timedelta(seconds=i))
        deliver(registry, event)
        last = registry.get(f"/v1/enterprises/{uscc}/history").json()[-1]
        assert (last["to_status"], last["actor"], last["cause"]) == (status, "policy", event.id)


def test_a_manual_decision_wins_over_an_assessment_of_the_same_moment(registry: TestClient) -> None:
    uscc = enterprise_in(registry, "admitted")
    assessment_time = datetime.now(UTC) - timedelta(seconds=1)
    decide(registry, uscc, "warn")  # the admin acts after the assessment's moment
    before = events_of(registry, uscc)
    deliver(registry, assessed(uscc, "suspend", assessment_time))
    assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "warned"
    assert events_of(registry, uscc) == before


def test_a_recommendation_the_machine_does_not_allow_changes_nothing(registry: TestClient) -> None:
    uscc = enterprise_in(registry, "applied")
    deliver(registry, assessed(uscc, "suspend", datetime.now(UTC) + timedelta(seconds=5)))
    assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "applied"
