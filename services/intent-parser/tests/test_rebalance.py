"""Faust made not to lose records in a rebalance (``switchboard.intent_parser.rebalance``):
flow control keeps what is buffered while the flow runs, and the consumer never commits over
a record it did not handle."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from switchboard.intent_parser.app import create_app
from switchboard.intent_parser.config import Settings
from switchboard.intent_parser.rebalance import Consumer, FlowControl

# --- flow control ---------------------------------------------------------------------------


def _buffered(flow_control: FlowControlEvent) -> FlowControlQueue:
    """A stream's queue as Faust makes one (``Stream.outbox``), holding one record."""
    queue: FlowControlQueue = FlowControlQueue(flow_control=flow_control, clear_on_resume=True)
    flow_control.resume()  # the flow starts (a worker is assigned its partitions)
    queue.put_nowait("record read after the seek")
    return queue


def test_a_resume_while_the_flow_runs_keeps_the_buffered_records() -> None:
    flow_control = FlowControl()
    queue = _buffered(flow_control)
    flow_control.resume()  # what a table recovery does when it completes
    assert queue.qsize() == 1


def test_the_stock_flow_control_drops_them_which_is_why_the_parser_has_its_own() -> None:
    # If mode/faust fixes this upstream, this test fails and FlowControl can go.
    flow_control = FlowControlEvent()
    queue = _buffered(flow_control)
    flow_control.resume()
    assert queue.qsize() == 0


def test_a_resume_after_a_suspend_still_drops_records_from_before_the_rebalance() -> None:
    flow_control = FlowControl()
    queue = _buffered(flow_control)
    flow_control.suspend()  # partitions revoked
    flow_control.resume()
    assert queue.qsize() == 0


# --- consumer ---------------------------------------------------------------------------------

TOPIC_PARTITION = TP("inbound", 2)


@pytest.fixture
def app(tmp_path: Path) -> faust.App:
    return create_app(Settings(data_dir=tmp_path), parser=object())  # type: ignore[arg-type]


def test_the_parser_app_uses_both(app: faust.App) -> None:
    assert isinstance(app.flow_control, FlowControl)
    assert isinstance(app.consumer, Consumer)


class _Seeks:
    def __init__(self) -> None:
        self.calls: list[tuple[TP, int]] = []

    async def __call__(self, tp: TP, offset: int) -> None:
        self.calls.append((tp, offset))


@pytest.fixture
def consumer(app: faust.App, monkeypatch: pytest.MonkeyPatch) -> Consumer:
    """The app's consumer, not started: committed up to 4, then 5 handled, 4 not."""
    consumer = app.consumer
    assert isinstance(consumer, Consumer)
    consumer._committed_offset[TOPIC_PARTITION] = 4  # the next record to read is 4
    consumer._acked[TOPIC_PARTITION] = [5]
    consumer._acked_index[TOPIC_PARTITION] = {5}
    monkeypatch.setattr(consumer, "assignment", lambda: {TOPIC_PARTITION})
    monkeypatch.setattr(consumer, "seek", _Seeks())
    return consumer


def test_stock_faust_commits_over_a_single_unhandled_record(consumer: Consumer) -> None:
    # If faust fixes this upstream, this test fails and the Consumer can go.
    assert faust_aiokafka.Consumer._new_offset(consumer, TOPIC_PARTITION) == 6


def test_the_parser_does_not_commit_over_it(consumer: Consumer) -> None:
    assert consumer._new_offset(TOPIC_PARTITION) is None


async def test_a_hole_still_there_at_the_next_commit_is_read_again_once(consumer: Consumer) -> None:
    seeks = consumer.seek
    await consumer.force_commit()
    assert seeks.calls == []  # the record may still be on its way to the agent
    await consumer.force_commit()
    assert seeks.calls == [(TOPIC_PARTITION, 4)]
    # Read again and still missing (e.g. removed by retention): passed over as Faust would.
    assert consumer._new_offset(TOPIC_PARTITION) == 6


async def test_a_record_handled_before_the_next_commit_is_not_read_again(consumer: Consumer) -> None:
    seeks = consumer.seek
    await consumer.force_commit()
    consumer._acked[TOPIC_PARTITION].append(4)
    consumer._acked_index[TOPIC_PARTITION].add(4)
    assert consumer._new_offset(TOPIC_PARTITION) == 6
    assert seeks.calls == []
