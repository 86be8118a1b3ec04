"""Describe mounted consumers: a readable listing and an AsyncAPI 3.0 document.

The handler payload schemas come from the same pydantic models that validate messages, so
the document cannot drift from what the server accepts.
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Any, get_origin

from hypergen.liveview import NO_PERM_REQUIRED
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue, models_json_schema

from hypergen_consumers.declaring.handlers import HandlerSpec
from hypergen_consumers.errors import ERROR_CODES, ERROR_COMMAND
from hypergen_consumers.routing import registry

__all__ = ["mounted_consumers", "describe", "asyncapi_document"]

_ROUTE_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
_REF_TEMPLATE = "#/components/schemas/{model}"


def mounted_consumers() -> list[tuple[registry.Consumer, registry.Mount]]:
    """Every consumer mounted by autoconsumers(), importing ASGI_APPLICATION first."""
    registry.import_asgi_application()
    return sorted(registry.REGISTRY.mounts.items(), key=lambda item: item[1].route)


def _perm_text(perm: Any, any_perm: bool) -> str:
    if perm == NO_PERM_REQUIRED:
        return "none (NO_PERM_REQUIRED)"
    perms = [perm] if isinstance(perm, str) else list(perm)
    return (" or " if any_perm else " and ").join(repr(p) for p in perms)


def _type_name(spec: HandlerSpec, param: str) -> str:
    field = next(p.field for p in spec.params if p.name == param)
    annotation = spec.model.model_fields[field].annotation
    origin = get_origin(annotation)
    if isinstance(origin, type) and origin is not UnionType:  # list[str] and List[str] alike: "list".
        return origin.__name__
    return getattr(annotation, "__name__", None) or repr(annotation).replace("typing.", "")


#: JSON Schema's limit keywords, by the name pydantic's ``Field()`` gives each (what the handler declared).
_LIMITS = {
    "minimum": "ge",
    "exclusiveMinimum": "gt",
    "maximum": "le",
    "exclusiveMaximum": "lt",
    "multipleOf": "multiple_of",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_length",
    "maxItems": "max_length",
    "minProperties": "min_length",
    "maxProperties": "max_length",
    "pattern": "pattern",
}


class _ListingSchema(GenerateJsonSchema):
    """An argument of a type with no JSON form (a Callable) is listed without limits, the others with."""

    ignored_warning_kinds = {"skipped-choice", "non-serializable-default"}  # A listing, not a document.

    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> JsonSchemaValue:
        return {}


def _argument_properties(spec: HandlerSpec) -> dict[str, Any]:
    """Each argument's JSON schema: the limits the server enforces, however they were declared."""
    schema = spec.model.model_json_schema(by_alias=True, schema_generator=_ListingSchema)
    properties: dict[str, Any] = schema.get("properties", {})
    return properties


