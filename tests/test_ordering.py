"""Commit order: one collection in log order; others and rejections never blocked."""

from __future__ import annotations

import asyncio

from artisync.daemon.ordering import CommitOrder


async def test_a_later_version_waits_for_every_earlier_one_of_its_collection() -> None:
    order = CommitOrder()
    for seq in ("1", "2", "3"):
        order.admit(seq)
        await order.identify(seq, "A")
    third = asyncio.create_task(order.wait_turn("3"))
    await asyncio.sleep(0)
    assert not third.done()
    await order.finish("1")
    await asyncio.sleep(0)
    assert not third.done()
    await order.finish("2")  # a rejection finishes too: it does not hold "3" back
    await asyncio.wait_for(third, 1)


async def test_other_collections_are_not_held_back() -> None:
    order = CommitOrder()
    order.admit("1")
    await order.identify("1", "A")
    order.admit("2")
    await order.identify("2", "B")
    await asyncio.wait_for(order.wait_turn("2"), 1)


async def test_an_earlier_submission_of_unknown_collection_holds_everyone_back() -> None:
    order = CommitOrder()
    order.admit("1")  # not parsed yet: it could be of any collection
    order.admit("2")
    await order.identify("2", "B")
    second = asyncio.create_task(order.wait_turn("2"))
    await asyncio.sleep(0)
    assert not second.done()
    await order.identify("1", "A")
    await asyncio.wait_for(second, 1)


async def test_a_straggler_with_an_earlier_number_goes_first() -> None:
    order = CommitOrder()
    order.admit("5")
    await order.identify("5", "A")
    order.admit("3")  # admitted later, numbered earlier
    await order.identify("3", "A")
    assert order.blocker("5") == "3"
    assert order.blocker("3") is None
