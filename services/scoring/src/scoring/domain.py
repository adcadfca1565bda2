"""The dynamic assessment (DOMAIN.md §6) as pure code, no I/O; its values come from the
policy (``services/scoring/policies/``).

The state of one enterprise is a :class:`State`; :func:`fold` applies one ledger entry to it
(mutating it, cheaply: the worker does this per event) and :func:`evaluate` reads an
assessment off it at a moment. :func:`replay` is the pure function over a ledger: a fresh
state, every entry folded in ledger order, each at the moment it was recorded. The live
worker runs exactly these steps, so its stored state equals a replay of the ledger.

Time is explicit. Each entry is folded at ``now`` (its ``recorded_at`` in the ledger): the
365-day window ends there, the tier moves there. An evaluation that only the clock caused
(the daily timer) is itself a ledger entry (type :data:`TICK`), so replay sees the same
moments the worker saw, and the hysteresis path is reproduced exactly.

Counting: vehicle facts go into per-day buckets by the event's own time, so late or
out-of-order events land in the right day; the running window totals are kept by adding a
bucket's counts as events arrive and subtracting a bucket when it leaves the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import orjson

from contracts import events
from scoring.policy import Action, Policy

TICK = "scoring.clock-tick"
"""A ledger entry recording an evaluation the clock caused (no event; ``data`` empty)."""

MAX_CAUSES = 20
COMPONENTS = ("quality", "integrity", "gate_compliance", "after_sales", "activity")

# the counters of a day bucket / of the window, by position (lists are cheap to copy and
# to serialise)
VEHICLES, FIRST_INSPECTIONS, FIRST_FAILS, VIOLATIONS, DECLARATIONS, GATE_REJECTIONS, EXPORTS = (
    range(7)
)
COUNTERS = (
    "vehicles", "first_inspections", "first_inspection_fails", "violations", "declarations",
    "gate_rejections", "exports",
)  # fmt: skip


class Exports(Protocol):
    """Which VINs an enterprise exported before: the worker asks its table, replay a set."""

    def first_export(self, uscc: str, vin: str) -> bool:
        """Record the export; False if this VIN was exported by this enterprise before."""


class ExportSet:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def first_export(self, uscc: str, vin: str) -> bool:
        if (uscc, vin) in self.seen:
            return False
        self.seen.add((uscc, vin))
        return True


@dataclass(frozen=True)
class Entry:
    """One ledger entry as the domain sees it."""

    event_id: str
    type: str
    uscc: str
    time: datetime
    data: Mapping[str, Any]
    recorded_at: datetime


@dataclass
class State:
    days: dict[int, list[float]] = field(default_factory=dict)
    """Day ordinal (of the event's time) -> counters, for days still in the window."""
    totals: list[float] = field(default_factory=lambda: [0.0] * len(COUNTERS))
    as_of: int = 0
    """Day ordinal the window ends on (never moves back)."""
    low: int = 0
    """The smallest day in ``days``: nothing to drop while it is in the window."""
    complaints: dict[str, list[Any]] = field(default_factory=dict)
    """complaint id -> [filed_at iso | None, resolved_at iso | None, event id, category]."""
    statuses: list[list[str]] = field(default_factory=list)
    """[changed_at iso, to_status, event id], sorted by time: the registry's decisions."""
    exits: list[list[str]] = field(default_factory=list)
    """Immediate-exit violations: [time iso, rule, event id]."""
    causes: dict[str, list[str]] = field(default_factory=dict)
    events: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    tier: str | None = None
    score: float | None = None
    tier_since: str | None = None
    """When the tier last moved down (iso): hysteresis applies within the warning window."""
    folded_at: str | None = None
    """The moment of the last fold (iso): the stored assessment is read off at it."""

    @property
    def moment(self) -> datetime | None:
        return _at(self.folded_at) if self.folded_at else None

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "days": self.days,
                "totals": self.totals,
                "as_of": self.as_of,
                "low": self.low,
                "complaints": self.complaints,
                "statuses": self.statuses,
                "exits": self.exits,
                "causes": self.causes,
                "events": self.events,
                "by_type": self.by_type,
                "tier": self.tier,
                "score": self.score,
                "tier_since": self.tier_since,
                "folded_at": self.folded_at,
            },
            option=orjson.OPT_NON_STR_KEYS,
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> State:
        raw = orjson.loads(text)
        raw["days"] = {int(k): v for k, v in raw["days"].items()}
        for complaint in raw["complaints"].values():
            if len(complaint) == 3:  # stored before complaints kept their category
                complaint.append(None)
        return cls(**raw)


