"""OpenID Connect bearer tokens (JWT) from one configured issuer, for departments that sign
their officials in with their own identity provider.

The issuer's keys come from its JWKS (``jwks_uri`` of its discovery document), cached by
PyJWT's ``PyJWKClient`` and fetched again when a token names an unknown ``kid``. A token is
accepted only if its signature verifies with one of those keys under an asymmetric algorithm
(``alg: none`` and HMAC are refused), and its ``iss``, ``aud`` and ``exp`` are right. The role
and the province come from configurable claims."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, cast, get_args

import httpx
import jwt

from servicekit.problems import Unauthorized
from servicekit.roles import Principal, Role

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    role_claim: str = "ucx_role"
    province_claim: str = "ucx_province"
    name_claim: str = "name"
    jwks_cache_s: float = 300.0
    refresh_cooldown_s: float = 30.0
    """At most one JWKS fetch per this many seconds for tokens naming an unknown ``kid`` (a
    stream of made-up kids must not hammer the issuer)."""
    leeway_s: float = 30.0


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class OidcVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _jwks(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                issuer = self.config.issuer.rstrip("/")
                discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5.0)
                discovery.raise_for_status()
                self._client = jwt.PyJWKClient(
                    discovery.json()["jwks_uri"],
                    lifespan=self.config.jwks_cache_s,
                    timeout=5,
                    cooldown_duration=self.config.refresh_cooldown_s,
                )
            return self._client

    def verify(self, token: str) -> Principal:
        """The official the token names; 401 for any token that is not valid."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise jwt.InvalidAlgorithmError(f"algorithm {header.get('alg')!r} not accepted")
            key = self._jwks().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, httpx.HTTPError, KeyError, ValueError) as exc:
            raise Unauthorized(
                "invalid-credentials", f"The identity token is not valid: {exc}."
            ) from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        role = claims.get(self.config.role_claim)
        if role not in get_args(Role):
            raise Unauthorized(
                "invalid-credentials",
                f"The identity token's {self.config.role_claim!r} claim names no ucx role.",
            )
        province = claims.get(self.config.province_claim)
        if role == "province" and not (isinstance(province, str) and province.isdigit()):
            raise Unauthorized(
                "invalid-credentials",
                f"A province official's token needs a {self.config.province_claim!r} claim.",
            )
        return Principal(
            id=f"oidc:{claims['sub']}",
            name=str(claims.get(self.config.name_claim) or claims["sub"]),
            role=cast(Role, role),
            province=province if role == "province" else None,
            source="oidc",
        )
