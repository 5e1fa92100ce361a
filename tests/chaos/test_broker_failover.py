"""A partition leader's broker killed under load: nothing acknowledged is lost or doubled,
for the common producer and consumer and for the services."""

import dataclasses

import pytest

from tests.chaos import broker_failover, broker_pipeline, mixed
from tests.chaos.cluster import KafkaCluster
from tests.conftest import Stack

pytestmark = pytest.mark.integration


@pytest.mark.timeout(400)
async def test_leader_broker_killed_under_load_loses_and_duplicates_nothing(kafka_cluster: KafkaCluster) -> None:
    outcome = await broker_failover.run(kafka_cluster.bootstrap, kafka_cluster.kill, kafka_cluster.restart, rounds=1)

    assert outcome.sent > 1000
    assert outcome.lost == 0
    assert outcome.replies == outcome.sent
    assert outcome.duplicated == 0
    assert outcome.order_violations == 0
    assert outcome.recovery_s, "no event sent after the kill reached the partitions the killed broker led"


@pytest.mark.timeout(600)
async def test_leader_broker_killed_under_the_services_loses_and_doubles_no_reply(
    kafka_cluster: KafkaCluster, stack: Stack
) -> None:
    on_cluster = dataclasses.replace(stack, kafka_bootstrap=kafka_cluster.bootstrap)
    async with mixed.running(on_cluster, replicas=1, replication=3) as pipeline:
        outcome = await broker_pipeline.run(pipeline, kafka_cluster)

    assert outcome.sent > 50
    assert outcome.lost == 0, pipeline.log_tails()
    assert outcome.replies + outcome.failed_politely == outcome.sent
    assert outcome.duplicated == 0
    assert outcome.order_violations == 0
    assert outcome.audit_missing == 0
