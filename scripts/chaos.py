"""Chaos scenarios against real components, and a report table of what each cost.

    make up && .venv/bin/python -m scripts.chaos [--only NAME ...] [--rounds 3] [--json report.json]

Broker scenarios start a three-broker Kafka of their own (tests/chaos/cluster.py: a state
folder and ports of its own, beside the `make up` stack); the others run the services as
real processes against the `make up` stack. Each runs under steady load and prints:
events sent (accepted), replies (distinct events answered), lost, duplicated, redelivered
to a handler (absorbed by event-id idempotence), whether per-conversation order held,
replies overtaken by another kind's, audit documents missing, and the time to recover
from each fault (p50 / max). The same scenarios run, with assertions, in tests/chaos.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from pathlib import Path

from rich.console import Console

from tests.chaos import broker_failover, broker_pipeline, mixed, outages, poison, service_kills
from tests.chaos.cluster import KafkaCluster
from tests.chaos.outcome import Outcome, table
from tests.conftest import load_stack
from tests.e2e.pipeline import Pipeline


async def _broker(rounds: int) -> list[Outcome]:
    cluster = KafkaCluster()
    await asyncio.to_thread(cluster.start)
    try:
        clients = await broker_failover.run(cluster.bootstrap, cluster.kill, cluster.restart, rounds=rounds)
        on_cluster = dataclasses.replace(load_stack(), kafka_bootstrap=cluster.bootstrap)
        async with mixed.running(on_cluster, replicas=1, replication=3) as pipeline:
            return [clients, await broker_pipeline.run(pipeline, cluster, rounds=rounds)]
    finally:
        await asyncio.to_thread(cluster.stop)


async def _services(rounds: int) -> list[Outcome]:
    async with mixed.running(load_stack()) as pipeline:
        return [await service_kills.run(pipeline)]


async def _outages(rounds: int) -> list[Outcome]:
    async with mixed.running(load_stack(), replicas=1) as pipeline:
        return [await outages.run(pipeline)]


async def _poison(rounds: int) -> list[Outcome]:
    pipeline = Pipeline(load_stack())
    await pipeline.start()
    try:
        outcome, report = await poison.run(pipeline)
    finally:
        await pipeline.stop()
    console = Console()
    for kind, (status, detail) in report.http.items():
        console.print(f"  poison at the door, {kind}: HTTP {status} ({detail[:90]})")
    for kind in (*poison.UNREADABLE, *poison.READABLE):
        if kind in report.dead_lettered:
            console.print(f"  poison behind the door, {kind}: dead-lettered ({report.dead_lettered[kind][:90]})")
        else:
            console.print(f"  poison behind the door, {kind}: answered ({report.answered.get(kind, 'no reply yet')!r})")
    console.print(f"  other users' records dead-lettered: {report.others_dead_lettered}")
    return [outcome]


SCENARIOS = {  # name -> (what the spinner says, run(rounds))
    "broker": ("killing the partition leader's broker under load, then under the services (own 3 brokers)", _broker),
    "services": ("kill -9 of each service replica in turn under mixed traffic", _services),
    "outages": ("PostgreSQL restarted, Elasticsearch stopped, Triton killed under mixed traffic", _outages),
    "poison": ("one user's poison among a thousand messages", _poison),
}


async def _scenarios(names: list[str], rounds: int, console: Console) -> list[Outcome]:
    outcomes = []
    for name in names:
        says, scenario = SCENARIOS[name]
        with console.status(f"{name}: {says}"):
            done = await scenario(rounds)
        console.print(table(done))
        outcomes += done
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run these scenarios (default all)")
    parser.add_argument("--rounds", type=int, default=3, help="broker faults (default 3)")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    args = parser.parse_args()
    # The clients log every refused connection while a broker is down: expected here, and
    # the table says what it cost.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    console = Console(width=max(140, Console().width))
    outcomes = asyncio.run(_scenarios(args.only or list(SCENARIOS), args.rounds, console))
    console.print(table(outcomes))
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(o) for o in outcomes], indent=2) + "\n")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
