"""Module-level consumers served by tests/asgi.py to a real daphne process."""

from hypergen.imports import command, span

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler


class Echo(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    path = "echo/<slug:room>/"
    target_id = "echo"

    @handler
    def shout(self, request, room: str, text: str):
        span(room, ": ", text.upper())
        command("hypergen.append", "log", text)


class Secret(HypergenConsumer):
    perm = "auth.view_user"

    @handler
    def peek(self, request):
        command("secret")


class Slow(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "slow"

    @handler
    async def wait(self, request, seconds: float):
        import asyncio

        await asyncio.sleep(seconds)
        span("waited ", seconds)


class Load(HypergenConsumer):
    """For the load test: one broadcast and one sender-only handler."""

    perm = NO_PERM_REQUIRED
    path = "load/<int:team>/"

    @handler
    async def everyone(self, request, team: int, sender: int, n: int):
        command("e", sender, n)

    @handler(broadcast=False)
    async def mine(self, request, team: int, sender: int, n: int):
        command("m", sender, n)
