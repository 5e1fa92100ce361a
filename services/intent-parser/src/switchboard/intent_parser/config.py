"""Settings of the intent parser (environment prefix ``SB_PARSER_``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic_settings import SettingsConfigDict

from switchboard.common.config import ServiceSettings


class Settings(ServiceSettings):
    """Intent parser settings."""

    model_config = SettingsConfigDict(env_prefix="SB_PARSER_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "intent-parser"
    # Faust app id, also the consumer group id.
    app_id: str = "intent-parser"
    # Faust keeps its local state here (tables, when there are any); the changelog topics
    # are the source of truth, so it can be an emptyDir.
    data_dir: Path = Path(tempfile.gettempdir()) / "switchboard-intent-parser"
    health_port: int = 18130
    metrics_port: int = 18131
