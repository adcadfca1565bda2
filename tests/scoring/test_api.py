"""The scoring API over HTTP, on events applied by the worker's own batch step."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient
from scoring_events import complaint, declared, exported, forged, inspected, registered

from scoring import policy
from scoring import rescore as rescoring
from scoring.__main__ import SPEC
from scoring.settings import POLICIES, Settings
from servicekit.db import make_engine
from servicekit.settings import BaseServiceSettings

import factories
from helpers import ADMIN, consume, service_client, sql

Client = tuple[TestClient, BaseServiceSettings]


@pytest.fixture
def scoring(database_url: str) -> Iterator[Client]:
    yield from service_client(SPEC, database_url)


def enterprise_with(
    client: Client, passes: int = 12, fails: int = 0, exports: int = 1, division: str = "350100"
) -> str:
    uscc = factories.uscc(division)
    batch = [registered(uscc) for _ in range(passes + fails)]
    batch += [inspected(uscc) for _ in range(passes)] + [exported(uscc) for _ in range(exports)]
    batch += [inspected(uscc, "fail") for _ in range(fails)]
    consume(SPEC, client[1], *batch)
    return uscc


def test_an_unknown_enterprise_is_a_problem(scoring: Client) -> None:
    answer = scoring[0].get(f"/v1/enterprises/{factories.uscc()}/assessment")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_assessment_lists_components_window_policy_and_causes(scoring: Client) -> None:
    client, _ = scoring
    uscc = enterprise_with(scoring, passes=12, fails=0, exports=1)
    body = client.get(f"/v1/enterprises/{uscc}/assessment").json()
    # policy v2: quality 30, integrity 25, activity 5; nothing declared: gate compliance at the
    # prior 0.9 (18); one export: after-sales (1 * 1 + 10 * 0.9) / 11 of 20 (18.18)
    assert body["score"] == 96.18 and body["tier"] == "good"
    assert set(body["components"]) == {
        "quality", "integrity", "gate_compliance", "after_sales", "activity",
    }  # fmt: skip
    assert body["components"]["quality"] == {
        "value": 1.0, "weight": 30.0, "observed_rate": 0.0, "numerator": 0.0, "denominator": 12.0,
    }  # fmt: skip
    assert body["vehicles"] == 12 and body["exports"] == 1 and body["events_counted"] == 25
    assert body["policy_version"] == "v2"
    assert date.fromisoformat(body["window"]["to"]) == datetime.now(UTC).date()
    assert body["causes"] and body["causes_by_component"]["quality"]


def test_history_pages_through_every_emitted_change(scoring: Client) -> None:
    client, settings = scoring
    uscc = enterprise_with(scoring)
    for _ in range(3):  # three more batches, each moving the score down
        consume(SPEC, settings, registered(uscc), inspected(uscc, "fail"))
    changes: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = client.get(f"/v1/enterprises/{uscc}/assessment/history", params=params).json()
        changes += page["items"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(changes) == 4
    assert changes[0]["previous_tier"] is None and changes[0]["tier"] == "good"
    assert [c["score"] for c in changes] == sorted((c["score"] for c in changes), reverse=True)
    assert client.get(f"/v1/enterprises/{uscc}/assessment/history?cursor=%%%").status_code == 422


def test_explain_names_the_events_counted_and_what_would_move_each_component(
    scoring: Client,
) -> None:
    client, _ = scoring
    uscc = enterprise_with(scoring, passes=10, fails=2)
    body = client.get(f"/v1/enterprises/{uscc}/assessment/explain").json()
    quality = body["components"]["quality"]
    assert (quality["numerator"], quality["denominator"]) == (2, 12)
    assert len(quality["numerator_events"]) == 2 and len(quality["denominator_events"]) == 12
    assert quality["prior_applied"] is False
    moves = {m["if"]: m["score_change"] for m in quality["what_would_move_it"]}
    assert moves["one more first inspection passed"] > 0
    assert moves["one more first inspection failed"] < 0
    tier = body["tier"]
    assert tier == "warning" and body["tier_boundaries"] == {"down_below": 60.0, "up_at": 83.0}


def test_what_if_shows_the_tier_a_run_of_failures_would_cause_and_stores_nothing(
    scoring: Client,
) -> None:
    client, _ = scoring
    uscc = enterprise_with(scoring, passes=12)
    before = client.get(f"/v1/enterprises/{uscc}/assessment").json()
    fail = {
        "type": "vehicle.inspected",
        "data": {
            "inspection_id": "hypothetical", "vin": factories.vin(), "station_id": "s",
            "inspected_at": datetime.now(UTC).isoformat(), "odometer_km": 1, "verdict": "fail",
            "first_inspection": True, "items": [], "failed_items": ["BRAKES"],
        },
    }  # fmt: skip
    answer = client.post(f"/v1/enterprises/{uscc}/what-if", json={"events": [fail] * 4})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["current_tier"] == "good" and body["tier"] == "warning"
    assert body["recommended_action"] == "warn" and body["score_change"] < 0
    assert client.get(f"/v1/enterprises/{uscc}/assessment").json() == before
    bad = {"type": "vehicle.inspected", "data": {"verdict": "maybe"}}
    problem = client.post(f"/v1/enterprises/{uscc}/what-if", json={"events": [bad]})
    assert problem.status_code == 422
    assert any(e["field"].startswith("events.0.data.") for e in problem.json()["errors"])
    unknown = {"type": "vehicle.teleported", "data": {}}
    assert (
        client.post(f"/v1/enterprises/{uscc}/what-if", json={"events": [unknown]}).status_code
        == 422
    )


def test_rankings_and_percentiles(scoring: Client) -> None:
    client, _ = scoring
    best = enterprise_with(scoring, passes=20, exports=3, division="350100")
    middle = enterprise_with(scoring, passes=17, fails=3, exports=3, division="350100")
    worst = enterprise_with(scoring, passes=10, fails=10, exports=3, division="440300")
    page = client.get("/v1/rankings?limit=2").json()
    assert [r["uscc"] for r in page["items"]] == [best, middle]
    rest = client.get("/v1/rankings", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["uscc"] for r in rest["items"]] == [worst]
    assert [r["uscc"] for r in client.get("/v1/rankings?province=440300").json()["items"]] == [
        worst
    ]
    tier = client.get(f"/v1/enterprises/{worst}/assessment").json()["tier"]
    assert worst in [r["uscc"] for r in client.get(f"/v1/rankings?tier={tier}").json()["items"]]
    assert client.get("/v1/rankings?tier=excellent").status_code == 422
    top = client.get(f"/v1/enterprises/{best}/percentile").json()
    assert top["peers"] == 3 and top["percentile"] == pytest.approx(100 * 2.5 / 3, abs=0.1)
    assert "1-9 vehicles exported" in top["peer_group"]
    assert client.get(f"/v1/enterprises/{worst}/percentile").json()["percentile"] == pytest.approx(
        100 * 0.5 / 3, abs=0.1
    )


def test_the_ledger_verifies_and_shows_tampering(scoring: Client) -> None:
    client, _ = scoring
    uscc = enterprise_with(scoring)
    assert client.get("/v1/ledger/verify").status_code == 401
    body = client.get("/v1/ledger/verify", headers=ADMIN).json()
    assert body == {"ok": True, "entries_checked": 25, "broken_enterprises": []}
    sql(client, "UPDATE ledger SET data = :d WHERE seq = (SELECT MIN(seq) FROM ledger)", d="{}")
    body = client.get("/v1/ledger/verify", headers=ADMIN).json()
    assert body["ok"] is False and body["broken_enterprises"] == [uscc]


def run_jobs(settings: BaseServiceSettings) -> None:
    """What the worker's rescore timer does on a tick: the job waiting, to its end."""
    engine = make_engine(settings.database_url)
    try:
        assert isinstance(settings, Settings)
        rescoring.run_pending(engine, rescoring.Runner(settings, policy.load(settings.policy_path)))
    finally:
        engine.dispose()


