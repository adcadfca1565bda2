"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """The broker and the topics' layout (every process that talks to Kafka)."""

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("kafka_bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_idempotent_producer: bool = True
    partitions: int = 6
    replication_factor: int = 1


class RelaySettings(BaseSettings):
    """The outbox relay's: its polling interval bounds end-to-end freshness (DESIGN.md §6)."""

    relay_poll_interval_s: float = 0.02
    relay_batch_size: int = 500
    relay_backoff_max_s: float = 5.0
    relay_ready_max_backlog: int = 10_000
    """The relay's /readyz fails at this many unpublished records (it is falling behind)."""


class ConsumerSettings(BaseSettings):
    """The worker's (faust). The embedded broker holds joins for session_timeout/2 and does
    not wake waiting fetches: keep these small there, defaults of Kafka in production."""

    consumer_fetch_max_wait_ms: int = 100
    consumer_session_timeout_s: float = 6.0
    consumer_heartbeat_interval_s: float = 1.0
    consumer_rebalance_timeout_s: float = 2.0
    consumer_batch_size: int = 500
    consumer_batch_within_s: float = 0.02
    consumer_merge_max: int = 8000
    """Batches that queued while the one before was applied go into one transaction, up to
    this many records."""
    consumer_max_attempts: int = 3
    """How often the redo tries a failing event's handler before it is a dead letter."""
    consumer_apply_in_child: bool = False
    """Apply batches in a child process (its own core and GIL) instead of a thread."""
    worker_port: int = 0
    """faust web port for the worker's /healthz, /readyz, /metrics (0 = api port + 100)."""


class IdentitySettings(BaseSettings):
    """Who officials are (servicekit.officials): the registry's principals directory and,
    optionally, an OpenID Connect issuer. Read without the service prefix."""

    registry_url: str = Field(
        default="http://127.0.0.1:8001",
        validation_alias=AliasChoices("registry_url", "UCX_REGISTRY_URL"),
    )
    """Where every other service asks who holds an official's token."""
    oidc_issuer: str = Field(
        default="", validation_alias=AliasChoices("oidc_issuer", "UCX_OIDC_ISSUER")
    )
    """The identity provider's issuer URL ('' = no OpenID Connect)."""
    oidc_audience: str = Field(
        default="ucx", validation_alias=AliasChoices("oidc_audience", "UCX_OIDC_AUDIENCE")
    )
    oidc_role_claim: str = Field(
        default="ucx_role", validation_alias=AliasChoices("oidc_role_claim", "UCX_OIDC_ROLE_CLAIM")
    )
    oidc_province_claim: str = Field(
        default="ucx_province",
        validation_alias=AliasChoices("oidc_province_claim", "UCX_OIDC_PROVINCE_CLAIM"),
    )
    oidc_name_claim: str = Field(
        default="name", validation_alias=AliasChoices("oidc_name_claim", "UCX_OIDC_NAME_CLAIM")
    )
    oidc_jwks_refresh_cooldown_s: float = Field(
        default=30.0,
        ge=0,
        validation_alias=AliasChoices(
            "oidc_jwks_refresh_cooldown_s", "UCX_OIDC_JWKS_REFRESH_COOLDOWN_S"
        ),
    )
    """At most one JWKS fetch this often for tokens naming a key the issuer did not list."""


class BaseServiceSettings(IdentitySettings, ConsumerSettings, RelaySettings, KafkaSettings):
    """Defaults are the embedded stack's; each service subclasses with its own env prefix and
    reads every group's settings (Kafka, relay, consumer) flat, e.g. ``relay_batch_size``.
    Shared names (``KAFKA_BOOTSTRAP_SERVERS``, ``UCX_ADMIN_TOKEN``) are read without the
    service prefix."""

    model_config = SettingsConfigDict(env_prefix="UCX_", populate_by_name=True, extra="ignore")

    service_name: str = "service"
    database_url: str = "sqlite:///var/service.db"
    port: int = 8000
    host: str = "127.0.0.1"
    admin_token: str = Field(
        default="", validation_alias=AliasChoices("admin_token", "UCX_ADMIN_TOKEN")
    )
    max_body_bytes: int = 1024 * 1024
    idempotency_retention_h: float = 24.0
    """How long an Idempotency-Key's answer is replayed; older answers are pruned."""
    idempotency_prune_interval_s: float = 600.0
    clock_skew_s: float = 300.0
    """How far in the future a partner's claimed time may lie (clock skew) before it is 422
    ``time_out_of_range``; how far in the past is policy data, per field."""
    log_level: str = "INFO"

    @property
    def worker_web_port(self) -> int:
        return self.worker_port or self.port + 100

    @property
    def relay_web_port(self) -> int:
        return self.port + 200
