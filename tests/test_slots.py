"""The pipeline's slots: no user holds them all, and a waiting retry holds none."""

from __future__ import annotations

import asyncio

from artisync.daemon.slots import Slots, idle


async def test_one_user_never_holds_every_slot_while_another_waits() -> None:
    slots = Slots(3)
    release = asyncio.Event()
    started: list[str] = []

    async def work(who: int, name: str) -> None:
        async with slots.slot(who):
            started.append(name)
            await release.wait()

    busy = [asyncio.create_task(work(1, f"a{i}")) for i in range(10)]
    await asyncio.sleep(0)
    other = asyncio.create_task(work(2, "b"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert slots.held_by(1) == 2, "all slots but one"
    assert "b" in started, "another user's submission found the last slot"
    release.set()
    await asyncio.gather(*busy, other)
    assert sorted(started) == sorted([f"a{i}" for i in range(10)] + ["b"])


async def test_a_lone_slot_is_shared_by_taking_turns() -> None:
    slots = Slots(1)
    async with slots.slot(1):
        assert slots.held_by(1) == 1
    async with slots.slot(2):
        assert slots.held_by(2) == 1


async def test_a_submission_waiting_to_retry_lets_its_slot_go() -> None:
    slots = Slots(2)
    waiting = asyncio.Event()
    resume = asyncio.Event()

    async def retrying() -> None:
        async with slots.slot(1), idle():
            waiting.set()
            await resume.wait()
        # The slot was taken again, then released on the way out.

    task = asyncio.create_task(retrying())
    await waiting.wait()
    assert slots.held_by(1) == 0
    async with slots.slot(1):  # the same user's next submission gets its slot
        assert slots.held_by(1) == 1
    resume.set()
    await task
    assert slots.held_by(1) == 0
