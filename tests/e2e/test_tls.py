"""The whole pipeline over TLS: every service reaches Kafka on the brokers' SASL_SSL
listeners only (TLS, and a SCRAM-SHA-512 login), PostgreSQL with sslmode=verify-full, and
the gateway Mosquitto on its TLS port, each verifying the stack's CA; a device (the bedroom
light) on the TLS port too. A conversation and an order for the light go through;
PostgreSQL says every connection of the run is TLS."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.conftest import Stack
from tests.e2e import home
from tests.e2e.pipeline import Pipeline
from tests.e2e.test_pipeline import _conversation, _started

pytestmark = pytest.mark.integration


async def test_a_conversation_and_a_device_order_over_tls_only(stack: Stack, tmp_path: Path) -> None:
    pipeline = Pipeline(stack, tls=True)
    pipeline.extra_env = {
        "channel_gateway": home.mqtt_env(pipeline),
        "scheduler": {"DEVICES_FILE": str(home.registry(stack, tmp_path / "devices.yaml"))},
    }
    async for started in _started(pipeline):
        async with home.Light(started) as light, started.client(started.gateway_urls[0]) as client:
            conversation = await _conversation(client)
            for i in range(5):
                body = {"conversation_id": conversation, "text": f"hello over tls {i}"}
                response = await client.post("/v1/messages", json=body)
                assert response.status_code == 200, response.text
                assert response.json()["reply"] == f"hello over tls {i}"  # the echo model
            body = {"conversation_id": conversation, "text": "turn off the bedroom light"}
            response = await client.post("/v1/messages", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["reply"] == "Done: bedroom light, off." and light.orders == 1

            conn = await asyncpg.connect(stack.pg_dsn)
            try:
                rows = await conn.fetch(
                    "SELECT s.ssl, s.version FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
                    " WHERE a.application_name = $1",
                    f"e2e-{started.run_id}",
                )
            finally:
                await conn.close()
            assert rows and all(row["ssl"] and row["version"] in ("TLSv1.2", "TLSv1.3") for row in rows), rows
