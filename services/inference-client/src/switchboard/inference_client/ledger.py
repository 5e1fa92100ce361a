"""Which requests already have an answer, so a redelivered request gets no second one.

Kafka delivers at least once: after a crash or a rebalance, requests whose offsets were
not committed come again. The results topic is the record of what was answered: at start
the ledger reads the last ``window_s`` of it (every partition, no consumer group), then
notes each result this process sends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from cachetools import TTLCache
from google.protobuf.message import DecodeError

from switchboard.common.config import KafkaSettings
from switchboard.common.kafka import positions
from switchboard.common.kafka.security import connection_kwargs
from switchboard.events.v1 import envelope_pb2


class Ledger:
    def __init__(self, window_s: float, entries: int = 1_000_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._answered: TTLCache[str, bool] = TTLCache(maxsize=entries, ttl=window_s, timer=clock)
        self._running: dict[str, asyncio.Event] = {}
        self.window_s = window_s

    def answered(self, request_id: str) -> bool:
        return request_id in self._answered

    def note(self, request_id: str) -> None:
        self._answered[request_id] = True

    async def claim(self, request_id: str) -> bool:
        """True: the caller answers ``request_id`` and must call :meth:`release`. False:
        it is answered already (after waiting for a copy being answered right now)."""
        while (running := self._running.get(request_id)) is not None:
            await running.wait()
        if self.answered(request_id):
            return False
        self._running[request_id] = asyncio.Event()
        return True

    def release(self, request_id: str) -> None:
        running = self._running.pop(request_id, None)
        if running is not None:
            running.set()

    async def load(self, settings: KafkaSettings, topic: str) -> int:
        """Note every request answered on ``topic`` in the window; returns how many."""
        connection = {
            "bootstrap_servers": settings.bootstrap_servers,
            "client_id": f"{settings.client_id}-ledger",
            **connection_kwargs(settings),
        }
        tps = await positions.partitions(connection, topic)
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **connection)
        await consumer.start()
        try:
            consumer.assign(tps)
            await positions.seek_to_time(consumer, tps, int((time.time() - self.window_s) * 1000))
            return sum([self._note_record(record.value or b"") async for record in positions.to_end(consumer, tps)])
        finally:
            await consumer.stop()

    def _note_record(self, value: bytes) -> int:
        envelope = envelope_pb2.Envelope()
        try:
            envelope.ParseFromString(value)
        except DecodeError:
            return 0
        if envelope.WhichOneof("payload") != "inference_result":
            return 0
        self.note(envelope.inference_result.request_id)
        return 1
