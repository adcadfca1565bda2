"""CloudEvents 1.0 envelope in Kafka STRUCTURED mode.

The record value is the whole event as JSON; the record key is the enterprise's USCC; one
header, ``content-type: application/cloudevents+json; charset=UTF-8``.
"""

from __future__ import annotations

import builtins
import functools
import secrets
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import uuid_utils
from pydantic import BaseModel, ConfigDict, Field

from contracts.events import BY_TYPE, EventData

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
SCHEMA_URI = "urn:ucx:schema:{topic}"
"""``dataschema`` names the committed schema file contracts/schemas/<topic>.json."""

D = TypeVar("D", bound=EventData)


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    enterpriseid: str
    traceparent: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def topic(self) -> str:
        return BY_TYPE[self.type].TOPIC

    def parse_data(self, model: builtins.type[D]) -> D:
        """Read ``data`` tolerantly: fields unknown to this consumer are dropped."""
        known = _known_fields(model)
        return model.model_validate({k: v for k, v in self.data.items() if k in known})

    def typed_data(self) -> EventData:
        """``data`` as the model its type promises (a ``ValidationError`` if it is not)."""
        return self.parse_data(BY_TYPE[self.type])


@functools.cache
def _known_fields(model: builtins.type[BaseModel]) -> frozenset[str]:
    return frozenset(
        {f.alias or name for name, f in model.model_fields.items()} | set(model.model_fields)
    )


def new_trace_id() -> str:
    return secrets.token_hex(16)


def traceparent(trace_id: str | None = None) -> str:
    """A W3C ``traceparent`` for a new span in ``trace_id`` (a new trace when None)."""
    return f"00-{trace_id or new_trace_id()}-{secrets.token_hex(8)}-01"


def trace_id_of(parent: str | None) -> str | None:
    if parent and len(parent) == 55 and parent[2] == "-":
        return parent[3:35]
    return None


def new_event(
    data: EventData, *, source: str, trace_id: str | None = None, time: datetime | None = None
) -> CloudEvent:
    return CloudEvent(
        id=str(uuid_utils.uuid7()),
        source=source,
        type=data.TYPE,
        subject=data.subject,
        time=time or datetime.now(UTC),
        dataschema=SCHEMA_URI.format(topic=data.TOPIC),
        enterpriseid=data.enterprise_uscc,
        traceparent=traceparent(trace_id),
        data=data.model_dump(mode="json", by_alias=True, exclude_none=False),
    )


def encode(event: CloudEvent) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def decode(value: bytes) -> CloudEvent:
    """Parse a structured-mode record value; raises ``pydantic.ValidationError`` if malformed."""
    return CloudEvent.model_validate_json(value)


def headers(event: CloudEvent) -> list[tuple[str, bytes]]:
    out = [("content-type", CONTENT_TYPE.encode())]
    if event.traceparent:
        out.append(("traceparent", event.traceparent.encode()))
    return out
