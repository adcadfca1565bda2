"""JSON Schemas generated from the event models; ``python -m contracts.schemas`` writes them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from contracts.envelope import CloudEvent
from contracts.events import EVENT_TYPES

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def generated() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every topic's payload and for the envelope."""
    out: dict[str, dict[str, Any]] = {}
    for model in EVENT_TYPES:
        schema = model.model_json_schema(by_alias=True, mode="serialization")
        schema["$id"] = f"urn:ucx:schema:{model.TOPIC}"
        schema["x-cloudevents-type"] = model.TYPE
        out[f"{model.TOPIC}.json"] = schema
    envelope = CloudEvent.model_json_schema(mode="serialization")
    envelope["$id"] = "urn:ucx:schema:cloudevent"
    out["cloudevent.json"] = envelope
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in generated().items():
        path = directory / name
        path.write_text(render(schema))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write():
        sys.stdout.write(f"wrote {p}\n")
