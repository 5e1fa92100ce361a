"""Settings of the scheduler (environment prefix ``SB_SCHEDULER_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from switchboard.common import postgres
from switchboard.common.config import ServiceSettings


class Settings(ServiceSettings):
    """Scheduler settings."""

    model_config = SettingsConfigDict(env_prefix="SB_SCHEDULER_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "scheduler"
    group_id: str = "scheduler"
    health_port: int = 18120
    metrics_port: int = 18121
    # postgresql://user:password@host:port/db; keep the password out of logs (SecretStr).
    database_url: SecretStr = SecretStr("postgresql://switchboard_scheduler@127.0.0.1:15432/switchboard")
    # Tables live in this schema (the connections' search_path); tests use their own.
    database_schema: str = Field(default="scheduler", pattern=postgres.SCHEMA_PATTERN)
    pool_size: int = 10
    # The relay polls this often even without a NOTIFY (a safety net, not the wake-up path).
    relay_poll_s: float = 1.0
    relay_batch: int = 500
    # Due jobs fired per transaction, and the longest sleep between rounds without a NOTIFY.
    dispatch_batch: int = Field(default=1000, ge=1)
    dispatch_poll_s: float = Field(default=1.0, gt=0)
    # A failed attempt is retried after retry_base_s * 2^(attempt-1), at most retry_cap_s,
    # half of it random (jitter); after a job's max_attempts it goes to the dead-letter topic.
    retry_base_s: float = Field(default=5.0, gt=0)
    retry_cap_s: float = Field(default=3600.0, gt=0)
    # Finished (done, failed, cancelled) jobs and the record of handled list / cancel
    # messages are deleted this long after they finished.
    keep_finished_days: float = Field(default=30, gt=0)
    # Devices that device.control intents may command (YAML; the packaged demo set if unset).
    devices_file: Path | None = None
    # A device that has not answered a command within device_answer_s is sent it again
    # (after the retry backoff), device_attempts times in all; then the user is told.
    device_answer_s: float = Field(default=10.0, gt=0)
    device_attempts: int = Field(default=3, ge=1)
    # Plugins whose intents are routed to them, by name (JSON: ["units"]). A plugin must be
    # registered in the catalogue too; a registration alone diverts nothing. A plugin that
    # has not answered within its registration's timeout_s is asked again (after the retry
    # backoff), plugin_attempts times in all; then the user is told.
    plugins_enabled: list[str] = Field(default_factory=list)
    plugin_attempts: int = Field(default=3, ge=1)
    # Workflow definitions (*.yaml; the packaged ticket-classification example if unset).
    workflows_dir: Path | None = None
    # Generation defaults for chat turns.
    max_tokens: int = 256
    temperature: float = 0.7
    system_prompt: str = "You are Switchboard, a helpful and concise assistant."
