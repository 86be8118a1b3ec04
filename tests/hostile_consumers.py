"""Consumers served by tests/hostile_asgi.py to a real daphne for tests/test_hostile_third_pass.py."""

from hypergen.imports import command
from pydantic import BaseModel

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler


class Point(BaseModel):
    """A user's own model: pydantic's defaults let "nan" through (allow_inf_nan=True)."""

    x: float


class Floats(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    path = "floats/"

    @handler
    def echo(self, request, value: float):
        command("echo", value)

    @handler
    def point(self, request, point: Point):
        command("point", point.x)

    @handler
    def matrix(self, request, rows: list[list[int]]):
        command("matrix", sum(len(row) for row in rows))

    @handler
    def divide(self, request, a: float, b: float):
        command("quotient", a / b if b else float("inf"))  # A handler's own Infinity.

    @handler
    def boom(self, request):
        raise RuntimeError("boom")

    @handler
    def blob(self, request, size: int):
        command("blob", "x" * size)


class Vault(HypergenConsumer):
    perm = "auth.view_user"
    path = "vault/"

    @handler
    def peek(self, request, n: int = 0):
        command("peek", n)

    @handler(broadcast="others")
    def nudge(self, request):
        command("nudge")

    @handler(broadcast=False)
    def whisper(self, request):
        command("whisper")


class Announcer(HypergenConsumer):
    """Lists an extra group of its own."""

    perm = NO_PERM_REQUIRED
    path = "announcer/"
    groups = ["announcements"]

    @handler
    def announce(self, request, text: str):
        command("announce", text)


class Teams(HypergenConsumer):
    """A custom group rule that returns a URL value a client chose."""

    perm = NO_PERM_REQUIRED
    path = "teams/<slug:team>/"
    group_name = staticmethod(lambda consumer: f"{consumer.url_kwargs['team']}")

    @handler
    def post(self, request, team: str, text: str):
        command("post", text)
