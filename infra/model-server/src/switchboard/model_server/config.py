"""Settings of the local model server (environment prefix ``SB_TRITON_``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Triton listens and which chat model it serves."""

    model_config = SettingsConfigDict(env_prefix="SB_TRITON_", extra="ignore")

    host: str = "127.0.0.1"
    http_port: int = 18000
    grpc_port: int = 18001
    metrics_port: int = 18002
    # PyTriton's workspace: generated model store, sockets. Wiped on each start.
    workspace: Path = Path(".state/triton/workspace")
    log_verbose: int = 0
    log_level: str = "INFO"

    # Any GGUF chat model works; the default is SmolLM2-135M-Instruct, fetched by infra/.
    chat_model_path: Path = Path(".state/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    chat_model_name: str = "smollm2"
    chat_context_tokens: int = 2048
    chat_threads: int = max(1, (os.cpu_count() or 2) // 2)
    chat_default_max_tokens: int = 256
