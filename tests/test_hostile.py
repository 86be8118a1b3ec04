"""Thousands of generated junk frames: every one gets a reply, nothing unvalidated reaches a handler."""

import asyncio
import datetime
import json

import pytest
from hypergen.imports import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.errors import ERROR_CODES, HANDLER_ERROR
from hypergen_consumers.testing import ConsumerClient

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
hypergen_encodings = st.builds(
    lambda kind, value: {"_": [kind, value]},
    st.sampled_from(
        ["date", "datetime", "time", "tuple", "set", "frozenset", "deque", "range", "float", "EVENT", "nonsense"]
    ),
    st.one_of(st.text(max_size=20), st.just("2020-99-99"), st.just("2024-02-29"), json_values),
)
names = st.one_of(
    st.sampled_from(
        [
            "typed",
            "loose",
            "__init__",
            "__class__",
            "websocket_receive",
            "dispatch",
            "_handlers",
            "send",
            "hypergen_consumers_run",
            "receive_json",
            "nope",
            "",
        ]
    ),
    st.text(max_size=20),
    json_values,
)
argument = st.one_of(json_values, hypergen_encodings)
callback_frames = st.builds(
    lambda name, args, meta: json.dumps({"args": [name, *args], "meta": meta}),
    names,
    st.lists(argument, max_size=4),
    st.one_of(st.just({}), json_values),
)
nested = st.integers(min_value=1, max_value=20_000).map(lambda depth: "[" * depth + "]" * depth)
huge = st.sampled_from(
    [
        '{"args": ["typed", ' + "9" * 5000 + ', "x"], "meta": {}}',
        '{"args": ["typed", 1, "' + "x" * 200_000 + '"], "meta": {}}',
        '{"args": ["typed", 1, "' + "x" * 300_000 + '"], "meta": {}}',
        '{"args": ["typed", 1e999, "x"], "meta": {}}',
    ]
)
text_frames = st.one_of(
    st.builds(json.dumps, json_values), callback_frames, nested, huge, st.text(min_size=1, max_size=50)
)
frames = st.one_of(text_frames, st.binary(min_size=1, max_size=50))


def define_target(seen):
    class Target(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler
        async def typed(self, request, n: int, s: str, when: datetime.date | None = None):
            # Raises (and so would show up as handler_error) if unvalidated data got through.
            if type(n) is not int or type(s) is not str or not (when is None or type(when) is datetime.date):
                raise TypeError(f"unvalidated: {n!r} {s!r} {when!r}")
            seen.append(n)
            command("typed", n)

        @handler
        async def loose(self, request, anything=None):
            command("loose")

    return Target


async def exchange(target, batch):
    async with ConsumerClient(target) as client:
        for item in batch:
            if isinstance(item, bytes):
                await client.communicator.send_to(bytes_data=item)
            else:
                await client.send_text(item)
            reply = await client.receive(timeout=5)
            assert isinstance(reply, list) and len(reply) >= 1, reply
            first = reply[0]
            if first[0] == "hypergen.websocket.error":
                assert first[1]["code"] in ERROR_CODES, first
                assert first[1]["code"] != HANDLER_ERROR, first
            else:
                assert first[0] in ("typed", "loose"), first
        assert await client.call("typed", 7, "still usable") == [["typed", 7]]


@pytest.mark.django_db(transaction=True)  # Its sync handler runs through database_sync_to_async.
@given(batch=st.lists(frames, min_size=5, max_size=40))
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_junk_frames_always_get_a_reply_and_never_reach_a_handler_unvalidated(batch):
    seen = []
    asyncio.run(exchange(define_target(seen), batch))
    assert all(type(n) is int for n in seen)