def _number(value: Any) -> Any:
    """A limit as declared: pydantic before 2.5 writes ``gt=0`` on a float as ``0.0``."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _limits_text(schema: dict[str, Any]) -> str:
    """`` (ge=1, le=10)`` from an argument's schema; an Optional argument's limits are in its anyOf."""
    branches = [schema, *schema.get("anyOf", [])]
    shown = [
        f"{name}={_number(branch[key])!r}" for branch in branches for key, name in _LIMITS.items() if key in branch
    ]
    return f" ({', '.join(shown)})" if shown else ""


def _group_rule(cls: Any) -> str:
    if cls._group_rule is not None:
        return f"custom ({getattr(cls._group_rule, '__qualname__', repr(cls._group_rule))})"
    names = list(cls._route.kwarg_names)
    return f"one per URL ({', '.join(names)})" if names else "one for all connections"


def describe() -> str:
    """The text of ``manage.py consumers``."""
    lines = []
    for cls, mount in mounted_consumers():
        lines.append(f"{mount.route}  {cls.__module__}.{cls.__qualname__}")
        lines.append(
            f"    perm: {_perm_text(cls.perm, cls.any_perm)}   group: {_group_rule(cls)}   target_id: {cls.target_id!r}"
        )
        named = cls._function_handler is None  # A class consumer's frames always name the handler.
        for name, spec in cls._handlers.items():
            schemas = _argument_properties(spec)
            params = ", ".join(
                f"{p}: {_type_name(spec, p)}{_limits_text(schemas.get(p, {}))}" for p in spec.client_params
            )
            url = f"  url kwargs: {', '.join(spec.url_params)}" if spec.url_params else ""
            perm = f"  perm: {_perm_text(spec.perm, spec.any_perm)}" if spec.perm is not None else ""
            deliveries: dict[bool | str, str] = {True: "group", False: "sender only"}
            delivery = deliveries.get(spec.broadcast, "group but the sender")
            call = f"{name}({params})" if named else f"({params})  [{name}]"
            target = f"  target_id: {spec.target_id!r}" if spec.target_id != cls.target_id else ""
            rate = f"  rate: {spec.rate.text}" if spec.rate is not None else ""
            lines.append(f"    {call}  -> {delivery}{perm}{target}{rate}{url}")
    return "\n".join(lines) if lines else "No consumers are mounted (no autoconsumers() call was found)."


def _address(route: str) -> tuple[str, dict[str, Any]]:
    parameters = {}
    for match in _ROUTE_PARAMETER.finditer(route):
        converter = match.group("converter") or "str"
        parameters[match.group("name")] = {"description": f"URL kwarg ({converter} path converter)"}
    return "/" + _ROUTE_PARAMETER.sub(lambda m: "{" + m.group("name") + "}", route), parameters


def _argument_schemas(specs: list[HandlerSpec]) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """Each handler's arguments schema (by ``id`` of its spec) and the shared components.

    One ``models_json_schema`` call over every handler of the document names each model once
    and apart: two ``Message`` models from two apps become two components, where merging each
    handler's ``$defs`` by class name made both handlers point at whichever came last.
    """
    if not specs:
        return {}, {}
    inputs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(spec.model, "validation") for spec in specs]
    refs, top = models_json_schema(inputs, by_alias=True, ref_template=_REF_TEMPLATE)
    components: dict[str, Any] = top.get("$defs", {})
    arguments: dict[int, dict[str, Any]] = {}
    for spec in specs:
        name = refs[(spec.model, "validation")]["$ref"].rsplit("/", 1)[-1]
        arguments[id(spec)] = components.pop(name)  # Inlined into the handler's message instead.
    return arguments, components


def _handler_payload(spec: HandlerSpec, named: bool, model_schema: dict[str, Any]) -> dict[str, Any]:
    properties = model_schema.get("properties", {})
    required = set(model_schema.get("required", []))
    items = [{"const": spec.name, "description": "the handler's name"}] if named else []
    items += [properties[name] for name in spec.client_params]
    minimum = len(items) - sum(1 for name in spec.client_params if name not in required)
    # Draft-07 wants a non-empty "items" list; a handler without client arguments takes [].
    args = {"type": "array", "items": items, "additionalItems": False} if items else {"type": "array"}
    return {
        "type": "object",
        "description": 'The frame hypergen\'s callback() sends: {"args": [...], "meta": {...}}.',
        "required": ["args", "meta"],
        "properties": {
            "args": {**args, "minItems": minimum, "maxItems": len(items)},
            "meta": {"type": "object"},
        },
    }


_COMMAND_REF = "#/components/schemas/hypergen_consumers.Command"
_COMMAND = {
    "description": (
        "One hypergen client command: a client function path and its arguments, applied by "
        "hypergen.applyCommands. A handler's own command(...) calls are any function the page has."
    ),
    "anyOf": [
        {
            "type": "array",
            "minItems": 3,
            "maxItems": 3,
            "description": "rendered HTML morphed into an element",
            "items": [
                {"const": "hypergen.morph"},
                {"type": "string", "description": "element id"},
                {"type": "string", "description": "HTML"},
            ],
        },
        {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "description": "the last command of the reply to a client frame: that frame (meta.id) was run",
            "items": [{"const": "hypergen.websocket.ack"}, {"type": "integer", "minimum": 1}],
        },
        {
            "type": "array",
            "minItems": 2,
            "maxItems": 3,
            "description": "the last command of a group frame: its position in the group's replay stream",
            "items": [{"const": "hypergen.websocket.position"}, {"type": "string"}, {"type": "integer"}],
        },
        {
            "type": "array",
            "minItems": 1,
            "items": [
                {
                    "type": "string",
                    "description": "client function path, e.g. hypergen.append",
                    "not": {"enum": ["hypergen.websocket.ack", "hypergen.websocket.position"]},
                }
            ],
        },
    ],
}
_COMMANDS = {
    "type": "array",
    "description": "hypergen client commands, applied in order by hypergen.applyCommands.",
    "items": {"$ref": _COMMAND_REF},
}
_DELIVERY = {True: "every connection of the group", False: "the sender only", "others": "the group but the sender"}


def _reply_message(cls: Any, spec: HandlerSpec) -> dict[str, Any]:
    """What one handler may send back: its command list, and where it goes."""
    items: list[dict[str, Any]] = []
    if spec.target_id is not None:
        items.append(
            {
                "type": "array",
                "minItems": 3,
                "maxItems": 3,
                "description": f"what the handler renders, morphed into #{spec.target_id}",
                "items": [{"const": "hypergen.morph"}, {"const": spec.target_id}, {"type": "string"}],
            }
        )
    items.append({"$ref": _COMMAND_REF})
    where = _DELIVERY.get(spec.broadcast, str(spec.broadcast))
    return {
        "name": f"{spec.name}.reply",
        "title": f"What {cls.__name__}.{spec.name} sends back",
        "summary": (
            f"A command list to {where} (in a group_send run: to each connection itself). The sender's "
            f"frame ends with hypergen.websocket.ack for its meta.id, or is an error frame carrying it."
        ),
        "contentType": "application/json",
        "payload": {"type": "array", "items": {"anyOf": items}},
        "x-target-id": spec.target_id,
        "x-delivery": where,
    }


_ERROR = {
    "type": "array",
    "minItems": 1,
    "maxItems": 2,
    "description": "one error command, followed by the ack of the frame it answers (when that frame had an id)",
    "items": [
        {
            "type": "array",
            "items": [
                {"const": ERROR_COMMAND},
                {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": sorted(ERROR_CODES)},
                        "message": {"type": "string"},
                        "errors": {"type": "array", "description": "pydantic's errors, for validation_error"},
                        "traceback": {"type": "string", "description": "only with DEBUG, for handler_error"},
                    },
                },
            ],
        },
        {"$ref": _COMMAND_REF},
    ],
}


def asyncapi_document(title: str = "Websocket consumers") -> dict[str, Any]:
    """An AsyncAPI 3.0 document: a channel per consumer, a message per handler and per reply."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    mounted = mounted_consumers()
    arguments, schemas = _argument_schemas([spec for cls, _ in mounted for spec in cls._handlers.values()])
    for cls, mount in mounted:
        key = f"{cls.__module__}.{cls.__qualname__}".replace("<", "").replace(">", "")
        address, parameters = _address(mount.route)
        named = cls._function_handler is None  # A class consumer's frames always name the handler.
        messages: dict[str, Any] = {}
        for name, spec in cls._handlers.items():
            messages[name] = {
                "name": name,
                "title": f"{cls.__name__}.{name}",
                "summary": (spec.func.__doc__ or "").strip().split("\n")[0] or f"Call {name}.",
                "contentType": "application/json",
                "payload": _handler_payload(spec, named, arguments[id(spec)]),
                "x-perm": None if spec.perm is None else spec.perm,
                "x-broadcast": spec.broadcast,
                "x-rate": None if spec.rate is None else spec.rate.text,
            }
            messages[f"{name}.reply"] = _reply_message(cls, spec)
        messages["commands"] = {"name": "commands", "contentType": "application/json", "payload": _COMMANDS}
        messages["error"] = {"name": "error", "contentType": "application/json", "payload": _ERROR}
        channel = {
            "address": address,
            "messages": messages,
            "description": (cls.__doc__ or "").strip(),
            "x-perm": cls.perm,
            "x-group": _group_rule(cls),
        }
        if parameters:
            channel["parameters"] = parameters
        channels[key] = channel
        ref = f"#/channels/{key}"
        for name in cls._handlers:
            operations[f"{key}.{name}"] = {
                "action": "receive",
                "channel": {"$ref": ref},
                "messages": [{"$ref": f"{ref}/messages/{name}"}],
                "reply": {
                    "channel": {"$ref": ref},
                    "messages": [{"$ref": f"{ref}/messages/{name}.reply"}, {"$ref": f"{ref}/messages/error"}],
                },
            }
        operations[f"{key}.reply"] = {
            "action": "send",
            "channel": {"$ref": ref},
            "messages": [{"$ref": f"{ref}/messages/commands"}, {"$ref": f"{ref}/messages/error"}],
        }
    document: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": "Generated by hypergen-consumers from the mounted consumers.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {**schemas, "hypergen_consumers.Command": _COMMAND}},
    }
    return document
