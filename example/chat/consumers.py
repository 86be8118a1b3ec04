"""The example's consumers: a chat room with typed handlers, and a shared counter."""

from typing import Annotated

from pydantic import BaseModel, Field

from hypergen_consumers.imports import (
    NO_PERM_REQUIRED,
    HypergenConsumer,
    b,
    command,
    consumer,
    handler,
    hypergen,
    li,
    span,
)


class Message(BaseModel):
    author: Annotated[str, Field(min_length=1, max_length=30)]
    text: Annotated[str, Field(min_length=1, max_length=500)]


class ChatRoom(HypergenConsumer):
    """One group per room: every message goes to everyone in the room."""

    perm = NO_PERM_REQUIRED
    path = "room/<slug:room_name>/"
    target_id = "chat-status"

    def on_connect(self, request, room_name):
        self.sent = 0  # Per-connection state lives on the instance.

    @handler
    def send_message(self, request, room_name: str, message: Message):
        self.sent += 1
        span("Last message in #", room_name, " was from ", message.author)
        command("hypergen.append", "messages", hypergen(lambda: li(b(message.author), ": ", message.text)))

    @handler(broadcast=False)
    def my_stats(self, request):
        command("hypergen.morph", "my-stats", hypergen(lambda: span("You sent ", self.sent, " messages here.")))


class StaffRoom(HypergenConsumer):
    """Only users with auth.view_user may connect (log in as demo / demo); others are refused."""

    perm = "auth.view_user"
    target_id = "staff-log"

    @handler
    def announce(self, request, text: Annotated[str, Field(min_length=1, max_length=200)]):
        span(request.user.username, " announced: ", text)


COUNTER = {"value": 0}


@consumer(perm=NO_PERM_REQUIRED, target_id="counter")
def increment(consumer, request):
    """The shared counter: every open page sees every increment."""
    COUNTER["value"] += 1
    span("Clicked ", COUNTER["value"], " times")
