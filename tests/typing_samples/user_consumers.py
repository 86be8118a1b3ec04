"""A user's consumer module, checked by mypy --strict and pyright in tests/test_typing.py (not run).

Every ``assert_type`` must hold exactly (an ``Any`` fails it), and every ``# type: ignore``
must be needed (both checkers report unneeded ones): so a wrong call to a handler is an
error only while ``@handler`` keeps the handler's signature.
"""

# pyright: reportUnnecessaryTypeIgnoreComment=true

from __future__ import annotations

from typing import Any

from hypergen.imports import command, li
from typing_extensions import assert_type

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, consumer, handler


class ChatRoom(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    path = "chat/<slug:room_name>/"
    target_id = "messages"

    @handler
    def send_message(self, request: Any, text: str) -> None:
        li(text)

    @handler(perm="chat.moderate")
    async def delete_message(self, request: Any, message_id: int) -> int:
        command("removed", message_id)
        return message_id

    @handler(target_id="board", rate="5/s", broadcast=False)
    async def vote(self, request: Any, value: int) -> None:
        assert_type(self.from_server, bool)
        await self.aupdate_presence(voted=True, value=value)


@consumer(perm=NO_PERM_REQUIRED, path="counter/")
def counter(consumer: HypergenConsumer, request: Any, step: int) -> None:
    command("counted", step)


@consumer
def ping(consumer: HypergenConsumer, request: Any) -> None:
    command("pong")


def use(room: ChatRoom) -> None:
    assert_type(ChatRoom.reverse(room_name="vip"), str)
    assert_type(counter.reverse(), str)
    assert_type(counter, type[HypergenConsumer])
    assert_type(ping, type[HypergenConsumer])
    assert_type(room.send_message(None, "hi"), None)
    room.send_message(None, 5)  # type: ignore[arg-type]
    room.send_message(None)  # type: ignore[call-arg]


async def use_async(room: ChatRoom) -> None:
    assert_type(await room.delete_message(None, 7), int)
    await room.delete_message(None, "seven")  # type: ignore[arg-type]
    assert_type(await room.vote(None, 3), None)
    await room.vote(None, "three")  # type: ignore[arg-type]
