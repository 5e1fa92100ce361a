"""Consumer-group lag, read from the brokers: each group's committed offsets against the
partitions' end offsets. Measured outside the consumers, so a group whose every member is
down (the case that matters most) still shows its lag growing.

The series are named as kafka_exporter (Strimzi's Kafka Exporter) names them, so the same
alert rules work on the local stack, which runs this, and in a cluster, which runs Strimzi's:

- ``kafka_consumergroup_lag{consumergroup, topic, partition}``: end offset minus committed;
- ``kafka_consumergroup_current_offset{consumergroup, topic, partition}``: the committed offset;
- ``kafka_topic_partition_current_offset{topic, partition}``: the end offset.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PartitionKey = tuple[str, int]  # (topic, partition)


@dataclass
class Snapshot:
    """One reading: each group's committed offsets and each partition's end offset."""

    committed: dict[str, dict[PartitionKey, int]] = field(default_factory=dict)
    ends: dict[PartitionKey, int] = field(default_factory=dict)
    taken_at: float = 0.0

    def lag(self, group: str) -> dict[PartitionKey, int]:
        """End minus committed for each partition the group has committed on (never below 0)."""
        return {
            key: max(0, self.ends[key] - offset)
            for key, offset in self.committed.get(group, {}).items()
            if key in self.ends
        }


async def read(connection: dict[str, Any], groups: re.Pattern[str]) -> Snapshot:
    """A snapshot of every consumer group whose id matches ``groups``."""
    admin = AIOKafkaAdminClient(**connection)
    await admin.start()
    try:
        listed = await admin.list_consumer_groups()
        # A group keeps the offsets of a topic deleted since; asking for that topic's end
        # offsets would stall the whole snapshot until the request times out (40 s).
        existing = set(await admin.list_topics())
        committed: dict[str, dict[PartitionKey, int]] = {}
        for group_id, _protocol in sorted(listed):
            if not groups.fullmatch(group_id):
                continue
            offsets = await admin.list_consumer_group_offsets(group_id)
            committed[group_id] = {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in offsets.items()
                if meta.offset >= 0 and tp.topic in existing
            }
    finally:
        await admin.close()
    partitions = sorted({key for offsets in committed.values() for key in offsets})
    ends: dict[PartitionKey, int] = {}
    if partitions:
        consumer = AIOKafkaConsumer(**connection, enable_auto_commit=False)
        await consumer.start()
        try:
            found = await consumer.end_offsets([TopicPartition(topic, p) for topic, p in partitions])
        finally:
            await consumer.stop()
        ends = {(tp.topic, tp.partition): offset for tp, offset in found.items()}
    return Snapshot(committed, ends, time.time())


class LagCollector(Collector):
    """Serves the latest snapshot at each scrape: a group gone from Kafka leaves no stale series."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self.snapshot
        lag = GaugeMetricFamily(
            "kafka_consumergroup_lag",
            "Records past the group's committed offset",
            labels=["consumergroup", "topic", "partition"],
        )
        current = GaugeMetricFamily(
            "kafka_consumergroup_current_offset",
            "The group's committed offset",
            labels=["consumergroup", "topic", "partition"],
        )
        for group, offsets in sorted(snapshot.committed.items()):
            lags = snapshot.lag(group)
            for (topic, partition), offset in sorted(offsets.items()):
                current.add_metric([group, topic, str(partition)], offset)
                if (topic, partition) in lags:
                    lag.add_metric([group, topic, str(partition)], lags[topic, partition])
        ends = GaugeMetricFamily(
            "kafka_topic_partition_current_offset", "The partition's end offset", labels=["topic", "partition"]
        )
        for (topic, partition), offset in sorted(snapshot.ends.items()):
            ends.add_metric([topic, str(partition)], offset)
        age = GaugeMetricFamily("kafka_lag_exporter_snapshot_age_seconds", "Seconds since the offsets were read")
        age.add_metric([], time.time() - snapshot.taken_at if snapshot.taken_at else float("nan"))
        yield from (lag, current, ends, age)
