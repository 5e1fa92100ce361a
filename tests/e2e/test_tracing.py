"""One chat message is one trace in the trace backend (Jaeger), across the five services,
and its trace id is on its audit documents and on the services' log lines the log shipper
wrote into Elasticsearch."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import httpx
import pytest
from elasticsearch import AsyncElasticsearch

from tests.conftest import Stack
from tests.e2e.pipeline import Pipeline

pytestmark = pytest.mark.integration

SERVICES = {"channel-gateway", "intent-parser", "scheduler", "inference-client", "audit-logger"}
# The client's own trace (new each run: Jaeger keeps earlier runs' spans) and span.
CLIENT_TRACE = secrets.token_hex(16)
CLIENT_SPAN = "eee19b7ec3c1b174"


async def _trace(stack: Stack, trace_id: str, timeout: float = 90) -> dict[str, Any]:
    """The trace once every service's spans are in it (they are exported every few seconds)."""
    async with httpx.AsyncClient(base_url=stack.jaeger_url, timeout=10) as jaeger, asyncio.timeout(timeout):
        while True:
            response = await jaeger.get(f"/api/traces/{trace_id}")
            if response.status_code == 200 and (data := response.json().get("data")):
                trace: dict[str, Any] = data[0]
                if {p["serviceName"] for p in trace["processes"].values()} >= {*SERVICES, "triton"}:
                    await asyncio.sleep(6)  # the last spans of a batch still on their way
                    final: dict[str, Any] = (await jaeger.get(f"/api/traces/{trace_id}")).json()["data"][0]
                    return final
            await asyncio.sleep(1)


async def test_a_chat_message_is_one_trace_across_the_five_services_with_its_audit_records(stack: Stack) -> None:
    pipeline = Pipeline(stack, tracing=True)
    await pipeline.start()
    try:
        async with pipeline.client(pipeline.gateway_urls[0], timeout=60) as client:
            conversation = (await client.post("/v1/conversations")).json()["conversation_id"]
            response = await client.post(
                "/v1/messages",
                json={"conversation_id": conversation, "text": "tell me about lighthouses", "wait": True},
                headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
            )
            assert response.status_code == 200, response.text
        trace = await _trace(stack, CLIENT_TRACE)
    finally:
        await pipeline.stop()

    spans = trace["spans"]
    service_of = {key: process["serviceName"] for key, process in trace["processes"].items()}
    by_service: dict[str, set[str]] = {}
    for span in spans:
        by_service.setdefault(service_of[span["processID"]], set()).add(span["operationName"])
    assert set(by_service) >= SERVICES, by_service
    # Parent links intact: every span's parent is in the trace, but the request's (the client's span).
    ids = {span["spanID"] for span in spans}
    parents = [ref["spanID"] for span in spans for ref in span["references"] if ref["refType"] == "CHILD_OF"]
    assert {parent for parent in parents if parent not in ids} == {CLIENT_SPAN}, by_service
    # The hops: the request, each send and each processing.
    assert any(name.startswith("POST /v1/messages") for name in by_service["channel-gateway"]), by_service
    assert f"send {pipeline.topics.inbound}" in by_service["channel-gateway"]
    assert f"process {pipeline.topics.outbound}" in by_service["channel-gateway"]
    assert any(name.startswith("process ") for name in by_service["intent-parser"])
    assert f"send {pipeline.topics.intents}" in by_service["intent-parser"]
    assert f"send {pipeline.topics.requests_routine}" in by_service["scheduler"]
    assert f"process {pipeline.topics.requests_routine}" in by_service["inference-client"]
    assert f"send {pipeline.topics.results}" in by_service["inference-client"]
    assert "chat echo_stream" in by_service["inference-client"]  # the model call
    # Triton's own spans (its OpenTelemetry trace mode) are children of the model call's.
    (call,) = [s for s in spans if s["operationName"] == "chat echo_stream"]
    served = [s for s in spans if service_of[s["processID"]] == "triton"]
    assert any(ref["spanID"] == call["spanID"] for s in served for ref in s["references"]), by_service
    assert f"process {pipeline.topics.inbound}" in by_service["audit-logger"]

    # The audit trail carries the same trace id.
    async with AsyncElasticsearch(stack.es_url, request_timeout=30) as es:
        await es.indices.refresh(index=pipeline.data_stream)
        found = await es.count(index=pipeline.data_stream, query={"term": {"trace.id": CLIENT_TRACE}})
        assert found["count"] >= 5, found
        lines = await _log_lines(es, stack.service_logs_stream, pipeline.run_id)
    # So do the services' log lines, shipped from the pipeline's log files (.state/logs/e2e).
    assert lines, f"no log line of trace {CLIENT_TRACE} in {stack.service_logs_stream}"
    for line in lines:
        assert line["trace"]["id"] == CLIENT_TRACE and re.fullmatch("[0-9a-f]{16}", line["span"]["id"]), line
        # ecs-logging writes "log.level" as a dotted key; Elasticsearch maps it as log.level.
        assert line["service"]["name"] in SERVICES and line["log.level"] and line["message"], line
        assert pipeline.run_id in line["log"]["file"]["path"], line


async def _log_lines(es: AsyncElasticsearch, stream: str, run_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The log lines of the client's trace written by this run's processes, once shipped."""
    query = {"bool": {"filter": [{"term": {"trace.id": CLIENT_TRACE}}]}}
    async with asyncio.timeout(timeout):
        while True:
            if await es.indices.exists(index=stream):
                await es.indices.refresh(index=stream)
                found = await es.search(index=stream, query=query, size=100)
                lines = [hit["_source"] for hit in found["hits"]["hits"]]
                ours = [line for line in lines if run_id in line.get("log", {}).get("file", {}).get("path", "")]
                # The gateway's "message accepted" and the inference client's "answered", at least.
                if {"channel-gateway", "inference-client"} <= {line["service"]["name"] for line in ours}:
                    return ours
            await asyncio.sleep(1)
