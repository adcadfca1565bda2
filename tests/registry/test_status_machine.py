"""The enterprise status machine of DOMAIN.md §3, transition by transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from contracts import envelope, events
from registry import domain, services
from registry.__main__ import SPEC
from registry.policy import POLICIES
from servicekit.clock import clock
from servicekit.db import make_engine

import factories
from helpers import ADMIN, consume, service_client, sql

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
    """Status changes; history entries that are no change (refused, awaiting) are no event."""
    rows = sql(
        registry,
        "SELECT count(*) FROM status_changes WHERE uscc = :u AND outcome = 'applied'",
        u=uscc,
    )
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
                "official",
            )
            assert last["official_id"] == "break-glass"  # the tests' UCX_ADMIN_TOKEN


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
    exited_at = datetime(2026, 4, 1, 9, 30, tzinfo=UTC)
    with clock.frozen(exited_at):
        uscc = enterprise_in(registry, "exited")
    body = factories.enterprise(uscc)
    with clock.frozen(exited_at + timedelta(days=364)):  # policy v1: 365 days
        early = registry.post("/v1/enterprises", json=body)
    assert early.status_code == 409
    assert early.json()["type"].endswith("reapply-too-early")
    assert early.json()["reapply_from"] == "2027-04-01T09:30:00+00:00"
    with clock.frozen(exited_at + timedelta(days=365)):
        assert registry.post("/v1/enterprises", json=body).json()["status"] == "applied"


def assessed(
    uscc: str,
    action: str,
    at: datetime | None = None,
    tier: str = "warning",
    exit_rule: str | None = None,
) -> envelope.CloudEvent:
    return envelope.new_event(
        events.EnterpriseAssessed(
            enterprise_uscc=uscc,
            score=55.0,
            tier=tier,
            components={},
            recommended_action=action,
            causes=[],
            policy_version="v1",
            assessed_at=at or datetime.now(UTC) + timedelta(seconds=5),
            exit_rule=exit_rule,
        ),
        source="ucx/scoring",
    )


def deliver(registry: TestClient, event: envelope.CloudEvent) -> None:
    """As the registry's worker applies it (inbox, handler, one transaction)."""
    consume(SPEC, registry.app.state.settings, event)  # type: ignore[attr-defined]


def last_entry(registry: TestClient, uscc: str) -> dict[str, object]:
    entry: dict[str, object] = registry.get(f"/v1/enterprises/{uscc}/history").json()[-1]
    return entry


def test_assessments_drive_warn_suspend_and_exit_and_lift_a_warning(registry: TestClient) -> None:
    uscc = enterprise_in(registry, "admitted")
    later = datetime.now(UTC) + timedelta(seconds=5)
    steps = [
        ("warn", "warned"),
        ("reinstate", "admitted"),  # a warning is lifted by itself (DOMAIN.md §3)
        ("suspend", "suspended"),
        ("exit", "exited"),
    ]
    for i, (action, status) in enumerate(steps):
        event = assessed(uscc, action, later + timedelta(seconds=i))
        deliver(registry, event)
        last = last_entry(registry, uscc)
        assert (last["to_status"], last["actor"], last["cause"]) == (status, "policy", event.id)
        assert (last["outcome"], last["policy_version"]) == ("applied", "v1")


def test_a_manual_decision_wins_over_an_assessment_of_the_same_moment(registry: TestClient) -> None:
    uscc = enterprise_in(registry, "admitted")
    assessment_time = datetime.now(UTC) - timedelta(seconds=1)
    decide(registry, uscc, "warn")  # the admin acts after the assessment's moment
    before = events_of(registry, uscc)
    event = assessed(uscc, "suspend", assessment_time)
    deliver(registry, event)
    assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "warned"
    assert events_of(registry, uscc) == before
    last = last_entry(registry, uscc)
    assert (last["outcome"], last["cause"], last["event_id"]) == ("refused", event.id, None)
    assert "before the regulator's decision" in str(last["reason"])


