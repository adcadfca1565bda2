from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", populate_by_name=True, extra="ignore")

    service_name: str = "registry"
    port: int = 8001
    database_url: str = "sqlite:///var/registry.db"
    admission_valid_days: int = 365
    reapply_after_exit_days: int = 365
    transfer_endorsement_max_age_days: int = 60
    min_dealer_appraisers: int = 3
    stalled_after_days: int = 60
    expiry_sweep_interval_s: float = 60.0
