"""Every operation a partner (enterprise, station, customs broker) calls, on the running stack
over HTTP, with no credentials, a malformed one, a revoked or rotated-out one, and another
tenant's: each is refused with a problem+json and changes nothing; a station may inspect any
registered vehicle (that is its job), a broker may act only for its own enterprises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

import factories
from helpers import ADMIN, bearer
from stack_support import RunningStack, admitted_enterprise, signed, wait_for

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Case:
    operation: str
    credential: str
    send: Callable[[], httpx.Response]
    expected: int

    def refused(self, r: httpx.Response) -> bool:
        if self.expected == 207:  # a batch answers row by row: every row refused
            return r.status_code == 207 and r.json()["created"] == 0
        return r.status_code == self.expected and r.headers.get("content-type") == PROBLEM


def test_partner_operations_refuse_missing_malformed_revoked_and_foreign_credentials(
    stack: RunningStack,
) -> None:
    registry = stack.client("registry")
    inspection = stack.client("inspection")
    customs = stack.client("customs")

    a_uscc, a_key = admitted_enterprise(registry)
    b_uscc, b_key = admitted_enterprise(registry)
    mine = factories.vehicle(a_uscc)
    assert registry.post("/v1/vehicles", json=mine, headers=bearer(a_key)).status_code == 201
    stations = [
        inspection.post("/v1/stations", json=factories.station(), headers=ADMIN).json()
        for _ in range(2)
    ]
    revoked = stations[0]
    rotated = inspection.post(f"/v1/stations/{revoked['id']}/keys", headers=ADMIN).json()
    gone = inspection.delete(
        f"/v1/stations/{revoked['id']}/keys/{revoked['key_id']}", headers=ADMIN
    )
    assert gone.status_code in (200, 204), gone.text
    brokers = [
        customs.post(
            "/v1/brokers",
            headers=ADMIN,
            json={"name": "Xiamen Haitong", "customs_code": code, "enterprises": [uscc]},
        ).json()
        for uscc, code in ((a_uscc, "3502980123"), (b_uscc, "3502980456"))
    ]
    broker_a, broker_b = brokers
    hook_a = f"/v1/webhooks/brokers/{broker_a['id']}"

    def register(headers: dict[str, str]) -> Callable[[], httpx.Response]:
        return lambda: registry.post(
            "/v1/vehicles", json=factories.vehicle(a_uscc), headers=headers
        )

    def register_batch(headers: dict[str, str]) -> Callable[[], httpx.Response]:
        rows = [factories.vehicle(a_uscc) for _ in range(2)]
        return lambda: registry.post("/v1/vehicles:batch", json={"vehicles": rows}, headers=headers)

    def inspect(headers: dict[str, str]) -> Callable[[], httpx.Response]:
        return lambda: inspection.post(
            "/v1/inspections", json=factories.inspection(mine["vin"]), headers=headers
        )

    def webhook(
        secret: str | None, path: str = hook_a, uscc: str = a_uscc, skew_s: int = 0
    ) -> Callable[[], httpx.Response]:
        def send() -> httpx.Response:
            body, headers = signed(
                secret or broker_a["secret"],
                "declaration.lodged",
                factories.declaration(mine["vin"], uscc),
            )
            if secret is None:
                headers.pop("webhook-signature")
            if skew_s:
                headers["webhook-timestamp"] = str(
                    int((datetime.now(UTC) - timedelta(seconds=skew_s)).timestamp())
                )
            return customs.post(path, content=body, headers=headers)

        return send

    cases = [
        Case("POST /v1/vehicles", "none", register({}), 401),
        Case("POST /v1/vehicles", "malformed", register({"Authorization": "Bearer"}), 401),
        Case("POST /v1/vehicles", "unknown key", register(bearer("ucx_" + "0" * 40)), 401),
        Case("POST /v1/vehicles", "another enterprise's key", register(bearer(b_key)), 403),
        Case("POST /v1/vehicles:batch", "none", register_batch({}), 401),
        Case("POST /v1/vehicles:batch", "another enterprise's key (rows: not-your-enterprise)",
             register_batch(bearer(b_key)), 207),
        Case("POST /v1/inspections", "none", inspect({}), 401),
        Case("POST /v1/inspections", "malformed", inspect({"Authorization": "Basic eDp5"}), 401),
        Case("POST /v1/inspections", "revoked station key", inspect(bearer(revoked["api_key"])),
             401),
        Case("POST /v1/inspections", "an enterprise's key", inspect(bearer(a_key)), 401),
        Case("POST /v1/webhooks/brokers/{id}", "unsigned", webhook(None), 401),
        Case("POST /v1/webhooks/brokers/{id}", "another broker's secret",
             webhook(broker_b["secret"]), 401),
        Case("POST /v1/webhooks/brokers/{id}", "timestamp 10 min old",
             webhook(broker_a["secret"], skew_s=600), 401),
        Case("POST /v1/webhooks/brokers/{id}", "own secret, another broker's enterprise",
             webhook(broker_a["secret"], uscc=b_uscc), 403),
        Case("POST /v1/webhooks/brokers/{id}", "another broker's URL and secret, my enterprise",
             webhook(broker_b["secret"], f"/v1/webhooks/brokers/{broker_b['id']}"), 403),
    ]  # fmt: skip

    wrong = []
    for case in cases:
        r = case.send()
        if not case.refused(r):
            wrong.append(f"{case.operation} with {case.credential}: {r.status_code} {r.text}")
    assert not wrong, "\n".join(wrong)

    # nothing changed: the only registration is the first, no declaration was recorded
    listed = registry.get("/v1/vehicles", params={"enterprise": a_uscc}).json()
    assert [v["vin"] for v in listed["items"]] == [mine["vin"]]

    # and the right credentials work: any active station inspects, the rotated key included
    for key in (stations[1]["api_key"], rotated["api_key"]):
        wait_for(lambda k=key: inspect(bearer(k))().status_code == 201, 60)
