"""The assessment policies one rule at a time, with small event histories on a controllable
clock: each entry happens at ``at`` and is folded then (its ``recorded_at``). First policy v1
(DOMAIN.md §6), which stays loadable and replays unchanged; then what v2 changed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scoring import domain, policy
from scoring.settings import POLICIES, Settings

V1 = policy.load(POLICIES / "v1.yaml")
V2 = policy.load(POLICIES / "v2.yaml")
POLICY = V1  # the rules below are v1's
USCC = "91350200MA2Y0000X1"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_ids = itertools.count()


def approx(expected: float) -> Any:
    return pytest.approx(expected, abs=1e-5)  # component values are rounded to 6 places


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def entry(type_: str, at: datetime, **data: Any) -> domain.Entry:
    return domain.Entry(f"e{next(_ids):05d}", type_, USCC, at, data, at)


def registered(at: datetime, n: int = 1) -> list[domain.Entry]:
    return [entry("vehicle.registered", at, vin=f"V{next(_ids)}") for _ in range(n)]


def inspected(
    at: datetime, verdict: str = "pass", first: bool = True, failed: tuple[str, ...] = (),
    signals: tuple[str, ...] = (),
) -> domain.Entry:  # fmt: skip
    return entry(
        "vehicle.inspected", at, verdict=verdict, first_inspection=first,
        failed_items=list(failed), fraud_signals=list(signals),
    )  # fmt: skip


def declared(at: datetime, *reasons: str) -> domain.Entry:
    outcome = "rejected" if reasons else "accepted"
    return entry("vehicle.declared", at, outcome=outcome, reasons=list(reasons))


def exported(at: datetime, vin: str | None = None) -> domain.Entry:
    return entry("vehicle.exported", at, vin=vin or f"V{next(_ids)}")


def status(at: datetime, to: str) -> domain.Entry:
    return entry("enterprise.status-changed", at, to=to)


def assess(
    history: list[domain.Entry], now: datetime, rules: policy.Policy = V1
) -> domain.Assessment:
    return domain.assess(rules, history, now)[USCC]


def value(
    history: list[domain.Entry],
    component: str,
    now: datetime | None = None,
    rules: policy.Policy = V1,
) -> float:
    return assess(history, now or day(1), rules).components[component].value


def established(at: datetime = T0, vehicles: int = 20) -> list[domain.Entry]:
    """Enough vehicles that the prior is off, each inspected once and passed."""
    return registered(at, vehicles) + [inspected(at) for _ in range(vehicles)]


def test_policy_v1_loads_from_yaml() -> None:
    assert POLICY.version == "v1"
    assert sum(c.weight for c in POLICY.components.__dict__.values()) == 100
    assert POLICY.tier_names == ("good", "warning", "suspension", "exit")


def test_fewer_than_ten_vehicles_are_shrunk_toward_the_prior() -> None:
    # 2 vehicles, both failed their first inspection: observed quality 0
    history = registered(T0, 2) + [inspected(T0, "fail", failed=("BRAKES",))] * 1
    history += [inspected(T0, "fail", failed=("BRAKES",))]
    assert value(history, "quality") == approx((2 * 0 + 10 * 0.8) / 12)
    # with ten vehicles in the window the observation stands alone
    history += registered(T0, 8)
    assert value(history, "quality") == approx(1 - min(1, (2 / 2) / 0.2))


def test_quality_is_the_first_inspection_fail_rate_and_damage_counts_twice() -> None:
    history = established(vehicles=19) + registered(T0)
    history.append(inspected(T0, "fail", failed=("BRAKES",)))  # 1 fail in 20 first inspections
    assert value(history, "quality") == approx(1 - (1 / 20) / 0.2)
    reinspection = inspected(T0, "fail", first=False, failed=("BRAKES",))
    assert value([*history, reinspection], "quality") == value(history, "quality")
    flood = established(vehicles=19) + registered(T0)
    flood.append(inspected(T0, "fail", failed=("FLOOD_DAMAGE_FREE",)))  # counts as two fails
    assert value(flood, "quality") == approx(1 - (2 / 20) / 0.2)


def test_integrity_counts_identity_rejections_rollbacks_and_model_year_mismatches() -> None:
    base = established(vehicles=40)
    assert value(base, "integrity") == 1.0
    one = [*base, inspected(T0, signals=("odometer_rollback",))]
    assert value(one, "integrity") == approx(1 - (1 / 40) / 0.05)
    two = [*one, declared(T0, "certificate_mismatch")]
    assert value(two, "integrity") == approx(0.0)
    other_reason = [*one, declared(T0, "licence_missing")]
    assert value(other_reason, "integrity") == value(one, "integrity")


def test_gate_compliance_is_gate_rejections_per_declaration() -> None:
    history = established() + [declared(T0) for _ in range(19)]
    history.append(declared(T0, "inspection_expired"))
    assert value(history, "gate_compliance") == approx(1 - (1 / 20) / 0.1)
    refused = [*history, entry("vehicle.departure-refused", T0, reason="declaration_not_released")]
    assert value(refused, "gate_compliance") == approx(0.0)


def test_after_sales_is_complaints_per_hundred_exported_and_quick_resolution_counts_half() -> None:
    history = established() + [exported(T0) for _ in range(100)]
    history += [
        entry("enterprise.complaint-filed", day(1), complaint_id="c1"),
        entry("enterprise.complaint-filed", day(1), complaint_id="c2"),
    ]
    assert value(history, "after_sales", day(2)) == approx(1 - 2 / 5)
    quick = [*history, entry("enterprise.complaint-resolved", day(20), complaint_id="c1")]
    assert value(quick, "after_sales", day(21)) == approx(1 - 1.5 / 5)
    slow = [*history, entry("enterprise.complaint-resolved", day(45), complaint_id="c1")]
    assert value(slow, "after_sales", day(46)) == approx(1 - 2 / 5)


def test_activity_needs_one_export_in_the_window() -> None:
    history = established()
    assert value(history, "activity") == 0.0
    assert value([*history, exported(T0)], "activity") == 1.0
    assert value([*history, exported(T0)], "activity", day(400)) == 0.0


def test_events_age_out_of_the_365_day_window() -> None:
    history = [*established(vehicles=20), exported(T0)]
    history += [inspected(T0, "fail", failed=("BRAKES",)) for _ in range(4)]  # 4/24 fails
    early = assess(history, day(30))
    assert early.components["quality"].value == approx(1 - (4 / 24) / 0.2)
    later = history + established(day(200), vehicles=20) + [exported(day(200))]
    # on day 364 all of it counts; on day 366 only the day-200 vehicles do
    assert assess(later, day(364)).components["quality"].numerator == 4
    aged = assess(later, day(366))
    assert aged.components["quality"].value == 1.0
    assert aged.vehicles == 20
    assert aged.window == (day(366).date() - timedelta(days=364), day(366).date())


def test_tier_boundaries_and_hysteresis() -> None:
    def tier(score: float, previous: str | None) -> str:
        return domain.tier_for(POLICY, score, previous, hysteresis=True)

    assert [tier(s, None) for s in (80, 79.99, 60, 59.99, 40, 39.99)] == [
        "good", "warning", "warning", "suspension", "suspension", "exit",
    ]  # fmt: skip
    assert tier(79.9, "good") == "warning"  # down: no margin
    assert tier(82.9, "warning") == "warning"  # up: boundary + 3
    assert tier(83.0, "warning") == "good"
    assert tier(62.9, "suspension") == "suspension"
    assert tier(63.0, "suspension") == "warning"
    assert tier(90.0, "suspension") == "good"
    assert domain.tier_for(POLICY, 81.0, "warning", hysteresis=False) == "good"


def test_hysteresis_holds_for_the_warning_window_after_a_move_down() -> None:
    # 20 vehicles, 3 first-inspection fails of 20: quality 0.25 -> 7.5 + 25 + 20 + 20 + 0 = 72.5
    history = established(vehicles=17) + registered(T0, 3)
    history += [inspected(T0, "fail", failed=("BRAKES",)) for _ in range(3)]
    assert assess(history, day(1)).tier == "warning"
    # 13 more clean vehicles: quality 1 - (3/33)/0.2 = 0.545 -> 16.36 + 65 = 81.36
    recovered = [*history, *established(day(10), vehicles=13)]
    at_81 = assess(recovered, day(11))
    assert at_81.score == approx(81.36)
    assert at_81.tier == "warning"  # above 80 but not by 3 points
    # the warning window ends 90 days after the move down: then the boundary alone decides
    tick = entry(domain.TICK, day(91))
    assert assess([*recovered, tick], day(91)).tier == "good"


def test_two_suspensions_within_365_days_mean_exit() -> None:
    history = [*established(), exported(T0), status(day(10), "suspended")]
    assert assess(history, day(11)).tier == "good"
    history += [status(day(40), "admitted"), status(day(300), "suspended")]
    result = assess(history, day(301))
    assert result.tier == "exit"
    assert [r["rule"] for r in result.exit_rules] == ["two_suspensions_in_window"]
    # the first suspension leaves the window after 365 days
    assert assess([*history, entry(domain.TICK, day(376))], day(376)).exit_rules == []


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        (
            [entry("vehicle.certificate-revoked", day(5), forged=True, reason="forged")],
            "forged_inspection",
        ),
        ([exported(day(5), "VIN-A"), exported(day(6), "VIN-A")], "same_vin_exported_twice"),
        ([status(day(3), "suspended"), exported(day(5))], "exported_while_suspended"),
        ([status(day(3), "exited"), exported(day(5))], "exported_while_exited"),
    ],
)
@pytest.mark.parametrize("rules", [V1, V2], ids=["v1", "v2"])
def test_each_immediate_exit_violation(
    extra: list[domain.Entry], rule: str, rules: policy.Policy
) -> None:
    history = [*established(), exported(T0), *extra]
    result = assess(history, day(7), rules)
    assert result.score >= 80  # the score alone would be good
    assert result.tier == "exit"
    assert rule in [r["rule"] for r in result.exit_rules]
    assert domain.exit_rule(result) == rule  # named on the emitted enterprise.assessed


def test_an_export_before_a_suspension_and_a_revocation_that_is_not_forgery_are_fine() -> None:
    history = [*established(), exported(day(1)), status(day(3), "suspended")]
    history.append(entry("vehicle.certificate-revoked", day(4), forged=False, reason="typo"))
    assert assess(history, day(5)).tier == "good"


def test_late_events_land_in_their_own_day_whatever_the_arrival_order() -> None:
    history = [*established(), exported(T0), *[declared(day(d)) for d in range(10)]]
    shuffled = list(reversed(history))
    assert assess(history, day(20)).score == assess(shuffled, day(20)).score


def test_duplicates_change_nothing() -> None:
    history = [*established(), inspected(T0, "fail", failed=("BRAKES",))]
    assert assess(history + history[:5], day(1)) == assess(history, day(1))


def test_recommended_actions_follow_the_tier() -> None:
    def action(tier: str, previous: str | None) -> str:
        return domain.recommended_action(POLICY, tier, previous)

    assert action("good", None) == "none"
    assert action("warning", None) == "none"  # a new enterprise near the prior is not warned
    assert action("suspension", None) == "suspend"
    assert action("warning", "good") == "warn"
    assert action("suspension", "warning") == "suspend"
    assert action("exit", "suspension") == "exit"
    assert action("good", "warning") == "reinstate"
    assert action("good", "suspension") == "reinstate"
    assert action("warning", "suspension") == "none"  # stays suspended until good
    assert action("good", "exit") == "none"  # exit is final: reapply


def test_state_survives_its_json_form() -> None:
    state = domain.replay(POLICY, [*established(), exported(T0), status(day(1), "suspended")])[USCC]
    assert domain.State.from_json(state.to_json()) == state


def test_an_assessment_that_no_rule_exits_names_no_exit_rule() -> None:
    poor = registered(T0, 20) + [inspected(T0, "fail", failed=("BRAKES",)) for _ in range(20)]
    result = assess([*poor, declared(T0, "inspection_failed")], day(1))
    assert result.tier == "suspension" and domain.exit_rule(result) is None


# -- policy v2: what changed -------------------------------------------------------------------


def refused(at: datetime, *reasons: str, step: str = "release") -> domain.Entry:
    return entry(
        "vehicle.departure-refused", at, reason=reasons[0], reasons=list(reasons), step=step
    )


def complaint(at: datetime, category: str, complaint_id: str | None = None) -> domain.Entry:
    complaint_id = complaint_id or f"C{next(_ids)}"
    return entry("enterprise.complaint-filed", at, complaint_id=complaint_id, category=category)


def variant(rules: policy.Policy, **changes: Any) -> policy.Policy:
    """``rules`` with some top-level blocks changed (as if its YAML said so)."""
    return policy.Policy.model_validate({**rules.model_dump(), **changes})


def counted(history: list[domain.Entry], rules: policy.Policy) -> tuple[float, float]:
    """(integrity violations, gate rejections) in the window."""
    components = assess(history, day(1), rules).components
    return components["integrity"].numerator, components["gate_compliance"].numerator


def test_v2_is_the_default_and_each_policy_file_says_its_version() -> None:
    assert policy.load(Settings().policy_path) == V2
    for version in ("v1", "v2"):
        assert policy.load(POLICIES / f"{version}.yaml").version == version
    assert sum(V2.weights.values()) == 100


IDENTITY = ["vehicle_unknown", "vehicle_not_owned", "certificate_mismatch", "already_exported"]
GATES = [
    "inspection_missing", "inspection_failed", "inspection_expired", "certificate_revoked",
    "enterprise_not_in_good_standing", "after_sales_letter_missing", "licence_missing",
    "declaration_open", "declaration_not_released",
]  # fmt: skip


@pytest.mark.parametrize("reason", IDENTITY)
def test_v2_counts_every_identity_refusal_in_integrity(reason: str) -> None:
    assert counted([*established(), declared(T0, reason)], V2) == (1, 0)


@pytest.mark.parametrize("reason", GATES)
def test_v2_counts_every_other_gate_refusal_in_gate_compliance(reason: str) -> None:
    assert counted([*established(), declared(T0, reason)], V2) == (0, 1)


@pytest.mark.parametrize(
    "reason", ["certificate_revoked", "vehicle_unknown", "licence_missing",
               "after_sales_letter_missing"],
)  # fmt: skip
def test_v1_counted_these_refusals_nowhere_and_still_does(reason: str) -> None:
    assert counted([*established(), declared(T0, reason)], V1) == (0, 0)


def test_a_refusal_counts_once_in_each_component_its_reasons_belong_to() -> None:
    both = declared(T0, "vehicle_not_owned", "licence_missing", "inspection_missing")
    assert counted([*established(), both], V2) == (1, 1)


def test_a_reason_code_no_policy_lists_counts_where_the_policy_says() -> None:
    future = [*established(), declared(T0, "origin_certificate_missing")]
    assert counted(future, V2) == (0, 1)  # v2: other_reasons -> gate compliance
    to_integrity = variant(V2, refusals={"other_reasons": "integrity", "departures": "by_reason"})
    assert counted(future, to_integrity) == (1, 0)
    assert counted(future, V1) == (0, 0)  # v1 said so explicitly: nowhere
    assert counted([*established(), refused(T0, "origin_certificate_missing")], V2) == (0, 1)


def test_v2_counts_refused_releases_and_departures_by_their_reasons() -> None:
    base = established()
    standing = refused(T0, "enterprise_not_in_good_standing", "certificate_revoked")
    assert counted([*base, standing], V2) == (0, 1)  # two gates, one refusal
    twice = refused(T0, "already_exported", step="departure")
    assert counted([*base, twice], V2) == (1, 0)  # identity
    # a refusal from before `reasons` existed is counted by its one reason
    old = entry("vehicle.departure-refused", T0, reason="declaration_not_released")
    assert counted([*base, old], V2) == (0, 1)
    # v1: a refused departure is one gate rejection, whatever its reason
    assert counted([*base, twice], V1) == (0, 1)
    assert counted([*base, standing], V1) == (0, 1)


def test_v2_weighs_the_named_after_sales_exit_triggers_three_times() -> None:
    history = established() + [exported(T0) for _ in range(100)]
    spare = complaint(day(1), "no_spare_parts", "C-1")
    assert value([*history, spare], "after_sales", day(2), V2) == approx(1 - 3 / 5)
    warranty = complaint(day(1), "warranty_refused")
    assert value([*history, warranty], "after_sales", day(2), V2) == approx(1 - 3 / 5)
    paint = complaint(day(1), "paint_defect")
    assert value([*history, paint], "after_sales", day(2), V2) == approx(1 - 1 / 5)
    # resolved within 30 days: half, of its own weight
    fixed = entry("enterprise.complaint-resolved", day(20), complaint_id="C-1")
    assert value([*history, spare, fixed], "after_sales", day(21), V2) == approx(1 - 1.5 / 5)
    assert value([*history, spare], "after_sales", day(2), V1) == approx(1 - 1 / 5)


def test_v2_exits_an_enterprise_with_three_exit_trigger_complaints_in_365_days() -> None:
    history = established() + [exported(T0) for _ in range(100)]
    two = [complaint(day(10), "no_spare_parts"), complaint(day(100), "warranty_refused")]
    assert assess([*history, *two, complaint(day(200), "rust")], day(201), V2).tier != "exit"
    third = complaint(day(200), "no_spare_parts")
    result = assess([*history, *two, third], day(201), V2)
    assert result.tier == "exit" and result.raw_tier != "exit"  # the rule, not the score
    assert result.exit_rules == [
        {"rule": "exit_trigger_complaints_in_window", "event_id": third.event_id,
         "at": day(200).isoformat()},
    ]  # fmt: skip
    assert domain.exit_rule(result) == "exit_trigger_complaints_in_window"
    # the first has left the window a year after it was filed
    late = complaint(day(380), "no_spare_parts")
    assert assess([*history, *two, late], day(381), V2).exit_rules == []
    assert assess([*history, *two, third], day(201), V1).tier != "exit"  # v1: no such rule


def test_the_issue_example_warns_under_v1_but_not_on_so_little_evidence_under_v2() -> None:
    # 11 registered vehicles, 2 first inspections, 1 failed
    before = [*registered(T0, 11), inspected(T0)]
    history = [*before, inspected(T0, "fail", failed=("BRAKES",))]
    v1, v2 = assess(history, day(1), V1), assess(history, day(1), V2)
    # v1: 11 vehicles switch the prior off for every component; 1 of 2 zeroes quality
    assert (v1.score, v1.tier) == (65.0, "warning")
    assert domain.recommended_action(V1, v1.tier, assess(before, day(1), V1).tier) == "warn"
    # v2: quality (2*0 + 10*0.9)/12 = 0.75 -> 22.5; integrity 25 (11 vehicles); gate
    # compliance and after-sales at the prior 0.9 (nothing declared or exported) -> 18 each
    assert v2.components["quality"].value == approx(0.75)
    assert (v2.score, v2.tier) == (83.5, "good")


@pytest.mark.parametrize(
    ("history", "component", "v2_value", "v1_value"),
    [
        # 2 first inspections of 20 vehicles, both failed: quality's evidence is 2
        (registered(T0, 20) + [inspected(T0, "fail", failed=("BRAKES",)) for _ in range(2)],
         "quality", 9 / 12, 0.0),
        # 1 declaration, refused: gate compliance's evidence is 1
        ([*established(), declared(T0, "inspection_failed")], "gate_compliance", 9 / 11, 0.0),
        # 1 export, 1 complaint: after-sales' evidence is 1
        ([*established(), exported(T0), complaint(T0, "paint_defect")], "after_sales",
         9 / 11, 0.0),
        # 5 vehicles, 1 rollback: integrity's evidence is the vehicles, as in v1
        ([*registered(T0, 5), inspected(T0, signals=("odometer_rollback",))], "integrity",
         9 / 15, 8 / 15),
    ],
)  # fmt: skip
def test_v2_shrinks_each_component_by_its_own_denominator(
    history: list[domain.Entry], component: str, v2_value: float, v1_value: float
) -> None:
    assert value(history, component, rules=V2) == approx(v2_value)
    assert value(history, component, rules=V1) == approx(v1_value)


def test_actions_are_policy_data() -> None:
    assert V2.actions == V1.actions
    for tier, previous in itertools.product([*V2.tier_names, None], repeat=2):
        if tier is not None:
            assert domain.recommended_action(V2, tier, previous) == domain.recommended_action(
                V1, tier, previous
            )
    warns = variant(V2, actions={**V2.actions.model_dump(), "first_assessment_warns": True})
    assert domain.recommended_action(warns, "warning", None) == "warn"
    quiet = variant(V2, actions={**V2.actions.model_dump(), "up": {}})
    assert domain.recommended_action(quiet, "good", "suspension") == "none"


def test_a_policy_may_not_count_one_reason_in_two_components() -> None:
    both = V2.model_dump()
    gates = both["components"]["gate_compliance"]
    gates["gate_reasons"] = {*gates["gate_reasons"], "vehicle_not_owned"}
    with pytest.raises(ValueError, match="vehicle_not_owned"):
        policy.Policy.model_validate(both)
