"""Rules whose values are policy, not code: versioned YAML files under a service's
``policies/`` folder, validated by the service's own pydantic model. Every decision made with
one records its ``version``. Every service picks its file the same way: the setting
``<SERVICE>_POLICY_PATH`` (default: the service's current file in its ``policies/``)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict


class PolicyFile(BaseModel):
    """Base of every policy model: frozen, unknown keys refused, a version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str


P = TypeVar("P", bound=PolicyFile)


def load(model: type[P], path: Path) -> P:
    return model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
