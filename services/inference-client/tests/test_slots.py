"""Priority slots: never more holders than slots; urgent waiters first, then by arrival; a
waiter cancelled (its deadline passed) neither holds nor loses a slot."""

import asyncio

import pytest

from switchboard.inference_client.slots import PrioritySlots


async def test_waiters_are_served_urgent_first_then_in_arrival_order() -> None:
    slots = PrioritySlots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def call(name: str, rank: int) -> None:
        async with slots.hold(rank):
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(call("first", 1))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(call(n, r)) for n, r in [("routine-1", 1), ("routine-2", 1), ("urgent", 0)]]
    await asyncio.sleep(0)
    assert slots.waiting == 3
    release.set()
    await asyncio.gather(first, *waiters)
    assert order == ["first", "urgent", "routine-1", "routine-2"]


async def test_no_more_than_size_hold_at_once() -> None:
    slots = PrioritySlots(3)
    holding = peak = 0

    async def call(rank: int) -> None:
        nonlocal holding, peak
        async with slots.hold(rank):
            holding += 1
            peak = max(peak, holding)
            await asyncio.sleep(0.001)
            holding -= 1

    await asyncio.gather(*(call(i % 2) for i in range(50)))
    assert peak == 3


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    slots = PrioritySlots(1)
    release = asyncio.Event()
    served: list[str] = []

    async def hold_until_released() -> None:
        async with slots.hold(1):
            await release.wait()

    async def call(name: str) -> None:
        async with slots.hold(0):
            served.append(name)

    holder = asyncio.create_task(hold_until_released())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await call("expired")
    later = asyncio.create_task(call("later"))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, later)
    assert served == ["later"]
    async with slots.hold(1):  # the slot came back
        pass


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        PrioritySlots(0)
