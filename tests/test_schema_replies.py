"""The AsyncAPI document: same-named models of two apps each keep their own schema, and each
handler's operation says what it may send back."""

import io
import json
import sys
from pathlib import Path

import jsonschema
from django.core.management import call_command
from hypergen.imports import command, span

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, autoconsumers, handler
from tests.schema_apps import chat, shop

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json").read_text())


def mount():
    class Orders(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        target_id = "cart"

        @handler
        def order(self, request, line: shop.Message):
            span(line.sku)

    class Talk(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = "others"

        @handler(target_id="log", rate="5/s")
        def say(self, request, line: chat.Message):
            command("hypergen.append", "log", line.text)

    autoconsumers(sys.modules[__name__], namespace="schema_replies")


def document():
    out = io.StringIO()
    call_command("consumers", "--asyncapi", stdout=out)
    result = json.loads(out.getvalue())
    jsonschema.validate(result, SCHEMA)
    return result


def channel(doc, name):
    (key,) = [k for k in doc["channels"] if k.startswith("tests.test_schema_replies") and k.endswith(name)]
    return key, doc["channels"][key]


def payload_validator(doc, message):
    # The payload with the document's components beside it, so its $refs resolve.
    return jsonschema.Draft7Validator({**message["payload"], "components": doc["components"]})


def test_two_apps_models_with_one_class_name_each_keep_their_own_schema():
    mount()
    doc = document()
    _, orders = channel(doc, "Orders")
    _, talk = channel(doc, "Talk")
    order, say = payload_validator(doc, orders["messages"]["order"]), payload_validator(doc, talk["messages"]["say"])
    assert order.is_valid({"args": ["order", {"sku": "a1", "quantity": 2}], "meta": {}})
    assert not order.is_valid({"args": ["order", {"text": "hi"}], "meta": {}})
    assert say.is_valid({"args": ["say", {"text": "hi"}], "meta": {}})
    assert not say.is_valid({"args": ["say", {"sku": "a1", "quantity": 2}], "meta": {}})
    refs = {
        orders["messages"]["order"]["payload"]["properties"]["args"]["items"][1]["$ref"],
        talk["messages"]["say"]["payload"]["properties"]["args"]["items"][1]["$ref"],
    }
    assert len(refs) == 2, refs


def test_each_handler_operation_says_what_it_may_send_back():
    mount()
    doc = document()
    key, orders = channel(doc, "Orders")
    talk_key, talk = channel(doc, "Talk")
    reply = doc["operations"][f"{key}.order"]["reply"]
    assert reply["messages"] == [
        {"$ref": f"#/channels/{key}/messages/order.reply"},
        {"$ref": f"#/channels/{key}/messages/error"},
    ]
    order_reply = orders["messages"]["order.reply"]
    assert (order_reply["x-target-id"], order_reply["x-delivery"]) == ("cart", "every connection of the group")
    say_reply = talk["messages"]["say.reply"]
    assert (say_reply["x-target-id"], say_reply["x-delivery"]) == ("log", "the group but the sender")
    assert talk["messages"]["say"]["x-rate"] == "5/s"
    replies = payload_validator(doc, say_reply)
    assert replies.is_valid(
        [["hypergen.morph", "log", "<li>hi</li>"], ["hypergen.append", "log", "hi"], ["hypergen.websocket.ack", 3]]
    )
    assert not replies.is_valid([["hypergen.websocket.ack", "3"]]), "an ack carries a frame id"
    assert not replies.is_valid([[]]) and not replies.is_valid({"commands": []})
    errors = payload_validator(doc, talk["messages"]["error"])
    assert errors.is_valid(
        [["hypergen.websocket.error", {"code": "rate_limited", "message": "slow down"}], ["hypergen.websocket.ack", 4]]
    )
    assert not errors.is_valid([["hypergen.websocket.error", {"code": "no_such_code", "message": "x"}]])


def test_the_listing_shows_a_handlers_own_target_and_rate():
    mount()
    out = io.StringIO()
    call_command("consumers", stdout=out)
    text = out.getvalue()
    assert "order(line: Message)  -> group\n" in text, "the class's own target_id is not repeated"
    assert "say(line: Message)  -> group but the sender  target_id: 'log'  rate: 5/s\n" in text