@dataclass(frozen=True)
class Component:
    value: float
    weight: float
    observed: float
    """The observed rate (or 1/0 for activity) before the prior."""
    numerator: float
    denominator: float


@dataclass(frozen=True)
class Assessment:
    score: float
    tier: str
    raw_tier: str
    """The tier the score alone gives, before hysteresis and the exit rules."""
    components: dict[str, Component]
    exit_rules: list[dict[str, str]]
    """Why the tier is ``exit`` regardless of the score: [{rule, event_id, at}]."""
    vehicles: int
    exports: int
    window: tuple[date, date]
    causes: dict[str, list[str]]
    policy_version: str


def day_of(moment: datetime) -> int:
    """The day a moment falls on, as the window counts days (UTC), by ordinal."""
    return moment.astimezone(UTC).date().toordinal()


def tick_id(uscc: str, now: datetime) -> str:
    """The ledger id of the clock's evaluation of ``uscc`` on ``now``'s day. The clock
    evaluates an enterprise once a day at most (only one whose window ends before the day),
    so the id is its day's: a repeated tick is the same entry, which the ledger's unique key
    keeps once, and no consumed event's id (a uuid7) can be one."""
    return f"tick-{uscc}-{date.fromordinal(day_of(now)).isoformat()}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _cause(state: State, component: str, event_id: str) -> None:
    ids = state.causes.setdefault(component, [])
    if event_id not in ids:
        ids.append(event_id)
        del ids[:-MAX_CAUSES]


def advance(policy: Policy, state: State, now: datetime) -> None:
    """Move the window's end to ``now``: buckets that left it stop counting."""
    today = day_of(now)
    if today <= state.as_of:
        return
    state.as_of = today
    oldest = today - policy.window_days  # a day counts while day > oldest
    if state.days and state.low <= oldest:
        # every bucket's day is >= low: visit the days that left, not every bucket
        for day in range(state.low, oldest + 1):
            bucket = state.days.pop(day, None)
            if bucket is not None:
                for i, n in enumerate(bucket):
                    state.totals[i] -= n
        state.low = min(state.days, default=0)
    cutoff = now - timedelta(days=policy.window_days)
    for complaint_id in [
        c for c, (filed, *_) in state.complaints.items() if filed and _at(filed) <= cutoff
    ]:
        del state.complaints[complaint_id]


def _counts(policy: Policy, entry: Entry, state: State, exports: Exports) -> list[float] | None:
    """The counters this event adds to its day, or None when it adds none."""
    c = policy.components
    data = entry.data
    delta = [0.0] * len(COUNTERS)
    if entry.type == events.VehicleRegistered.TYPE:
        delta[VEHICLES] = 1
        _cause(state, "activity", entry.event_id)
    elif entry.type == events.VehicleInspected.TYPE:
        if data.get("first_inspection"):
            delta[FIRST_INSPECTIONS] = 1
            _cause(state, "quality", entry.event_id)
            if data.get("verdict") == "fail":
                damage = c.quality.damage_items.intersection(data.get("failed_items") or ())
                delta[FIRST_FAILS] = c.quality.damage_fail_counts if damage else 1
        signals = c.integrity.violation_signals.intersection(data.get("fraud_signals") or ())
        if signals:
            delta[VIOLATIONS] = len(signals)
            _cause(state, "integrity", entry.event_id)
    elif entry.type == events.VehicleDeclared.TYPE:
        delta[DECLARATIONS] = 1
        _cause(state, "gate_compliance", entry.event_id)
        _refusal(policy, state, entry, data.get("reasons") or (), delta)
    elif entry.type == events.DepartureRefused.TYPE:
        if policy.refusals.departures == "one_gate_rejection":
            delta[GATE_REJECTIONS] = 1
            _cause(state, "gate_compliance", entry.event_id)
        else:  # events before ``reasons`` existed carry their one ``reason``
            reasons = data.get("reasons") or (str(data.get("reason")),)
            _refusal(policy, state, entry, reasons, delta)
    elif entry.type == events.VehicleExported.TYPE:
        delta[EXPORTS] = 1
        _cause(state, "activity", entry.event_id)
        _cause(state, "after_sales", entry.event_id)
        first = exports.first_export(entry.uscc, str(data.get("vin")))
        if not first and policy.exit_rules.same_vin_exported_twice:
            state.exits.append([_iso(entry.time), "same_vin_exported_twice", entry.event_id])
        status = _status_at(state, entry.time)
        if status in policy.exit_rules.export_while:
            state.exits.append([_iso(entry.time), f"exported_while_{status}", entry.event_id])
    else:
        return None
    return delta


