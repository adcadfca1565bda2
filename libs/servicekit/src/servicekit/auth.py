"""Bearer credentials and API keys: keys are shown once and stored as SHA-256 digests
(officials' tokens: servicekit.officials).

Each credential is a ``fastapi.security`` scheme (:class:`BearerAuth`), so a route that
depends on one names it in the OpenAPI document and Swagger's "Authorize" can send it."""

from __future__ import annotations

import hashlib
import secrets

from fastapi import Request
from fastapi.security import HTTPBearer

from servicekit.problems import Unauthorized


def new_api_key(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    """Keys carry 256 random bits, so a fast digest is enough (no password stretching)."""
    return hashlib.sha256(key.encode()).hexdigest()


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "missing-credentials", "Send 'Authorization: Bearer <key>'.", title="Unauthorized"
        )
    return token.strip()


class BearerAuth(HTTPBearer):
    """A bearer credential, named in OpenAPI as ``scheme_name``; a request without one is
    answered with servicekit's own 401 problem+json (FastAPI's would not be problem+json)."""

    def __init__(self, scheme_name: str, description: str) -> None:
        super().__init__(scheme_name=scheme_name, description=description, auto_error=False)

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        return bearer(request)
