"""The one clock of every service (aware UTC). Service code asks ``clock.now()``; tests move
the clock (``set``/``advance``) instead of rewriting rows, and a process started with
``UCX_CLOCK_OFFSET_S`` runs shifted (the whole-stack tests of time-driven rules)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from servicekit.problems import Problem

CIVIL_ZONE = ZoneInfo("Asia/Shanghai")
"""The regime's dates (first registration, transfer endorsement, certificate validity,
admission) are China's civil dates (UTC+8): judged by the UTC date, an endorsement dated this
morning in Fuzhou would be "in the future" until 08:00."""


def civil_date(moment: datetime) -> date:
    """The date in China at ``moment``."""
    return moment.astimezone(CIVIL_ZONE).date()


class Clock:
    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self._fixed: datetime | None = None

    def now(self) -> datetime:
        if self._fixed is not None:
            return self._fixed
        return datetime.now(UTC) + self._offset

    def today(self) -> date:
        """China's civil date now (see ``CIVIL_ZONE``)."""
        return civil_date(self.now())

    def set(self, at: datetime | None) -> None:
        """Stop the clock at ``at`` (None: run again, from the real time plus the offset)."""
        if at is not None and at.tzinfo is None:
            raise ValueError("the clock keeps aware times")
        self._fixed = at.astimezone(UTC) if at is not None else None

    def advance(self, delta: timedelta) -> None:
        if self._fixed is not None:
            self._fixed += delta
        else:
            self._offset += delta

    def reset(self) -> None:
        self._offset, self._fixed = _env_offset(), None

    @contextmanager
    def frozen(self, at: datetime) -> Iterator[Clock]:
        before = self._fixed
        self.set(at)
        try:
            yield self
        finally:
            self._fixed = before


def _env_offset() -> timedelta:
    return timedelta(seconds=float(os.environ.get("UCX_CLOCK_OFFSET_S", "0") or 0))


clock = Clock(_env_offset())
"""The process's clock: every ``now`` in service code comes from here."""


def now() -> datetime:
    return clock.now()


def today() -> date:
    return clock.today()


# -- partner-supplied times are claims, bounded by the server's clock ------------------------
@dataclass(frozen=True)
class Claimed:
    """A time a partner asserts: kept as the claim, and only accepted within bounds. A date
    claim is judged as China's civil date (``CIVIL_ZONE``)."""

    value: datetime | date
    max_age: timedelta
    """How far in the past the claim may lie (policy data, per field)."""
    not_before: datetime | date | None = None
    """A lower bound from our own records (e.g. an inspection not before the endorsement)."""
    not_before_rule: str = "time_out_of_range"


def check_claims(claims: Mapping[str, Claimed], *, now: datetime, skew: timedelta) -> None:
    """422 ``time_out_of_range`` naming every field whose claimed time lies more than ``skew``
    in the future or more than its ``max_age`` in the past (``not_before``: its own rule)."""
    errors: list[dict[str, str]] = []
    for field, claim in claims.items():
        value = claim.value
        latest: date
        earliest: date
        if isinstance(value, datetime):
            latest, earliest, shown = now + skew, now - claim.max_age, value.isoformat()
        else:
            latest, earliest = civil_date(now + skew), civil_date(now - claim.max_age)
            shown = str(value)
        if value > latest:
            errors.append(
                {
                    "field": field,
                    "rule": "time_out_of_range",
                    "message": f"time_out_of_range: {shown} is after the server's time "
                    f"{now.isoformat()} plus the allowed skew of {skew.total_seconds():g} s",
                }
            )
        elif value < earliest:
            errors.append(
                {
                    "field": field,
                    "rule": "time_out_of_range",
                    "message": f"time_out_of_range: {shown} is more than "
                    f"{_days(claim.max_age)} before the server's time {now.isoformat()}",
                }
            )
        elif claim.not_before is not None and _before(value, claim.not_before):
            errors.append(
                {
                    "field": field,
                    "rule": claim.not_before_rule,
                    "message": f"{claim.not_before_rule}: {shown} is before {claim.not_before}",
                }
            )
    if errors:
        raise Problem(
            "time-out-of-range",
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            status=422,
            title="Claimed time out of range",
            errors=errors,
        )


def _before(value: datetime | date, bound: datetime | date) -> bool:
    """Times against dates compare as China's civil dates."""
    if isinstance(value, datetime) and not isinstance(bound, datetime):
        return civil_date(value) < bound
    if not isinstance(value, datetime) and isinstance(bound, datetime):
        return value < civil_date(bound)
    return value < bound


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{delta.total_seconds():g} s"