def _refusal(
    policy: Policy, state: State, entry: Entry, reasons: Iterable[str], delta: list[float]
) -> None:
    """A refusal counts once in each component one of its reasons belongs to; a reason the
    policy does not list counts where ``refusals.other_reasons`` says."""
    where, other = policy.reason_component, policy.refusals.other_reasons
    for reason in reasons:
        component = where.get(reason, other)
        if component == "gate_compliance":
            delta[GATE_REJECTIONS] = 1
        elif component == "integrity":
            delta[VIOLATIONS] = 1
        else:
            continue
        _cause(state, component, entry.event_id)


def _status_at(state: State, moment: datetime) -> str | None:
    status = None
    for changed_at, to_status, _event_id in state.statuses:
        if _at(changed_at) > moment:
            break
        status = to_status
    return status


def fold(policy: Policy, state: State, entry: Entry, exports: Exports) -> None:
    """Apply one ledger entry at its ``recorded_at``; then the tier moves if it must."""
    now = entry.recorded_at
    advance(policy, state, now)
    if entry.type != TICK:
        state.events += 1
        state.by_type[entry.type] = state.by_type.get(entry.type, 0) + 1
        _record(policy, state, entry, exports)
    score, tier = _score_and_tier(policy, state, now)
    moved_down = state.tier is None or _rank(policy, tier) > _rank(policy, state.tier)
    if tier != state.tier and moved_down:
        state.tier_since = _iso(now)  # moved down (or first): hysteresis starts here
    state.tier = tier
    state.score = score
    state.folded_at = _iso(now)


def _record(policy: Policy, state: State, entry: Entry, exports: Exports) -> None:
    data = entry.data
    if entry.type == events.ComplaintFiled.TYPE:
        complaint = state.complaints.setdefault(str(data["complaint_id"]), [None, None, "", None])
        complaint[0], complaint[2], complaint[3] = (
            _iso(entry.time),
            entry.event_id,
            data.get("category"),
        )
        _cause(state, "after_sales", entry.event_id)
    elif entry.type == events.ComplaintResolved.TYPE:
        complaint = state.complaints.setdefault(str(data["complaint_id"]), [None, None, "", None])
        complaint[1] = _iso(entry.time)
        _cause(state, "after_sales", entry.event_id)
    elif entry.type == events.EnterpriseStatusChanged.TYPE:
        state.statuses.append([_iso(entry.time), str(data.get("to")), entry.event_id])
        state.statuses.sort(key=lambda s: (_at(s[0]), s[2]))
    elif entry.type == events.CertificateRevoked.TYPE:
        if data.get("forged") and policy.exit_rules.forged_inspection:
            state.exits.append([_iso(entry.time), "forged_inspection", entry.event_id])
    else:
        delta = _counts(policy, entry, state, exports)
        day = day_of(entry.time)
        if delta is None or day <= state.as_of - policy.window_days:
            return  # nothing to count, or already out of the window
        if not state.days or day < state.low:
            state.low = day
        bucket = state.days.setdefault(day, [0.0] * len(COUNTERS))
        for i, n in enumerate(delta):
            if n:
                bucket[i] += n
                state.totals[i] += n


def _rank(policy: Policy, tier: str) -> int:
    return policy.tier_names.index(tier)


def tier_for(policy: Policy, score: float, previous: str | None, *, hysteresis: bool) -> str:
    """The tier for ``score``; moving back UP needs the boundary cleared by the hysteresis
    (while ``hysteresis`` holds: within the warning window of the last move down)."""
    names, tiers = policy.tier_names, policy.tiers
    for raw in names:  # best first: the first boundary the score clears
        if score >= tiers[raw]:
            break
    else:
        raise ValueError(f"score {score} is below every tier's boundary")
    if previous not in names or names.index(raw) >= names.index(previous):
        return raw  # same or worse: no hysteresis on the way down
    margin = policy.hysteresis if hysteresis else 0.0
    for name in names[names.index(raw) : names.index(previous)]:
        if score >= policy.tiers[name] + margin:
            return name
    return previous


