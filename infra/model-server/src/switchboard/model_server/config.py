"""Settings of the local model server (environment prefix ``SB_TRITON_``) and the models
file that says what it serves."""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_HERE = Path(__file__).resolve()
# infra/model-server/models.yaml in a checkout.
DEFAULT_MODELS_FILE = _HERE.parents[3] / "models.yaml"


class DynamicBatching(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_queue_delay_microseconds: int = Field(default=0, ge=0)
    preferred_batch_size: list[int] = Field(default_factory=list)


class ModelSpec(BaseModel):
    """One model of the repository."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["echo", "echo_stream", "chat"]
    versions: list[int] = Field(default_factory=lambda: [1], min_length=1)
    instances: int = Field(default=1, ge=1)
    max_batch_size: int = Field(default=0, ge=0)
    dynamic_batching: DynamicBatching | None = None
    decoupled: bool = False
    load: bool = True
    parameters: dict[str, str] = Field(default_factory=dict)


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelSpec]

    @classmethod
    def read(cls, path: Path, environ: dict[str, str] | None = None) -> ModelsFile:
        """Parse ``path``; ``${NAME}`` in parameters comes from ``environ`` (a missing one is an error)."""
        environ = dict(os.environ) if environ is None else environ
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        models = cls.model_validate(raw)
        for name, spec in models.models.items():
            for key, value in spec.parameters.items():
                try:
                    spec.parameters[key] = string.Template(value).substitute(environ)
                except KeyError as exc:
                    raise ValueError(f"{path}: model {name}, parameter {key}: {exc.args[0]} is not set") from exc
        return models


class Settings(BaseSettings):
    """Where Triton listens, where its files go, and which models file it serves."""

    model_config = SettingsConfigDict(env_prefix="SB_TRITON_", extra="ignore")

    host: str = "127.0.0.1"
    http_port: int = 18000
    grpc_port: int = 18001
    metrics_port: int = 18002
    # Generated model repository and the server's backend files. Rebuilt on each start.
    workspace: Path = Path(".state/triton/workspace")
    models_file: Path = DEFAULT_MODELS_FILE
    log_verbose: int = 0
    log_level: str = "INFO"
    # Triton's own spans (its OpenTelemetry trace mode), sent over OTLP/HTTP to this URL
    # (e.g. http://127.0.0.1:14318/v1/traces); a request's traceparent header makes them
    # children of the caller's span. Unset: no tracing. ``trace_rate``: one request in N.
    otlp_traces_url: str | None = None
    trace_rate: int = Field(default=1, ge=1)

    # Any GGUF chat model works; the default is SmolLM2-135M-Instruct, fetched by infra/.
    chat_model_path: Path = Path(".state/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    chat_threads: int = max(1, (os.cpu_count() or 2) // 2)

    def environ(self) -> dict[str, str]:
        """What ``${NAME}`` in the models file may refer to: the environment, plus these
        settings' defaults under their ``SB_TRITON_`` names."""
        return {
            **os.environ,
            "SB_TRITON_CHAT_MODEL_PATH": str(self.chat_model_path.resolve()),
            "SB_TRITON_CHAT_THREADS": str(self.chat_threads),
        }
