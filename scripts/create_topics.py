"""Create or update Switchboard's Kafka topics from infra/kafka/topics.yaml.

    python scripts/create_topics.py --bootstrap 127.0.0.1:19092 --environment local

Idempotent: missing topics are created; existing ones get their configs aligned and
their partition count raised (never lowered, which Kafka cannot do).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

TOPICS_FILE = Path(__file__).resolve().parent.parent / "infra" / "kafka" / "topics.yaml"
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def retention_ms(value: Any) -> str:
    """'7d' -> '604800000'; -1 (keep forever) stays -1."""
    if value in (-1, "-1"):
        return "-1"
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"retention {value!r} is not a duration like 7d, 12h or 500ms")
    return str(int(match.group(1)) * _UNIT_MS[match.group(2)])


def load_specs(path: Path, environment: str) -> list[TopicSpec]:
    """Topic specs of ``environment`` from the declarative list at ``path``."""
    doc = yaml.safe_load(path.read_text())
    if environment not in doc["environments"]:
        raise SystemExit(f"unknown environment {environment!r}; known: {', '.join(doc['environments'])}")
    env = doc["environments"][environment]
    specs = []
    for topic in doc["topics"]:
        merged = {**doc["defaults"], **env, **topic}
        specs.append(
            TopicSpec(
                name=merged["name"],
                partitions=int(merged["partitions"]),
                replication_factor=int(merged["replication_factor"]),
                configs={
                    "retention.ms": retention_ms(merged["retention"]),
                    "cleanup.policy": str(merged["cleanup_policy"]),
                    "min.insync.replicas": str(merged["min_insync_replicas"]),
                },
            )
        )
    return specs


async def apply(bootstrap: str, specs: list[TopicSpec]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="switchboard-create-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs) for s in missing]
            )
        present = [s for s in specs if s.name in existing]
        if present:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, s.name, configs=s.configs) for s in present]
            )
            described = {
                t["topic"]: len(t["partitions"]) for t in await admin.describe_topics([s.name for s in present])
            }
            grow = {s.name: NewPartitions(s.partitions) for s in present if described.get(s.name, 0) < s.partitions}
            if grow:
                await admin.create_partitions(grow)
        for spec in specs:
            state = "created" if spec in missing else "updated"
            print(f"{state:8} {spec.name} partitions={spec.partitions} {spec.configs}")
    finally:
        await admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="host:port of a broker")
    parser.add_argument("--environment", default="local", help="entry of `environments` in the topics file")
    parser.add_argument("--file", type=Path, default=TOPICS_FILE)
    args = parser.parse_args()
    asyncio.run(apply(args.bootstrap, load_specs(args.file, args.environment)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
