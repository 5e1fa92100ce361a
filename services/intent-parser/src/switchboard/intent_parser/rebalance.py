"""Faust without the two steps that lose records in a rebalance.

Faust buffers each partition's records in queues between the consumer and the agents, and
commits, per partition, the offset after the longest run of handled ("acked") records that
starts at the last commit. faust-streaming 0.15.3 can lose a record in a rebalance in two
steps, both seen in a rolling restart of two parser replicas (about one run in three of
``tests/e2e/test_intent_parser.py::test_context_limit_and_dedupe_move_with_their_partitions_in_a_rebalance``
lost one or two inbound messages, which never became intents and left no audit record):

1. **Buffers emptied while the flow runs.** ``app.flow_control.resume()`` empties the
   queues, which is right after a ``suspend()`` (a revocation: what was buffered is read
   again from the committed offset). But a table recovery also calls it when it completes
   (``Recovery.on_recovery_completed``), after the stream partitions were resumed and seeked
   one by one to their committed offsets: records read after their partition's seek are
   dropped and read nowhere again. :class:`FlowControl` empties the queues only after a
   ``suspend()``. A record buffered while the flow runs is processed; if the seek makes the
   consumer read it again, the copy is a duplicate, which at-least-once processing allows
   for (the parser's outputs keep their ids and consumers dedupe).
2. **A commit over the dropped record.** ``Consumer._new_offset`` lets the first handled
   offset be one past the committed one (its gap check is ``> 1``, while the committed
   offset already is the next to read), so a single missing record is committed over.
   :class:`Consumer` never commits over a record at the committed offset that was not
   handled. When two commits in a row (Faust commits every ``broker_commit_interval``,
   2.8 s) find the same such hole, it reads the partition again from it, once per hole; a
   record that still does not come (one removed by retention, say) is then passed over as
   Faust would have. Whatever else drops a record between fetch and ack, this turns a loss
   into a re-read, at the price of handling the records after it twice.

A third way is not Faust's consumer but its streams: a stopping worker cancels its agents,
and the record an agent was handling is acked as the ``async for`` leaves it, so the stop's
last commit passes over it. The agents therefore ack by hand, once a record was handled
(:meth:`switchboard.intent_parser.app.Understanding.consume`).
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

logger = logging.getLogger(__name__)


class FlowControl(FlowControlEvent):
    """``resume()`` empties the stream queues only after a ``suspend()``."""

    def resume(self) -> None:
        if self.is_active():
            return  # already flowing: the queues hold records still to be processed
        super().resume()


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, which reads a record it skipped again instead of committing over it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holes: dict[TP, int] = {}  # partition -> unhandled committed offset seen at the last commit
        self._to_reread: dict[TP, int] = {}  # partition -> offset to read again after this commit
        self._reread: dict[TP, int] = {}  # partition -> offset read again once already

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None and self._reread.get(tp) != committed:
            gaps = self._gap[tp]
            handled_first = min(acked)
            if handled_first > committed and not gaps.overlaps(committed):
                # Later records were handled, the one at the committed offset not (yet).
                if self._holes.get(tp) == committed:
                    self._to_reread[tp] = committed  # still not at the next commit: lost
                self._holes[tp] = committed
                return None
        self._holes.pop(tp, None)
        return super()._new_offset(tp)

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        committed = await super().force_commit(topics, start_new_transaction=start_new_transaction)
        to_reread, self._to_reread = self._to_reread, {}
        for tp, offset in to_reread.items():
            handled = offset in self._acked_index[tp] or self._committed_offset[tp] != offset
            if handled or tp not in self.assignment():
                continue  # handled after all, or revoked meanwhile
            logger.warning(
                "record skipped before it was handled; reading the partition again from it",
                extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
            )
            self._reread[tp] = offset
            await self.seek(tp, offset)
        return committed

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            for state in (self._holes, self._to_reread, self._reread):
                state.pop(tp, None)
        await super().on_partitions_revoked(revoked)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`Consumer`."""

    Consumer = Consumer


class App(faust.App):
    """A Faust app with :class:`FlowControl` and :class:`Consumer` (``kafka://`` brokers)."""

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return FlowControl(loop=self.loop)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
