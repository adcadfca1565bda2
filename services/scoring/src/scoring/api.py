from __future__ import annotations

from fastapi import APIRouter, Request

from scoring import domain, services
from scoring.policy import Policy
from scoring.schemas import AssessmentPublic, ComponentPublic
from servicekit.http import SessionDep

router = APIRouter(prefix="/v1")


@router.get("/enterprises/{uscc}/assessment")
def get_assessment(uscc: str, session: SessionDep, request: Request) -> AssessmentPublic:
    policy: Policy = request.app.state.policy
    row = services.get_assessment(session, uscc)
    tally = domain.Tally.model_validate(row.tally)
    assessment = domain.assess(policy, tally)
    return AssessmentPublic(
        uscc=row.uscc,
        score=row.score,
        tier=row.tier,
        components={k: ComponentPublic(**v) for k, v in assessment.components.items()},
        events_counted=tally.events_counted,
        events_by_type=tally.by_type,
        policy_version=row.policy_version,
        updated_at=row.updated_at,
        causes=assessment.causes,
    )
