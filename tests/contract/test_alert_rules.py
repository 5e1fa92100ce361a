"""The alert rules (deploy/prometheus/alerts.yaml): valid, each with a promtool unit test
that fires it and one that keeps it quiet (and promtool's tests pass), a runbook, and only
Switchboard series some service exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.series import SWITCHBOARD_SERIES, exported

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool not found: it comes with Debian's prometheus package (make setup)"
    return found


def test_promtool_checks_the_rules_and_their_unit_tests_pass() -> None:
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(TESTS)]):
        done = subprocess.run([_promtool(), *args], capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_each_alert_is_tested_firing_and_quiet_and_has_a_runbook(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    cases = [
        case
        for group in yaml.safe_load(TESTS.read_text(encoding="utf-8"))["tests"]
        for case in group.get("alert_rule_test", [])
        if case["alertname"] == name
    ]
    assert any(case["exp_alerts"] for case in cases), f"no test where {name} fires"
    assert any(not case["exp_alerts"] for case in cases), f"no test where {name} stays quiet"
    runbook = alert["annotations"]["runbook_url"]
    assert runbook == f"docs/runbooks/{name}.md" and (ROOT / runbook).is_file(), runbook


def test_every_switchboard_series_an_alert_queries_is_exported() -> None:
    queried = {series for alert in _alerts() for series in SWITCHBOARD_SERIES.findall(alert["expr"])}
    assert queried, "no alert on a Switchboard series"
    assert queried <= exported(), f"not exported: {sorted(queried - exported())}"
