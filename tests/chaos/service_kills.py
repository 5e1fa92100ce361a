"""Scenario: kill -9 of each service's replicas in turn under steady mixed traffic.

The five services and the example plugin run as two real replicas each on the local
stack, under the mixed traffic of :mod:`tests.chaos.mixed`. Every replica of every
service is killed with SIGKILL, one at a time, and a new one started in its place.
"""

from __future__ import annotations

import asyncio
import signal
import time

from tests.chaos import mixed
from tests.chaos.outcome import Outcome
from tests.e2e.pipeline import CORE, Pipeline


async def run(pipeline: Pipeline) -> Outcome:
    """Run the scenario on a started ``mixed.pipeline_for`` pipeline."""
    traffic = mixed.mixed_traffic(pipeline)
    faults: list[tuple[float, float]] = []  # (killed at, replacement serving at)
    async with traffic:
        await asyncio.sleep(10)
        for module in CORE:
            for entry in pipeline.replicas_of(module):
                killed = time.time()
                await pipeline.end(entry, signal.SIGKILL)
                await pipeline.add_replica(module)
                faults.append((killed, time.time()))
                await asyncio.sleep(3)
    return await mixed.count("kill -9 of every service replica", pipeline, traffic, faults)
