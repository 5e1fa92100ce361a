"""Settings of the inference client (environment prefix ``SB_INFERENCE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard.common.config import Secret, ServiceSettings

RULES_DIR = Path(__file__).resolve().parent / "rules"


class Target(BaseModel):
    """A model (and version) an answer can come from, and how to talk to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: str = ""
    # Triton models: "chat" (inputs messages JSON, max_tokens, temperature: the LLMs) or
    # "echo" (input text, the last user turn: the deterministic test models).
    # "openai": an OpenAI-compatible chat completions endpoint at base_url (the last resort
    # of a fallback chain: a hosted API, or a self-hosted vLLM / llama.cpp server).
    kind: Literal["chat", "echo", "openai"] = "chat"
    base_url: str = ""
    # File holding the endpoint's API key (a mounted Secret); never the key itself.
    api_key_file: Path | None = None
    # Call over a gRPC stream? None: when the model's config says decoupled. Set true for an
    # ensemble around a decoupled model (deploy/triton-gpu), which Triton does not mark.
    stream: bool | None = None
    # Share of the profile's traffic (canary releases); only for a route's `targets`.
    weight: float = Field(default=1.0, ge=0)
    # Give up on this target if it has not started answering by then (default: the setting).
    first_piece_timeout_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _endpoint(self) -> Target:
        if (self.kind == "openai") != bool(self.base_url):
            raise ValueError("base_url is required for kind 'openai' and only for it")
        return self

    @property
    def name(self) -> str:
        if self.kind == "openai":
            return f"openai:{self.model}@{self.base_url}"
        return f"{self.model}:{self.version}" if self.version else self.model


class Route(BaseModel):
    """Where a profile's requests go: ``targets`` split the traffic by weight; when the
    chosen one fails, the others are tried, then ``fallback`` in order."""

    model_config = ConfigDict(extra="forbid")

    targets: list[Target] = Field(min_length=1)
    fallback: list[Target] = Field(default_factory=list)
    # Repeated prompts may be answered from the response cache.
    cache: bool = True

    @model_validator(mode="before")
    @classmethod
    def _one_target(cls, data: Any) -> Any:
        """``{"model": "smollm2"}`` is short for ``{"targets": [{"model": "smollm2"}]}``."""
        if isinstance(data, dict) and "model" in data:
            return {"targets": [data]}
        return data

    @model_validator(mode="after")
    def _some_weight(self) -> Route:
        if sum(t.weight for t in self.targets) <= 0:
            raise ValueError("a route needs a target with a weight above 0")
        return self


def _default_routes() -> dict[str, Route]:
    return {"general": Route(targets=[Target(model="smollm2")])}


class Settings(ServiceSettings):
    """Inference client settings; routes map a model profile to Triton models."""

    model_config = SettingsConfigDict(env_prefix="SB_INFERENCE_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "inference-client"
    group_id: str = "inference-client"
    health_port: int = 18110
    metrics_port: int = 18111
    triton_url: str = "127.0.0.1:18001"
    # switchboard.inference.v1.InferenceService (Generate, GenerateStream) for synchronous
    # callers, served only when a caller has a token: caller name -> bearer token, e.g.
    # SB_INFERENCE_API_TOKENS='{"reports": "<32 random bytes>"}'. Each call must carry
    # "authorization: Bearer <token>"; the name is what the audit trail records.
    api_host: str = "127.0.0.1"
    api_port: int = 18112
    api_tokens: dict[str, Secret] = Field(default_factory=dict)
    # The most tokens a gRPC caller may ask for (more: INVALID_ARGUMENT); 0 asks for
    # default_max_tokens.
    api_max_tokens: int = Field(default=1024, ge=1)
    # Profile -> route; a profile with no route uses the "general" one.
    routes: dict[str, Route] = Field(default_factory=_default_routes)
    # Routes from a YAML file instead ({"routes": {...}}), re-read when it changes: a hot
    # switch (models it names are loaded first; see engine.Engine.switch).
    routes_file: Path | None = None
    routes_poll_s: float = Field(default=2.0, gt=0)
    # After a switch, unload models no route names any more. Leave off with several
    # replicas (another may still use them); unload with `switchboard models unload` then.
    unload_unused_models: bool = False
    default_max_tokens: int = 256
    # Streamed pieces are sent as one chunk at most this often (0: every piece).
    stream_interval_ms: int = Field(default=50, ge=0)
    request_timeout_s: float = 120.0
    # Model calls at once; urgent requests take the next free slot before routine ones.
    max_concurrency: int = Field(default=4, ge=1)

    # A target that has not started answering within this is given up on (next target).
    first_piece_timeout_s: float = Field(default=20.0, gt=0)
    # Tries per target before the next one; the pause doubles from retry_backoff_s (jittered).
    attempts_per_target: int = Field(default=2, ge=1)
    retry_backoff_s: float = Field(default=0.2, ge=0)
    # Circuit breaker per target: open after this many failures in a row, try again after reset.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)

    # Response cache for repeated prompts (first turn of a conversation only, unless contextual).
    cache_entries: int = Field(default=2048, ge=0)
    cache_ttl_s: float = Field(default=600.0, gt=0)
    cache_contextual: bool = False

    # Output screening: lexicon.txt ("category<TAB>term") and rules.yaml (name -> pattern).
    output_rules_dir: Path = RULES_DIR
    # Characters of a streamed answer held back until the text after them is screened too,
    # so that no prefix of a blocked match leaves (common.screening.StreamScreen).
    screen_hold_chars: int = Field(default=48, ge=0)
    blocked_reply_en: str = "Sorry, I can't share that answer."
    blocked_reply_zh: str = "抱歉，这个回答无法提供。"

    # A request id answered within this window is never answered again (redeliveries).
    answered_window_s: float = Field(default=3600.0, gt=0)
