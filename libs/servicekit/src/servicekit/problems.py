"""RFC 9457 problem+json: the error type domain code raises, the body every error is answered
with, and its OpenAPI description. Pure: no web framework is imported here (the clock and the
domain raise problems in processes that serve no HTTP); ``servicekit.problem_http`` answers
them in a FastAPI app."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://ucx.dev/problems/"
_RULE = re.compile(r"^([a-z][a-z0-9_]+): ")


class FieldError(BaseModel):
    field: str
    rule: str
    message: str


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body over the size limit",
    422: "Invalid input",
    429: "Too many requests (see Retry-After)",
}
"""What each error status means, as the OpenAPI documents describe it."""


COMMON_ERRORS = (400, 401, 403, 404, 409, 413, 422, 429)
"""The error statuses every operation's OpenAPI entry documents as problem+json."""


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json answers (for routers and routes)."""
    schema = {"$ref": "#/components/schemas/ProblemDetail"}
    return {
        code: {
            "model": ProblemDetail,
            "description": DESCRIPTIONS.get(code, "Error"),
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for code in codes
    }


class Problem(Exception):
    """Raise from domain or service code; the app (``problem_http.install``) turns it into
    problem+json.

    ``type_`` is a stable slug (e.g. ``vehicle-already-registered``); ``extra`` adds members.
    """

    status = 400

    def __init__(
        self,
        type_: str,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.type_ = type_
        self.detail = detail
        self.title = title or type_.replace("-", " ").capitalize()
        if status is not None:
            self.status = status
        self.extra = extra


class NotFound(Problem):
    status = 404


class Conflict(Problem):
    status = 409


class Forbidden(Problem):
    status = 403


class Unauthorized(Problem):
    status = 401


class Unprocessable(Problem):
    status = 422


def problem_body(exc: Problem) -> dict[str, Any]:
    return problem_document(exc.status, exc.type_, exc.title, exc.detail, **exc.extra)


def problem_document(
    status: int, type_: str, title: str, detail: str, **extra: Any
) -> dict[str, Any]:
    """The problem+json document: ``type_`` is the slug under ``TYPE_BASE``."""
    return {"type": TYPE_BASE + type_, "title": title, "status": status, "detail": detail, **extra}


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic errors -> ``[{field, rule, message}]`` with dotted field paths."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = str(err.get("msg", ""))
        message = message.removeprefix("Value error, ")
        match = _RULE.match(message)
        rule = match.group(1) if match else str(err.get("type", "invalid"))
        out.append({"field": ".".join(loc) or "body", "rule": rule, "message": message})
    return out
