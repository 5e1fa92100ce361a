"""The Kibana saved objects (deploy/kibana) against the real mappings (the audit data
stream's, and the service logs' template from deploy/k8s/logging): every field they name
exists with a type that suits its use, every chart's query and aggregation runs on real
documents and finds something, and an audit record's trace.id link leads to the log lines
of the same trace (whose trace.id leads to Jaeger)."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from google.protobuf.message import Message

from switchboard.audit_logger import app
from switchboard.audit_logger.config import Settings
from switchboard.audit_logger.documents import Mapper
from switchboard.audit_logger.indexer import AuditIndexer
from switchboard.audit_logger.masking import Masker
from switchboard.common import events, tracing
from switchboard.common.kafka import ConsumedEvent
from switchboard.common.logging import EcsFormatter
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import Stack

pytestmark = pytest.mark.integration

CHAIN_KEY = "the integration tests' chain key"

ROOT = Path(__file__).resolve().parents[2]
NDJSON = ROOT / "deploy" / "kibana" / "switchboard-audit.ndjson"
LOGS_TEMPLATE = ROOT / "deploy" / "k8s" / "logging" / "service-logs-template.json"
_KQL_FIELD = re.compile(r"([A-Za-z_@][\w.@]*)\s*:")


def _objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text().splitlines() if line.strip()]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("kibana_objects", ROOT / "scripts" / "kibana_objects.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _queries(obj: dict[str, Any]) -> list[str]:
    attributes = obj["attributes"]
    if obj["type"] == "lens":
        return [attributes["state"]["query"]["query"]]
    meta = attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
    return [json.loads(meta)["query"]["query"]] if meta else []


def _lucene(kql: str) -> str:
    """The KQL used here (field: value, or, and, not, parentheses) in query_string syntax."""
    out = re.sub(r"\bor\b", "OR", re.sub(r"\band\b", "AND", re.sub(r"\bnot\b", "NOT", kql)))
    return re.sub(r"\s*:\s*", ":", out) or "*"


def _fields(obj: dict[str, Any]) -> dict[str, str]:
    """Field -> how the object uses it (filter, column, terms, date_histogram, percentile)."""
    used: dict[str, str] = {}
    for query in _queries(obj):
        used |= dict.fromkeys(_KQL_FIELD.findall(query), "filter")
    attributes = obj["attributes"]
    if obj["type"] == "index-pattern":
        used[attributes["timeFieldName"]] = "date_histogram"
    if obj["type"] == "search":
        used |= dict.fromkeys(attributes["columns"], "column")
        used |= {name: "sort" for name, _ in attributes["sort"]}
    if obj["type"] == "lens":
        for layer in attributes["state"]["datasourceStates"]["formBased"]["layers"].values():
            for column in layer["columns"].values():
                if column["sourceField"] != "___records___":
                    used[column["sourceField"]] = column["operationType"]
    return used


def test_the_ndjson_is_what_the_generator_writes() -> None:
    generated = _generator().objects()
    assert _objects() == json.loads(json.dumps(generated))
    kinds = [o["type"] for o in _objects()]
    assert kinds.count("index-pattern") == 2 and kinds.count("dashboard") == 1
    assert kinds.count("search") >= 3 and kinds.count("lens") >= 6
    ids = {o["id"] for o in _objects()}
    for obj in _objects():  # every reference resolves inside the file
        assert {ref["id"] for ref in obj["references"]} <= ids, obj["id"]


def _sample() -> list[Message]:
    alice = m.Actor(user_id="u-alice", display_name="Alice")
    message = m.InboundMessage(message_id="m-1", channel=m.CHANNEL_TELEGRAM, sender=alice, text="turn on the lamp")
    intent = m.ParsedIntent(message=message, intent="device.control", confidence=0.9)
    return [
        message,
        intent,
        m.InferenceResult(message_id="m-1", model_name="smollm2", latency_ms=250, text="ok"),
        m.InferenceResult(message_id="m-2", finish_reason=m.FINISH_REASON_ERROR, error="all targets failed"),
        m.DeviceCommand(in_reply_to="m-1", device_id="lamp-1", action="turn_on"),
        m.AuditEvent(action="input.blocked", outcome=m.OUTCOME_BLOCKED, reason="lexicon", labels={"rule": "lexicon"}),
    ]


@pytest.fixture
async def es(stack: Stack) -> AsyncIterator[AsyncElasticsearch]:
    async with AsyncElasticsearch(stack.es_url, request_timeout=30) as client:
        yield client


@pytest.fixture
async def stream(es: AsyncElasticsearch, unique: str) -> str:
    settings = Settings(namespace=f"k{unique}", chain_key=CHAIN_KEY)
    await app.install(settings, es)
    batch = []
    for offset, payload in enumerate(_sample()):
        envelope = events.wrap(payload, conversation_key="c", source="test")
        batch.append(ConsumedEvent(envelope, "switchboard.inbound.v1", 0, offset, b"c", []))
    assert (
        await AuditIndexer(es, settings.data_stream, Mapper(Masker()), chain_key=CHAIN_KEY.encode()).index(batch) == []
    )
    await es.indices.refresh(index=settings.data_stream)
    return settings.data_stream


def _log_lines(trace_ids: list[str]) -> list[dict[str, Any]]:
    """Log lines as the services write them (EcsFormatter), one per trace: an info line, and
    a warning with an exception."""
    formatter = EcsFormatter("audit-logger")
    lines = []
    for i, trace_id in enumerate(trace_ids):
        token = tracing.current_traceparent.set(f"00-{trace_id}-{i + 1:016x}-01")
        try:
            record = logging.LogRecord("switchboard.audit_logger", logging.INFO, __file__, 1, "indexed", None, None)
            record.topic = "switchboard.inbound.v1"  # an extra: switchboard.topic
            lines.append(json.loads(formatter.format(record)))
            try:
                raise TimeoutError("Elasticsearch did not answer")
            except TimeoutError:
                failed = logging.LogRecord(
                    "switchboard.audit_logger", logging.WARNING, __file__, 2, "retrying", None, sys.exc_info()
                )
            lines.append(json.loads(formatter.format(failed)))
        finally:
            tracing.current_traceparent.reset(token)
    return lines


@pytest.fixture
async def streams(es: AsyncElasticsearch, stream: str, unique: str) -> dict[str, str]:
    """Each data view's id -> a data stream of real documents it covers; the log lines
    carry the trace ids of the audit documents."""
    generator = _generator()
    await es.indices.put_index_template(name="logs-switchboard.service", **json.loads(LOGS_TEMPLATE.read_text()))
    found = await es.search(index=stream, size=100, query={"exists": {"field": "trace.id"}})
    trace_ids = sorted({hit["_source"]["trace"]["id"] for hit in found["hits"]["hits"]})
    assert trace_ids, "the audit documents carry no trace.id"
    logs = f"logs-switchboard.service-k{unique}"
    operations: list[dict[str, Any]] = []
    for line in _log_lines(trace_ids):
        operations += [{"create": {"_index": logs}}, line]
    response = await es.bulk(operations=operations, refresh=True)
    assert not response["errors"], response
    return {generator.DATA_VIEW: stream, generator.LOGS_VIEW: logs}


def _view(obj: dict[str, Any]) -> str:
    """The data view an object reads (the dashboard: its charts', the audit view)."""
    if obj["type"] == "index-pattern":
        return str(obj["id"])
    if obj["type"] == "dashboard":
        return str(_generator().DATA_VIEW)
    (view,) = {ref["id"] for ref in obj["references"] if ref["type"] == "index-pattern"}
    return str(view)


async def test_every_field_the_saved_objects_use_is_in_the_real_mapping(
    es: AsyncElasticsearch, streams: dict[str, str]
) -> None:
    caps_of = {view: (await es.field_caps(index=s, fields="*"))["fields"] for view, s in streams.items()}
    for obj in _objects():
        caps = caps_of[_view(obj)]
        for name, use in _fields(obj).items():
            assert name in caps, f"{obj['id']} uses {name}, which the mapping of {_view(obj)} does not have"
            (cap,) = caps[name].values()
            if use in ("terms", "date_histogram", "percentile", "sort"):
                assert cap["aggregatable"], f"{obj['id']} aggregates on {name}, which cannot be aggregated"
            if use == "date_histogram":
                assert cap["type"] == "date", name
            if use == "percentile":
                assert cap["type"] in ("long", "integer", "float", "double"), name


def _aggregation(layer: dict[str, Any]) -> dict[str, Any]:
    """The Elasticsearch aggregation a Lens layer asks for (buckets nested in column order)."""
    metrics: dict[str, Any] = {}
    buckets: list[tuple[str, dict[str, Any]]] = []
    for column_id in layer["columnOrder"]:
        column = layer["columns"][column_id]
        op, source = column["operationType"], column["sourceField"]
        if op == "date_histogram":
            buckets.append((column_id, {"date_histogram": {"field": source, "fixed_interval": "1h"}}))
        elif op == "terms":
            buckets.append((column_id, {"terms": {"field": source, "size": column["params"]["size"]}}))
        elif op == "percentile":
            metrics[column_id] = {"percentiles": {"field": source, "percents": [column["params"]["percentile"]]}}
        elif op == "count":
            continue
        else:
            raise AssertionError(f"no translation for {op}")
    aggs: dict[str, Any] = metrics
    for column_id, bucket in reversed(buckets):
        aggs = {column_id: bucket | ({"aggs": aggs} if aggs else {})}
    return aggs


async def test_every_chart_and_search_finds_the_documents_it_is_about(
    es: AsyncElasticsearch, streams: dict[str, str]
) -> None:
    for obj in _objects():
        if obj["type"] not in ("search", "lens"):
            continue
        (query,) = _queries(obj)
        found = await es.search(
            index=streams[_view(obj)],
            size=5,
            query={"query_string": {"query": _lucene(query)}},
            aggs=(
                _aggregation(next(iter(obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values())))
                if obj["type"] == "lens"
                else None
            ),
        )
        assert found["hits"]["total"]["value"] > 0, f"{obj['id']}: {query!r} matches nothing"
        for name, agg in (found.get("aggregations") or {}).items():
            assert agg.get("buckets"), f"{obj['id']}: aggregation {name} is empty"


async def test_an_audit_records_trace_id_opens_the_logs_of_that_trace_whose_trace_id_opens_jaeger(
    es: AsyncElasticsearch, streams: dict[str, str]
) -> None:
    generator = _generator()
    views = {o["id"]: o for o in _objects() if o["type"] == "index-pattern"}
    searches = {o["id"]: o for o in _objects() if o["type"] == "search"}
    audit_link = json.loads(views[generator.DATA_VIEW]["attributes"]["fieldFormatMap"])["trace.id"]
    target = re.fullmatch(
        r"/app/discover#/view/([\w-]+)\?.*query:'(trace\.id:\{\{value\}\})'\)\)", audit_link["params"]["urlTemplate"]
    )
    assert target, audit_link
    opened = searches[target[1]]
    assert _view(opened) == generator.LOGS_VIEW
    found = await es.search(index=streams[generator.DATA_VIEW], size=50, query={"exists": {"field": "trace.id"}})
    assert found["hits"]["hits"]
    for hit in found["hits"]["hits"]:
        trace_id = hit["_source"]["trace"]["id"]
        # The saved search, with the query the link fills in, finds that trace's log lines only.
        query = target[2].replace("{{value}}", trace_id)
        lines = await es.search(index=streams[generator.LOGS_VIEW], size=10, query={"query_string": {"query": query}})
        assert lines["hits"]["total"]["value"] == 2, f"{query} finds {lines['hits']['total']}"
        assert {h["_source"]["trace"]["id"] for h in lines["hits"]["hits"]} == {trace_id}
    jaeger = json.loads(views[generator.LOGS_VIEW]["attributes"]["fieldFormatMap"])["trace.id"]
    assert jaeger["params"]["urlTemplate"] == f"{generator.JAEGER_URL}/trace/{{{{value}}}}"
