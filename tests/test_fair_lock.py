"""A connection's lock for its sends and its dispatches: one at a time, first come first served,
free taken without an await."""

from __future__ import annotations

import asyncio

import pytest

from hypergen_consumers.connection.fair_lock import FairLock


async def test_sends_take_turns_in_the_order_they_asked():
    lock, order = FairLock(), []
    assert lock.take_now() and lock.locked()

    async def send(name: str) -> None:
        await lock.take()
        order.append(name)
        await asyncio.sleep(0)  # A send the server made wait: the next still waits behind it.
        order.append(f"{name} done")
        lock.give()

    tasks = [asyncio.ensure_future(send(name)) for name in "abc"]
    await asyncio.sleep(0)
    assert lock.take_now() is False  # Held, and others wait: a newcomer queues behind them.
    lock.give()
    assert lock.take_now() is False  # Handed to the first waiter, not to whoever asks now.
    await asyncio.gather(*tasks)
    assert order == ["a", "a done", "b", "b done", "c", "c done"]
    assert not lock.locked() and lock.take_now()


async def test_a_waiter_cancelled_as_the_lock_is_handed_to_it_passes_it_on():
    lock = FairLock()
    assert lock.take_now()
    first = asyncio.ensure_future(lock.take())
    second = asyncio.ensure_future(lock.take())
    await asyncio.sleep(0)
    lock.give()  # Handed to the first...
    first.cancel()  # ...which is cancelled before it runs.
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # The second got it instead of everyone waiting for ever.
    assert lock.locked()
    lock.give()
    assert lock.take_now()


async def test_a_waiter_cancelled_while_waiting_leaves_the_queue():
    lock = FairLock()
    assert lock.take_now()
    waiting = asyncio.ensure_future(lock.take())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    lock.give()
    assert lock.take_now()  # Nobody left waiting: free again at once.
