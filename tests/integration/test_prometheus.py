"""The stack's Prometheus (make up): it scrapes every service and Triton, has loaded every
alert rule of deploy/prometheus/alerts.yaml, and sees the gateway's HTTP requests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from switchboard.cli.tokens import mint
from tests.conftest import Stack

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yaml"
SERVICES = ("channel-gateway", "intent-parser", "scheduler", "inference-client", "audit-logger", "plugin-units")
SCRAPED = {*SERVICES, "triton", "lag-exporter"}


async def _api(client: httpx.AsyncClient, path: str, **params: str) -> Any:
    response = await client.get(f"/api/v1/{path}", params=params)
    response.raise_for_status()
    return response.json()["data"]


async def _value(client: httpx.AsyncClient, query: str) -> float:
    """The value of an instant query of one series (0 when there is none yet)."""
    result = (await _api(client, "query", query=query))["result"]
    return float(result[0]["value"][1]) if result else 0.0


async def test_every_service_is_scraped_and_every_alert_rule_loaded(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as client:
        health: dict[str, str] = {}
        async with asyncio.timeout(60):  # a target is "unknown" until its first scrape
            while set(health.values()) != {"up"} or set(health) != SCRAPED:
                targets = (await _api(client, "targets"))["activeTargets"]
                health = {t["labels"]["service"]: t["health"] for t in targets}
                await asyncio.sleep(1)
        loaded = {
            rule["name"] for group in (await _api(client, "rules", type="alert"))["groups"] for rule in group["rules"]
        }
    written = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert written and loaded == written


async def test_the_gateways_http_requests_reach_prometheus(stack: Stack) -> None:
    token = mint(Path(stack.gateway_jwt_secret_file).read_text().strip(), "prometheus-test", ["chat"], ttl_s=300)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as gateway:
        for _ in range(3):
            created = await gateway.post("/v1/conversations", headers={"Authorization": f"Bearer {token}"})
            assert created.status_code == 201, created.text
        refused = await gateway.post("/v1/conversations")
        assert refused.status_code == 401
    series = 'http_requests_total{service="channel-gateway", handler="/v1/conversations", method="POST"}'
    query = f"sum by (status) ({series})"
    async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as client:
        counts: dict[str, float] = {}
        async with asyncio.timeout(60):  # the next scrape, within SB_PROMETHEUS_SCRAPE_S
            while counts.get("2xx", 0) < 3 or counts.get("4xx", 0) < 1:
                result = (await _api(client, "query", query=query))["result"]
                counts = {r["metric"]["status"]: float(r["value"][1]) for r in result}
                await asyncio.sleep(1)
        latency = await _api(
            client, "query", query='sum(http_request_duration_highr_seconds_count{service="channel-gateway"})'
        )
    assert float(latency["result"][0]["value"][1]) >= 4


async def test_the_intent_parsers_faust_sensors_reach_prometheus(stack: Stack) -> None:
    """The Faust worker's own series (intent_parser/sensors.py) count a message it handles."""
    series = "switchboard_parser_faust_messages_received_per_topic_total"
    query = f'sum({series}{{service="intent-parser", topic="switchboard.inbound.v1"}})'
    token = mint(Path(stack.gateway_jwt_secret_file).read_text().strip(), "prometheus-test", ["chat"], ttl_s=300)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as client,
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=10, headers=headers) as gateway,
    ):
        before = await _value(client, query)
        conversation = (await gateway.post("/v1/conversations")).json()["conversation_id"]
        sent = await gateway.post(
            "/v1/messages", json={"conversation_id": conversation, "text": "list my reminders", "wait": False}
        )
        assert sent.status_code == 202, sent.text
        now = before
        async with asyncio.timeout(60):  # handled, then scraped within SB_PROMETHEUS_SCRAPE_S
            while now <= before:
                await asyncio.sleep(1)
                now = await _value(client, query)
    commits = 'sum(switchboard_parser_faust_consumer_commit_latency_count{service="intent-parser"})'
    async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as client:
        assert await _value(client, commits) > 0
