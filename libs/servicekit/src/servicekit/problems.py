"""RFC 9457 problem+json: one error type for domain code, one set of handlers for every app."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("servicekit.problems")

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


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body over the size limit",
    422: "Invalid input",
    429: "Too many requests (see Retry-After)",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json answers (for routers and routes)."""
    schema = {"$ref": "#/components/schemas/ProblemDetail"}
    return {
        code: {
            "model": ProblemDetail,
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for code in codes
    }


class Problem(Exception):
    """Raise from domain or service code; ``app`` turns it into problem+json.

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
    return {
        "type": TYPE_BASE + exc.type_,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        **exc.extra,
    }


def problem_response(
    status: int,
    type_: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": TYPE_BASE + type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.type_, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, "validation-error", "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(
            exc.status_code, "http-error"
        )
        return problem_response(
            exc.status_code,
            slug,
            slug.replace("-", " ").capitalize(),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(500, "internal-error", "Internal error", "An unexpected error.")


COMMON_ERRORS = (400, 401, 403, 404, 409, 413, 422, 429)


def document_problems(app: FastAPI) -> None:
    """Every operation answers errors as problem+json: say so in the OpenAPI document (FastAPI
    would document its own 422 as application/json), for every common error status."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        # nested models (FieldError) go beside it, referenced where OpenAPI looks for them:
        # pydantic's own "#/$defs/..." does not resolve inside an OpenAPI document
        problem = ProblemDetail.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["ProblemDetail"] = problem
        content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                for code in COMMON_ERRORS:
                    entry = responses.setdefault(str(code), {})
                    entry["description"] = _DESCRIPTIONS.get(
                        code, entry.get("description", "Error")
                    )
                    entry["content"] = content
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
