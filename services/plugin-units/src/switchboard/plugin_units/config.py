"""Settings of the unit converter plugin (environment prefix ``SB_UNITS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SB_UNITS_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "plugin-units"
    health_port: int = 18150
    metrics_port: int = 18151
    # Registered under this name: the scheduler's SB_SCHEDULER_PLUGINS_ENABLED must list it.
    plugin_name: str = "units"
    # Where requests come (the reply topic is topics.plugin_replies).
    request_topic: str = "switchboard.plugins.units.requests.v1"
    # How long callers wait for an answer before asking again.
    timeout_s: float = Field(default=10.0, gt=0)
