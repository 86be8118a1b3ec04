"""Describe mounted consumers: a readable listing and an AsyncAPI 3.0 document.

The handler payload schemas come from the same pydantic models that validate messages, so
the document cannot drift from what the server accepts.
"""

from __future__ import annotations

import re
from typing import Any

from hypergen.liveview import NO_PERM_REQUIRED

from . import registry
from .errors import ERROR_CODES, ERROR_COMMAND
from .handlers import HandlerSpec

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
    return getattr(annotation, "__name__", None) or repr(annotation).replace("typing.", "")


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
            f"    perm: {_perm_text(cls.perm, cls.any_perm)}   group: {_group_rule(cls)}   "
            f"target_id: {cls.target_id!r}"
        )
        named = cls._function_handler is None  # A class consumer's frames always name the handler.
        for name, spec in cls._handlers.items():
            params = ", ".join(f"{p}: {_type_name(spec, p)}" for p in spec.client_params)
            url = f"  url kwargs: {', '.join(spec.url_params)}" if spec.url_params else ""
            perm = f"  perm: {_perm_text(spec.perm, spec.any_perm)}" if spec.perm is not None else ""
            deliveries: dict[bool | str, str] = {True: "group", False: "sender only"}
            delivery = deliveries.get(spec.broadcast, "group but the sender")
            call = f"{name}({params})" if named else f"({params})  [{name}]"
            lines.append(f"    {call}  -> {delivery}{perm}{url}")
    return "\n".join(lines) if lines else "No consumers are mounted (no autoconsumers() call was found)."


def _address(route: str) -> tuple[str, dict[str, Any]]:
    parameters = {}
    for match in _ROUTE_PARAMETER.finditer(route):
        converter = match.group("converter") or "str"
        parameters[match.group("name")] = {"description": f"URL kwarg ({converter} path converter)"}
    return "/" + _ROUTE_PARAMETER.sub(lambda m: "{" + m.group("name") + "}", route), parameters


def _handler_payload(spec: HandlerSpec, named: bool, schemas: dict[str, Any]) -> dict[str, Any]:
    model_schema = spec.model.model_json_schema(by_alias=True, ref_template=_REF_TEMPLATE)
    schemas.update(model_schema.pop("$defs", {}))
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


_COMMANDS = {
    "type": "array",
    "description": "hypergen client commands, applied in order by hypergen.applyCommands.",
    "items": {"type": "array", "minItems": 1, "items": [{"type": "string", "description": "client function path"}]},
}
_ERROR = {
    "type": "array",
    "minItems": 1,
    "maxItems": 1,
    "items": {
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
}


def asyncapi_document(title: str = "Websocket consumers") -> dict[str, Any]:
    """An AsyncAPI 3.0 document: a channel per consumer, a message per handler, the reply frames."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for cls, mount in mounted_consumers():
        key = f"{cls.__module__}.{cls.__qualname__}".replace("<", "").replace(">", "")
        address, parameters = _address(mount.route)
        named = cls._function_handler is None  # A class consumer's frames always name the handler.
        messages: dict[str, Any] = {
            name: {
                "name": name,
                "title": f"{cls.__name__}.{name}",
                "summary": (spec.func.__doc__ or "").strip().split("\n")[0] or f"Call {name}.",
                "contentType": "application/json",
                "payload": _handler_payload(spec, named, schemas),
                "x-perm": None if spec.perm is None else spec.perm,
                "x-broadcast": spec.broadcast,
            }
            for name, spec in cls._handlers.items()
        }
        messages["commands"] = {"name": "commands", "contentType": "application/json", "payload": _COMMANDS}
        messages["error"] = {"name": "error", "contentType": "application/json", "payload": _ERROR}
        channel = {"address": address, "messages": messages, "description": (cls.__doc__ or "").strip(),
                   "x-perm": cls.perm, "x-group": _group_rule(cls)}
        if parameters:
            channel["parameters"] = parameters
        channels[key] = channel
        ref = f"#/channels/{key}"
        for name in cls._handlers:
            operations[f"{key}.{name}"] = {
                "action": "receive",
                "channel": {"$ref": ref},
                "messages": [{"$ref": f"{ref}/messages/{name}"}],
            }
        operations[f"{key}.reply"] = {
            "action": "send",
            "channel": {"$ref": ref},
            "messages": [{"$ref": f"{ref}/messages/commands"}, {"$ref": f"{ref}/messages/error"}],
        }
    document: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": "1.0.0",
                 "description": "Generated by hypergen-consumers from the mounted consumers."},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }
    if schemas:
        document["components"] = {"schemas": schemas}
    return document
