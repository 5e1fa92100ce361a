"""Settings of the inference client (environment prefix ``SB_INFERENCE_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from switchboard.common.config import ServiceSettings


class ModelRoute(BaseModel):
    """Which Triton model serves a profile, and how to talk to it."""

    model: str
    version: str = ""
    # "chat": inputs messages (JSON), max_tokens, temperature (the llama.cpp models);
    # "echo": input text, the last user turn (the deterministic test models).
    kind: Literal["chat", "echo"] = "chat"


def _default_routes() -> dict[str, ModelRoute]:
    return {"general": ModelRoute(model="smollm2")}


class Settings(ServiceSettings):
    """Inference client settings; routes map a model profile to a Triton model."""

    model_config = SettingsConfigDict(env_prefix="SB_INFERENCE_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "inference-client"
    group_id: str = "inference-client"
    health_port: int = 18110
    metrics_port: int = 18111
    triton_url: str = "127.0.0.1:18001"
    # Profile -> model; a profile with no route uses the "general" one.
    routes: dict[str, ModelRoute] = Field(default_factory=_default_routes)
    default_max_tokens: int = 256
    # Streamed pieces are sent as one chunk at most this often (0: every piece).
    stream_interval_ms: int = Field(default=50, ge=0)
    request_timeout_s: float = 120.0
    # Model calls at once; urgent requests take the next free slot before routine ones.
    max_concurrency: int = Field(default=4, ge=1)
