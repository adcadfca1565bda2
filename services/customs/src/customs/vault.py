"""Signing secrets (brokers' and subscriptions'): ``whsec_`` + base64 of 32 random bytes,
encrypted at rest; issued shown once, rotated with an overlap in which the old ones still
verify."""

from __future__ import annotations

import base64
import hashlib
import secrets as random
import uuid
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from sqlalchemy import update
from sqlalchemy.orm import Session

from customs.models import SigningSecret
from servicekit.clock import clock


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(random.token_bytes(32)).decode()


def _fernet(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def seal(secret: str, key: str) -> bytes:
    return _fernet(key).encrypt(secret.encode())


def unseal(token: bytes, key: str) -> str:
    return _fernet(key).decrypt(token).decode()


def issue(
    session: Session, model: type[SigningSecret], owner_id: str, key: str, now: datetime
) -> str:
    """A new secret for the owner, sealed into a row of ``model``; returns it in clear (the
    answer shows it once)."""
    secret = new_signing_secret()
    session.add(
        model(
            id=str(uuid.uuid4()),
            secret_encrypted=seal(secret, key),
            created_at=now,
            **{model.OWNER: owner_id},
        )
    )
    return secret


def rotate(
    session: Session, model: type[SigningSecret], owner_id: str, key: str, overlap: timedelta
) -> tuple[str, datetime]:
    """A new secret; the owner's live ones keep verifying until the overlap ends (returned)."""
    now = clock.now()
    until = now + overlap
    owner = getattr(model, model.OWNER)
    session.execute(
        update(model).where(owner == owner_id, model.expires_at.is_(None)).values(expires_at=until)
    )
    return issue(session, model, owner_id, key, now), until
