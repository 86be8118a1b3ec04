"""Test helpers: talk to a consumer the way a page does, over Channels' WebsocketCommunicator.

    async with ConsumerClient(ChatRoom, room_name="vip") as client:
        await client.call("send_message", "hi")
        assert client.morphed("counter") == "<span>Messages in vip: 1</span>"
        assert client.appended("messages") == ["<li>hi</li>"]
        await client.send("send_message", "x" * 5000)
        await client.expect_error("validation_error")

``call`` sends exactly the frame hypergen's ``callback()`` sends, ``{"args": [...],
"meta": {}}``, and returns the next command list the connection receives.
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path
from hypergen.liveview import dumps, loads

from hypergen_consumers.errors import ERROR_COMMAND, ConsumerNotMounted
from hypergen_consumers.routing import registry
from hypergen_consumers.routing import routes as routing

__all__ = ["ConsumerClient", "ConsumerClients", "ConnectionRefused", "frame"]

DEFAULT_HEADERS = [(b"host", b"testserver"), (b"origin", b"http://testserver")]


def frame(*args: Any, meta: dict[str, Any] | None = None) -> str:
    """The text hypergen's ``callback(url, *args)`` sends over a websocket."""
    text: str = dumps({"args": list(args), "meta": meta or {}})
    return text


