from datetime import UTC, date, datetime, timedelta

import pytest

from servicekit.clock import Claimed, Clock, check_claims
from servicekit.problems import Problem

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def test_a_stopped_clock_moves_only_when_told() -> None:
    clock = Clock()
    clock.set(NOW)
    assert clock.now() == NOW and clock.today() == date(2026, 12, 2)
    clock.advance(timedelta(days=3))
    assert clock.now() == NOW + timedelta(days=3)
    with clock.frozen(NOW - timedelta(days=1)):
        assert clock.now() == NOW - timedelta(days=1)
    assert clock.now() == NOW + timedelta(days=3)


def test_a_running_clock_keeps_its_offset() -> None:
    clock = Clock(timedelta(days=10))
    assert clock.now() - datetime.now(UTC) > timedelta(days=9, hours=23)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 1))


def test_claims_within_bounds_pass() -> None:
    check_claims(
        {
            "declared_at": Claimed(NOW + timedelta(minutes=4), timedelta(days=1)),
            "transfer_endorsed_on": Claimed(date(2026, 11, 1), timedelta(days=60)),
        },
        now=NOW,
        skew=SKEW,
    )


def test_every_claim_out_of_range_is_named() -> None:
    with pytest.raises(Problem) as caught:
        check_claims(
            {
                "declared_at": Claimed(datetime(2025, 12, 31, tzinfo=UTC), timedelta(days=1)),
                "released_at": Claimed(NOW + timedelta(minutes=6), timedelta(days=1)),
                "inspected_at": Claimed(
                    NOW - timedelta(days=2),
                    timedelta(days=7),
                    not_before=date(2026, 12, 1),
                    not_before_rule="inspected_before_transfer_endorsement",
                ),
            },
            now=NOW,
            skew=SKEW,
        )
    problem = caught.value
    assert problem.status == 422
    assert [(e["field"], e["rule"]) for e in problem.extra["errors"]] == [
        ("declared_at", "time_out_of_range"),
        ("released_at", "time_out_of_range"),
        ("inspected_at", "inspected_before_transfer_endorsement"),
    ]
