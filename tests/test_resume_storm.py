"""Resuming pages cannot make the process re-run handlers without bound.

A page that was away while its room got ``group_send`` runs has each of them run again for
it when it comes back (each renders for that page). Measured before the bound: a page 200
runs behind cost 420 ms of CPU to resume, 47 times a handshake, and 200 such pages resuming
at once (after a deploy) took 60 s of CPU and made a bystander's p50 go from 1.8 ms to
224 ms. Now a page more than ``REPLAY_RUNS_PER_CATCH_UP`` runs behind resyncs (it re-renders
or reloads), and at most ``CATCH_UPS_RUNNING_AT_ONCE`` catch-ups run handlers at a time.
bench/scale.py measures the storm.
"""

from __future__ import annotations

import asyncio

from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, agroup_send, handler
from hypergen_consumers.delivery import catchup
from hypergen_consumers.delivery.catchup import RESYNC_COMMAND
from tests.test_delivery_streams import frames_until_quiet, open_socket, positions_in, receive


def define_room(runs: list[str]):
    class StormRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "storm-room/<slug:room>/"

        @handler
        async def tick(self, request, room: str, n: int):
            runs.append(self.channel_name)
            command("tick", n)

    return StormRoom


def ticks(frames):
    return [frame[0] for frame in frames if frame[0][0] == "tick"]


async def away_while(room_class, room: str, ticks: int):
    page = await open_socket(room_class, room, socket_id=f"storm-page-{room}")
    position = positions_in(await receive(page))[0]
    await page.disconnect()
    for n in range(ticks):
        await agroup_send(room_class.group_name(room=room), "tick", n)
    return await open_socket(room_class, room, socket_id=f"storm-page-{room}", positions={0: position})


async def test_a_page_a_few_runs_behind_gets_each_run_again():
    runs: list[str] = []
    room = define_room(runs)
    page = await away_while(room, "few", 10)
    frames = await frames_until_quiet(page)
    assert ticks(frames) == [["tick", n] for n in range(10)]
    assert len(runs) == 10
    await page.disconnect()


async def test_a_page_too_many_runs_behind_resyncs_instead_of_running_them_all():
    runs: list[str] = []
    room = define_room(runs)
    page = await away_while(room, "many", catchup.REPLAY_RUNS_PER_CATCH_UP + 5)
    frames = await frames_until_quiet(page)
    assert frames[0] == [[RESYNC_COMMAND, {"reload": True}]]
    assert runs == [], "no handler ran for the returning page"
    assert positions_in(frames[-1]), "it is told where its stream is now"
    await page.disconnect()


async def test_a_resume_storm_runs_at_most_two_catch_ups_at_a_time(monkeypatch):
    """Twenty pages a few runs behind resume at once: each gets every run once, but never more
    than CATCH_UPS_RUNNING_AT_ONCE of them are replaying at the same moment."""
    running, most = 0, 0

    async def counting_deliver(conn, position, message, stream):
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0)  # Give the other catch-ups every chance to overlap.
            await real_deliver(conn, position, message, stream)
        finally:
            running -= 1

    runs: list[str] = []
    room = define_room(runs)
    positions = {}
    for n in range(20):
        page = await open_socket(room, "storm", socket_id=f"storm-many-{n}")
        positions[n] = positions_in(await receive(page))[0]
        await page.disconnect()
    for n in range(5):
        await agroup_send(room.group_name(room="storm"), "tick", n)
    real_deliver = room._deliver  # What a catch-up does per missed frame (connection.group_frames).
    monkeypatch.setattr(room, "_deliver", counting_deliver)
    pages = await asyncio.gather(
        *(open_socket(room, "storm", socket_id=f"storm-many-{n}", positions={0: positions[n]}) for n in range(20))
    )
    for page in pages:
        frames = await frames_until_quiet(page)
        assert ticks(frames) == [["tick", n] for n in range(5)]
        await page.disconnect()
    assert len(runs) == 100
    assert most == catchup.CATCH_UPS_RUNNING_AT_ONCE
