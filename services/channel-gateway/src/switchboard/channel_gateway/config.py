"""Settings of the channel gateway (environment prefix ``SB_GATEWAY_``)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

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
