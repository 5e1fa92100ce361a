"""Every metric a Grafana dashboard queries is one a service exports (checked against the
live prometheus_client registry after importing the services' metric modules)."""

import json
from pathlib import Path

import pytest

from tests.contract.series import SWITCHBOARD_SERIES, exported

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "deploy" / "grafana").glob("*.json"))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_queried_series_is_exported(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queried = {name for expr in exprs for name in SWITCHBOARD_SERIES.findall(expr)}
    assert queried, "a dashboard with no Switchboard series"
    assert queried <= exported(), f"not exported: {sorted(queried - exported())}"
