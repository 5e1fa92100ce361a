"""A WebSocket session: backpressure (a client that does not read is cut off, it never
makes the gateway hold more than the bound), heartbeats, replies followed as they stream, and
the sessions and frames counted for Prometheus."""

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from switchboard.channel_gateway.auth import Authenticator
from switchboard.channel_gateway.ids import IdSigner
from switchboard.channel_gateway.replies import Replies
from switchboard.channel_gateway.websocket import _Following, _Session, _TooSlow, websocket_app
from switchboard.cli.tokens import AUDIENCE, ISSUER, mint
from switchboard.events.v1 import messages_pb2 as m


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


class _ReadingSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    async def send_text(self, frame: str) -> None:
        self.sent.append(json.loads(frame))


def _piece(sequence: int, text: str) -> m.OutboundMessage:
    return m.OutboundMessage(in_reply_to="m-1", sequence=sequence, text=text)


async def test_a_followed_reply_streams_in_order_from_where_the_client_was_then_stops() -> None:
    replies = Replies(ttl_s=60, max_entries=10)
    replies.on_outbound(_piece(0, "a"))  # before the client resumed
    replies.on_outbound(_piece(1, "b"))
    socket = _ReadingSocket()
    session = _Session(socket, max_queued=16, heartbeat_s=60)  # type: ignore[arg-type]
    session.sender = asyncio.create_task(session.run_sender())
    _Following(session, replies, "m-1", after=0, timeout_s=5)  # the client has piece 0
    replies.on_outbound(_piece(3, "d"))  # out of order: held back until 2 comes
    replies.on_outbound(_piece(2, "c"))
    replies.on_outbound(_piece(2, "c"))  # a redelivery
    replies.on_outbound(m.OutboundMessage(in_reply_to="m-1", final=True, text="bcd"))
    await asyncio.sleep(0.01)
    frames = [(f["type"], f.get("sequence"), f.get("text", f.get("reply"))) for f in socket.sent]
    assert frames == [("chunk", 1, "b"), ("chunk", 2, "c"), ("chunk", 3, "d"), ("done", None, "bcd")]
    assert not session.following and not replies._watchers
    session.close()


async def test_a_reply_that_never_completes_ends_with_a_timeout_error() -> None:
    replies = Replies(ttl_s=60, max_entries=10)
    socket = _ReadingSocket()
    session = _Session(socket, max_queued=16, heartbeat_s=60)  # type: ignore[arg-type]
    session.sender = asyncio.create_task(session.run_sender())
    _Following(session, replies, "m-1", after=-1, timeout_s=0.05)
    await asyncio.sleep(0.2)
    assert socket.sent == [{"type": "error", "status": 504, "detail": "no complete reply in time", "message_id": "m-1"}]
    assert not session.following and not replies._watchers and replies.get("m-1") is None
    session.close()


def test_open_sessions_and_frames_by_type_are_counted() -> None:
    secret = "a-websocket-metrics-test-secret-of-32-bytes"

    async def record(*args: object) -> None:
        return None

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    app = websocket_app(
        Authenticator(issuer=ISSUER, audience=AUDIENCE, secret=secret),
        IdSigner(b"an-id-signing-secret-of-32-bytes!!"),
        Replies(ttl_s=60, max_entries=10),
        intake=None,  # type: ignore[arg-type]  # the frames sent here never submit a message
        record_rejection=record,
        max_wait_s=1,
    )
    frames = "switchboard_gateway_websocket_frames_total"
    before = {kind: value(frames, type=kind) for kind in ("conversation", "ping", "other")}
    with TestClient(app).websocket_connect(
        "/v1/ws", headers={"Authorization": f"Bearer {mint(secret, 'ada', ['chat'])}"}
    ) as ws:
        assert ws.receive_json()["type"] == "ready"
        assert value("switchboard_gateway_websockets_open") == 1
        ws.send_json({"type": "conversation"})
        assert ws.receive_json()["type"] == "conversation"
        ws.send_json({"type": "ping"})
        ws.send_json({"type": "no-such-frame"})
        assert ws.receive_json()["status"] == 400
        ws.send_json({"type": ["not", "hashable"]})  # counted as "other", answered, the session lives on
        assert ws.receive_json()["status"] == 400
        ws.send_json({"type": "conversation"})
        assert ws.receive_json()["type"] == "conversation"
    assert value("switchboard_gateway_websockets_open") == 0
    after = {kind: value(frames, type=kind) for kind in before}
    assert {kind: after[kind] - before[kind] for kind in before} == {"conversation": 2, "ping": 1, "other": 2}
