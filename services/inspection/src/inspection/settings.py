from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="INSPECTION_", populate_by_name=True, extra="ignore"
    )

    service_name: str = "inspection"
    port: int = 8002
    database_url: str = "sqlite:///var/inspection.db"
    certificate_valid_days: int = 90
