"""Scenario: the partition leader's broker is killed under mixed traffic through the services.

The five services and the example plugin (one replica each) run against the chaos suite's
three-broker cluster (their topics at replication 3, ``min.insync.replicas`` 2) and the
`make up` stack's other servers, under the mixed traffic of :mod:`tests.chaos.mixed`. Each
round SIGKILLs the broker leading partition 0 of the inbound topic, restarts it 8 s later
and waits until it is back in every partition's in-sync replicas.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient

from tests.chaos import mixed
from tests.chaos.broker_failover import leaders, wait_in_sync
from tests.chaos.cluster import KafkaCluster
from tests.chaos.outcome import Outcome
from tests.e2e.pipeline import Pipeline


async def run(pipeline: Pipeline, cluster: KafkaCluster, rounds: int = 1, down_s: float = 8.0) -> Outcome:
    """Run the scenario on a started pipeline whose Kafka is ``cluster``."""
    traffic = mixed.mixed_traffic(pipeline)
    faults: list[tuple[float, float]] = []  # (killed at, back in sync at)
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        async with traffic:
            await asyncio.sleep(10)
            for _ in range(rounds):
                node = (await leaders(admin, pipeline.topics.inbound))[0]
                killed = time.time()
                await asyncio.to_thread(cluster.kill, node)
                await asyncio.sleep(down_s)
                await asyncio.to_thread(cluster.restart, node)
                await wait_in_sync(admin, pipeline.topics.inbound)
                faults.append((killed, time.time()))
                await asyncio.sleep(5)
    finally:
        await admin.close()
    return await mixed.count(f"broker leader killed under the services (x{rounds})", pipeline, traffic, faults)
