"""Writes deploy/kibana/switchboard-audit.ndjson: the Kibana saved objects analysts and SREs
import (Stack Management → Saved objects → Import): a data view on the audit data streams
and one on the services' logs, saved searches, Lens charts and one dashboard.

    .venv/bin/python scripts/kibana_objects.py   # after changing what the dashboard shows
    .venv/bin/python scripts/kibana_objects.py --jaeger-url https://jaeger.example.org

A document's ``trace.id`` is a link: on an audit record it opens the service logs of that
trace (a saved search, the id filled in), on a log line the trace in Jaeger's UI
(``--jaeger-url``; the local stack's by default). So an analyst goes from an audit record to
the logs of its trace, and on to the trace itself.

Every chart is described here once (its filter, its fields, its operations); the NDJSON is
derived, and tests/integration/test_kibana.py checks every field it names against the
real mapping and runs every chart's aggregation on the real Elasticsearch.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "deploy" / "kibana" / "switchboard-audit.ndjson"
DATA_VIEW = "switchboard-audit"
LOGS_VIEW = "switchboard-service-logs"
JAEGER_URL = "http://127.0.0.1:18686"  # the local stack's Jaeger UI (infra/stack.env)
VERSION = {"coreMigrationVersion": "8.8.0"}


@dataclass(frozen=True)
class Search:
    id: str
    title: str
    query: str  # KQL
    columns: list[str]
    data_view: str = DATA_VIEW


@dataclass(frozen=True)
class Chart:
    """A Lens chart: ``x`` a date histogram or terms split, ``metric`` count/percentile, an
    optional ``breakdown`` terms split, over documents matching ``query`` (KQL)."""

    id: str
    title: str
    kind: str  # bar_stacked, line, pie, table
    query: str
    x: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=lambda: [{"op": "count"}])
    breakdown: str | None = None


SEARCHES = [
    Search(
        "switchboard-audit-conversations",
        "Switchboard: what users asked and what answered",
        'event.action: ("intent.parsed" or "inference.completed")',
        [
            "user.id",
            "switchboard.channel",
            "switchboard.intent",
            "message",
            "switchboard.model",
            "switchboard.latency_ms",
        ],
    ),
    Search(
        "switchboard-audit-blocked",
        "Switchboard: blocked inputs and answers",
        "switchboard.blocked: true",
        ["event.action", "switchboard.blocked_reason", "user.id", "switchboard.channel", "switchboard.conversation"],
    ),
    Search(
        "switchboard-audit-errors",
        "Switchboard: failures",
        "event.outcome: failure and not switchboard.blocked: true",
        ["event.action", "error.message", "service.name", "switchboard.model", "trace.id"],
    ),
    Search(
        "switchboard-service-logs",
        "Switchboard: service logs",
        "",
        ["service.name", "log.level", "message", "trace.id"],
        LOGS_VIEW,
    ),
    Search(
        "switchboard-service-logs-problems",
        "Switchboard: service warnings and errors",
        'log.level: ("warning" or "error" or "critical")',
        ["service.name", "log.level", "message", "error.type", "error.message", "trace.id"],
        LOGS_VIEW,
    ),
    Search(
        "switchboard-service-logs-of-trace",
        "Switchboard: service logs of a trace (opened from an audit record's trace.id)",
        "",
        ["service.name", "log.level", "log.logger", "message", "span.id"],
        LOGS_VIEW,
    ),
]

# The search an audit record's trace.id opens, with the query "trace.id:<the id>".
LOGS_OF_TRACE = "switchboard-service-logs-of-trace"

CHARTS = [
    Chart(
        "switchboard-audit-messages-per-channel",
        "Messages per channel",
        "bar_stacked",
        'event.action: "message.received"',
        {"op": "date_histogram", "field": "@timestamp"},
        breakdown="switchboard.channel",
    ),
    Chart(
        "switchboard-audit-intent-mix",
        "Intent mix",
        "pie",
        'event.action: "intent.parsed"',
        {"op": "terms", "field": "switchboard.intent", "size": 12},
    ),
    Chart(
        "switchboard-audit-latency",
        "Answer latency (ms): p50, p95, p99",
        "line",
        'event.action: "inference.completed"',
        {"op": "date_histogram", "field": "@timestamp"},
        metrics=[{"op": "percentile", "field": "switchboard.latency_ms", "percentile": p} for p in (50, 95, 99)],
    ),
    Chart(
        "switchboard-audit-blocked-reasons",
        "Blocked inputs and answers, by rule",
        "bar_stacked",
        "switchboard.blocked: true",
        {"op": "date_histogram", "field": "@timestamp"},
        breakdown="switchboard.blocked_reason",
    ),
    Chart(
        "switchboard-audit-top-users",
        "Top users",
        "table",
        'event.action: "message.received"',
        {"op": "terms", "field": "user.id", "size": 20},
    ),
    Chart(
        "switchboard-audit-top-devices",
        "Top devices",
        "table",
        'event.action: "device.command"',
        {"op": "terms", "field": "device.id", "size": 20},
    ),
    Chart(
        "switchboard-audit-errors-over-time",
        "Failures by action",
        "bar_stacked",
        "event.outcome: failure",
        {"op": "date_histogram", "field": "@timestamp"},
        breakdown="event.action",
    ),
]


def _source(query: str) -> str:
    return json.dumps(
        {
            "query": {"query": query, "language": "kuery"},
            "filter": [],
            "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
        }
    )


def _url(template: str, label: str) -> dict[str, Any]:
    return {"id": "url", "params": {"type": "a", "urlTemplate": template, "labelTemplate": label}}


def logs_of_trace() -> str:
    """The Discover URL (relative to Kibana) an audit record's trace.id opens."""
    state = "_g=(time:(from:now-7d,to:now))&_a=(query:(language:kuery,query:'trace.id:{{value}}'))"
    return f"/app/discover#/view/{LOGS_OF_TRACE}?{state}"


