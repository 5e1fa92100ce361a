"""Connection settings of the local stack for cross-service tests.

`make up` (or `make test`) writes them to .state/stack.env; the environment wins where
both are set. A missing setting is an error, never a skip: a test that skipped proves
nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from switchboard.common import postgres
from switchboard.common.media import MediaSettings

STACK_ENV = Path(__file__).resolve().parent.parent / ".state" / "stack.env"


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    kafka_tls_bootstrap: str  # the brokers' TLS listeners (certificates of the stack's CA)
    kafka_sasl_bootstrap: str  # the brokers' SASL_SSL listeners: TLS, and a SCRAM-SHA-512 login
    kafka_scram_user: str
    kafka_scram_password: str
    tls_ca_file: str  # the stack's own CA (.state/tls/ca.pem): Kafka, Mosquitto, PostgreSQL
    es_url: str
    pg_dsn: str
    mqtt_host: str
    mqtt_port: int
    mqtt_tls_port: int
    mqtt_gateway_user: str
    mqtt_gateway_password: str
    mqtt_device_user: str
    mqtt_device_password: str
    triton_grpc_url: str
    triton_http_url: str
    chat_model: str
    openai_url: str
    openai_api_key_file: str
    prometheus_url: str  # the stack's Prometheus, scraping the stack's services (not e2e pipelines')
    jaeger_url: str  # the trace backend's UI and query API
    otlp_endpoint: str  # where spans go (OTLP/gRPC), the stack's services' and a pipeline's that asks
    service_logs_stream: str  # the data stream the log shipper writes the services' log lines into
    gateway_url: str  # the stack's own channel gateway (make up), not an e2e pipeline's
    gateway_jwt_secret_file: str
    objectstore_url: str  # the media store's S3 API
    objectstore_access_key: str
    objectstore_secret_key: str
    media_bucket: str

    def media_settings(self, **overrides: object) -> MediaSettings:
        """Settings of a client of the stack's media store (``overrides``: bucket, retention...)."""
        values: dict[str, object] = {
            "endpoint_url": self.objectstore_url,
            "bucket": self.media_bucket,
            "access_key": self.objectstore_access_key,
            "secret_key": self.objectstore_secret_key,
        }
        return MediaSettings.model_validate(values | overrides)


def _load() -> dict[str, str]:
    values: dict[str, str] = {}
    if STACK_ENV.is_file():
        for line in STACK_ENV.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                values[key.strip()] = value.strip()
    values.update({k: v for k, v in os.environ.items() if k.startswith("SB_")})
    return values


class StackNotConfigured(LookupError):
    pass


def load_stack() -> Stack:
    """The stack's settings; raises StackNotConfigured naming the first one missing."""
    values = _load()

    def need(key: str) -> str:
        if key not in values:
            raise StackNotConfigured(f"{key} is not set and {STACK_ENV} lacks it: start the stack with `make up`")
        return values[key]

    return Stack(
        kafka_bootstrap=need("SB_KAFKA_BOOTSTRAP"),
        kafka_tls_bootstrap=need("SB_KAFKA_TLS_BOOTSTRAP"),
        kafka_sasl_bootstrap=need("SB_KAFKA_SASL_BOOTSTRAP"),
        kafka_scram_user=need("SB_KAFKA_SCRAM_USER"),
        kafka_scram_password=need("SB_KAFKA_SCRAM_PASSWORD"),
        tls_ca_file=need("SB_TLS_CA_FILE"),
        es_url=need("SB_ES_URL"),
        pg_dsn=need("SB_PG_DSN"),
        mqtt_host=need("SB_MQTT_HOST"),
        mqtt_port=int(need("SB_MQTT_PORT")),
        mqtt_tls_port=int(need("SB_MQTT_TLS_PORT")),
        mqtt_gateway_user=need("SB_MQTT_GATEWAY_USER"),
        mqtt_gateway_password=need("SB_MQTT_GATEWAY_PASSWORD"),
        mqtt_device_user=need("SB_MQTT_DEVICE_USER"),
        mqtt_device_password=need("SB_MQTT_DEVICE_PASSWORD"),
        triton_grpc_url=need("SB_TRITON_GRPC_URL"),
        triton_http_url=need("SB_TRITON_HTTP_URL"),
        chat_model=need("SB_CHAT_MODEL"),
        openai_url=need("SB_OPENAI_URL"),
        openai_api_key_file=need("SB_OPENAI_API_KEY_FILE"),
        prometheus_url=need("SB_PROMETHEUS_URL"),
        jaeger_url=need("SB_JAEGER_URL"),
        otlp_endpoint=need("SB_OTLP_ENDPOINT"),
        service_logs_stream=need("SB_SERVICE_LOGS_STREAM"),
        gateway_url=need("SB_GATEWAY_URL"),
        gateway_jwt_secret_file=need("SB_GATEWAY_JWT_SECRET_FILE"),
        objectstore_url=need("SB_OBJECTSTORE_URL"),
        objectstore_access_key=need("SB_OBJECTSTORE_ACCESS_KEY"),
        objectstore_secret_key=need("SB_OBJECTSTORE_SECRET_KEY"),
        media_bucket=need("SB_MEDIA_BUCKET"),
    )


@pytest.fixture(scope="session")
def stack() -> Stack:
    try:
        return load_stack()
    except StackNotConfigured as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic, group, index and schema names."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def scheduler_pool(stack: Stack, unique: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh schema with the scheduler's tables (``test_<unique>``), dropped afterwards."""
    schema = f"test_{unique}"
    pool = await asyncpg.create_pool(stack.pg_dsn, min_size=1, max_size=2, server_settings={"search_path": schema})
    try:
        async with pool.acquire() as conn:
            await postgres.migrate(conn, schema, "switchboard.scheduler")
        yield pool
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()