def _complaints(policy: Policy, state: State, now: datetime) -> tuple[float, list[str]]:
    after_sales = policy.components.after_sales
    categories = after_sales.category_weights
    cutoff = now - timedelta(days=policy.window_days)
    weight, counted = 0.0, []
    for filed, resolved, event_id, category in state.complaints.values():
        if filed is None or _at(filed) <= cutoff:
            continue  # resolved only (its filing not seen yet), or out of the window
        quick = resolved is not None and _at(resolved) - _at(filed) <= timedelta(
            days=after_sales.resolved_within_days
        )
        times = categories.get(category, 1.0) if categories else 1.0
        weight += times * (after_sales.resolved_weight if quick else 1.0)
        counted.append(event_id)
    return weight, counted


def _evidence(policy: Policy, denominator: float, vehicles: float) -> float:
    """How much a component's observation is worth against the prior."""
    return denominator if policy.prior.evidence == "own_denominator" else vehicles


def prior_applied(policy: Policy, denominator: float, vehicles: float) -> bool:
    return _evidence(policy, denominator, vehicles) < policy.prior.below


def _shrunk(policy: Policy, observed: float, n: float) -> float:
    """Evidence ``n`` below ``prior.below``: pulled toward the prior."""
    if n >= policy.prior.below:
        return observed
    k = policy.prior.strength
    return (n * observed + k * policy.prior.value) / (n + k)


Part = tuple[float, float, float, float]
"""(value, observed rate, numerator, denominator): a component before its weight."""


def _value(policy: Policy, rate: float, tolerance: float, n: float) -> float:
    return round(_shrunk(policy, 1 - min(1.0, rate / tolerance), n), 6)


def _rated(policy: Policy, state: State, now: datetime) -> list[tuple[str, float, float, float]]:
    """The rated components in score order: (name, numerator, denominator, tolerance)."""
    c, t = policy.components, state.totals
    complaints = _complaints(policy, state, now)[0] if state.complaints else 0.0
    exports = t[EXPORTS]
    return [
        ("quality", t[FIRST_FAILS], t[FIRST_INSPECTIONS], c.quality.tolerance),
        ("integrity", t[VIOLATIONS], t[VEHICLES], c.integrity.tolerance),
        ("gate_compliance", t[GATE_REJECTIONS], t[DECLARATIONS], c.gate_compliance.tolerance),
        # complaints per 100 exported; complaints with nothing exported count as per 1
        ("after_sales", 100 * complaints, max(exports, 1) if complaints else exports,
         c.after_sales.tolerance),
    ]  # fmt: skip


def _activity(state: State) -> float:
    return 1.0 if state.totals[EXPORTS] else 0.0


def _parts(policy: Policy, state: State, now: datetime) -> dict[str, Part]:
    """Each component's value, observed rate, numerator and denominator (weights not set)."""
    vehicles = state.totals[VEHICLES]
    parts: dict[str, Part] = {}
    for name, num, den, tolerance in _rated(policy, state, now):
        rate = num / den if den else 0.0
        n = _evidence(policy, den, vehicles)
        parts[name] = (_value(policy, rate, tolerance, n), round(rate, 6), num, den)
    activity = _activity(state)
    parts["activity"] = (activity, activity, state.totals[EXPORTS], 1)
    return parts


def _weighted(policy: Policy, parts: dict[str, Part]) -> float:
    weights = policy.weights
    return round(float(sum(weights[name] * p[0] for name, p in parts.items())), 2)


def _score(policy: Policy, state: State, now: datetime) -> float:
    """``_weighted(_parts(...))`` without building the parts: the fold runs it per event."""
    weights, vehicles = policy.weights, state.totals[VEHICLES]
    own = policy.prior.evidence == "own_denominator"
    total = 0.0
    for name, num, den, tolerance in _rated(policy, state, now):
        n = den if own else vehicles
        total += weights[name] * _value(policy, num / den if den else 0.0, tolerance, n)
    return round(float(total + weights["activity"] * _activity(state)), 2)


def _tier(policy: Policy, state: State, score: float, exits: bool, now: datetime) -> str:
    if exits:
        return "exit"
    since = _at(state.tier_since) if state.tier_since else None
    hysteresis = since is None or now - since < timedelta(days=policy.warning_window_days)
    return tier_for(policy, score, state.tier, hysteresis=hysteresis)