def data_view(view: str, jaeger_url: str = JAEGER_URL) -> dict[str, Any]:
    if view == DATA_VIEW:
        title, name = "logs-switchboard.audit-*", "Switchboard audit"
        link = _url(logs_of_trace(), "{{value}} (service logs of this trace)")
    else:
        title, name = "logs-switchboard.service-*", "Switchboard service logs"
        link = _url(f"{jaeger_url.rstrip('/')}/trace/{{{{value}}}}", "{{value}} (this trace in Jaeger)")
    return {
        "type": "index-pattern",
        "id": view,
        "attributes": {
            "title": title,
            "name": name,
            "timeFieldName": "@timestamp",
            "fieldFormatMap": json.dumps({"trace.id": link}),
        },
        "references": [],
        **VERSION,
        "typeMigrationVersion": "8.0.0",
    }


def search(s: Search) -> dict[str, Any]:
    return {
        "type": "search",
        "id": s.id,
        "attributes": {
            "title": s.title,
            "columns": s.columns,
            "sort": [["@timestamp", "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": _source(s.query)},
        },
        "references": [
            {"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": s.data_view}
        ],
        **VERSION,
        "typeMigrationVersion": "8.0.0",
    }


def _column(spec: dict[str, Any], order_by: str | None = None) -> dict[str, Any]:
    op = spec["op"]
    if op == "count":
        return {
            "label": "Count",
            "dataType": "number",
            "operationType": "count",
            "sourceField": "___records___",
            "isBucketed": False,
        }
    if op == "percentile":
        return {
            "label": f"p{spec['percentile']} of {spec['field']}",
            "dataType": "number",
            "operationType": "percentile",
            "sourceField": spec["field"],
            "isBucketed": False,
            "params": {"percentile": spec["percentile"]},
        }
    if op == "date_histogram":
        return {
            "label": spec["field"],
            "dataType": "date",
            "operationType": "date_histogram",
            "sourceField": spec["field"],
            "isBucketed": True,
            "params": {"interval": "auto"},
        }
    return {
        "label": f"Top {spec['field']}",
        "dataType": "string",
        "operationType": "terms",
        "sourceField": spec["field"],
        "isBucketed": True,
        "params": {
            "size": spec.get("size", 10),
            "orderBy": {"type": "column", "columnId": order_by},
            "orderDirection": "desc",
            "otherBucket": True,
        },
    }


def lens(chart: Chart) -> dict[str, Any]:
    metric_ids = [f"m{i}" for i in range(len(chart.metrics))]
    columns = {"x": _column(chart.x, order_by=metric_ids[0])}
    columns |= {mid: _column(spec) for mid, spec in zip(metric_ids, chart.metrics, strict=True)}
    order = ["x"]
    if chart.breakdown:
        columns["b"] = _column({"op": "terms", "field": chart.breakdown, "size": 8}, order_by=metric_ids[0])
        order.append("b")
    order += metric_ids
    layer = {"layerId": "layer1", "accessors": metric_ids}
    if chart.kind == "pie":
        visualization_type = "lnsPie"
        visualization: dict[str, Any] = {
            "shape": "donut",
            "layers": [{"layerId": "layer1", "layerType": "data", "primaryGroups": ["x"], "metrics": metric_ids}],
        }
    elif chart.kind == "table":
        visualization_type = "lnsDatatable"
        visualization = {"layerId": "layer1", "layerType": "data", "columns": [{"columnId": c} for c in order]}
    else:
        visualization_type = "lnsXY"
        layer |= {"layerType": "data", "seriesType": chart.kind, "xAccessor": "x"}
        if chart.breakdown:
            layer["splitAccessor"] = "b"
        visualization = {
            "preferredSeriesType": chart.kind,
            "legend": {"isVisible": True, "position": "right"},
            "layers": [layer],
        }
    return {
        "type": "lens",
        "id": chart.id,
        "attributes": {
            "title": chart.title,
            "visualizationType": visualization_type,
            "state": {
                "datasourceStates": {"formBased": {"layers": {"layer1": {"columns": columns, "columnOrder": order}}}},
                "visualization": visualization,
                "query": {"query": chart.query, "language": "kuery"},
                "filters": [],
            },
        },
        "references": [{"type": "index-pattern", "id": DATA_VIEW, "name": "indexpattern-datasource-layer-layer1"}],
        **VERSION,
        "typeMigrationVersion": "8.9.0",
    }


def dashboard() -> dict[str, Any]:
    panels, references = [], []
    for i, chart in enumerate(CHARTS):
        panels.append(
            {
                "panelIndex": str(i),
                "gridData": {"x": 24 * (i % 2), "y": 15 * (i // 2), "w": 24, "h": 15, "i": str(i)},
                "type": "lens",
                "panelRefName": f"panel_{i}",
                "embeddableConfig": {},
            }
        )
        references.append({"name": f"panel_{i}", "type": "lens", "id": chart.id})
    return {
        "type": "dashboard",
        "id": "switchboard-audit-overview",
        "attributes": {
            "title": "Switchboard: audit overview",
            "description": "Messages, intents, answer latency, blocked content, top users and devices, failures.",
            "panelsJSON": json.dumps(panels),
            "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
            "timeRestore": True,
            "timeFrom": "now-7d",
            "timeTo": "now",
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json.dumps({"query": {"query": "", "language": "kuery"}, "filter": []})
            },
        },
        "references": references,
        **VERSION,
        "typeMigrationVersion": "8.9.0",
    }


def objects(jaeger_url: str = JAEGER_URL) -> list[dict[str, Any]]:
    views = [data_view(DATA_VIEW, jaeger_url), data_view(LOGS_VIEW, jaeger_url)]
    return [*views, *map(search, SEARCHES), *map(lens, CHARTS), dashboard()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jaeger-url", default=JAEGER_URL, help="Jaeger's UI, where a log line's trace.id goes")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    written = objects(args.jaeger_url)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n" for o in written))
    print(f"wrote {len(written)} saved objects to {args.out}")


if __name__ == "__main__":
    main()
