from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from inspection.policy import POLICIES
from servicekit.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="INSPECTION_", populate_by_name=True, extra="ignore"
    )

    service_name: str = "inspection"
    port: int = 8002
    database_url: str = "sqlite:///var/inspection.db"
    policy_path: Path = POLICIES / "v1.yaml"
    """The policy file that decides verdicts, validity and the posting limit (its ``version``
    is recorded with each verdict); loaded once when the app starts."""
    rotated_key_grace_hours: float = 24.0
    signing_key: str = ""
    """Ed25519 private key, base64 of the 32-byte seed. Empty: one is generated into
    ``signing_key_file`` on first use (embedded default; production passes the secret)."""
    signing_key_file: str = "var/inspection-signing-key"
    verify_rate_per_minute: int = 60
    """Public certificate checks per client address per minute."""