def test_a_recommendation_the_machine_refuses_is_recorded_with_why_and_changes_nothing(
    registry: TestClient,
) -> None:
    uscc = enterprise_in(registry, "applied")
    before = events_of(registry, uscc)
    event = assessed(uscc, "suspend")
    deliver(registry, event)
    assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "applied"
    assert events_of(registry, uscc) == before  # no status-changed event
    last = last_entry(registry, uscc)
    assert last["outcome"] == "refused"
    assert str(last["reason"]).startswith(
        "recommendation refused: suspend not allowed from applied"
    )
    assert (last["from_status"], last["to_status"], last["actor"]) == (
        "applied",
        "applied",
        "policy",
    )
    assert (last["cause"], last["policy_version"]) == (event.id, "v1")


# -- issue 13 item 8: exits that cannot be escaped, refusals never dropped, reinstatement by
# the regulator --------------------------------------------------------------------------------


def test_an_exit_recommended_while_expired_is_applied_and_a_renewal_cannot_escape_it(
    registry: TestClient,
) -> None:
    uscc = enterprise_in(registry, "expired")
    event = assessed(uscc, "exit", tier="exit")
    deliver(registry, event)
    last = last_entry(registry, uscc)
    assert (last["from_status"], last["to_status"], last["actor"]) == (
        "expired",
        "exited",
        "policy",
    )
    assert last["cause"] == event.id
    renew = decide(registry, uscc, "renew")
    assert renew.status_code == 409  # type: ignore[attr-defined]
    assert renew.json()["current_status"] == "exited"  # type: ignore[attr-defined]


def test_a_renewal_decided_after_the_exit_was_assessed_does_not_overrule_it(
    registry: TestClient,
) -> None:
    uscc = enterprise_in(registry, "expired")
    event = assessed(uscc, "exit", at=datetime.now(UTC), tier="exit")  # after the approval
    assert decide(registry, uscc, "renew").json()["status"] == "admitted"  # type: ignore[attr-defined]
    deliver(registry, event)  # the assessment arrives after the renewal (Kafka lag)
    assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "exited"


@pytest.mark.parametrize(
    "status", ["applied", "admitted", "warned", "suspended", "rejected", "expired"]
)
def test_an_immediate_exit_applies_from_every_status_but_exited(
    registry: TestClient, status: str
) -> None:
    uscc = enterprise_in(registry, status)
    event = assessed(uscc, "exit", tier="exit", exit_rule="forged_inspection")
    deliver(registry, event)
    last = last_entry(registry, uscc)
    assert (last["from_status"], last["to_status"], last["outcome"]) == (
        status,
        "exited",
        "applied",
    )
    assert "exit rule forged_inspection" in str(last["reason"])


def test_an_immediate_exit_wins_over_a_later_decision_of_the_regulator(
    registry: TestClient,
) -> None:
    uscc = enterprise_in(registry, "suspended")
    event = assessed(
        uscc, "exit", at=datetime.now(UTC) - timedelta(seconds=2), exit_rule="forged_inspection"
    )
    decide(registry, uscc, "reinstate")
    deliver(registry, event)
    assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "exited"


def test_an_exit_without_an_immediate_rule_is_refused_from_applied_and_from_exited(
    registry: TestClient,
) -> None:
    for status in ("applied", "exited"):
        uscc = enterprise_in(registry, status)
        before = events_of(registry, uscc)
        deliver(registry, assessed(uscc, "exit", tier="exit"))
        assert events_of(registry, uscc) == before
        last = last_entry(registry, uscc)
        assert (last["outcome"], last["reason"]) == (
            "refused",
            f"recommendation refused: exit not allowed from {status} (assessment: score 55.0,"
            " tier exit)",
        )


def history_outcomes(registry: TestClient, uscc: str) -> list[tuple[str, str]]:
    return [
        (e["action"], e["outcome"])
        for e in registry.get(f"/v1/enterprises/{uscc}/history").json()
        if e["actor"] == "policy"
    ]


