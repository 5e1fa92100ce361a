"""A partition leader's broker killed under load: nothing acknowledged is lost or doubled."""

import pytest

from tests.chaos import broker_failover
from tests.chaos.cluster import KafkaCluster

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
