"""Typed settings for every Scout process, read from ``SCOUT_*`` environment variables.

Example::

    settings = load_settings()                 # reads the environment; SettingsError names each bad variable
    settings = Settings(kafka_bootstrap="127.0.0.1:19092", topic="t1")   # explicit, for tests
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ORIGIN = re.compile(r"https?://[^/\s:]+(:\d{1,5})?")
MAX_MONEY = Decimal("9999999999.99")  # the largest numeric(12,2), what silver stores amounts as


class Settings(BaseSettings):
    """All configuration; validated when built, passed into factories (nothing global)."""

    model_config = SettingsConfigDict(env_prefix="SCOUT_", env_file=None, extra="ignore")

    # --- services -----------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; empty means the embedded pgserver under data_dir.",
    )
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    kafka_idempotence: bool = Field(
        default=True, description="Idempotent producer; the embedded Tansu broker does not support it."
    )
    data_dir: Path = Field(default=Path(".scout"), description="Where embedded services keep their data.")

    # --- topics ---------------------------------------------------------------------------
    topic: str = "pos.transactions.v1"
    dead_letter_topic: str = "pos.transactions.dlq.v1"
    topic_partitions: int = Field(default=3, ge=1, le=256)
    topic_replication_factor: int = Field(
        default=3, ge=1, le=16,
        description="Copies of every partition when Scout creates a topic; a cluster with fewer brokers gets one "
                    "per broker (a single broker: 1).")
    topic_min_insync_replicas: int = Field(
        default=2, ge=1, le=16,
        description="min.insync.replicas of the topics Scout creates: copies an acks=all write needs before it is "
                    "acknowledged (at most the replication factor the topic gets).")

    # --- ingest API -----------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_body_bytes: int = Field(default=1_000_000, ge=1024)
    produce_timeout_s: float = Field(default=5.0, gt=0)
    produce_max_batch_bytes: int = Field(
        default=1_000_000, ge=16_384, le=2_000_000, description="Kafka producer batch per partition (bulk uploads)."
    )
    retry_after_s: int = Field(default=5, ge=1)
    api_batch_max_items: int = Field(default=1000, ge=1, le=100_000, description="Transactions per batch request.")
    api_batch_max_bytes: int = Field(default=10_000_000, ge=1024, description="Body limit of a batch request.")
    api_db_pool_size: int = Field(default=8, ge=1, le=200, description="PostgreSQL connections per API process.")
    recent_hash_cache_size: int = Field(
        default=100_000, ge=0, description="Event hashes remembered per API process to mark resends; 0: off."
    )
    recent_hash_ttl_s: float = Field(default=600.0, gt=0, description="How long a remembered hash counts.")
    idempotency_retention_s: int = Field(
        default=86_400, ge=60, description="How long an Idempotency-Key's first answer is replayed."
    )
    cors_allow_origins: str = Field(
        default="", description="Comma-separated origins allowed to call the API from a browser; '*' for any."
    )

    # --- device authentication ------------------------------------------------------------
    auth_required: bool = Field(default=True, description="Bearer tokens required on /v1 routes.")
    token_cache_ttl_s: float = Field(
        default=5.0, ge=0, le=3600,
        description="How long an API process may answer from a token it keeps in memory (a revocation reaches "
                    "it at once through LISTEN; this bounds a change the listener missed); 0: look up every request.",
    )
    rate_limit_per_s: float = Field(
        default=50.0, gt=0, description="Requests per second per token and API process, unless the token sets one."
    )
    rate_limit_burst_s: float = Field(default=2.0, gt=0, description="Burst allowance, in seconds of the rate.")
    auth_failure_rate_per_s: float = Field(
        default=0.5, gt=0, description="Sustained failed authentications per second allowed per client address."
    )
    auth_failure_burst: int = Field(default=20, ge=1, description="Failed authentications allowed in a burst.")

    # --- streams --------------------------------------------------------------------------
    stream_app_id: str = Field(default="scout", description="Faust app id = the bronze consumers' Kafka group.")
    worker_web_port: int = Field(default=6066, ge=1, le=65535)
    bronze_batch_size: int = Field(
        default=5000, ge=1, description="Most events the bronze consumer lands per transaction.")
    bronze_batch_within_s: float = Field(
        default=0.5, gt=0, description="Longest the bronze consumer waits for records before landing what it has.")
    bronze_revoke_wait_s: float = Field(
        default=5.0, gt=0, description="How long a rebalance or a stop waits for the bronze batch in flight to "
                                       "commit; one still waiting for PostgreSQL after that is fenced by the next "
                                       "owner's epoch.")
    silver_batch_size: int = Field(default=2000, ge=1)
    silver_concurrency: int = Field(
        default=2, ge=1, le=4, description="Silver batches in flight per worker (one plans while the other writes).")
    silver_idle_interval_s: float = Field(default=0.5, gt=0)
    retry_max_backoff_s: float = Field(default=10.0, gt=0)
    broker_session_timeout_s: float = Field(default=6.0, gt=0)
    broker_heartbeat_interval_s: float = Field(default=1.0, gt=0)
    consumer_stall_timeout_s: float = Field(
        default=30.0, ge=0,
        description="A partition counts as stalled when the broker holds records past its offset landed in "
                    "PostgreSQL and that offset has not moved for this long: metric, log line, alert and `scout "
                    "verify` line. 0 turns it off.")
    worker_stop_timeout_s: float = Field(
        default=20.0, gt=0,
        description="A worker told to stop (SIGTERM, SIGINT) that has not exited after this long exits at once: "
                    "a safety net; nothing is lost (a batch commits in PostgreSQL with its offsets, or not at all).")

    # --- metrics (worker and scheduler; the API serves /metrics/ itself) --------------------
    metrics_host: str = Field(default="127.0.0.1", description="Where worker/scheduler metrics listen.")
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535, description="0 turns it off.")
    scheduler_metrics_port: int = Field(default=9102, ge=0, le=65535, description="0 turns it off.")
    consumer_lag_interval_s: float = Field(
        default=5.0, gt=0, description="How often a worker exports its consumer lag per partition."
    )

    # --- product linking -------------------------------------------------------------------
    link_fuzzy_threshold: float = Field(default=80.0, ge=50, le=100, description="rapidfuzz score to consider")
    catalogue_refresh_s: float = Field(default=5.0, gt=0, description="How often workers load new products")

    # --- guardrails -----------------------------------------------------------------------
    max_transaction_amount: Decimal = Field(
        default=Decimal("10000"), gt=0, le=MAX_MONEY, decimal_places=2,
        description="Critical threshold per transaction (a total above it breaks over_threshold).")
    line_sum_tolerance: Decimal = Field(
        default=Decimal("0.01"), ge=0, le=1, description="Share of the total the line sum may differ by.")
    future_skew_s: int = Field(default=300, ge=0)
    ts_earliest: AwareDatetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC),
        description="A ts before this is refused where transactions come in (API 422, upload row rejected).",
    )
    ts_max_ahead_s: int = Field(
        default=7 * 86_400, ge=0,
        description="A ts later than its receipt plus this is refused where transactions come in; nearer ones "
                    "pass to the future_timestamp guardrail (future_skew_s), whose severity is configurable.",
    )
    quality_severities: dict[str, Literal["critical", "warning"]] = Field(
        default_factory=dict,
        description='Override a rule\'s severity, JSON: {"over_threshold": "warning"}; critical is quarantined.',
    )
    link_coverage_min: Decimal = Field(
        default=Decimal("0.95"), ge=0, le=1, description="Share of lines linked to a product.")
    fuzzy_link_share_max: Decimal = Field(
        default=Decimal("0.2"), ge=0, le=1, description="Share of lines linked by fuzzy match.")
    quality_min_lines: int = Field(default=100, ge=1, description="Lines in the window before link shares count.")
    gold_max_staleness_s: float = Field(default=300.0, gt=0, description="Gold behind silver for longer: alert.")

    # --- quality checks and alerts ------------------------------------------------------------
    quality_interval_s: float = Field(default=60.0, gt=0, description="How often the quality-checks job runs.")
    quality_window_s: float = Field(default=3600.0, gt=0, description="Recent window of silver the checks read.")
    quality_sample_size: int = Field(default=20, ge=1, le=200, description="Failing keys kept per check.")
    quality_history_days: int = Field(default=30, ge=1, description="Check history kept in ops.")
    alert_webhook_url: SecretStr | None = Field(default=None, description="POST alert changes here when set.")
    alert_webhook_format: Literal["alertmanager", "json"] = "alertmanager"
    alert_webhook_timeout_s: float = Field(default=5.0, gt=0, le=60, description="Per attempt.")
    alert_webhook_attempts: int = Field(default=3, ge=1, le=10)
    alert_webhook_repeat_s: float = Field(default=3600.0, gt=0, description="Re-send alerts still firing.")

    # --- bulk upload ----------------------------------------------------------------------
    upload_max_bytes: int = Field(default=4_000_000_000, ge=1024, description="Largest CSV upload body.")
    upload_error_rate_max: float = Field(
        default=0.2, gt=0, le=1, description="Circuit breaker: stop when invalid rows / rows read passes this."
    )
    upload_breaker_min_rows: int = Field(default=100, ge=1, description="Rows read before the breaker may trip.")
    upload_batch_size: int = Field(default=500, ge=1, le=10_000, description="Transactions per publish round.")

    # --- jobs -----------------------------------------------------------------------------
    gold_refresh_interval_s: float = Field(default=10.0, gt=0)
    gold_analytics_interval_s: float = Field(
        default=20.0, gt=0, description="Interval of the gold-analytics job (the gold views that scan all of "
        "silver); the other gold views refresh every SCOUT_GOLD_REFRESH_INTERVAL_S."
    )
    relink_interval_s: float = Field(default=300.0, gt=0)
    job_retry_delay_s: float = Field(
        default=30.0, gt=0, description="A failed job runs again after this delay if its next run is later."
    )
    bronze_retention_days: int = Field(
        default=30, ge=1, description="Bronze days (UTC, by received_at) entirely older than this are dropped, "
                                      "unless a row of the day is still queued for silver or quarantined."
    )
    bronze_partition_days_ahead: int = Field(
        default=7, ge=1, le=366, description="Days of bronze partitions the bronze-partitions job keeps ahead of today."
    )
    bronze_partitions_interval_s: float = Field(
        default=3600.0, gt=0, description="How often the bronze-partitions job runs.")
    ops_log_retention_days: int = Field(
        default=14, ge=1, description="ops.gold_refresh_log and ops.job_runs rows older than this are deleted."
    )
    retention_interval_s: float = Field(default=3600.0, gt=0, description="How often the retention job runs.")
    retention_batch_size: int = Field(
        default=10_000, ge=1,
        description="Bronze rows outside the day partitions (default, legacy) deleted per transaction.",
    )

    # --- analyst access -------------------------------------------------------------------
    query_max_rows: int = Field(
        default=1000, ge=1, le=100_000, description="LIMIT enforced on POST /v1/query (added, or capped)."
    )
    query_timeout_ms: int = Field(
        default=5000, ge=100, le=600_000, description="statement_timeout of an analyst query."
    )

    # --- misc -----------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("at least one host:port is required")
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return ",".join(servers)

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins_are_urls(cls, value: str) -> str:
        origins = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin like https://pos.example.com or '*'")
        return ",".join(origins)

    @field_validator("alert_webhook_url", mode="before")
    @classmethod
    def _webhook_is_http(cls, value: object) -> object:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or text == "":
            return None  # an empty variable (e.g. from compose) means no webhook
        if not str(text).startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _topics_differ(self) -> Settings:
        if self.topic == self.dead_letter_topic:
            raise ValueError(f"SCOUT_TOPIC and SCOUT_DEAD_LETTER_TOPIC must differ (both {self.topic!r})")
        return self

    @model_validator(mode="after")
    def _min_insync_fits(self) -> Settings:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(f"SCOUT_TOPIC_MIN_INSYNC_REPLICAS ({self.topic_min_insync_replicas}) must be at most "
                             f"SCOUT_TOPIC_REPLICATION_FACTOR ({self.topic_replication_factor}): no acks=all write "
                             "could be acknowledged")
        return self

    @model_validator(mode="after")
    def _lead_covers_the_skew(self) -> Settings:
        if self.ts_max_ahead_s < self.future_skew_s:
            raise ValueError(f"ts_max_ahead_s ({self.ts_max_ahead_s}) must be at least future_skew_s "
                             f"({self.future_skew_s}): the future_timestamp guardrail judges what lies between")
        return self

    def ts_range(self, now: datetime) -> tuple[datetime, datetime]:
        """The plausible times of sale for a transaction received at ``now``: (earliest, latest)."""
        return self.ts_earliest, now + timedelta(seconds=self.ts_max_ahead_s)

    @property
    def bootstrap_servers(self) -> list[str]:
        return self.kafka_bootstrap.split(",")

    @property
    def cors_origins(self) -> list[str]:
        return self.cors_allow_origins.split(",") if self.cors_allow_origins else []

    def database_dsn(self) -> str:
        """The PostgreSQL URL to connect to; raises when neither set nor embedded-running."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        raise RuntimeError(
            "SCOUT_DATABASE_URL is not set. Run `scout up` for the embedded database, "
            "or set SCOUT_DATABASE_URL=postgresql://user@host:5432/db"
        )


class SettingsError(ValueError):
    """Some ``SCOUT_*`` variables were refused; the message has one line per variable with the reason."""


def load_settings(**explicit: Any) -> Settings:
    """``Settings(**explicit)`` from the environment, or ``SettingsError`` naming each refused variable."""
    try:
        return Settings(**explicit)
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    """One line per error: ``SCOUT_NAME: reason (got 'value')``; a secret's value is never shown."""
    secret = {name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)}
    lines = []
    for error in exc.errors():
        reason = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a check across fields names its variables itself
            lines.append(reason)
            continue
        field, *inner = [str(part) for part in error["loc"]]
        variable = f"SCOUT_{field.upper()}" + "".join(f"[{part}]" for part in inner)
        shown = "" if field in secret else f" (got {error['input']!r})"
        lines.append(f"{variable}: {reason}{shown}")
    return "\n".join(lines)
