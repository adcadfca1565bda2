from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from contracts.identifiers import Vin
from inspection import services
from inspection.domain import Inspected
from inspection.policy import InspectionPolicy
from inspection.ratelimit import RateLimiter
from inspection.schemas import (
    CertificatePublic,
    CertificateRevoke,
    FailedItem,
    InspectionCreate,
    InspectionPublic,
    KeyCreated,
    PublicKey,
    StationCreate,
    StationCreated,
    StationKeyPublic,
    StationPublic,
    StationStatusChange,
)
from inspection.settings import Settings
from inspection.signing import Signer
from servicekit.auth import BearerAuth
from servicekit.clock import clock
from servicekit.http import AuthFirstRoute, SessionDep, WriterDep, answer_once
from servicekit.idempotency import Answer, AttemptDep
from servicekit.officials import Official
from servicekit.partnerkeys import partner_key
from servicekit.problems import Problem, problem_responses

router = APIRouter(
    prefix="/v1",
    route_class=AuthFirstRoute,
    responses=problem_responses(401, 403, 404, 409, 413, 422),
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _policy(request: Request) -> InspectionPolicy:
    policy: InspectionPolicy = request.app.state.policy
    return policy


def _signer(request: Request) -> Signer:
    signer: Signer | None = getattr(request.app.state, "signer", None)
    if signer is None:
        settings = _settings(request)
        signer = Signer.load(settings.signing_key, settings.signing_key_file)
        request.app.state.signer = signer
    return signer


STATION_KEY = BearerAuth("stationKey", "An inspection station's API key (shown once).")
StationKeyDep = Annotated[str, Depends(partner_key(STATION_KEY, services.judge_station_key))]
"""The station's API key, judged before the body: 401/403 first, whatever the body."""


@router.post("/stations", status_code=status.HTTP_201_CREATED, response_model=StationCreated)
def create_station(
    body: StationCreate,
    request: Request,
    _official: Official("inspection.station.create"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        station, key, api_key = services.create_station(session, body)
        created = StationCreated(id=station.id, name=station.name, key_id=key.id, api_key=api_key)
        return Answer.of(created, 201)

    return answer_once(request, attempt, unit)


@router.post(
    "/stations/{station_id}/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated
)
def rotate_key(
    station_id: str,
    request: Request,
    _official: Official("inspection.station.key-create"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    """A new key; the station's other keys keep working for 24 h (rotation window)."""

    def unit(session: Session) -> Answer:
        key, api_key, until = services.rotate_key(session, _settings(request), station_id)
        created = KeyCreated(key_id=key.id, api_key=api_key, previous_keys_valid_until=until)
        return Answer.of(created, 201)

    return answer_once(request, attempt, unit)


@router.get("/stations/{station_id}/keys")
def list_keys(
    station_id: str,
    session: SessionDep,
    _official: Official("inspection.station.key-read"),  # type: ignore[valid-type]
) -> list[StationKeyPublic]:
    return [
        StationKeyPublic.model_validate(k, from_attributes=True)
        for k in services.list_keys(session, station_id)
    ]


@router.delete("/stations/{station_id}/keys/{key_id}")
def revoke_key(
    station_id: str,
    key_id: str,
    session: SessionDep,
    _official: Official("inspection.station.key-revoke"),  # type: ignore[valid-type]
) -> StationKeyPublic:
    key = services.revoke_key(session, station_id, key_id)
    return StationKeyPublic.model_validate(key, from_attributes=True)


@router.post("/stations/{station_id}/status", response_model=StationPublic)
def set_station_status(
    station_id: str,
    body: StationStatusChange,
    request: Request,
    _official: Official("inspection.station.status"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        station = services.set_station_status(session, station_id, body.status)
        return Answer.of(StationPublic.model_validate(station, from_attributes=True))

    return answer_once(request, attempt, unit)


def _public(inspection: Inspected, policy: InspectionPolicy) -> InspectionPublic:
    return InspectionPublic(
        id=inspection.id,
        vin=inspection.vin,
        verdict=inspection.verdict,
        first_inspection=inspection.first_inspection,
        certificate_no=inspection.certificate_no,
        valid_until=inspection.valid_until,
        failed_items=[
            FailedItem(code=c, severity=policy.checklist[c]) for c in inspection.failed_items
        ],
        remarks=inspection.remarks,
        fraud_signals=inspection.fraud_signals,
        inspected_at=inspection.inspected_at,
        received_at=inspection.received_at,
        policy_version=inspection.policy_version,
    )


@router.post("/inspections", status_code=status.HTTP_201_CREATED, response_model=InspectionPublic)
async def post_inspection(
    body: InspectionCreate,
    request: Request,
    writer: WriterDep,
    key: StationKeyDep,
    attempt: AttemptDep,
) -> Response:
    settings, policy = _settings(request), _policy(request)
    answer = await writer.run_idempotent(
        attempt,
        lambda s: services.record_inspection(s, settings, policy, key, body),
        # serialised once here; FastAPI would validate the model again before serialising it
        lambda inspection: Answer.of(_public(inspection, policy), 201),
    )
    return answer.response()


@router.get("/certificates/public-key", responses=problem_responses(429))
def public_key(request: Request) -> PublicKey:
    signer = _signer(request)
    return PublicKey(key_id=signer.key_id, public_key=signer.public_raw_b64, pem=signer.public_pem)


@router.get("/certificates/{certificate_no}", responses=problem_responses(429))
def verify_certificate(
    certificate_no: Annotated[str, Query(max_length=64)] | str,
    vin: Annotated[Vin, Query()],
    session: SessionDep,
    request: Request,
) -> CertificatePublic:
    """Public: anyone may check a certificate against its VIN; the answer is signed."""
    limiter: RateLimiter = request.app.state.limiter
    client = request.client.host if request.client else "unknown"
    wait_s = limiter.allow(client)
    if wait_s:
        raise Problem(
            "rate-limited",
            "Too many certificate checks from this address; retry later.",
            status=429,
            retry_after_s=round(wait_s, 1),
        )
    payload = services.certificate(session, certificate_no[:64], vin, clock.today())
    signer = _signer(request)
    answer = CertificatePublic.model_validate({**payload, "key_id": signer.key_id, "signature": ""})
    signed = answer.model_dump(mode="json", exclude={"signature", "key_id"}, exclude_none=True)
    return answer.model_copy(update={"signature": signer.sign(signed)})


@router.post("/certificates/{certificate_no}/revoke", response_model=dict[str, str])
def revoke_certificate(
    certificate_no: str,
    body: CertificateRevoke,
    request: Request,
    _official: Official("inspection.certificate.revoke"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        inspection = services.revoke_certificate(session, certificate_no, body.reason, body.forged)
        revoked = {"certificate_no": inspection.certificate_no or "", "status": "revoked"}
        return Answer(200, json.dumps(revoked, separators=(",", ":")).encode())

    return answer_once(request, attempt, unit)
