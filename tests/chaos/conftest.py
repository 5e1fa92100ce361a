"""The chaos suite's own three-broker cluster, started once for the session."""

from collections.abc import Iterator

import pytest

from tests.chaos.cluster import KafkaCluster


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    cluster = KafkaCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
