"""Scoring use cases. ``record`` runs per event inside the consumer base's transaction:
the ledger row and the updated running state commit together, before Kafka is acknowledged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import CloudEvent, new_event
from scoring import domain
from scoring.models import EnterpriseAssessment, LedgerEntry
from scoring.policy import Policy
from servicekit import outbox
from servicekit.problems import NotFound

SOURCE = "ucx/scoring"
GENESIS = "0" * 64
ACTIONS = {"good": "reinstate", "warning": "warn", "suspension": "suspend", "exit": "exit"}


def chain_hash(prev_hash: str, event_id: str, type_: str, data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}|{event_id}|{type_}|{canonical}".encode()).hexdigest()


def record(session: Session, policy: Policy, event: CloudEvent) -> None:
    uscc = event.enterpriseid
    row = session.get(EnterpriseAssessment, uscc)
    if row is None:
        row = EnterpriseAssessment(
            uscc=uscc,
            tally=domain.Tally().model_dump(),
            last_hash=GENESIS,
            score=0.0,
            tier="",
            policy_version=policy.version,
        )
        session.add(row)
    now = datetime.now(UTC)
    digest = chain_hash(row.last_hash, event.id, event.type, event.data)
    session.add(
        LedgerEntry(
            event_id=event.id,
            uscc=uscc,
            type=event.type,
            subject=event.subject,
            time=event.time,
            data=event.data,
            prev_hash=row.last_hash,
            hash=digest,
            recorded_at=now,
        )
    )
    tally = domain.fold(
        policy, domain.Tally.model_validate(row.tally), event.id, event.type, event.data
    )
    assessment = domain.assess(policy, tally)
    row.tally = tally.model_dump()
    row.last_hash = digest
    row.score = assessment.score
    row.tier = assessment.tier
    row.policy_version = policy.version
    row.updated_at = now


def emit_changes(session: Session, policy: Policy, batch: Sequence[CloudEvent]) -> None:
    """Once per enterprise per batch: ``enterprise.assessed`` if its score or tier moved."""
    for uscc in sorted({e.enterpriseid for e in batch}):
        row = session.get(EnterpriseAssessment, uscc)
        if row is None or (row.score == row.emitted_score and row.tier == row.emitted_tier):
            continue
        assessment = domain.assess(policy, domain.Tally.model_validate(row.tally))
        action = ACTIONS[row.tier] if row.tier != row.emitted_tier else "none"
        if row.emitted_tier is None and row.tier == "good":
            action = "none"
        outbox.add(
            session,
            new_event(
                events.EnterpriseAssessed(
                    enterprise_uscc=uscc,
                    score=row.score,
                    tier=row.tier,
                    previous_tier=row.emitted_tier,
                    components={
                        name: events.Component(value=c["value"], weight=c["weight"])
                        for name, c in assessment.components.items()
                    },
                    recommended_action=action,
                    causes=[e.id for e in batch if e.enterpriseid == uscc][-domain.MAX_CAUSES :],
                    policy_version=policy.version,
                    assessed_at=row.updated_at,
                ),
                source=SOURCE,
            ),
        )
        row.emitted_score = row.score
        row.emitted_tier = row.tier


def get_assessment(session: Session, uscc: str) -> EnterpriseAssessment:
    row = session.get(EnterpriseAssessment, uscc.strip().upper())
    if row is None:
        raise NotFound("assessment-not-found", f"No events about enterprise {uscc} yet.")
    return row


def verify_chain(session: Session) -> list[str]:
    """The enterprises whose ledger chain does not verify (tampered or reordered rows)."""
    broken: list[str] = []
    heads: dict[str, str] = {}
    for entry in session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)):
        prev = heads.get(entry.uscc, GENESIS)
        expected = chain_hash(prev, entry.event_id, entry.type, entry.data)
        if (entry.prev_hash != prev or entry.hash != expected) and entry.uscc not in broken:
            broken.append(entry.uscc)
        heads[entry.uscc] = entry.hash
    return broken
