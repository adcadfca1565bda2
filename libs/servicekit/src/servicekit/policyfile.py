"""Rules whose values are policy, not code: versioned YAML files under a service's
``policies/`` folder, validated by the service's own pydantic model. Every decision made with
one records its ``version``."""

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


def load_version(model: type[P], folder: Path, version: str) -> P:
    """``<folder>/<version>.yaml``; its ``version`` must match its name."""
    policy = load(model, folder / f"{version}.yaml")
    if policy.version != version:
        raise ValueError(f"{folder / version}.yaml says version {policy.version!r}")
    return policy
