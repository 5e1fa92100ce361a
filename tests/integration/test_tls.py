"""The stack's TLS listeners, with the clients the services use: Kafka (aiokafka), MQTT
(aiomqtt) and PostgreSQL (asyncpg) each take a client that trusts the stack's CA, refuse
one that trusts another CA, and a plaintext client gets nowhere on the TLS port."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

import aiomqtt
import asyncpg
import pytest
import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from switchboard.common import tls
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka.security import connection_kwargs
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A CA the stack's servers were not issued by."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def _kafka(stack: Stack, cafile: str | Path) -> dict[str, object]:
    settings = KafkaSettings(bootstrap_servers=stack.kafka_tls_bootstrap, security_protocol="SSL", ssl_cafile=cafile)
    return {"bootstrap_servers": settings.bootstrap_servers, **connection_kwargs(settings)}


async def test_kafka_over_tls(stack: Stack, other_ca: Path) -> None:
    topic = f"test.tls.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    try:
        producer = AIOKafkaProducer(**_kafka(stack, stack.tls_ca_file))
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"over tls")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **_kafka(stack, stack.tls_ca_file))
        await consumer.start()
        try:
            async with asyncio.timeout(30):
                record = await consumer.getone()
            assert record.value == b"over tls"
        finally:
            await consumer.stop()

        # A client trusting another CA, and one speaking plaintext to the TLS port: no link.
        for kwargs in (
            _kafka(stack, other_ca),
            {"bootstrap_servers": stack.kafka_tls_bootstrap, "request_timeout_ms": 5000},
        ):
            refused = AIOKafkaProducer(**kwargs)
            with pytest.raises((KafkaConnectionError, asyncio.TimeoutError)):
                async with asyncio.timeout(30):
                    await refused.start()
            await refused.stop()
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_kafka_scram_over_tls_takes_the_account_and_refuses_a_wrong_password(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    def scram(password: str) -> dict[str, object]:
        settings = KafkaSettings(
            bootstrap_servers=stack.kafka_sasl_bootstrap,
            security_protocol="SASL_SSL",
            ssl_cafile=stack.tls_ca_file,
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=stack.kafka_scram_user,
            sasl_password=password,
        )
        return {
            "bootstrap_servers": settings.bootstrap_servers,
            "request_timeout_ms": 10000,
            **connection_kwargs(settings),
        }

    admin = AIOKafkaAdminClient(**scram(stack.kafka_scram_password))
    await admin.start()
    try:
        assert stack.kafka_bootstrap and await admin.list_topics()
    finally:
        await admin.close()
    refused = AIOKafkaAdminClient(**scram("not-the-password-of-the-account"))
    with pytest.raises(KafkaConnectionError):
        async with asyncio.timeout(30):
            await refused.start()
    await refused.close()
    # aiokafka gives up bootstrapping; why is in its log line.
    assert "SaslAuthenticationFailed" in caplog.text, caplog.text


def _mqtt(stack: Stack, context: ssl.SSLContext | None) -> aiomqtt.Client:
    return aiomqtt.Client(
        stack.mqtt_host,
        stack.mqtt_tls_port,
        username=stack.mqtt_gateway_user,
        password=stack.mqtt_gateway_password,
        tls_context=context,
        timeout=5,
    )


async def test_mqtt_over_tls(stack: Stack, other_ca: Path) -> None:
    topic = f"switchboard/gateway/tls-test-{uuid.uuid4().hex[:8]}"
    async with _mqtt(stack, tls.client_context(Path(stack.tls_ca_file))) as client:
        await client.subscribe(topic, qos=1)
        await client.publish(topic, b"over tls", qos=1)
        async with asyncio.timeout(10):
            message = await anext(client.messages)
        assert message.payload == b"over tls"
    for context in (tls.client_context(other_ca), None):
        with pytest.raises(aiomqtt.MqttError):
            async with _mqtt(stack, context):
                pass


async def test_postgres_over_tls(stack: Stack, other_ca: Path) -> None:
    conn = await asyncpg.connect(f"{stack.pg_dsn}?sslmode=verify-full&sslrootcert={stack.tls_ca_file}")
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        assert await conn.fetchval("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()") in (
            "TLSv1.2",
            "TLSv1.3",
        )
    finally:
        await conn.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(f"{stack.pg_dsn}?sslmode=verify-full&sslrootcert={other_ca}")
