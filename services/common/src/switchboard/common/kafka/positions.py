"""Reading a topic without a consumer group: every partition, from a point in time to its end.

For views that are not work queues (the gateway's reply view, the inference client's
ledger of answered requests): each reader reads all partitions and commits nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def partitions(connection: dict[str, Any], topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` (``connection``: aiokafka client keyword arguments);
    RuntimeError if the topic does not exist."""
    admin = AIOKafkaAdminClient(**connection)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise RuntimeError(f"topic {topic} does not exist (error {described['error_code']})")
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def seek_to_time(consumer: AIOKafkaConsumer, tps: list[TopicPartition], since_ms: int) -> None:
    """Position each of ``tps`` (assigned to ``consumer``) at its first record at or after
    ``since_ms``, or at its end when it has none that recent."""
    offsets = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
    for tp in tps:
        found = offsets.get(tp)
        if found is None:
            await consumer.seek_to_end(tp)
        else:
            consumer.seek(tp, found.offset)


async def to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> AsyncIterator[ConsumerRecord[Any, Any]]:
    """Every record of ``tps`` (assigned to ``consumer``) from each one's position up to its
    end as it was at the call; records written later are left for the caller."""
    ends = await consumer.end_offsets(tps)
    todo = {tp: end for tp, end in ends.items() if await consumer.position(tp) < end}
    while todo:
        for tp, records in (await consumer.getmany(*todo, timeout_ms=1000)).items():
            for record in records:
                if record.offset < todo[tp]:
                    yield record
        # By position, not by the last record: transaction markers take offsets too.
        todo = {tp: end for tp, end in todo.items() if await consumer.position(tp) < end}
