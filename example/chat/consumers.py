"""The example's consumers: a chat room with typed handlers, planning poker, and a shared counter."""

from typing import Annotated, Literal

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
    ul,
)


class Message(BaseModel):
    author: Annotated[str, Field(min_length=1, max_length=30)]
    text: Annotated[str, Field(min_length=1, max_length=500)]


def display_name(user):
    return user.get_username() if user.is_authenticated else "anonymous"


class ChatRoom(HypergenConsumer):
    """One group per room: every message goes to everyone in the room, who is online is tracked."""

    perm = NO_PERM_REQUIRED
    path = "room/<slug:room_name>/"
    target_id = "chat-status"
    presence = True
    groups = ["chat-news"]  # Every room also hears the news (the "Push from the backend" page).

    def on_connect(self, request, room_name):
        self.sent = 0  # Per-connection state lives on the instance.

    def on_presence(self, request, room_name, present, joins, leaves):
        """Who's online: re-rendered on every page of the room when someone comes or goes."""

        def online():
            with ul():
                for item in present:
                    tabs = len(item["metas"])
                    li(item["user"] or "anonymous", f" ({tabs} tabs)" if tabs > 1 else "")

        command("hypergen.morph", "online", hypergen(online))

    @handler
    def send_message(self, request, room_name: str, message: Message):
        self.sent += 1
        span("Last message in #", room_name, " was from ", message.author)
        command("hypergen.append", "messages", hypergen(lambda: li(b(message.author), ": ", message.text)))
        command("hypergen.morph", "typing", "")

    @handler(broadcast="others")
    def typing(self, request, room_name: str):
        """Tell the others in the room that this user is typing (not the typist)."""
        who = display_name(request.user)
        command("hypergen.morph", "typing", hypergen(lambda: span(who, " is typing…")))

    @handler(broadcast=False)
    def my_stats(self, request):
        command("hypergen.morph", "my-stats", hypergen(lambda: span("You sent ", self.sent, " messages here.")))


class PokerTable(HypergenConsumer):
    """Planning poker: votes (keys 1, 2, 3, 5, 8 on the page) stay hidden until someone reveals them.

    The page votes with hypergen.websocket.push() from a keyboard shortcut; each vote lives in
    the voter's presence meta, so every page shows who has voted (not what) as it happens.
    """

    perm = NO_PERM_REQUIRED
    path = "poker/<slug:table>/"
    target_id = "poker-result"
    presence = True
    presence_target_id = "players"  # on_presence renders here, handlers into target_id.
    rate = "10/s"  # Per connection and handler: a stuck key cannot flood the table.

    def presence_meta(self, request):
        return {"name": display_name(request.user), "vote": None}

    def on_presence(self, request, table, present, joins, leaves):
        with ul():
            for item in present:
                for meta in item["metas"]:
                    li(meta["name"], ": ", "voted" if meta["vote"] is not None else "thinking…")

    @handler(broadcast=False, target_id="my-vote", rate="5/s")
    async def vote(self, request, table: str, value: Literal[1, 2, 3, 5, 8]):
        await self.aupdate_presence(vote=value)
        span("Your vote: ", value)

    @handler
    async def reveal(self, request, table: str):
        votes = [
            f"{meta['name']} {meta['vote']}"
            for item in await type(self).apresence(table=table)
            for meta in item["metas"]
            if meta["vote"] is not None
        ]
        span("Revealed by ", display_name(request.user), ": ", ", ".join(votes) or "no votes yet")

    @handler
    async def new_round(self, request, table: str):
        await type(self).agroup_send("clear_vote", table=table)  # Runs clear_vote on every page.

    @handler(broadcast=False, target_id="my-vote")
    async def clear_vote(self, request, table: str):
        if not self.from_server:
            span("Only a new round clears the votes.")  # A page cannot clear its vote on its own.
            return
        await self.aupdate_presence(vote=None)
        span("New round: vote with the keys 1, 2, 3, 5 or 8.")


class StaffRoom(HypergenConsumer):
    """Only users with auth.view_user may connect (log in as demo / demo); others are refused."""

    perm = "auth.view_user"
    target_id = "staff-log"

    @handler
    def announce(self, request, text: Annotated[str, Field(min_length=1, max_length=200)]):
        span(request.user.username, " announced: ", text)


class Mistakes(HypergenConsumer):
    """The dev overlay's demo: under DEBUG = True each error frame shows on the page."""

    perm = NO_PERM_REQUIRED
    broadcast = False
    target_id = "mistake-result"

    @handler
    def count_to(self, request, n: Annotated[int, Field(ge=1, le=10)]):
        span(", ".join(str(i) for i in range(1, n + 1)))

    @handler
    def explode(self, request):
        raise ValueError("this handler fails on purpose")


COUNTER = {"value": 0}


@consumer(perm=NO_PERM_REQUIRED, target_id="counter")
def increment(consumer, request):
    """The shared counter: every open page sees every increment."""
    COUNTER["value"] += 1
    span("Clicked ", COUNTER["value"], " times")
