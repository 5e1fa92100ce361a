"""What the exporter serves for a snapshot: the lag per partition (never below zero), the
committed and end offsets, and nothing for a group or partition it did not read."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from switchboard.lag_exporter.lag import LagCollector, Snapshot


def _samples(collector: LagCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_lag_is_the_end_minus_the_committed_offset_and_never_negative() -> None:
    snapshot = Snapshot(
        committed={"scheduler": {("intents", 0): 3, ("intents", 1): 12}, "audit": {("audit", 0): 5}},
        ends={("intents", 0): 10, ("intents", 1): 10},  # 1: a commit past a truncated end
        taken_at=1.0,
    )
    assert snapshot.lag("scheduler") == {("intents", 0): 7, ("intents", 1): 0}
    assert snapshot.lag("audit") == {}  # its end offset was not read
    assert snapshot.lag("nobody") == {}


def test_the_collector_serves_the_latest_snapshot_under_kafka_exporters_names() -> None:
    collector = LagCollector()
    collector.snapshot = Snapshot(committed={"scheduler": {("intents", 0): 3}}, ends={("intents", 0): 10}, taken_at=1.0)
    samples = _samples(collector)
    key = (("consumergroup", "scheduler"), ("partition", "0"), ("topic", "intents"))
    assert samples[("kafka_consumergroup_lag", key)] == 7
    assert samples[("kafka_consumergroup_current_offset", key)] == 3
    assert samples[("kafka_topic_partition_current_offset", (("partition", "0"), ("topic", "intents")))] == 10
    # A group gone from Kafka leaves no series behind at the next snapshot.
    collector.snapshot = Snapshot(committed={}, ends={}, taken_at=2.0)
    assert not [name for name, _ in _samples(collector) if name.startswith("kafka_consumergroup")]
