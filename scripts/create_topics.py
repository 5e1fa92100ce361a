"""Create or update Switchboard's Kafka topics from infra/kafka/topics.yaml.

    python scripts/create_topics.py --bootstrap 127.0.0.1:19092 --environment local

Idempotent: missing topics are created; existing ones get their configs aligned and
their partition count raised (never lowered, which Kafka cannot do).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from topics import TOPICS_FILE, TopicSpec, load_specs


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
    asyncio.run(apply(args.bootstrap, load_specs(args.environment, args.file)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
