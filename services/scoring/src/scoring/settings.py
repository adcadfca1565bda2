from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import BaseServiceSettings

POLICIES = Path(__file__).resolve().parents[2] / "policies"


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCORING_", populate_by_name=True, extra="ignore")

    service_name: str = "scoring"
    port: int = 8004
    database_url: str = "sqlite:///var/scoring.db"
    policy_path: Path = POLICIES / "v2.yaml"
    """The assessment policy (SCORING_POLICY_PATH); after a change, POST /v1/rescore."""
    # Bigger batches than the other workers: per-batch work (load and store each enterprise's
    # state, one commit) is what the worker amortises; 50 ms still keeps assessments fresh.
    consumer_batch_size: int = 2000
    consumer_batch_within_s: float = 0.05
    # The fold and the ledger writes run in a child process: with the thread, they and faust's
    # own loop shared one GIL (bench: 0.38 of the no-op agent's rate; README "Scoring").
    consumer_apply_in_child: bool = True
    # POST /v1/rescore folds enterprises in this many spawned processes (1: in the api's own).
    rescore_processes: int = Field(default=2, ge=1, le=64)
    # Rescore jobs are rows the worker runs (scoring.rescore): it looks for one this often,
    # holds it under a lease renewed after every chunk, and a job whose runner died is
    # resumed by any worker once the lease has passed.
    rescore_poll_interval_s: float = Field(default=2.0, gt=0)
    rescore_lease_s: float = Field(default=120.0, gt=0)
    rescore_chunk: int = Field(default=100, ge=1)
    """Enterprises per chunk: one transaction, the unit a resumed job does not repeat."""
    reevaluate_interval_s: float = 3600.0
    # The ops console (/ops): where every service's api listens (worker +100, relay +200).
    ops_host: str = "127.0.0.1"
    ops_services: dict[str, int] = {
        "registry": 8001, "inspection": 8002, "customs": 8003, "scoring": 8004,
    }  # fmt: skip
    """How often the clock looks for enterprises whose window has not moved today."""
