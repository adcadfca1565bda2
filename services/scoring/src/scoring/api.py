from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from contracts import events
from scoring import domain, services
from scoring import rescore as rescoring
from scoring.models import AssessmentChange, EnterpriseAssessment, RescoreJob
from scoring.policy import Policy
from scoring.schemas import (
    AssessmentChangePublic,
    AssessmentPublic,
    ComponentExplained,
    ComponentPublic,
    ExitRulePublic,
    Explanation,
    LedgerVerification,
    Percentile,
    Ranked,
    RescoreJobPublic,
    RescoreRequest,
    WhatIf,
    WhatIfResult,
    Window,
)
from scoring.settings import Settings
from servicekit import pagination
from servicekit.clock import clock
from servicekit.http import SessionDep, answer_once
from servicekit.idempotency import Answer, AttemptDep
from servicekit.officials import Official
from servicekit.pagination import MAX_LIMIT, Page
from servicekit.problems import NotFound, Problem, field_errors

router = APIRouter(prefix="/v1")
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
TIERS = ("good", "warning", "suspension", "exit")


def _policy(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


def _components(assessment: domain.Assessment) -> dict[str, ComponentPublic]:
    return {
        name: ComponentPublic(
            value=c.value,
            weight=c.weight,
            observed_rate=c.observed,
            numerator=c.numerator,
            denominator=c.denominator,
        )
        for name, c in assessment.components.items()
    }


def _window(assessment: domain.Assessment) -> Window:
    return Window(start=assessment.window[0], end=assessment.window[1])


def _exit_rules(assessment: domain.Assessment) -> list[ExitRulePublic]:
    return [ExitRulePublic(**r) for r in assessment.exit_rules]


def _headline(row: EnterpriseAssessment, assessment: domain.Assessment) -> dict[str, Any]:
    """What every view of a stored assessment starts with: the enterprise, its stored score
    and tier, the window, the vehicles in it and the exit rules that hold."""
    return {
        "uscc": row.uscc,
        "score": row.score,
        "tier": row.tier,
        "window": _window(assessment),
        "vehicles": assessment.vehicles,
        "exit_rules": _exit_rules(assessment),
    }


@router.get("/enterprises/{uscc}/assessment")
def get_assessment(uscc: str, session: SessionDep, request: Request) -> AssessmentPublic:
    row = services.get_row(session, uscc)
    state = domain.State.from_json(row.state)
    assessment = services.current(_policy(request), row)
    causes = sorted({e for ids in assessment.causes.values() for e in ids})
    return AssessmentPublic(
        **_headline(row, assessment),
        raw_tier=assessment.raw_tier,
        components=_components(assessment),
        exports=assessment.exports,
        events_counted=state.events,
        events_by_type=state.by_type,
        policy_version=row.policy_version,
        updated_at=row.updated_at,
        causes=causes[-domain.MAX_CAUSES :],
        causes_by_component=assessment.causes,
    )


@router.get("/enterprises/{uscc}/assessment/history")
def assessment_history(
    uscc: str, session: SessionDep, cursor: str | None = None, limit: Limit = 50
) -> Page[AssessmentChangePublic]:
    """Every emitted change, oldest first."""
    row = services.get_row(session, uscc)
    query = (
        select(AssessmentChange)
        .where(AssessmentChange.uscc == row.uscc)
        .order_by(AssessmentChange.id)
        .limit(limit)
    )
    after = pagination.decode(cursor)
    if after is not None:
        if not after.isdigit():
            raise pagination.invalid_cursor()
        query = query.where(AssessmentChange.id > int(after))
    changes = list(session.scalars(query))
    return Page[AssessmentChangePublic](
        items=[AssessmentChangePublic.model_validate(c, from_attributes=True) for c in changes],
        next_cursor=pagination.next_cursor([str(c.id) for c in changes], limit),
    )


@router.get("/enterprises/{uscc}/assessment/explain")
def explain(uscc: str, session: SessionDep, request: Request) -> Explanation:
    """Component by component: the rate, its numerator and denominator, the events counted
    in each (from the ledger), and the score change one more event of each kind would cause."""
    policy = _policy(request)
    row = services.get_row(session, uscc)
    state = domain.State.from_json(row.state)
    moment = state.moment or row.updated_at
    assessment = domain.evaluate(policy, state, moment)
    counted = domain.counted_events(policy, services.ledger_entries(session, row.uscc), moment)
    moves = domain.what_would_move(policy, state, moment)
    components = {
        name: ComponentExplained(
            value=c.value,
            weight=c.weight,
            points=round(c.value * c.weight, 2),
            observed_rate=c.observed,
            numerator=c.numerator,
            denominator=c.denominator,
            prior_applied=name != "activity"
            and domain.prior_applied(policy, c.denominator, assessment.vehicles),
            numerator_events=counted[name]["numerator"],
            denominator_events=counted[name]["denominator"],
            what_would_move_it=moves[name],
        )
        for name, c in assessment.components.items()
    }
    return Explanation(
        **_headline(row, assessment),
        policy_version=policy.version,
        components=components,
        tier_boundaries=domain.boundaries(policy, row.tier),
    )


@router.post("/enterprises/{uscc}/what-if", response_model=WhatIfResult)
def what_if(uscc: str, body: WhatIf, request: Request, attempt: AttemptDep) -> Response:
    """The assessment that would result from hypothetical events now; nothing is stored
    (under an Idempotency-Key, the first answer is remembered and replayed)."""

    def unit(session: Session) -> Answer:
        return Answer.of(_what_if(session, _policy(request), uscc.strip().upper(), body))

    return answer_once(request, attempt, unit)


def _hypothetical(uscc: str, body: WhatIf, now: datetime) -> list[domain.Entry]:
    """The hypothetical events as ledger entries folded now, one microsecond apart."""
    entries = []
    for index, hypothetical in enumerate(body.events):
        model = events.BY_TYPE[hypothetical.type]
        try:
            data = model.model_validate({"enterprise_uscc": uscc, **hypothetical.data})
        except ValidationError as exc:
            errors = [
                {**e, "field": f"events.{index}.data.{e['field']}"}
                for e in field_errors(exc.errors())
            ]
            raise Problem(
                "validation-error", "A hypothetical event is not valid.", status=422, errors=errors
            ) from exc
        entries.append(
            domain.Entry(
                f"what-if-{index}",
                hypothetical.type,
                uscc,
                hypothetical.time or now,
                data.model_dump(mode="json", by_alias=True),
                now + timedelta(microseconds=index),
            )
        )
    return entries


def _what_if(session: Session, policy: Policy, uscc: str, body: WhatIf) -> WhatIfResult:
    row = session.get(EnterpriseAssessment, uscc)
    state = domain.State.from_json(row.state) if row else domain.State()
    entries = _hypothetical(uscc, body, clock.now())
    exports = services.known_exports(session, services.exported_vins(entries))
    result = domain.what_if(policy, state, entries, exports)
    return WhatIfResult(
        uscc=uscc,
        current_score=state.score,
        current_tier=state.tier,
        score=result.score,
        tier=result.tier,
        score_change=round(result.score - state.score, 2) if state.score is not None else None,
        recommended_action=domain.recommended_action(policy, result.tier, state.tier),
        components=_components(result),
        exit_rules=_exit_rules(result),
    )


@router.get("/rankings")
def rankings(
    session: SessionDep,
    tier: Annotated[str | None, Query(pattern="^(good|warning|suspension|exit)$")] = None,
    province: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[Ranked]:
    """Enterprises by score, best first."""
    a = EnterpriseAssessment
    query = select(a).order_by(a.score.desc(), a.uscc).limit(limit)
    if tier:
        query = query.where(a.tier == tier)
    if province:
        query = query.where(a.province == province)
    after = pagination.decode(cursor)
    if after is not None:
        score_text, _, last_uscc = after.partition("|")
        try:
            last_score = float(score_text)
        except ValueError as exc:
            raise pagination.invalid_cursor() from exc
        query = query.where(
            or_(a.score < last_score, and_(a.score == last_score, a.uscc > last_uscc))
        )
    rows = list(session.scalars(query))
    return Page[Ranked](
        items=[Ranked.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=pagination.next_cursor([f"{r.score!r}|{r.uscc}" for r in rows], limit),
    )


@router.get("/enterprises/{uscc}/percentile")
def percentile(uscc: str, session: SessionDep) -> Percentile:
    """Where the enterprise stands among enterprises of similar export volume."""
    row = services.get_row(session, uscc)
    a = EnterpriseAssessment
    peers = a.volume_band == row.volume_band
    count = select(func.count()).select_from(a).where(peers)
    total = session.scalar(count) or 0
    lower = session.scalar(count.where(a.score < row.score)) or 0
    ties = session.scalar(count.where(a.score == row.score)) or 0
    return Percentile(
        uscc=row.uscc,
        score=row.score,
        exports=row.exports,
        peer_group=services.band_label(row.volume_band),
        peers=total,
        percentile=round(100 * (lower + 0.5 * ties) / total, 1) if total else 100.0,
    )


@router.post("/rescore", status_code=status.HTTP_202_ACCEPTED, response_model=RescoreJobPublic)
def rescore(
    body: RescoreRequest,
    request: Request,
    _official: Official("scoring.rescore.start"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    """Recompute every enterprise (or one) from the ledger with the loaded policy; the
    differences are emitted. The job is stored here and run by the scoring worker (within
    ``SCORING_RESCORE_POLL_INTERVAL_S``, resumed after a crash); poll
    ``GET /v1/rescore/{id}``. Under an Idempotency-Key the answer is remembered in the job's
    own transaction: a retry gets the first job, never a second."""
    settings: Settings = request.app.state.settings

    def unit(session: Session) -> Answer:
        job = rescoring.start(session, _policy(request), body.uscc, chunk=settings.rescore_chunk)
        return Answer.of(RescoreJobPublic.model_validate(job, from_attributes=True), 202)

    return answer_once(request, attempt, unit)


@router.get("/rescore/{job_id}")
def rescore_job(
    job_id: str,
    session: SessionDep,
    _official: Official("scoring.rescore.read"),  # type: ignore[valid-type]
) -> RescoreJobPublic:
    job = session.get(RescoreJob, job_id)
    if job is None:
        raise NotFound("rescore-job-not-found", f"No rescore job {job_id}.")
    return RescoreJobPublic.model_validate(job, from_attributes=True)


@router.get("/ledger/verify")
def verify_ledger(
    session: SessionDep,
    _official: Official("scoring.ledger.verify"),  # type: ignore[valid-type]
) -> LedgerVerification:
    """Recompute every hash of the chain: tampered, reordered or removed rows show."""
    checked, broken = services.verify_chain(session)
    return LedgerVerification(ok=not broken, entries_checked=checked, broken_enterprises=broken)
