"""Broker signing secrets: ``whsec_`` + base64 of 32 random bytes, encrypted at rest."""

from __future__ import annotations

import base64
import hashlib
import secrets as random

from cryptography.fernet import Fernet


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(random.token_bytes(32)).decode()


def _fernet(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def seal(secret: str, key: str) -> bytes:
    return _fernet(key).encrypt(secret.encode())


def unseal(token: bytes, key: str) -> str:
    return _fernet(key).decrypt(token).decode()
