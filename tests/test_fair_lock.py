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


async def test_a_waiter_cancelled_before_the_lock_is_given_lets_the_next_have_it():
    """``give()`` skips a waiter already cancelled (its future is done); that waiter, leaving,
    hands the lock on: neither a lost turn nor two holders."""
    lock = FairLock()
    assert lock.take_now()
    first = asyncio.ensure_future(lock.take())
    second = asyncio.ensure_future(lock.take())
    await asyncio.sleep(0)
    first.cancel()
    lock.give()
    assert lock.take_now() is False  # The second is next, not a newcomer.
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert lock.locked()
    lock.give()
    assert lock.take_now()


@pytest.mark.parametrize("seed", range(40))
async def test_as_a_dispatch_turn_no_two_dispatches_overlap_whatever_is_cancelled_or_raised(seed):
    """``dispatch_from``'s pumps over three sources, dispatches that wait, raise or are cut short
    by the caller's cancellation at a random moment (pumps waiting for the turn, or just handed
    it): never two dispatches at once, each source's messages in order, and the loop ends."""
    import random

    from hypergen_consumers.connection.receivers import dispatch_from

    rng = random.Random(seed)
    queues = [asyncio.Queue() for _ in range(3)]
    for index, queue in enumerate(queues):
        for n in range(rng.randint(0, 5)):
            queue.put_nowait((index, n))
    running, overlapped, seen = [0], [], []

    async def dispatch(message):
        running[0] += 1
        if running[0] > 1:
            overlapped.append(message)
        try:
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)
            if rng.random() < 0.05:
                raise RuntimeError("a dispatch failed")
            seen.append(message)
        finally:
            running[0] -= 1

    loop = asyncio.ensure_future(dispatch_from([queue.get for queue in queues], dispatch))
    for step in range(rng.randint(0, 30)):
        await asyncio.sleep(0)
        if rng.random() < 0.3:
            index = rng.randrange(3)
            queues[index].put_nowait((index, 100 + step))
    loop.cancel()
    with pytest.raises((asyncio.CancelledError, RuntimeError)):
        await asyncio.wait_for(loop, 2)
    assert not overlapped
    for index in range(3):
        numbers = [n for source, n in seen if source == index]
        assert numbers == sorted(numbers)
