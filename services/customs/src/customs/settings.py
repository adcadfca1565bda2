from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from customs.policy import POLICIES
from servicekit.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMS_", populate_by_name=True, extra="ignore")

    service_name: str = "customs"
    port: int = 8003
    database_url: str = "sqlite:///var/customs.db"
    secret_key: str = "embedded-development-key-change-me"
    """Encrypts broker signing secrets at rest (they are needed in clear to verify HMACs)."""
    pending_timeout_s: float = 300.0
    """How long a declaration waits for a late vehicle/inspection event before it is decided."""
    pending_sweep_interval_s: float = 5.0
    environment: str = "development"
    """``production`` requires https subscription URLs and refuses private addresses (SSRF)."""
    secret_overlap_hours: float = 24.0
    delivery_timeout_s: float = 15.0
    delivery_batch: int = 200
    delivery_interval_s: float = 0.2
    delivery_schedule_s: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    """Wait before each attempt (Svix's schedule); jittered by +-10 %."""
    disable_after_failing_days: float = 5.0
    policy_path: Path = POLICIES / "v1.yaml"
    """The policy file the gates decide by (its ``version`` is recorded with each decision)."""
