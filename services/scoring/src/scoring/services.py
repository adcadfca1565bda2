"""Scoring use cases. :func:`record_batch` is the worker's batch step: ledger rows, running
states, exported VINs, history and ``enterprise.assessed`` events, in the consumer base's ONE
transaction, committed before Kafka is acknowledged."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Select, Table, bindparam, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import CloudEvent
from scoring import domain
from scoring.models import (
    AssessmentChange,
    EnterpriseAssessment,
    ExportedVin,
    LedgerEntry,
)
from scoring.policy import Policy
from servicekit import outbox
from servicekit.clock import clock
from servicekit.problems import NotFound

SOURCE = "ucx/scoring"
GENESIS = "0" * 64

_LEDGER = cast(Table, LedgerEntry.__table__)
_STATES = cast(Table, EnterpriseAssessment.__table__)
_EXPORTED = cast(Table, ExportedVin.__table__)
_INSERT_LEDGER = insert(_LEDGER)
_INSERT_EXPORTED = insert(_EXPORTED)
_INSERT_STATE = insert(_STATES)
_INSERT_CHANGE = insert(cast(Table, AssessmentChange.__table__))
_STATE_FIELDS = (
    "state", "last_hash", "score", "tier", "exports", "volume_band", "window_end",
    "events_counted", "emitted_score", "emitted_tier", "policy_version", "updated_at",
)  # fmt: skip
_UPDATE_STATE = (
    update(_STATES)
    .where(_STATES.c.uscc == bindparam("key_uscc"))
    .values({name: bindparam(name) for name in _STATE_FIELDS})
)


def canonical(data: Any) -> str:
    """Sorted keys, no spaces, UTF-8: the ledger's text of an event's data (hashed as stored;
    verify and replay read the stored text, so the encoder may change without breaking them).
    orjson refuses what JSON cannot carry exactly (integers past 64 bits): the standard
    library writes those."""
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, event_id: str, type_: str, canonical_data: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{event_id}|{type_}|{canonical_data}".encode()).hexdigest()


def volume_band(exports: int) -> int:
    """Enterprises of similar export volume: 0 | 1-9 | 10-99 | 100-999 | ... exported."""
    return 0 if exports <= 0 else int(math.log10(exports)) + 1


def band_label(band: int) -> str:
    if band == 0:
        return "nothing exported in the window"
    return f"{10 ** (band - 1):,}-{10**band - 1:,} vehicles exported in the window"


def province_of(uscc: str) -> str:
    return uscc[2:8]


class _TableExports:
    """:class:`domain.Exports` over ``exported_vins``: preloaded for a batch, new ones kept
    for one bulk insert."""

    def __init__(self, known: Iterable[tuple[str, str]]) -> None:
        self.known = set(known)
        self.new: list[dict[str, str]] = []

    def first_export(self, uscc: str, vin: str) -> bool:
        if (uscc, vin) in self.known:
            return False
        self.known.add((uscc, vin))
        self.new.append({"uscc": uscc, "vin": vin, "event_id": ""})
        return True


@dataclass
class _Enterprise:
    uscc: str
    state: domain.State
    last_hash: str
    emitted_score: float | None
    emitted_tier: str | None
    exists: bool
    causes: list[str]
    updated_at: datetime | None = None


def _load(session: Session, usccs: Sequence[str]) -> dict[str, _Enterprise]:
    rows = session.execute(
        select(
            _STATES.c.uscc, _STATES.c.state, _STATES.c.last_hash, _STATES.c.emitted_score,
            _STATES.c.emitted_tier,
        ).where(_STATES.c.uscc.in_(usccs))
        .order_by(_STATES.c.uscc)  # worker and rescore lock in one order: no deadlock
        .with_for_update()  # a rescore may be writing too
    ).all()  # fmt: skip
    loaded = {
        r.uscc: _Enterprise(
            r.uscc, domain.State.from_json(r.state), r.last_hash, r.emitted_score,
            r.emitted_tier, True, [],
        )
        for r in rows
    }  # fmt: skip
    for uscc in usccs:
        loaded.setdefault(uscc, _Enterprise(uscc, domain.State(), GENESIS, None, None, False, []))
    return loaded


def known_exports(session: Session, pairs: Iterable[tuple[str, str]]) -> _TableExports:
    """Which of these (USCC, VIN) exports were recorded before: for a batch, or a what-if."""
    wanted = sorted(set(pairs))
    if not wanted:
        return _TableExports(())
    known = session.execute(
        select(_EXPORTED.c.uscc, _EXPORTED.c.vin).where(
            tuple_(_EXPORTED.c.uscc, _EXPORTED.c.vin).in_(wanted)
        )
    ).all()
    return _TableExports((r.uscc, r.vin) for r in known)


def exported_vins(items: Iterable[domain.Entry | CloudEvent]) -> Iterator[tuple[str, str]]:
    """(USCC, VIN) of every export among ``items`` (ledger entries or events)."""
    for item in items:
        if item.type == events.VehicleExported.TYPE:
            uscc = item.uscc if isinstance(item, domain.Entry) else item.enterpriseid
            yield uscc, str(item.data.get("vin"))


def record_batch(
    session: Session, policy: Policy, batch: Sequence[CloudEvent], now: datetime | None = None
) -> None:
    """Fold a batch of new events (the inbox has removed duplicates) into the ledger and the
    running states, and emit what changed. ``now`` is the batch's moment, stored with every
    ledger row, so replay folds each row at the very same moment."""
    now = now or clock.now()
    usccs = sorted({e.enterpriseid for e in batch})
    enterprises = _load(session, usccs)
    exports = known_exports(session, exported_vins(batch))
    ledger_rows = []
    for event in batch:
        ent = enterprises[event.enterpriseid]
        text = canonical(event.data)
        digest = chain_hash(ent.last_hash, event.id, event.type, text)
        ledger_rows.append(
            {
                "event_id": event.id, "uscc": ent.uscc, "type": event.type,
                "subject": event.subject, "time": event.time, "data": text,
                "prev_hash": ent.last_hash, "hash": digest, "recorded_at": now,
            }
        )  # fmt: skip
        ent.last_hash = digest
        before = len(exports.new)
        entry = domain.Entry(event.id, event.type, ent.uscc, event.time, event.data, now)
        domain.fold(policy, ent.state, entry, exports)
        if len(exports.new) > before:
            exports.new[-1]["event_id"] = event.id
        ent.causes.append(event.id)
    connection = session.connection()
    connection.execute(_INSERT_LEDGER, ledger_rows)
    if exports.new:
        connection.execute(_INSERT_EXPORTED, exports.new)
    _save(session, policy, enterprises.values(), now)


def _save(
    session: Session, policy: Policy, enterprises: Iterable[_Enterprise], now: datetime
) -> None:
    """Store each state; emit ``enterprise.assessed`` where the score or tier moved."""
    inserts, updates, emitted, changes = [], [], [], []
    for ent in enterprises:
        state = ent.state
        assessment = domain.evaluate(policy, state, state.moment or now)
        if state.score != ent.emitted_score or state.tier != ent.emitted_tier:
            event, change = _change(policy, ent, assessment, now)
            emitted.append(event)
            changes.append(change)
            ent.emitted_score, ent.emitted_tier = state.score, state.tier
        row = {
            "state": state.to_json(),
            "last_hash": ent.last_hash,
            "score": state.score,
            "tier": state.tier,
            "exports": assessment.exports,
            "volume_band": volume_band(assessment.exports),
            "window_end": state.as_of,
            "events_counted": state.events,
            "emitted_score": ent.emitted_score,
            "emitted_tier": ent.emitted_tier,
            "policy_version": policy.version,
            "updated_at": now,
        }
        if ent.exists:
            updates.append({"key_uscc": ent.uscc, **row})
        else:
            inserts.append({"uscc": ent.uscc, "province": province_of(ent.uscc), **row})
    connection = session.connection()
    if inserts:
        connection.execute(_INSERT_STATE, inserts)
    if updates:
        connection.execute(_UPDATE_STATE, updates)
    if changes:
        outbox.add_all(session, emitted)
        connection.execute(_INSERT_CHANGE, changes)


def _change(
    policy: Policy, ent: _Enterprise, assessment: domain.Assessment, now: datetime
) -> tuple[CloudEvent, dict[str, Any]]:
    """The ``enterprise.assessed`` event for a move, and its assessment-history row."""
    assert ent.state.tier is not None and ent.state.score is not None
    action = domain.recommended_action(policy, ent.state.tier, ent.emitted_tier)
    causes = ent.causes[-domain.MAX_CAUSES :]
    components = {
        name: events.Component(value=c.value, weight=c.weight)
        for name, c in assessment.components.items()
    }
    event = outbox.event_for(
        events.EnterpriseAssessed(
            enterprise_uscc=ent.uscc,
            score=ent.state.score,
            tier=ent.state.tier,
            previous_tier=ent.emitted_tier,
            components=components,
            recommended_action=action,
            causes=causes,
            policy_version=policy.version,
            assessed_at=now,
            exit_rule=domain.exit_rule(assessment),
        ),
        source=SOURCE,
    )
    row = {
        "uscc": ent.uscc,
        "event_id": event.id,
        "score": ent.state.score,
        "tier": ent.state.tier,
        "previous_tier": ent.emitted_tier,
        "recommended_action": action,
        "components": {k: c.__dict__ for k, c in assessment.components.items()},
        "exit_rules": assessment.exit_rules,
        "causes": causes,
        "policy_version": policy.version,
        "assessed_at": now,
    }
    return event, row


# -- the clock ---------------------------------------------------------------------------------


def reevaluate(session: Session, policy: Policy, now: datetime | None = None) -> int:
    """Timer: every enterprise whose window ended before today is evaluated at ``now``;
    where the score or tier moved, a ``scoring.clock-tick`` ledger entry records the moment
    (replay needs it) and the change is emitted. Returns how many moved."""
    now = now or clock.now()
    return tick(session, policy, due(session, now), now)


def due(session: Session, now: datetime) -> list[str]:
    """The enterprises whose window ends before ``now``'s day: the clock's to evaluate."""
    today = domain.day_of(now)
    return list(session.scalars(select(_STATES.c.uscc).where(_STATES.c.window_end < today)))


def tick(session: Session, policy: Policy, usccs: Sequence[str], now: datetime) -> int:
    """Evaluate ``usccs`` (found :func:`due`) at ``now``, under their states' locks. Every
    worker process runs the clock: an enterprise another one ticked after this one found it
    due, or an event moved to today meanwhile, is due no more, so its window is looked at
    again under the lock; its tick id (:func:`domain.tick_id`, one a day) would be refused by
    the ledger anyway. Returns how many moved."""
    if not usccs:
        return 0
    today = domain.day_of(now)
    enterprises = _load(session, usccs)
    ledger_rows = []
    for ent in enterprises.values():
        if ent.exists and ent.state.as_of < today:
            row = _tick(policy, ent, now)
            if row is not None:
                ledger_rows.append(row)
    if ledger_rows:
        session.connection().execute(_INSERT_LEDGER, ledger_rows)
        _save(session, policy, [enterprises[str(r["uscc"])] for r in ledger_rows], now)
    return len(ledger_rows)


def _tick(policy: Policy, ent: _Enterprise, now: datetime) -> dict[str, Any] | None:
    """The clock's ledger row for ``ent`` at ``now``, its state folded past it; None (and
    the state untouched) when nothing visible would move: the next event advances the
    window."""
    probe = domain.copy(ent.state)
    domain.advance(policy, probe, now)
    assessment = domain.evaluate(policy, probe, now)
    if assessment.score == ent.state.score and assessment.tier == ent.state.tier:
        return None
    tick_id = domain.tick_id(ent.uscc, now)
    digest = chain_hash(ent.last_hash, tick_id, domain.TICK, "{}")
    row = {
        "event_id": tick_id, "uscc": ent.uscc, "type": domain.TICK, "subject": ent.uscc,
        "time": now, "data": "{}", "prev_hash": ent.last_hash, "hash": digest,
        "recorded_at": now,
    }  # fmt: skip
    ent.last_hash = digest
    entry = domain.Entry(tick_id, domain.TICK, ent.uscc, now, {}, now)
    domain.fold(policy, ent.state, entry, _NoExports())
    ent.causes.append(tick_id)
    return row


class _NoExports:
    def first_export(self, uscc: str, vin: str) -> bool:
        raise AssertionError("a clock tick exports nothing")


# -- reading the ledger -----------------------------------------------------------------------


_ENTRIES = select(
    _LEDGER.c.seq, _LEDGER.c.event_id, _LEDGER.c.type, _LEDGER.c.uscc, _LEDGER.c.time,
    _LEDGER.c.data, _LEDGER.c.recorded_at,
).order_by(_LEDGER.c.seq)  # fmt: skip


def ledger_entries(session: Session, uscc: str | None = None) -> Iterator[domain.Entry]:
    """Ledger entries in ledger order, as the domain sees them (streamed)."""
    query = _ENTRIES if uscc is None else _ENTRIES.where(_LEDGER.c.uscc == uscc)
    for _seq, entry in _entries(session, query):
        yield entry


def _entries(session: Session, query: Select[Any]) -> Iterator[tuple[int, domain.Entry]]:
    for row in session.execute(query.execution_options(yield_per=2000)):
        yield (
            row.seq,
            domain.Entry(
                row.event_id, row.type, row.uscc, row.time, orjson.loads(row.data), row.recorded_at
            ),
        )


def get_row(session: Session, uscc: str) -> EnterpriseAssessment:
    row = session.get(EnterpriseAssessment, uscc.strip().upper())
    if row is None:
        raise NotFound("assessment-not-found", f"No events about enterprise {uscc} yet.")
    return row


def current(policy: Policy, row: EnterpriseAssessment) -> domain.Assessment:
    """The stored assessment, read off the stored state at the moment it was last folded."""
    state = domain.State.from_json(row.state)
    return domain.evaluate(policy, state, state.moment or row.updated_at)


def verify_chain(session: Session) -> tuple[int, list[str]]:
    """(entries checked, enterprises whose chain does not verify: tampered or reordered)."""
    broken: list[str] = []
    heads: dict[str, str] = {}
    checked = 0
    query = select(
        _LEDGER.c.uscc, _LEDGER.c.event_id, _LEDGER.c.type, _LEDGER.c.data, _LEDGER.c.prev_hash,
        _LEDGER.c.hash,
    ).order_by(_LEDGER.c.seq)  # fmt: skip
    for row in session.execute(query.execution_options(yield_per=5000)):
        checked += 1
        prev = heads.get(row.uscc, GENESIS)
        expected = chain_hash(prev, row.event_id, row.type, row.data)
        if (row.prev_hash != prev or row.hash != expected) and row.uscc not in broken:
            broken.append(row.uscc)
        heads[row.uscc] = row.hash
    stored = {
        r.uscc: r.last_hash for r in session.execute(select(_STATES.c.uscc, _STATES.c.last_hash))
    }
    for uscc, head in heads.items():
        if stored.get(uscc, head) != head and uscc not in broken:
            broken.append(uscc)  # the newest rows were removed
    return checked, broken


def rescore(
    session: Session,
    policy: Policy,
    usccs: Sequence[str],
    *,
    snapshot: Session,
) -> int:
    """Recompute these enterprises from their ledger entries alone with ``policy``, inside
    ``session``'s transaction; how many assessments changed (those are stored and emitted).

    The ledger is folded from ``snapshot`` (a session of a read-only engine) before ``session``
    locks the enterprises' states, and what the worker appended meanwhile is folded under the
    lock: the same result as folding it all under the lock, which on SQLite is the whole
    database's write lock (every worker and api would wait) and would make parallel rescores
    take turns. The enterprises have state rows (a job rescores those that do)."""
    folding = {uscc: (domain.State(), domain.ExportSet()) for uscc in usccs}
    folded = _fold_ledger(snapshot, policy, folding, {})
    snapshot.rollback()  # end the read transaction
    enterprises = _load(session, usccs)  # the worker now waits for these enterprises
    _fold_ledger(session, policy, folding, folded)
    changed = 0
    for uscc, ent in enterprises.items():
        state = folding[uscc][0]
        changed += state.score != ent.state.score or state.tier != ent.state.tier
        ent.state = state
    _save(session, policy, enterprises.values(), clock.now())  # emits where it moved
    return changed


def _fold_ledger(
    session: Session,
    policy: Policy,
    folding: dict[str, tuple[domain.State, domain.ExportSet]],
    after: dict[str, int],
) -> dict[str, int]:
    """Fold each enterprise's entries after its sequence number in ``after`` (0 if absent) up
    to its newest now; returns the newest folded per enterprise. The newest are read first and
    per enterprise: under READ COMMITTED each statement sees its own snapshot, and the entries
    of an enterprise with a state row are written under that row's lock, so every entry of it
    up to its newest is committed (across enterprises the sequence may commit out of order).
    Not so for an enterprise's first batch (no row to lock yet): do not rely on this for
    enterprises without a state row."""
    newest: dict[str, int] = {
        uscc: int(seq)
        for uscc, seq in session.execute(
            select(_LEDGER.c.uscc, func.max(_LEDGER.c.seq))
            .where(_LEDGER.c.uscc.in_(list(folding)))
            .group_by(_LEDGER.c.uscc)
        )
    }
    moved = {uscc: seq for uscc, seq in newest.items() if seq > after.get(uscc, 0)}
    if moved:
        query = _ENTRIES.where(
            _LEDGER.c.uscc.in_(list(moved)),
            _LEDGER.c.seq > min(after.get(uscc, 0) for uscc in moved),
            _LEDGER.c.seq <= max(moved.values()),
        )
        for seq, entry in _entries(session, query):
            if after.get(entry.uscc, 0) < seq <= moved[entry.uscc]:
                state, exports = folding[entry.uscc]
                domain.fold(policy, state, entry, exports)  # the ledger holds an event once
    return {**after, **newest}
