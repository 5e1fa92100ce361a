"""Scenario: the stack's own servers fail under steady mixed traffic.

The five services and the example plugin (one replica each) run on the `make up` stack
under the mixed traffic of :mod:`tests.chaos.mixed`, while, one after another:
PostgreSQL is restarted, Elasticsearch is stopped for a minute, and Triton is killed
(SIGKILL) and started again. Answers may be late, or a polite failure once a request's
deadline has passed; each is counted, and nothing may be lost or answered twice.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from tests.chaos import mixed
from tests.chaos.outcome import Outcome
from tests.e2e.pipeline import Pipeline

STACK = Path(__file__).resolve().parents[2] / "infra" / "stack.sh"


async def _stack(*args: str) -> None:
    done = await asyncio.to_thread(subprocess.run, [str(STACK), *args], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"infra/stack.sh {' '.join(args)} failed: {(done.stdout + done.stderr)[-2000:]}")


async def run(pipeline: Pipeline, elasticsearch_down_s: float = 60) -> Outcome:
    """Run the scenario on a started ``mixed.pipeline_for`` pipeline."""
    traffic = mixed.mixed_traffic(pipeline)
    faults: list[tuple[float, float]] = []  # (fault began, its server serving again)
    async with traffic:
        await asyncio.sleep(10)
        began = time.time()
        await _stack("restart", "postgres")
        faults.append((began, time.time()))
        await asyncio.sleep(10)
        began = time.time()
        await _stack("stop", "elasticsearch")
        await asyncio.sleep(elasticsearch_down_s)
        await _stack("up", "elasticsearch")
        faults.append((began, time.time()))
        await asyncio.sleep(10)
        began = time.time()
        await _stack("kill", "triton")
        await _stack("up", "triton")
        faults.append((began, time.time()))
        await asyncio.sleep(10)
    return await mixed.count("PostgreSQL restarted, Elasticsearch down 1 min, Triton killed", pipeline, traffic, faults)