def test_rescore_with_a_changed_policy_recomputes_from_the_ledger_and_emits_differences(
    database_url: str, tmp_path: Path
) -> None:
    clients = service_client(SPEC, database_url)
    client, settings = next(clients)
    changed_one = enterprise_with((client, settings), passes=10, fails=2)
    unchanged = enterprise_with((client, settings), passes=12)
    before = client.get(f"/v1/enterprises/{changed_one}/assessment").json()
    unchanged_before = client.get(f"/v1/enterprises/{unchanged}/assessment").json()
    assert client.post("/v1/rescore", json={}).status_code == 401

    stricter: dict[str, Any] = yaml.safe_load(settings.policy_path.read_text())  # type: ignore[attr-defined]
    stricter["version"] = "v2-strict"
    stricter["components"]["quality"]["tolerance"] = 0.10
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(stricter))
    emitted_before = sql(client, "SELECT COUNT(*) FROM outbox")[0][0]
    next(clients, None)
    strict_clients = service_client(SPEC, database_url, policy_path=path)
    strict, strict_settings = next(strict_clients)
    started = strict.post("/v1/rescore", json={}, headers=ADMIN)
    assert started.status_code == 202, started.text
    run_jobs(strict_settings)  # the worker's rescore timer
    job = strict.get(f"/v1/rescore/{started.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "done" and job["total"] == 2 and job["done"] == 2
    assert job["changed"] == 1 and job["policy_version"] == "v2-strict"
    after = strict.get(f"/v1/enterprises/{changed_one}/assessment").json()
    assert after["score"] < before["score"] and after["policy_version"] == "v2-strict"
    assert after["components"]["quality"]["value"] == 0.0  # 2 fails in 12: over 10 % now
    unchanged_after = strict.get(f"/v1/enterprises/{unchanged}/assessment").json()
    assert unchanged_after["score"] == unchanged_before["score"] == 96.18
    assessed = sql(strict, "SELECT COUNT(*) FROM outbox WHERE topic = 'enterprise.assessed.v1'")
    assert sql(strict, "SELECT COUNT(*) FROM outbox")[0][0] - emitted_before == 1
    assert assessed[0][0] >= 3
    one = strict.post("/v1/rescore", json={"uscc": unchanged}, headers=ADMIN).json()
    run_jobs(strict_settings)
    assert strict.get(f"/v1/rescore/{one['id']}", headers=ADMIN).json()["changed"] == 0
    assert (
        strict.post("/v1/rescore", json={"uscc": factories.uscc()}, headers=ADMIN).status_code
        == 404
    )
    next(strict_clients, None)


def assessed_events(client: TestClient, uscc: str) -> list[dict[str, Any]]:
    """The data of every enterprise.assessed the service wrote for ``uscc``, oldest first."""
    rows = sql(
        client,
        "SELECT value FROM outbox WHERE topic = 'enterprise.assessed.v1' AND key = :u ORDER BY id",
        u=uscc,
    )
    return [orjson.loads(bytes(value))["data"] for (value,) in rows]


def test_the_issue_example_warns_under_v1_and_not_under_v2(database_url: str) -> None:
    """11 registered vehicles, 2 first inspections, 1 failed: too little evidence to warn."""

    def example(client: Client) -> str:
        uscc = factories.uscc("440300")
        consume(SPEC, client[1], *[registered(uscc) for _ in range(11)], inspected(uscc))
        consume(SPEC, client[1], inspected(uscc, "fail"))
        return uscc

    v1_clients = service_client(SPEC, database_url, policy_path=POLICIES / "v1.yaml")
    v1 = next(v1_clients)
    under_v1 = example(v1)
    body = v1[0].get(f"/v1/enterprises/{under_v1}/assessment").json()
    assert (body["score"], body["tier"], body["policy_version"]) == (65.0, "warning", "v1")
    assert assessed_events(v1[0], under_v1)[-1]["recommended_action"] == "warn"
    next(v1_clients, None)

    v2_clients = service_client(SPEC, database_url)
    v2 = next(v2_clients)
    under_v2 = example(v2)
    body = v2[0].get(f"/v1/enterprises/{under_v2}/assessment").json()
    assert (body["score"], body["tier"], body["policy_version"]) == (83.5, "good", "v2")
    moves = [(e["tier"], e["recommended_action"]) for e in assessed_events(v2[0], under_v2)]
    assert moves == [("good", "none"), ("good", "none")]  # one per batch, no warning
    explained = v2[0].get(f"/v1/enterprises/{under_v2}/assessment/explain").json()
    applied = {name: c["prior_applied"] for name, c in explained["components"].items()}
    assert applied == {
        "quality": True, "integrity": False, "gate_compliance": True, "after_sales": True,
        "activity": False,
    }  # fmt: skip
    next(v2_clients, None)


def test_every_refusal_counts_in_its_component(scoring: Client) -> None:
    client, settings = scoring
    uscc = enterprise_with(scoring, passes=12)
    consume(
        SPEC, settings, declared(uscc, "licence_missing"), declared(uscc, "vehicle_unknown"),
        declared(uscc, "after_sales_letter_missing", "certificate_revoked"),
        declared(uscc, "a_reason_from_2027"), declared(uscc),
    )  # fmt: skip
    components = client.get(f"/v1/enterprises/{uscc}/assessment").json()["components"]
    assert components["integrity"]["numerator"] == 1  # vehicle_unknown
    # licence, letter + revoked (one refusal), and the code v2 does not know yet
    assert (
        components["gate_compliance"]["numerator"],
        components["gate_compliance"]["denominator"],
    ) == (3, 5)


def test_enterprise_assessed_names_the_immediate_exit_rule_that_fired(scoring: Client) -> None:
    client, settings = scoring
    stamped = enterprise_with(scoring, passes=12)
    consume(SPEC, settings, forged(stamped))
    last = assessed_events(client, stamped)[-1]
    assert (last["tier"], last["recommended_action"]) == ("exit", "exit")
    assert last["exit_rule"] == "forged_inspection"
    assert assessed_events(client, stamped)[0]["exit_rule"] is None

    no_parts = enterprise_with(scoring, passes=12, exports=20)
    consume(SPEC, settings, complaint(no_parts, "no_spare_parts"), complaint(no_parts, "rust"))
    consume(SPEC, settings, complaint(no_parts, "warranty_refused"))
    before = client.get(f"/v1/enterprises/{no_parts}/assessment").json()
    assert before["tier"] != "exit" and before["exit_rules"] == []
    consume(SPEC, settings, complaint(no_parts, "no_spare_parts"))
    body = client.get(f"/v1/enterprises/{no_parts}/assessment").json()
    assert body["tier"] == "exit" and body["raw_tier"] != "exit"
    assert [r["rule"] for r in body["exit_rules"]] == ["exit_trigger_complaints_in_window"]
    last = assessed_events(client, no_parts)[-1]
    assert (last["recommended_action"], last["exit_rule"]) == (
        "exit", "exit_trigger_complaints_in_window",
    )  # fmt: skip