def _score_and_tier(policy: Policy, state: State, now: datetime) -> tuple[float, str]:
    """What :func:`evaluate` gives for score and tier, without building the assessment: the
    worker runs this per event."""
    score = _score(policy, state, now)
    complaints = state.complaints and policy.exit_rules.complaints_in_window
    exits = bool((state.exits or state.statuses or complaints) and _exit_rules(policy, state, now))
    return score, _tier(policy, state, score, exits, now)


def evaluate(policy: Policy, state: State, now: datetime) -> Assessment:
    """The assessment the state gives at ``now`` (which must not be before ``state.as_of``;
    :func:`advance` first). Does not change the state."""
    parts = _parts(policy, state, now)
    c = policy.components
    components = {
        name: Component(p[0], getattr(c, name).weight, p[1], p[2], p[3])
        for name, p in parts.items()
    }
    score = _weighted(policy, parts)
    exit_rules = _exit_rules(policy, state, now)
    tier = _tier(policy, state, score, bool(exit_rules), now)
    n, exports = state.totals[VEHICLES], state.totals[EXPORTS]
    end = date.fromordinal(max(state.as_of, day_of(now)))
    return Assessment(
        score=score,
        tier=tier,
        raw_tier=tier_for(policy, score, None, hysteresis=False),
        components=components,
        exit_rules=exit_rules,
        vehicles=int(n),
        exports=int(exports),
        window=(end - timedelta(days=policy.window_days - 1), end),
        causes={k: list(v) for k, v in state.causes.items()},
        policy_version=policy.version,
    )


def _exit_rules(policy: Policy, state: State, now: datetime) -> list[dict[str, str]]:
    cutoff = now - timedelta(days=policy.window_days)
    rules = [
        {"rule": rule, "event_id": event_id, "at": at}
        for at, rule, event_id in state.exits
        if _at(at) > cutoff
    ]
    suspensions = [
        (at, event_id)
        for at, to_status, event_id in state.statuses
        if to_status == "suspended" and _at(at) > cutoff
    ]
    if len(suspensions) >= policy.exit_rules.suspensions_in_window:
        at, event_id = suspensions[-1]
        rules.append({"rule": "two_suspensions_in_window", "event_id": event_id, "at": at})
    rule = policy.exit_rules.complaints_in_window
    if rule and state.complaints:
        filed = sorted(
            (c[0], c[2])
            for c in state.complaints.values()
            if c[3] in rule.categories and c[0] and _at(c[0]) > cutoff
        )
        if len(filed) >= rule.count:
            at, event_id = filed[rule.count - 1]
            rules.append(
                {"rule": "exit_trigger_complaints_in_window", "event_id": event_id, "at": at}
            )
    return rules


def exit_rule(assessment: Assessment) -> str | None:
    """The immediate-exit rule that put the enterprise in ``exit`` (the earliest), if one did."""
    if assessment.tier != "exit" or not assessment.exit_rules:
        return None
    return min(assessment.exit_rules, key=lambda r: _at(r["at"]))["rule"]


def boundaries(policy: Policy, tier: str) -> dict[str, float]:
    """For a tier: the score it takes to move up one tier (boundary + hysteresis) and the
    score below which it moves down."""
    names = policy.tier_names
    rank = names.index(tier)
    out = {}
    if rank > 0:
        out["up_at"] = policy.tiers[names[rank - 1]] + policy.hysteresis
    if rank < len(names) - 1:
        out["down_below"] = policy.tiers[tier]
    return out


def recommended_action(policy: Policy, tier: str, previous: str | None) -> Action:
    """What the registry should do about a tier change, by the policy's ``actions``: a first
    assessment as a move down from nothing (``warn`` only if the policy says so), a move down
    or up by its map; nothing out of ``exit``, which is final."""
    actions = policy.actions
    if previous is None:
        action = actions.down.get(tier, "none")
        return "none" if action == "warn" and not actions.first_assessment_warns else action
    if tier == previous or previous == "exit":
        return "none"
    if _rank(policy, tier) > _rank(policy, previous):
        return actions.down.get(tier, "none")
    return actions.up.get(tier, "none")


def replay(
    policy: Policy, entries: Iterable[Entry], exports: Exports | None = None
) -> dict[str, State]:
    """The pure function over a ledger: every enterprise's state, from nothing, entries in
    ledger order (duplicates by event id skipped, as the ledger's unique key does)."""
    exports = exports or ExportSet()
    states: dict[str, State] = {}
    seen: set[str] = set()
    for entry in entries:
        if entry.event_id in seen:
            continue
        seen.add(entry.event_id)
        state = states.get(entry.uscc)
        if state is None:  # not setdefault: that builds a State per entry
            state = states[entry.uscc] = State()
        fold(policy, state, entry, exports)
    return states