class ConnectionRefused(AssertionError):
    """The consumer refused the handshake; ``code`` is the close code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"handshake refused with close code {code}")
        self.code = code


def _application(consumer_class: Any, user: Any) -> Any:
    try:
        route = registry.mount_of(consumer_class).route
    except ConsumerNotMounted:
        route = f"ws/test/{consumer_class._route.path}"
    routes: list[Any] = [path(route, consumer_class.as_asgi())]
    router = URLRouter(routes)

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if user is not None:
            scope = {**scope, "user": user}
        return await router(scope, receive, send)  # pyright: ignore[reportArgumentType]  (a plain dict scope)

    return application, route


class ConsumerClient:
    """An async context manager that connects to ``consumer_class`` at the given URL kwargs."""

    def __init__(
        self,
        consumer_class: Any,
        *args: Any,
        user: Any = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        **url_kwargs: Any,
    ) -> None:
        self.consumer_class = consumer_class
        application, route = _application(consumer_class, user)
        self.path = routing.reverse_route(route, args, url_kwargs)
        self.communicator = WebsocketCommunicator(application, self.path, headers=headers or DEFAULT_HEADERS)
        self.connected = False
        self._early: list[dict[str, Any]] = []
        #: The last command list received (what morphed() and appended() read).
        self.last: list[Any] = []

    async def connect(self, timeout: float = 10) -> None:
        """Open the connection; ``timeout`` guards against a hang (a busy machine can take a second)."""
        accepted, code = await self.communicator.connect(timeout=timeout)
        if not accepted:
            raise ConnectionRefused(code if isinstance(code, int) else 1000)
        # A consumer refuses by accepting and closing at once (so browsers see the code);
        # that close is already queued when the accept arrives.
        queue = self.communicator.output_queue
        if not queue.empty():
            first = await self.communicator.receive_output()
            if first["type"] == "websocket.close":
                await self.communicator.disconnect(first.get("code", 1000))
                raise ConnectionRefused(first.get("code", 1000))
            self._early.append(first)
        self.connected = True

    async def __aenter__(self) -> ConsumerClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self, code: int = 1000) -> None:
        if self.connected:
            self.connected = False
            await self.communicator.disconnect(code)

    async def send(self, *args: Any, meta: dict[str, Any] | None = None) -> None:
        """Send a callback frame without waiting for a reply."""
        await self.communicator.send_to(text_data=frame(*args, meta=meta))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 2) -> list[Any]:
        """The next command list this connection receives.

        Raises TimeoutError when nothing comes within ``timeout`` seconds; the client stays
        connected and usable (to check that nothing arrives, use ``expect_nothing()``).
        """
        if self._early:
            message = self._early.pop(0)
            if message["type"] != "websocket.send" or message.get("text") is None:
                msg = f"expected a text frame, received {message!r}"
                raise AssertionError(msg)
            self.last = list(loads(message["text"]))
            return self.last
        message = await self._next_output(timeout)
        if message["type"] == "websocket.close":
            self.connected = False  # The consumer closed: nothing left to disconnect.
            msg = f"expected a text frame, the consumer closed the connection with code {message.get('code', 1000)}"
            raise AssertionError(msg)
        if message["type"] != "websocket.send" or not isinstance(message.get("text"), str):
            msg = f"expected a text frame, received {message!r}"[:500]
            raise AssertionError(msg)
        self.last = list(loads(message["text"]))
        return self.last

    async def _next_output(self, timeout: float) -> dict[str, Any]:
        """The consumer's next ASGI message; TimeoutError when none comes, the consumer untouched.

        Channels' ``receive_from`` cancels the consumer on a timeout, so the next step (even
        leaving ``async with``) raised CancelledError, a BaseException that hid the real
        failure. Here only the wait is cancelled: the client stays usable after a timeout.
        """
        queue = self.communicator.output_queue
        application = self.communicator.future
        if queue.empty() and not application.done():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, application}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                message: dict[str, Any] = getter.result()
                return message
            getter.cancel()  # Not done: nothing was taken off the queue.
        if not queue.empty():
            return queue.get_nowait()  # type: ignore[no-any-return]
        name = getattr(self.consumer_class, "__name__", self.consumer_class)
        if application.done():
            application.result()  # The consumer crashed: its own exception, at once, not a timeout.
            msg = f"{name} at {self.path} ended without sending anything more."
            raise AssertionError(msg)
        msg = f"{name} at {self.path} sent nothing within {timeout} s (ConsumerClient.receive(timeout=...))."
        raise TimeoutError(msg)

    async def call(self, *args: Any, meta: dict[str, Any] | None = None, timeout: float = 2) -> list[Any]:
        """Send a callback frame and return the next command list received."""
        await self.send(*args, meta=meta)
        return await self.receive(timeout)

    async def expect_nothing(self, timeout: float = 0.1) -> None:
        """Assert that nothing arrives within ``timeout`` seconds."""
        if self._early:
            msg = f"expected nothing, received {json.dumps(self._early[0])[:500]}"
            raise AssertionError(msg)
        if not await self.communicator.receive_nothing(timeout):
            got = await self.communicator.receive_output()
            msg = f"expected nothing, received {json.dumps(got)[:500]}"
            raise AssertionError(msg)

    async def expect_error(self, code: str, timeout: float = 2) -> dict[str, Any]:
        """Receive the next frame, assert it is one error command with ``code``; return its payload."""
        commands = await self.receive(timeout)
        if len(commands) != 1 or commands[0][0] != ERROR_COMMAND or commands[0][1].get("code") != code:
            msg = f"expected one {ERROR_COMMAND} command with code {str(code)!r}, received {commands!r}"
            raise AssertionError(msg)
        payload: dict[str, Any] = commands[0][1]
        return payload

    def morphed(self, target_id: str, commands: list[Any] | None = None) -> str | None:
        """The HTML the last command list (or ``commands``) morphed into ``target_id``, or None."""
        for command in self.last if commands is None else commands:
            if command[0] == "hypergen.morph" and command[1] == target_id:
                html: str = command[2]
                return html
        return None

    def appended(self, target_id: str, commands: list[Any] | None = None) -> list[str]:
        """Every HTML fragment the last command list (or ``commands``) appended to ``target_id``."""
        return [
            command[2]
            for command in (self.last if commands is None else commands)
            if command[0] == "hypergen.append" and command[1] == target_id
        ]


class ConsumerClients:
    """Makes connected ``ConsumerClient`` objects and closes them all at the end (the pytest fixture)."""

    def __init__(self) -> None:
        self.clients: list[ConsumerClient] = []

    async def __call__(self, consumer_class: Any, *args: Any, **kwargs: Any) -> ConsumerClient:
        client = ConsumerClient(consumer_class, *args, **kwargs)
        await client.connect()
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()
