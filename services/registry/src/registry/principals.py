"""Principals: the officials who act in ucx, and their API tokens (servicekit.roles has the
role matrix). The registry is their system of record; the other services ask it
(``POST /v1/principals/introspect``).

A token is shown once, when it is issued, and stored as its SHA-256 digest (it carries 256
random bits, so no stretching is needed). Rotation issues a new token and cuts every older
live one to a short overlap; revocation ends the principal and all its tokens at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import uuid_utils
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry.models import PrincipalRow, PrincipalToken
from servicekit.auth import hash_key, new_api_key
from servicekit.officials import PRINCIPAL_TOKEN_PREFIX
from servicekit.problems import NotFound, Problem
from servicekit.roles import Principal, Role


@dataclass(frozen=True)
class Issued:
    principal: PrincipalRow
    token: str
    token_row: PrincipalToken


def _check_province(role: Role, province: str | None) -> None:
    if (role == "province") != (province is not None):
        raise Problem(
            "province-required" if role == "province" else "province-not-allowed",
            "A province official needs a province; no other role has one.",
            status=422,
            errors=[
                {
                    "field": "province",
                    "rule": "province_for_province_role",
                    "message": "province_for_province_role: set for role province, else absent",
                }
            ],
        )


def _issue(session: Session, principal_id: str, now: datetime, lifetime: timedelta) -> Issued:
    token = new_api_key(PRINCIPAL_TOKEN_PREFIX.rstrip("_"))
    row = PrincipalToken(
        id=str(uuid_utils.uuid7()),
        principal_id=principal_id,
        digest=hash_key(token),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    principal = session.get(PrincipalRow, principal_id)
    assert principal is not None
    return Issued(principal, token, row)


def create(
    session: Session,
    *,
    name: str,
    role: Role,
    province: str | None,
    created_by: str,
    now: datetime,
    lifetime: timedelta,
) -> Issued:
    _check_province(role, province)
    principal = PrincipalRow(
        id=f"p-{uuid_utils.uuid7()}",
        name=name,
        role=role,
        province=province,
        created_at=now,
        created_by=created_by,
    )
    session.add(principal)
    session.flush()
    return _issue(session, principal.id, now, lifetime)


def get(session: Session, principal_id: str) -> PrincipalRow:
    principal = session.get(PrincipalRow, principal_id)
    if principal is None:
        raise NotFound("principal-not-found", f"No principal {principal_id}.")
    return principal


def _live(session: Session, principal_id: str) -> PrincipalRow:
    principal = get(session, principal_id)
    if principal.revoked_at is not None:
        raise Problem("principal-revoked", f"Principal {principal_id} is revoked.", status=409)
    return principal


def rotate(
    session: Session, principal_id: str, *, now: datetime, lifetime: timedelta, overlap: timedelta
) -> Issued:
    """A new token; every older live token stays valid for ``overlap`` at most."""
    _live(session, principal_id)
    cut = now + overlap
    session.execute(
        update(PrincipalToken)
        .where(
            PrincipalToken.principal_id == principal_id,
            PrincipalToken.revoked_at.is_(None),
            PrincipalToken.expires_at > cut,
        )
        .values(expires_at=cut)
    )
    return _issue(session, principal_id, now, lifetime)


def revoke(session: Session, principal_id: str, *, now: datetime) -> PrincipalRow:
    principal = _live(session, principal_id)
    principal.revoked_at = now
    session.execute(
        update(PrincipalToken)
        .where(PrincipalToken.principal_id == principal_id, PrincipalToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return principal


def tokens(session: Session, principal_id: str) -> list[PrincipalToken]:
    query = select(PrincipalToken).where(PrincipalToken.principal_id == principal_id)
    return list(session.scalars(query.order_by(PrincipalToken.created_at)))


def listed(session: Session, cursor: str | None, limit: int) -> list[PrincipalRow]:
    query = select(PrincipalRow).order_by(PrincipalRow.id).limit(limit)
    if cursor:
        query = query.where(PrincipalRow.id > cursor)
    return list(session.scalars(query))


def lookup(session: Session, token: str, now: datetime) -> Principal | None:
    """The active principal holding ``token`` at ``now``: token neither expired nor revoked,
    principal not revoked."""
    row = session.execute(
        select(PrincipalRow)
        .join(PrincipalToken, PrincipalToken.principal_id == PrincipalRow.id)
        .where(
            PrincipalToken.digest == hash_key(token),
            PrincipalToken.revoked_at.is_(None),
            PrincipalToken.expires_at > now,
            PrincipalRow.revoked_at.is_(None),
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return Principal(id=row.id, name=row.name, role=row.role, province=row.province)  # type: ignore[arg-type]
