"""Backpressure on a WebSocket session: a client that does not read is cut off, it never
makes the gateway hold more than the bound."""

import asyncio

import pytest

from switchboard.channel_gateway.websocket import _Session, _TooSlow


class _StuckSocket:
    """A client that stopped reading: every send blocks."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None

    async def send_text(self, frame: str) -> None:
        self.sent.append(frame)
        await asyncio.Event().wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_a_client_that_does_not_read_is_cut_off_at_the_bound() -> None:
    socket = _StuckSocket()
    session = _Session(socket, max_queued=4, heartbeat_s=60)  # type: ignore[arg-type]
    sender = session.sender = asyncio.create_task(session.run_sender())
    session.send({"n": 0})
    await asyncio.sleep(0.01)  # taken by the sender, which is now stuck in send_text
    for n in range(1, 5):
        session.send({"n": n})  # queued, up to the bound
    assert not session.too_slow
    with pytest.raises(_TooSlow):
        session.send({"n": 5})
    await asyncio.sleep(0.01)
    # Cut off: the sender stopped and the socket was closed with 1013 (try again later).
    assert session.too_slow and sender.cancelled() and socket.closed == (1013, "too slow: reconnect and resume")
    assert len(socket.sent) == 1


async def test_silence_brings_a_heartbeat() -> None:
    class _Socket:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send_text(self, frame: str) -> None:
            self.sent.append(frame)

    socket = _Socket()
    sender = asyncio.create_task(_Session(socket, max_queued=4, heartbeat_s=0.05).run_sender())  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    sender.cancel()
    assert socket.sent and all(frame == '{"type": "ping"}' for frame in socket.sent)
