"""Settings of the channel gateway (environment prefix ``SB_GATEWAY_``)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard.common import postgres
from switchboard.common.auth import TokenSettings
from switchboard.common.config import Secret, ServiceSettings
from switchboard.common.http import KEEPALIVE_S
from switchboard.common.media import MediaSettings


class Settings(ServiceSettings, TokenSettings):
    """Channel gateway settings."""

    model_config = SettingsConfigDict(env_prefix="SB_GATEWAY_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "channel-gateway"
    health_port: int = 18100
    metrics_port: int = 18101
    http_host: str = "127.0.0.1"
    http_port: int = 18080
    # Idle keep-alive connections stay open this long: longer than any client or load
    # balancer in front keeps them (see switchboard.common.http.KEEPALIVE_S).
    http_keepalive_s: int = Field(default=KEEPALIVE_S, ge=1)
    # Signs conversation and message ids, so any replica can tell ours from forged ones.
    # Set it (same value on every replica) in production; the default is per process.
    id_secret: Secret | None = None
    max_body_bytes: int = 64 * 1024
    max_text_chars: int = 8000
    # Voice notes and pictures (docs/media.md): on when the media store's secret key is set
    # (SB_GATEWAY_MEDIA__SECRET_KEY); each file at most this large, a voice note this long,
    # a picture this many pixels.
    media: MediaSettings = MediaSettings()
    max_media_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_voice_s: float = Field(default=120.0, gt=0)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    default_wait_s: float = 30.0
    max_wait_s: float = 120.0
    # How long replies stay available for GET / SSE after they completed.
    reply_ttl_s: float = 600.0
    max_cached_replies: int = 100_000

    # Bearer tokens (JWT, TokenSettings' fields): exactly one way to verify them.
    jwt_audience: str = "switchboard-gateway"

    # WebSocket: frames waiting for a slow client before it is disconnected (it resumes),
    # and the heartbeat sent after this much silence.
    ws_max_queued: int = Field(default=256, ge=1)
    ws_heartbeat_s: float = Field(default=20.0, gt=0)

    # PostgreSQL keeps what must outlive a process and be shared by replicas: deliveries
    # already accepted, rate-limit windows, idempotency keys, where replies go.
    database_url: SecretStr | None = None
    database_schema: str = Field(default="gateway", pattern=postgres.SCHEMA_PATTERN)
    pool_size: int = 4
    # Messages per user and minute, on all replicas together (0: no limit).
    rate_limit_per_minute: int = Field(default=30, ge=0)
    # Unauthenticated refusals (401) are audited one by one only for the first of each
    # client address, method and path in a window; the rest as one summary after it.
    rejection_window_s: float = Field(default=60.0, gt=0)
    # Platforms retry for up to 24 h (Telegram) or 6 h (Feishu): remember deliveries longer.
    dedupe_keep_s: float = 48 * 3600

    # Telegram: "webhook" takes updates at /v1/channels/telegram/webhook; "polling" fetches
    # them with getUpdates (one replica at a time), for hosts Telegram cannot reach.
    telegram_mode: Literal["off", "webhook", "polling"] = "off"
    telegram_bot_token: Secret | None = None
    # Telegram sends it back in X-Telegram-Bot-Api-Secret-Token on every call.
    telegram_webhook_secret: Secret | None = None
    # The public URL Telegram should call; registered with setWebhook at start when set.
    telegram_webhook_url: str | None = None
    # A Bot API server other than Telegram's own (a self-hosted one, or the tests' stand-in).
    telegram_api_url: str | None = None
    # Replies to Telegram are sent by one replica each: this consumer group's.
    telegram_group_id: str = "channel-gateway-telegram"

    # Feishu / Lark: "webhook" takes events at /v1/channels/feishu/events; "long_connection"
    # receives them over lark-oapi's websocket client (no public URL needed).
    feishu_mode: Literal["off", "webhook", "long_connection"] = "off"
    feishu_app_id: str | None = None
    feishu_app_secret: Secret | None = None
    # From the app's "Events & Callbacks" page: the token in every event, and the key
    # events are encrypted with (AES-256-CBC) and signed with (X-Lark-Signature).
    feishu_verification_token: Secret | None = None
    feishu_encrypt_key: Secret | None = None
    # The open platform: Feishu's (the default), Lark's (https://open.larksuite.com) or a stand-in.
    feishu_api_url: str | None = None
    feishu_group_id: str = "channel-gateway-feishu"
    # A streamed answer updates its card at most this often (Feishu allows 5 edits/s per message).
    feishu_card_interval_s: float = Field(default=0.5, gt=0)

    # MQTT: on when a broker is configured. Devices' usernames are their ids; the broker's
    # ACL keeps each to its own topics under <namespace>/devices/<id>/.
    mqtt_host: str | None = None  # empty: off
    mqtt_port: int = 1883
    # MQTT over TLS (port 8883 by convention): the broker's certificate verified against
    # mqtt_ca_file (the system's CAs when unset), its host name checked, TLS 1.2 or newer.
    mqtt_tls: bool = False
    mqtt_ca_file: Path | None = None
    mqtt_username: str = "switchboard-gateway"
    mqtt_password: Secret | None = None
    # Fixed per replica (e.g. a StatefulSet pod name): the broker keeps its session, and the
    # commands not yet acknowledged, for mqtt_session_expiry_s while it is away.
    mqtt_client_id: str = Field(default_factory=lambda: f"switchboard-gateway-{socket.gethostname()}")
    mqtt_session_expiry_s: int = 3600
    mqtt_namespace: str = Field(default="switchboard", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Replicas share the commands (an MQTT 5 shared subscription of this group).
    mqtt_share_group: str = Field(default="switchboard-gateway", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    mqtt_group_id: str = "channel-gateway-mqtt"

    @model_validator(mode="after")
    def _channel_settings_complete(self) -> Self:
        if self.database_url is None:
            raise ValueError("SB_GATEWAY_DATABASE_URL is required (postgresql://user:password@host:port/db)")
        if len(self.token_keys()) != 1:
            raise ValueError(
                "set exactly one of SB_GATEWAY_JWT_SECRET, SB_GATEWAY_JWT_PUBLIC_KEY, SB_GATEWAY_JWT_JWKS_URL"
            )
        needed = {}
        if self.telegram_mode != "off":
            needed["TELEGRAM_MODE"] = ["telegram_bot_token"]
            if self.telegram_mode == "webhook":
                needed["TELEGRAM_MODE"].append("telegram_webhook_secret")
        if self.feishu_mode != "off":
            needed["FEISHU_MODE"] = ["feishu_app_id", "feishu_app_secret"]
            if self.feishu_mode == "webhook":
                needed["FEISHU_MODE"] += ["feishu_verification_token", "feishu_encrypt_key"]
        if self.mqtt_host:
            needed["MQTT_HOST"] = ["mqtt_password"]
        for setting, names in needed.items():
            missing = [name for name in names if getattr(self, name) is None]
            if missing:
                listed = ", ".join("SB_GATEWAY_" + name.upper() for name in missing)
                mode = getattr(self, setting.lower())
                raise ValueError(f"SB_GATEWAY_{setting}={mode} needs {listed}")
        return self
