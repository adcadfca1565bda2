"""OpenID Connect bearer tokens from a configured issuer. The test serves its own issuer over
real HTTP (discovery document and JWKS, its own RSA keys): a valid token works with the role
and province of its claims; an expired one, a wrong audience, a wrong issuer, an unknown key
and ``alg: none`` are 401; a key the issuer adds later is fetched on its first unknown kid."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from identity_support import OTHER, OWN, as_official

from registry.__main__ import SPEC as REGISTRY
from servicekit.clock import clock

import factories

AUDIENCE = "ucx-regulators"


class Issuer:
    """A minimal OpenID provider: /.well-known/openid-configuration and /jwks."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.add_key("k1")
        issuer = self
        self.fetches = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                elif self.path == "/jwks":
                    issuer.fetches += 1
                    body = {"keys": [issuer.jwk(kid) for kid in issuer.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self, kid: str) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key())
        )
        return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}

    def token(self, kid: str = "k1", key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = clock.now()
        body = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "fj-doc-0042",
            "name": "Lin Hui (Fujian DOC, via IdP)",
            "ucx_role": "province",
            "ucx_province": OWN,
            "iat": now,
            "exp": now + timedelta(minutes=5),
            **claims,
        }
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    running = Issuer()
    yield running
    running.server.shutdown()


@pytest.fixture
def registry(database_url: str, issuer: Issuer) -> Iterator[TestClient]:
    from helpers import service_client

    settings = {
        "oidc_issuer": issuer.url,
        "oidc_audience": AUDIENCE,
        "oidc_jwks_refresh_cooldown_s": 0,  # the new-key test fetches at once
    }
    for client, _settings in service_client(REGISTRY, database_url, **settings):
        yield client


def apply(registry: TestClient, province: str) -> str:
    body = factories.enterprise(factories.uscc(f"{province[:2]}0100"), province=province)
    assert registry.post("/v1/enterprises", json=body).status_code == 201
    return str(body["uscc"])


def decide(registry: TestClient, uscc: str, token: str) -> Any:
    body = {"action": "approve", "reason": "approve: documents checked on site"}
    return registry.post(f"/v1/enterprises/{uscc}/decisions", json=body, headers=as_official(token))


def test_a_valid_token_acts_with_the_role_and_province_of_its_claims(
    registry: TestClient, issuer: Issuer
) -> None:
    own, other = apply(registry, OWN), apply(registry, OTHER)
    token = issuer.token()
    assert decide(registry, own, token).status_code == 200
    assert decide(registry, other, token).status_code == 403
    history = registry.get(f"/v1/enterprises/{own}/history").json()
    assert (history[-1]["official_id"], history[-1]["official_name"]) == (
        "oidc:fj-doc-0042",
        "Lin Hui (Fujian DOC, via IdP)",
    )


def _none_token(issuer: Issuer) -> str:
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "x", "ucx_role": "ministry",
              "exp": int((clock.now() + timedelta(minutes=5)).timestamp())}  # fmt: skip
    return jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]


BAD = {
    "expired": lambda i: i.token(exp=clock.now() - timedelta(minutes=5)),
    "wrong audience": lambda i: i.token(aud="someone-else"),
    "wrong issuer": lambda i: i.token(iss="https://idp.example.org"),
    "unknown key": lambda i: i.token(
        kid="k-stranger", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ),
    "alg none": _none_token,
    "no role": lambda i: i.token(ucx_role="minister"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_an_invalid_token_is_401(registry: TestClient, issuer: Issuer, case: str) -> None:
    uscc = apply(registry, OWN)
    answer = decide(registry, uscc, BAD[case](issuer))
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "applied"


def test_a_new_key_is_fetched_on_its_first_unknown_kid(
    registry: TestClient, issuer: Issuer
) -> None:
    uscc = apply(registry, OWN)
    assert registry.get("/v1/audit", headers=as_official(issuer.token(ucx_role="auditor"))
                        ).status_code == 200  # fmt: skip
    fetched = issuer.fetches
    kid = f"k-{uuid.uuid4().hex[:8]}"  # new in every run (the issuer outlives one database kind)
    issuer.add_key(kid)
    assert decide(registry, uscc, issuer.token(kid=kid)).status_code == 200
    assert issuer.fetches == fetched + 1
