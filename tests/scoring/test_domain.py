"""Policy v1 (DOMAIN.md §6), one rule at a time, with small event histories on a controllable
clock: each entry happens at ``at`` and is folded then (its ``recorded_at``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scoring import domain, policy
from scoring.settings import Settings

POLICY = policy.load(Settings().policy_path)
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


def assess(history: list[domain.Entry], now: datetime) -> domain.Assessment:
    return domain.assess(POLICY, history, now)[USCC]


def value(history: list[domain.Entry], component: str, now: datetime | None = None) -> float:
    return assess(history, now or day(1)).components[component].value


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
def test_each_immediate_exit_violation(extra: list[domain.Entry], rule: str) -> None:
    history = [*established(), exported(T0), *extra]
    result = assess(history, day(7))
    assert result.score >= 80  # the score alone would be good
    assert result.tier == "exit"
    assert rule in [r["rule"] for r in result.exit_rules]


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
