"""Settings of the audit logger (environment prefix ``SB_AUDIT_``)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from switchboard.common.config import ServiceSettings


class Settings(ServiceSettings):
    """Audit logger settings."""

    model_config = SettingsConfigDict(env_prefix="SB_AUDIT_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "audit-logger"
    group_id: str = "audit-logger"
    health_port: int = 18140
    metrics_port: int = 18141
    elasticsearch_url: str = "http://127.0.0.1:19200"
    elasticsearch_api_key: SecretStr | None = None
    # Documents go to the data stream logs-<dataset>-<namespace>.
    dataset: str = "switchboard.audit"
    namespace: str = "default"

    @property
    def data_stream(self) -> str:
        return f"logs-{self.dataset}-{self.namespace}"
