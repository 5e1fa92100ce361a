"""Settings of the channel gateway (environment prefix ``SB_GATEWAY_``)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard.common import postgres
from switchboard.common.config import ServiceSettings


class Settings(ServiceSettings):
    """Channel gateway settings."""

    model_config = SettingsConfigDict(env_prefix="SB_GATEWAY_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "channel-gateway"
    health_port: int = 18100
    metrics_port: int = 18101
    http_host: str = "127.0.0.1"
    http_port: int = 18080
    # Signs conversation and message ids, so any replica can tell ours from forged ones.
    # Set it (same value on every replica) in production; the default is per process.
    id_secret: SecretStr | None = None
    max_body_bytes: int = 64 * 1024
    max_text_chars: int = 8000
    default_wait_s: float = 30.0
    max_wait_s: float = 120.0
    # How long replies stay available for GET / SSE after they completed.
    reply_ttl_s: float = 600.0
    max_cached_replies: int = 100_000

    # PostgreSQL keeps what must outlive a process and be shared by replicas (deliveries
    # already accepted); needed once a platform channel is on.
    database_url: SecretStr | None = None
    database_schema: str = Field(default="gateway", pattern=postgres.SCHEMA_PATTERN)
    pool_size: int = 4
    # Messages per user and minute, on all replicas together (0: no limit).
    rate_limit_per_minute: int = Field(default=30, ge=0)
    # Platforms retry for up to 24 h (Telegram) or 6 h (Feishu): remember deliveries longer.
    dedupe_keep_s: float = 48 * 3600

    # Telegram: "webhook" takes updates at /v1/channels/telegram/webhook; "polling" fetches
    # them with getUpdates (one replica at a time), for hosts Telegram cannot reach.
    telegram_mode: Literal["off", "webhook", "polling"] = "off"
    telegram_bot_token: SecretStr | None = None
    # Telegram sends it back in X-Telegram-Bot-Api-Secret-Token on every call.
    telegram_webhook_secret: SecretStr | None = None
    # The public URL Telegram should call; registered with setWebhook at start when set.
    telegram_webhook_url: str | None = None
    # A Bot API server other than Telegram's own (a self-hosted one, or the tests' stand-in).
    telegram_api_url: str | None = None
    # Replies to Telegram are sent by one replica each: this consumer group's.
    telegram_group_id: str = "channel-gateway-telegram"

    @model_validator(mode="after")
    def _channel_settings_complete(self) -> Self:
        if self.telegram_mode != "off":
            needed = ["telegram_bot_token", "database_url"]
            if self.telegram_mode == "webhook":
                needed.append("telegram_webhook_secret")
            missing = [name for name in needed if getattr(self, name) is None]
            if missing:
                names = ", ".join("SB_GATEWAY_" + name.upper() for name in missing)
                raise ValueError(f"SB_GATEWAY_TELEGRAM_MODE={self.telegram_mode} needs {names}")
        return self
