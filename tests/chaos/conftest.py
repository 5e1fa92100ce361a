"""The chaos suite's own three-broker cluster, started once for the module that uses it and
stopped after it: its three JVMs would otherwise take CPU from every test that follows."""

from collections.abc import Iterator

import pytest

from tests.chaos.cluster import KafkaCluster


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[KafkaCluster]:
    cluster = KafkaCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
