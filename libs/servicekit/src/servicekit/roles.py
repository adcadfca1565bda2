"""Who may do what: the four roles of officials and the one table of admin operations.

Every admin route of every service names its operation (``servicekit.officials.Official``);
this table says which roles may perform it and whether a provincial official is limited to
enterprises of their own province. The test of the role matrix is generated from it, so an
operation without a row here cannot be routed, and a route without an operation fails the
test. Pure: no FastAPI, no database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from servicekit.problems import Forbidden

Role = Literal["ministry", "province", "operator", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True)
class Principal:
    """An official as one request sees them: from a ucx token, an OIDC token, or the
    break-glass admin token."""

    id: str
    name: str
    role: Role
    province: str | None = None
    """The 6-digit province code, for ``province`` officials only."""
    source: Literal["token", "oidc", "admin-token"] = "token"


BREAK_GLASS = Principal(
    id="break-glass", name="UCX_ADMIN_TOKEN (break-glass)", role="ministry", source="admin-token"
)
"""``UCX_ADMIN_TOKEN``: the bootstrap and break-glass credential, with the ministry's role."""


@dataclass(frozen=True)
class Operation:
    name: str
    service: str
    write: bool
    roles: frozenset[Role]
    """Besides ``ministry`` (every operation) and, for reads, ``auditor`` (every read)."""
    scope: str | None = None
    """The path parameter holding the target enterprise's USCC: a ``province`` official may
    act only on enterprises of their own province."""
    summary: str = ""

    def allows(self, role: Role) -> bool:
        return role == "ministry" or role in self.roles or (role == "auditor" and not self.write)


def _op(
    name: str, write: bool, *roles: Role, scope: str | None = None, summary: str = ""
) -> Operation:
    service = name.split(".", 1)[0]
    return Operation(name, service, write, frozenset(roles), scope, summary)


_PROVINCE: tuple[Role, ...] = ("province",)
_OPERATOR: tuple[Role, ...] = ("operator",)

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        # registry: admission decisions and complaints are regulatory, scoped by province
        _op("registry.enterprise.decide", True, *_PROVINCE, scope="uscc",
            summary="approve, refuse, warn, suspend, exit, reinstate, renew"),
        _op("registry.enterprise.review-list", False, *_PROVINCE,
            summary="the reinstatement review list"),
        _op("registry.complaint.file", True, *_PROVINCE, scope="uscc"),
        _op("registry.complaint.resolve", True, *_PROVINCE, scope="uscc"),
        _op("registry.principal.create", True),
        _op("registry.principal.read", False),
        _op("registry.principal.rotate", True),
        _op("registry.principal.revoke", True),
        # inspection: stations and their keys are operations; a revocation is regulatory
        _op("inspection.station.create", True, *_OPERATOR),
        _op("inspection.station.key-create", True, *_OPERATOR),
        _op("inspection.station.key-read", False, *_OPERATOR),
        _op("inspection.station.key-revoke", True, *_OPERATOR),
        _op("inspection.station.status", True, *_OPERATOR),
        _op("inspection.certificate.revoke", True),
        # customs: brokers and webhook subscriptions are operations
        _op("customs.broker.create", True, *_OPERATOR),
        _op("customs.broker.secret-rotate", True, *_OPERATOR),
        _op("customs.declaration.read", False, *_PROVINCE, *_OPERATOR),
        _op("customs.subscription.create", True, *_OPERATOR),
        _op("customs.subscription.read", False, *_OPERATOR),
        _op("customs.subscription.update", True, *_OPERATOR),
        _op("customs.subscription.delete", True, *_OPERATOR),
        _op("customs.subscription.secret-rotate", True, *_OPERATOR),
        _op("customs.subscription.test", True, *_OPERATOR),
        _op("customs.subscription.replay", True, *_OPERATOR),
        # scoring: rescore and redrive are operations; the ledger is read by auditors
        _op("scoring.rescore.start", True, *_OPERATOR),
        _op("scoring.rescore.read", False, *_OPERATOR),
        _op("scoring.ledger.verify", False, *_OPERATOR),
        _op("scoring.dlq.redrive", True, *_OPERATOR),
        # every service: the audit trail
        *(_op(f"{s}.audit.read", False) for s in ("registry", "inspection", "customs", "scoring")),
    )
}  # fmt: skip


def province_of(uscc: str) -> str:
    """USCC positions 3-4 are the province of the registering admin division."""
    return f"{uscc[2:4]}0000"


def authorize(principal: Principal, operation: Operation, uscc: str | None = None) -> None:
    """Returns if ``principal`` may perform ``operation`` (on the enterprise ``uscc``, for a
    scoped operation); raises 403 otherwise, naming what is missing."""
    if not operation.allows(principal.role):
        raise Forbidden(
            "role-not-allowed",
            f"The role {principal.role!r} may not perform {operation.name}.",
            title="Forbidden",
        )
    if operation.scope and principal.role == "province" and uscc is not None:
        province = province_of(uscc)
        if principal.province != province:
            raise Forbidden(
                "other-province",
                f"Enterprise {uscc} belongs to province {province}; this official acts for "
                f"province {principal.province} only.",
                title="Forbidden",
            )
