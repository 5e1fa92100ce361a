"""Every metric a Grafana dashboard queries is one a service exports (checked against the
live prometheus_client registry after importing the services' metric modules)."""

import json
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import switchboard.common.metrics
import switchboard.inference_client.metrics  # noqa: F401 (registers the inference metrics)

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "deploy" / "grafana").glob("*.json"))
_SERIES = re.compile(r"\b(switchboard_[a-z_]+)")


_SUFFIXES = {
    "counter": ["_total"],
    "histogram": ["_bucket", "_sum", "_count"],
    "gauge": [""],
    "summary": ["_sum", "_count", ""],
}


def _exported() -> set[str]:
    """The series names of every registered metric (labelled ones have no samples yet)."""
    return {metric.name + suffix for metric in REGISTRY.collect() for suffix in _SUFFIXES.get(metric.type, [""])}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_queried_series_is_exported(path: Path) -> None:
    exported = _exported()
    dashboard = json.loads(path.read_text())
    queried = {name for panel in dashboard["panels"] for t in panel["targets"] for name in _SERIES.findall(t["expr"])}
    assert queried, "a dashboard with no Switchboard series"
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"
