"""The declarative topic list: valid, versioned, and the same for local and Kubernetes."""

import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import render_topics
import topics


def test_retention_durations() -> None:
    assert topics.retention_ms("7d") == str(7 * 24 * 3600 * 1000)
    assert topics.retention_ms("500ms") == "500"
    assert topics.retention_ms(-1) == "-1"
    with pytest.raises(ValueError, match="not a duration"):
        topics.retention_ms("a week")


def test_names_are_unique_and_versioned() -> None:
    specs = topics.load_specs("local")
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"switchboard(\.[a-z]+)+\.v\d+", name) for name in names), names


def test_environments_differ_only_in_durability() -> None:
    local = {s.name: s for s in topics.load_specs("local")}
    prod = {s.name: s for s in topics.load_specs("production")}
    assert local.keys() == prod.keys()
    for name, spec in prod.items():
        assert spec.replication_factor == 3 and spec.configs["min.insync.replicas"] == "2"
        assert local[name].replication_factor == 1
        assert spec.partitions == local[name].partitions
        assert spec.configs["retention.ms"] == local[name].configs["retention.ms"]


def test_compacted_catalogue_keeps_everything() -> None:
    catalogue = next(s for s in topics.load_specs("local") if s.name == "switchboard.plugins.catalog.v1")
    assert catalogue.configs["cleanup.policy"] == "compact"
    assert catalogue.configs["retention.ms"] == "-1"


def test_kubernetes_resources_are_rendered_from_the_same_list() -> None:
    assert render_topics.OUT.read_text() == render_topics.render(), "run `make topics`"
    resources = list(yaml.safe_load_all(render_topics.OUT.read_text()))
    assert [r["spec"]["topicName"] for r in resources] == [s.name for s in topics.load_specs("production")]
    assert all(r["kind"] == "KafkaTopic" for r in resources)
