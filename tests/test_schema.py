"""`manage.py consumers`: the listing and the AsyncAPI 3.0 document, validated against the official schema."""

import io
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import jsonschema
import pytest
from django.core.management import call_command
from pydantic import BaseModel, Field, conlist, constr

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, autoconsumers, handler

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json").read_text())


class Note(BaseModel):
    title: str
    stars: int = 0


def mount_board():
    class Board(HypergenConsumer):
        """A board of notes per team."""

        perm = NO_PERM_REQUIRED
        path = "board/<slug:team>/"
        target_id = "board"

        @handler
        def add(self, request, team: str, note: Note, pinned: bool = False):
            """Add a note."""

        @handler(perm="auth.change_user", broadcast=False)
        def purge(self, request, older_than_days: int): ...

    autoconsumers(sys.modules[__name__], namespace="boards")
    return Board


def run(*args):
    out = io.StringIO()
    call_command("consumers", *args, stdout=out)
    return out.getvalue()


def test_the_listing_shows_routes_groups_handlers_types_and_perms():
    mount_board()
    text = run()
    assert "ws/boards/board/<slug:team>/  tests.test_schema.mount_board.<locals>.Board" in text
    assert "perm: none (NO_PERM_REQUIRED)   group: one per URL (team)   target_id: 'board'" in text
    assert "add(note: Note, pinned: bool)  -> group  url kwargs: team" in text
    assert "purge(older_than_days: int)  -> sender only  perm: 'auth.change_user'" in text
    assert "ws/tests/echo/<slug:room>/  tests.consumers.Echo" in text  # From ASGI_APPLICATION's routing.


def test_the_listing_shows_each_arguments_limits_as_declared():
    """A limit the server enforces is part of the call: without it the listing reads as any int."""

    class Limits(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "limits/"

        @handler
        def pick(
            self,
            request,
            n: Annotated[int, Field(ge=1, le=10)],
            name: constr(max_length=20),
            share: Annotated[float, Field(gt=0, lt=1, multiple_of=0.25)] = 0.5,
            code: constr(min_length=2, pattern=r"^[a-z]+$") | None = None,
            tags: conlist(str, max_length=3) = (),
            plain: int = 0,
            clock: Callable[[], float] = time.time,  # No JSON form: listed, without limits.
        ): ...

    autoconsumers(sys.modules[__name__], namespace="limits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Nothing on stderr for the default that has no JSON form.
        text = run()
    assert "pick(n: int (ge=1, le=10), name: str (max_length=20), share: float (gt=0, lt=1, multiple_of=0.25), " in text
    assert (
        " (min_length=2, pattern='^[a-z]+$'), tags: list (max_length=3), plain: int, clock: Callable)  -> group" in text
    )


def test_the_asyncapi_document_is_valid_asyncapi_3():
    mount_board()
    document = json.loads(run("--asyncapi"))
    jsonschema.validate(document, SCHEMA)
    assert document["asyncapi"] == "3.0.0"
    (key,) = [k for k in document["channels"] if k.startswith("tests.test_schema")]
    channel = document["channels"][key]
    assert channel["address"] == "/ws/boards/board/{team}/"
    assert channel["parameters"] == {"team": {"description": "URL kwarg (slug path converter)"}}
    add = channel["messages"]["add"]["payload"]["properties"]["args"]
    assert add["items"][0] == {"const": "add", "description": "the handler's name"}
    assert add["items"][1] == {"$ref": "#/components/schemas/Note"}
    assert (add["minItems"], add["maxItems"]) == (2, 3)
    assert document["components"]["schemas"]["Note"]["required"] == ["title"]
    assert document["operations"][f"{key}.add"]["action"] == "receive"
    assert document["operations"][f"{key}.reply"]["action"] == "send"


@pytest.mark.parametrize(
    "frame, valid",
    [
        ({"args": ["add", {"title": "x"}], "meta": {}}, True),
        ({"args": ["add", {"title": "x"}, True], "meta": {}}, True),
        ({"args": ["add"], "meta": {}}, False),
        ({"args": ["purge", 3], "meta": {}}, False),
        ({"args": ["add", {"title": "x"}, True, 1], "meta": {}}, False),
    ],
)
def test_a_handlers_payload_schema_describes_the_frames_it_accepts(frame, valid):
    mount_board()
    document = json.loads(run("--asyncapi"))
    (key,) = [k for k in document["channels"] if k.startswith("tests.test_schema")]
    # The payload schema, with the document's components beside it so its $refs resolve.
    schema = {**document["channels"][key]["messages"]["add"]["payload"], "components": document["components"]}
    assert jsonschema.Draft7Validator(schema).is_valid(frame) is valid


def test_a_one_handler_class_still_names_its_handler_and_a_function_does_not():
    """The contract: a class consumer's frames always start with the handler's name."""
    document = json.loads(run("--asyncapi"))
    jsonschema.validate(document, SCHEMA)
    payload = document["channels"]["tests.consumers.Secret"]["messages"]["peek"]["payload"]
    assert jsonschema.Draft7Validator(payload).is_valid({"args": ["peek"], "meta": {}})
    assert not jsonschema.Draft7Validator(payload).is_valid({"args": [], "meta": {}})
    assert not jsonschema.Draft7Validator(payload).is_valid({"args": ["peek", 1], "meta": {}})
    assert "peek()  -> group" in run()
