from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from registry.policy import POLICIES
from servicekit.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    """Operational settings; rule values are in the policy file at ``policy_path``."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", populate_by_name=True, extra="ignore")

    service_name: str = "registry"
    port: int = 8001
    database_url: str = "sqlite:///var/registry.db"
    policy_path: Path = POLICIES / "v1.yaml"
    expiry_sweep_interval_s: float = 60.0
    principal_token_days: float = Field(default=90, gt=0, le=3660)
    """How long a principal's token is valid from its issue."""
    principal_rotation_overlap_h: float = Field(default=24, ge=0, le=720)
    """After a rotation, how long the older tokens stay valid (unless the request says)."""
