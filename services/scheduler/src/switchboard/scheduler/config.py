"""Settings of the scheduler (environment prefix ``SB_SCHEDULER_``)."""

from __future__ import annotations

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
    # Generation defaults for chat turns.
    max_tokens: int = 256
    temperature: float = 0.7
    system_prompt: str = "You are Switchboard, a helpful and concise assistant."
