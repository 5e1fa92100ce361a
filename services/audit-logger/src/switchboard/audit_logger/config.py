"""Settings of the audit logger (environment prefix ``SB_AUDIT_``)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from switchboard.audit_logger.documents import TextMode
from switchboard.audit_logger.masking import KINDS
from switchboard.common.auth import TokenSettings
from switchboard.common.config import KafkaSettings, Secret, ServiceSettings
from switchboard.common.http import KEEPALIVE_S


class MaskingSettings(BaseModel):
    """What PII is masked in stored text (``SB_AUDIT_MASKING__*``)."""

    kinds: list[str] = Field(default_factory=lambda: list(KINDS))
    # Regions whose national phone formats are recognised (ISO 3166 codes); numbers in
    # +international form are recognised whatever the region.
    phone_regions: list[str] = Field(default_factory=lambda: ["CN", "US", "GB"])
    # More things to mask: name -> regular expression, e.g. {"order": "ORD-\\d{8}"}.
    extra_patterns: dict[str, str] = Field(default_factory=dict)
    # With a key (a file holding it), placeholders carry a keyed fingerprint of the value.
    fingerprint_key_file: Path | None = None


class Settings(ServiceSettings, TokenSettings):
    """Audit logger settings."""

    model_config = SettingsConfigDict(env_prefix="SB_AUDIT_", env_nested_delimiter="__", extra="ignore")

    service_name: str = "audit-logger"
    # Bulk writes like big batches: 1 000 records per poll, and up to 10 000 in flight, so
    # that the next batch is polled and its documents built (~4 KB each, ~40 MB in all)
    # while one is being indexed.
    kafka: KafkaSettings = Field(default_factory=lambda: KafkaSettings(max_in_flight=10_000, max_poll_records=1000))
    group_id: str = "audit-logger"
    health_port: int = 18140
    metrics_port: int = 18141
    # The key of the documents' hash chain (HMAC-SHA256; see chain.py): the audit logger's
    # alone, never Elasticsearch's administrators'. Verifying and replaying need it too.
    chain_key: Secret
    elasticsearch_url: str = "http://127.0.0.1:19200"
    elasticsearch_api_key: Secret | None = None
    # For an https:// elasticsearch_url: the CA its certificate is verified against.
    elasticsearch_ca_file: Path | None = None
    # Documents go to the data stream logs-<dataset>-<namespace>.
    dataset: str = "switchboard.audit"
    namespace: str = "default"
    # Topics read besides the business ones: every plugin's request topic, found by name.
    plugin_request_pattern: str = r"switchboard\.plugins\.[^.]+\.requests\.v\d+"
    # Text of messages and answers: masked (default), raw, or none.
    text: TextMode = TextMode.MASKED
    masking: MaskingSettings = Field(default_factory=MaskingSettings)
    # Retention: ILM where the cluster has it, else the service's own housekeeping.
    retention: str = "180d"
    rollover_max_age: str = "1d"
    rollover_max_size: str = "50gb"
    housekeeping_interval_s: float = 600.0
    # Documents per bulk request, and bulk requests sent at once: with two, the next one
    # is serialised and sent while Elasticsearch works on the one before.
    bulk_chunk_size: int = 1000
    bulk_requests_in_flight: int = 2
    # The audit query API (HTTP); it runs only with a way to verify tokens configured.
    api_host: str = "127.0.0.1"
    api_port: int = 18142
    api_keepalive_s: int = Field(default=KEEPALIVE_S, ge=1)  # see switchboard.common.http
    jwt_audience: str = "switchboard-audit"  # the other JWT_* settings: TokenSettings

    @property
    def data_stream(self) -> str:
        return f"logs-{self.dataset}-{self.namespace}"

    def topic_pattern(self) -> str:
        """The topics consumed: the business topics and the plugins' request topics."""
        names = "|".join(re.escape(topic) for topic in self.topics.business())
        return f"^(?:{names}|{self.plugin_request_pattern})$"
