import asyncio

import pytest

from switchboard.channel_gateway.ids import IdSigner
from switchboard.channel_gateway.replies import Replies
from switchboard.events.v1 import messages_pb2 as m


def test_signed_ids_verify_only_with_the_same_key_prefix_and_owner() -> None:
    signer = IdSigner(b"k1")
    conversation = signer.new("c", "ada")
    assert signer.valid(conversation, "c", "ada")
    assert not signer.valid(conversation, "c", "bob")  # someone else's conversation
    assert not signer.valid(conversation, "m", "ada")
    assert not IdSigner(b"k2").valid(conversation, "c", "ada")
    assert not signer.valid(conversation[:-1] + ("0" if conversation[-1] != "0" else "1"), "c", "ada")
    for junk in ["", ".", "c-", "c-abc", "c-x." + "0" * 20, "x" * 500]:
        assert not signer.valid(junk, "c", "ada")


def _out(seq: int, text: str, final: bool = False) -> m.OutboundMessage:
    return m.OutboundMessage(in_reply_to="m-1", sequence=seq, text=text, final=final, channel=m.CHANNEL_HTTP)


async def test_waiters_get_the_final_reply() -> None:
    replies = Replies(ttl_s=60, max_entries=10)
    waiter = asyncio.create_task(replies.wait_final("m-1", timeout_s=5))
    await asyncio.sleep(0)
    replies.on_outbound(_out(0, "hel"))
    replies.on_outbound(_out(1, "lo", final=True))
    final = await waiter
    assert final is not None and final.text == "lo"
    assert await replies.wait_final("m-2", timeout_s=0.05) is None


async def test_follow_yields_pieces_in_order_once_then_the_final() -> None:
    replies = Replies(ttl_s=60, max_entries=10)
    seen: list[object] = []

    async def follow() -> None:
        async for item in replies.follow("m-1", timeout_s=5):
            seen.append(item if isinstance(item, tuple) else item.text)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)
    replies.on_outbound(_out(1, " world"))  # arrives before its predecessor
    replies.on_outbound(_out(0, "hello"))
    replies.on_outbound(_out(0, "hello"))  # duplicate delivery
    replies.on_outbound(_out(2, "hello world", final=True))
    await task
    assert seen == [(0, "hello"), (1, " world"), "hello world"]


async def test_follow_times_out() -> None:
    with pytest.raises(TimeoutError):
        async for _ in Replies(ttl_s=60, max_entries=10).follow("m-9", timeout_s=0.05):
            pass


def test_bounded() -> None:
    replies = Replies(ttl_s=60, max_entries=3)
    for i in range(10):
        replies.on_outbound(m.OutboundMessage(in_reply_to=f"m-{i}", final=True))
    assert replies.get("m-0") is None and replies.get("m-9") is not None