def assess(policy: Policy, entries: Iterable[Entry], now: datetime) -> dict[str, Assessment]:
    """``assess(policy, events, now)``: every enterprise's assessment at ``now`` from its
    ledger entries alone."""
    result = {}
    for uscc, state in replay(policy, entries).items():
        advance(policy, state, now)
        result[uscc] = evaluate(policy, state, now)
    return result


# -- explaining ------------------------------------------------------------------------------


def copy(state: State) -> State:
    return State.from_json(state.to_json())


def counted_events(
    policy: Policy, entries: Iterable[Entry], now: datetime, limit: int = 200
) -> dict[str, dict[str, list[str]]]:
    """Per component, the ids of the events in the window counted in its numerator and its
    denominator (the newest ``limit`` of each), classified by the same rules as :func:`fold`."""
    oldest_day = day_of(now) - policy.window_days
    cutoff = now - timedelta(days=policy.window_days)
    scratch, exports = State(), ExportSet()
    out: dict[str, dict[str, list[str]]] = {
        name: {"numerator": [], "denominator": []} for name in COMPONENTS
    }
    complaint_types = (events.ComplaintFiled.TYPE, events.ComplaintResolved.TYPE)
    for entry in entries:
        if entry.type in complaint_types:
            if entry.time > cutoff:
                out["after_sales"]["numerator"].append(entry.event_id)
            continue
        delta = _counts(policy, entry, scratch, exports)
        if delta is None or day_of(entry.time) <= oldest_day:
            continue
        pairs = (
            ("quality", "numerator", FIRST_FAILS), ("quality", "denominator", FIRST_INSPECTIONS),
            ("integrity", "numerator", VIOLATIONS), ("integrity", "denominator", VEHICLES),
            ("gate_compliance", "numerator", GATE_REJECTIONS),
            ("gate_compliance", "denominator", DECLARATIONS),
            ("after_sales", "denominator", EXPORTS), ("activity", "numerator", EXPORTS),
        )  # fmt: skip
        for component, side, index in pairs:
            if delta[index]:
                out[component][side].append(entry.event_id)
    for sides in out.values():
        for side, ids in sides.items():
            sides[side] = ids[-limit:]
    return out


_MOVES: dict[str, tuple[tuple[str, dict[int, float], bool], ...]] = {
    "quality": (
        ("one more first inspection passed", {FIRST_INSPECTIONS: 1, VEHICLES: 1}, False),
        ("one more first inspection failed",
         {FIRST_INSPECTIONS: 1, FIRST_FAILS: 1, VEHICLES: 1}, False),
    ),
    "integrity": (
        ("one more vehicle without a violation", {VEHICLES: 1}, False),
        ("one more integrity violation", {VIOLATIONS: 1}, False),
    ),
    "gate_compliance": (
        ("one more declaration accepted", {DECLARATIONS: 1}, False),
        ("one more declaration refused at a gate", {DECLARATIONS: 1, GATE_REJECTIONS: 1}, False),
    ),
    "after_sales": (
        ("one more vehicle exported", {EXPORTS: 1}, False),
        ("one more complaint", {}, True),
    ),
    "activity": (("one vehicle exported", {EXPORTS: 1}, False),),
}  # fmt: skip


def what_would_move(policy: Policy, state: State, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Per component, the score change one more event of each kind would cause (now)."""
    base = evaluate(policy, state, now).score
    moves: dict[str, list[dict[str, Any]]] = {}
    for component, options in _MOVES.items():
        moves[component] = []
        for label, delta, complaint in options:
            probe = copy(state)
            for index, n in delta.items():
                probe.totals[index] += n
            if complaint:
                probe.complaints["what-if"] = [_iso(now), None, "what-if", None]
            score = evaluate(policy, probe, now).score
            moves[component].append({"if": label, "score_change": round(score - base, 2)})
    return moves


def what_if(
    policy: Policy, state: State, hypothetical: Iterable[Entry], exports: Exports
) -> Assessment:
    """The assessment after ``hypothetical`` entries, on a copy: nothing is stored."""
    probe = copy(state)
    moment = None
    for entry in hypothetical:
        fold(policy, probe, entry, exports)
        moment = entry.recorded_at
    assert moment is not None
    return evaluate(policy, probe, moment)
