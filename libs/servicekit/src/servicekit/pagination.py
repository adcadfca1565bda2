"""Keyset pagination: the cursor is the opaque, URL-safe form of the last key returned."""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from servicekit.problems import Problem

T = TypeVar("T")

MAX_LIMIT = 200


def encode(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def invalid_cursor() -> Problem:
    return Problem(
        "invalid-cursor",
        "The cursor is not one this API returned.",
        status=422,
        errors=[{"field": "cursor", "rule": "cursor", "message": "not a valid cursor"}],
    )


def decode(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise invalid_cursor() from exc


def next_cursor(keys: list[str], limit: int) -> str | None:
    """A cursor when the page is full (there may be more), else None."""
    return encode(keys[-1]) if len(keys) == limit and keys else None


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )
