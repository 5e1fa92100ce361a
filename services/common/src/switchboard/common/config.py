"""Typed settings shared by every service.

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix``; nested
groups are read from ``<PREFIX>KAFKA__BOOTSTRAP_SERVERS`` style variables. Settings are
read once, in the service's ``__main__``, and passed down; nothing else reads the
environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Shorter secrets are refused at start: a guessable webhook secret or signing key is no secret.
MIN_SECRET_BYTES = 16


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"is empty or shorter than {MIN_SECRET_BYTES} bytes (make one with: openssl rand -base64 32)")
    return value


# A secret setting: never shown in a repr or log line, and at least MIN_SECRET_BYTES long.
Secret = Annotated[SecretStr, AfterValidator(_long_enough)]


class KafkaSettings(BaseModel):
    """How to reach the Kafka cluster."""

    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str = "switchboard"
    # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. With SSL the broker's certificate is
    # verified against ssl_cafile (the system's CAs when unset) and its host name checked;
    # ssl_certfile and ssl_keyfile (PEM) are this client's own, for brokers that ask (mTLS).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # How long the producer waits to fill a batch. 0 suits a pipeline of short hops: under
    # load records still batch up while the previous request to a partition is in flight.
    linger_ms: int = 0
    # Largest batch the producer builds per partition (the broker's default limit is 1 MiB).
    # aiokafka fills one batch per partition at a time; a send finding it full waits until
    # it is drained, and every such waiter is woken at once: at a few thousand sends a
    # second, 16 KiB batches made that herd the producer's main cost.
    max_batch_bytes: int = 512 * 1024
    # Longest the broker holds a fetch open waiting for data. aiokafka keeps one fetch in
    # flight per broker, and a partition drained meanwhile joins only the next one: this
    # bounds how long fresh records on it can wait (at the cost of idle fetches).
    fetch_max_wait_ms: int = 20
    # Records handed to a handler per poll; bounds memory and rebalance latency.
    max_poll_records: int = 100
    # Records taken on and not yet handled, at most; polling pauses at this many.
    max_in_flight: int = 1000
    # How often finished work is committed (also on every rebalance and on stop).
    commit_interval_ms: int = 100
    # Attempts of a failing handler before the record goes to the dead-letter topic.
    handler_attempts: int = 3
    handler_backoff_s: float = 0.2


class TopicSettings(BaseModel):
    """Names of the business topics (infra/kafka/topics.yaml); overridable per deployment or test."""

    inbound: str = "switchboard.inbound.v1"
    intents: str = "switchboard.intents.v1"
    requests_urgent: str = "switchboard.inference.requests.urgent.v1"
    requests_routine: str = "switchboard.inference.requests.routine.v1"
    results: str = "switchboard.inference.results.v1"
    outbound: str = "switchboard.outbound.v1"
    device_commands: str = "switchboard.device.commands.v1"
    device_results: str = "switchboard.device.results.v1"
    audit: str = "switchboard.audit.v1"
    deadletter: str = "switchboard.deadletter.v1"
    # Each audit chain's newest hash (compacted, JSON, not Envelopes; audit_logger/anchors.py).
    audit_anchors: str = "switchboard.audit.anchors.v1"
    # Plugin registrations (compacted, not Envelopes) and every plugin's PluginReplies.
    plugin_catalog: str = "switchboard.plugins.catalog.v1"
    plugin_replies: str = "switchboard.plugins.replies.v1"

    def business(self) -> list[str]:
        """Every topic that carries Envelopes (all but the dead-letter topic, the anchors and the catalogue;
        each plugin's request topic is its own, named in its registration)."""
        return [
            self.inbound,
            self.intents,
            self.requests_urgent,
            self.requests_routine,
            self.results,
            self.outbound,
            self.device_commands,
            self.device_results,
            self.audit,
            self.plugin_replies,
        ]


class ServiceSettings(BaseSettings):
    """Settings every service has: identity, logging, Kafka, health and metrics ports."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    service_name: str = "switchboard"
    tenant_id: str = "default"
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    # grpc.health.v1 listens here; Kubernetes probes it.
    health_host: str = "127.0.0.1"
    health_port: int = 0
    # Prometheus scrapes /metrics here; 0 disables the endpoint.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    # Seconds allowed to finish in-flight work after SIGTERM.
    drain_timeout_s: float = 20.0
    # OpenTelemetry spans are exported over OTLP/gRPC here (e.g. http://127.0.0.1:14317);
    # unset: none are recorded (the trace context still travels with every event).
    otlp_endpoint: str | None = None
    # Share of the traces that start here that are recorded; a trace started upstream keeps
    # the decision of its first service (the sampled flag of its traceparent).
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
