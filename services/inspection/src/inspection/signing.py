"""Ed25519 signatures over certificate answers, so an importer can verify them offline."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def canonical(payload: dict[str, Any]) -> bytes:
    """The bytes that are signed: JSON with sorted keys, no spaces, UTF-8 (RFC 8785-like)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Signer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]
        self.public_raw_b64 = base64.b64encode(raw).decode()
        self.public_pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, payload: dict[str, Any]) -> str:
        return base64.b64encode(self._key.sign(canonical(payload))).decode()

    @classmethod
    def load(cls, seed_b64: str, key_file: str) -> Signer:
        """From the configured seed, else from (or newly into) the key file."""
        if seed_b64:
            return cls(Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64)))
        path = Path(key_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            seed = os.urandom(32)
            path.write_bytes(base64.b64encode(seed))
            path.chmod(0o600)
        return cls(Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_bytes())))


def verify(public_raw_b64: str, payload: dict[str, Any], signature_b64: str) -> bool:
    """What an importer runs offline, with the public key alone."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_raw_b64))
    try:
        key.verify(base64.b64decode(signature_b64), canonical(payload))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not verified"
        return False