def test_a_refusal_is_recorded_once_per_recommendation_and_status_not_per_assessment(
    registry: TestClient,
) -> None:
    """Scoring re-assesses on every event: the history records a refused recommendation when
    the recommendation or the status changes, not on each repetition (or "none" between)."""
    uscc = enterprise_in(registry, "suspended")
    deliver(registry, assessed(uscc, "warn"))
    deliver(registry, assessed(uscc, "warn"))
    deliver(registry, assessed(uscc, "none"))
    deliver(registry, assessed(uscc, "warn"))
    assert history_outcomes(registry, uscc) == [("warn", "refused")]
    deliver(registry, assessed(uscc, "reinstate", tier="good"))
    deliver(registry, assessed(uscc, "warn"))  # the recommendation changed: recorded again
    assert history_outcomes(registry, uscc) == [
        ("warn", "refused"),
        ("reinstate", "awaiting_regulator"),
        ("warn", "refused"),
    ]
    decide(registry, uscc, "exit")  # a status change: the next refusal is news again
    deliver(registry, assessed(uscc, "warn"))
    assert history_outcomes(registry, uscc)[-1] == ("warn", "refused")
    assert len(history_outcomes(registry, uscc)) == 4


def review_list(registry: TestClient, limit: int = 50) -> list[str]:
    """Every page of the regulator's review list, following the cursor."""
    seen: list[str] = []
    cursor = None
    while True:
        params = {
            "recommended": "reinstate",
            "limit": limit,
            **({"cursor": cursor} if cursor else {}),
        }
        page = registry.get("/v1/enterprises", params=params, headers=ADMIN)
        assert page.status_code == 200, page.text
        seen += [e["uscc"] for e in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen


def test_reinstatement_from_suspended_waits_for_the_regulator_in_a_review_list(
    registry: TestClient,
) -> None:
    recovered = sorted(enterprise_in(registry, "suspended") for _ in range(3))
    still_bad = enterprise_in(registry, "suspended")
    for uscc in recovered:
        event = assessed(uscc, "reinstate", tier="good")
        deliver(registry, event)
        assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "suspended"
        last = last_entry(registry, uscc)
        assert (last["action"], last["outcome"], last["cause"]) == (
            "reinstate",
            "awaiting_regulator",
            event.id,
        )
        assert last["policy_version"] == "v1"
        assert registry.get(f"/v1/enterprises/{uscc}").json()["recommended"] == "reinstate"
    assert review_list(registry, limit=2) == recovered  # two pages
    assert still_bad not in review_list(registry)
    unauthorised = registry.get("/v1/enterprises", params={"recommended": "reinstate"})
    assert unauthorised.status_code == 401
    assert unauthorised.headers["content-type"] == "application/problem+json"
    assert (
        registry.get("/v1/enterprises", params={"recommended": "warn"}, headers=ADMIN).status_code
        == 422
    )

    first, second, third = recovered
    deliver(registry, assessed(first, "none", tier="good"))  # "keep the current decision"
    assert first in review_list(registry)
    assert decide(registry, first, "reinstate").json()["status"] == "admitted"  # type: ignore[attr-defined]
    decide(registry, second, "exit")  # the regulator decides otherwise
    deliver(registry, assessed(third, "suspend", tier="suspension"))  # no longer recommended
    assert review_list(registry) == []
    assert registry.get(f"/v1/enterprises/{third}").json()["status"] == "suspended"


def test_the_policy_file_may_switch_automatic_reinstatement_back_on(
    database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "v1-auto.yaml"
    policy.write_text(
        (POLICIES / "v1.yaml")
        .read_text()
        .replace("version: v1", "version: v1-auto")
        .replace("auto_reinstate: false", "auto_reinstate: true")
    )
    for registry, _settings in service_client(SPEC, database_url, policy_path=policy):
        uscc = enterprise_in(registry, "suspended")
        event = assessed(uscc, "reinstate", tier="good")
        deliver(registry, event)
        last = last_entry(registry, uscc)
        assert (last["from_status"], last["to_status"], last["actor"]) == (
            "suspended",
            "admitted",
            "policy",
        )
        assert (last["outcome"], last["policy_version"]) == ("applied", "v1-auto")
        assert review_list(registry) == []
