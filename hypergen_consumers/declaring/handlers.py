"""``@handler``: mark the consumer methods a client may call, and compile their validators.

A handler's signature is turned into a pydantic model once, when its class is created,
so each message costs one ``model_validate`` call and nothing is built per message.
Fields are named by position and aliased to the parameter names, which lets any
parameter name through (``json``, ``_x``, ``model_config``) while pydantic still
reports errors at ``loc: ("text",)``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel, ConfigDict, Field, PydanticUserError, ValidationError, create_model
from pydantic.fields import FieldInfo

from hypergen_consumers.connection.handler_rates import Rate
from hypergen_consumers.wire.finite import non_finite_errors

__all__ = ["handler", "HandlerSpec", "HandlerArgumentsInvalid", "compile_handler", "UNSET"]

F = TypeVar("F", bound=Callable[..., Any])

HANDLER_MARK = "__hypergen_consumers_handler__"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "Not given here; inherit from the class." Distinct from None, which is a real value.
UNSET: Any = _Unset()


@dataclass(frozen=True)
class HandlerOptions:
    perm: Any = UNSET
    any_perm: Any = UNSET
    broadcast: Any = UNSET
    timeout: Any = UNSET
    target_id: Any = UNSET
    rate: Any = UNSET


@overload
def handler(func: F, /) -> F: ...


@overload
def handler(
    *,
    perm: Any = UNSET,
    any_perm: bool = UNSET,
    broadcast: bool | str = UNSET,
    timeout: float | None = UNSET,
    target_id: str | None = UNSET,
    rate: str | None = UNSET,
) -> Callable[[F], F]: ...


def handler(
    func: Any = None,
    /,
    *,
    perm: Any = UNSET,
    any_perm: Any = UNSET,
    broadcast: Any = UNSET,
    timeout: Any = UNSET,
    target_id: Any = UNSET,
    rate: Any = UNSET,
) -> Any:
    """Mark a consumer method as callable by clients.

    Use as ``@handler`` or ``@handler(perm="chat.moderate", broadcast=False)``.
    ``perm``/``any_perm`` add a permission check on top of the class's connect-time
    ``perm``; ``broadcast`` overrides the class's choice of sending output to the whole
    group (True) or to the sender only (False). ``timeout`` (seconds) overrides the class's
    ``timeout`` (see ``executor``). ``target_id`` overrides the class's ``target_id`` for
    this handler's HTML; ``rate`` (``"5/s"``, ``"100/m"``) overrides the class's ``rate``:
    past it the sender gets ``rate_limited`` for this handler only (see ``handler_rates``).
    Only marked methods can ever run on a client's request.
    """
    options = HandlerOptions(
        perm=perm, any_perm=any_perm, broadcast=broadcast, timeout=timeout, target_id=target_id, rate=rate
    )

    def mark(function: F) -> F:
        candidate: object = function  # Checked as an object, so the checks do not narrow F.
        if isinstance(candidate, (staticmethod, classmethod)) or not inspect.isfunction(candidate):
            msg = (
                f"@handler takes a plain function (def or async def) with the signature "
                f"(self, request, ...), not {function!r}."
            )
            raise TypeError(msg)
        setattr(function, HANDLER_MARK, options)
        return function

    if func is not None:
        if not callable(func):
            msg = f"@handler got {func!r}; use @handler or @handler(perm=..., broadcast=...)."
            raise TypeError(msg)
        return mark(func)
    return mark


def handler_options(obj: Any) -> HandlerOptions | None:
    """The options of a function marked with ``@handler``, else None."""
    return getattr(obj, HANDLER_MARK, None)


class HandlerArgumentsInvalid(Exception):
    """The client's arguments did not fit the handler; ``errors`` is pydantic's list."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


#: Annotations whose validated values are never a float, so never NaN or infinity.
_NEVER_NON_FINITE = (int, str, bool, bytes)


def _never_non_finite(field: FieldInfo) -> bool:
    """Whether a field's validated value can never hold NaN or infinity: annotated exactly
    ``int``, ``str``, ``bool`` or ``bytes``, with nothing in ``Annotated[...]`` or ``Field(...)``.
    Anything there may change the value: a validator of the project's own
    (``Annotated[str, AfterValidator(Decimal)]``, money read from a string, turns a client's
    ``"NaN"`` into ``Decimal('NaN')``), and so may a type with its own pydantic schema; a plain
    constraint (``Field(gt=0)``) cannot, but is walked too (the walk of an ``int`` is short)."""
    return field.annotation in _NEVER_NON_FINITE and not field.metadata


@dataclass(frozen=True)
class _Param:
    name: str
    field: str
    keyword_only: bool


@dataclass(frozen=True)
class HandlerSpec:
    """Everything needed to call one handler, computed once at class creation."""

    name: str
    func: Callable[..., Any]
    is_async: bool
    perm: Any
    any_perm: bool
    broadcast: bool | str
    #: Seconds, or None for HYPERGEN_CONSUMERS_HANDLER_TIMEOUT (resolved per run).
    timeout: float | None
    url_params: tuple[str, ...]
    client_params: tuple[str, ...]
    params: tuple[_Param, ...]
    model: type[BaseModel]
    #: Where its HTML is morphed: its own ``target_id`` or the class's.
    target_id: str | None = None
    #: Its calls allowed per connection (its own ``rate`` or the class's); None: no limit.
    rate: Rate | None = None

    def bind(self, client_args: Sequence[Any], url_kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Validate ``client_args`` and URL kwargs; return ``(args, kwargs)`` after self and request.

        Raises HandlerArgumentsInvalid with pydantic's error list (plus one entry per
        surplus positional argument, in pydantic's own format for that case).
        """
        surplus = (
            [
                {
                    "type": "unexpected_positional_argument",
                    "loc": [index],
                    "msg": "Unexpected positional argument",
                }
                for index in range(len(self.client_params), len(client_args))
            ]
            if len(client_args) > len(self.client_params)
            else None
        )
        data = dict(zip(self.client_params, client_args))
        if self.url_params:
            for name in self.url_params:
                if name in url_kwargs:
                    data[name] = url_kwargs[name]
        try:
            # The model's validator itself (model_validate only passes its arguments on to it).
            validated = self.model.__pydantic_validator__.validate_python(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            raise HandlerArgumentsInvalid(_json_safe(errors) + (surplus or [])) from None
        if surplus:
            raise HandlerArgumentsInvalid(surplus)
        values = validated.__dict__
        positional, keyword, may_be_non_finite = self._fields
        if may_be_non_finite:
            non_finite = non_finite_errors((p.name, values[p.field]) for p in may_be_non_finite)
            if non_finite:  # NaN or infinity in a model of the user's own that allows it (see finite).
                raise HandlerArgumentsInvalid(non_finite)
        return [values[field] for field in positional], {name: values[field] for name, field in keyword}

    @cached_property
    def _fields(self) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[_Param, ...]]:
        """The model's fields passed by position; ``(parameter, field)`` of those passed by
        keyword; the parameters whose validated value could hold NaN or infinity (all but
        those annotated exactly ``int``, ``str``, ``bool`` or ``bytes``, see ``_never_non_finite``)."""
        fields = self.model.model_fields
        return (
            tuple(p.field for p in self.params if not p.keyword_only),
            tuple((p.name, p.field) for p in self.params if p.keyword_only),
            tuple(p for p in self.params if not _never_non_finite(fields[p.field])),
        )


def _json_safe(errors: list[Any]) -> list[dict[str, Any]]:
    return [{**error, "loc": list(error["loc"])} for error in errors]


def compile_handler(
    owner: str,
    name: str,
    func: Callable[..., Any],
    url_kwarg_names: Sequence[str],
    *,
    perm: Any,
    any_perm: bool,
    broadcast: bool | str,
    timeout: float | None = None,
    localns: Mapping[str, Any] | None = None,
    target_id: str | None = None,
    rate: Rate | None = None,
) -> HandlerSpec:
    """Build the HandlerSpec of ``func``; configuration mistakes raise ImproperlyConfigured.

    ``owner`` is the consumer class name used in messages.
    """
    where = f"{owner}.{name}"
    signature = inspect.signature(func)
    parameters = list(signature.parameters.values())
    if len(parameters) < 2 or any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters[:2]):
        msg = f"{where} must take (self, request, ...) as its first two parameters; it takes {signature}."
        raise ImproperlyConfigured(msg)
    if parameters[1].name != "request":
        # Otherwise the request object lands in a parameter meant for the client, unvalidated.
        msg = (
            f"{where}{signature}: its second parameter must be named 'request' (it receives the "
            f"request), not {parameters[1].name!r}. Write def {name}(self, request, ...)."
        )
        raise ImproperlyConfigured(msg)
    try:
        hints = typing.get_type_hints(func, localns=dict(localns or {}), include_extras=True)
    except NameError as exc:
        msg = (
            f"{where}: parameter types cannot be validated ({exc}). Import the type at module "
            f"level so its annotation can be resolved."
        )
        raise ImproperlyConfigured(msg) from exc

    fields: dict[str, Any] = {}
    params: list[_Param] = []
    client_params: list[str] = []
    url_params: list[str] = []
    for index, parameter in enumerate(parameters[2:]):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            msg = (
                f"{where}: *{parameter.name} and **{parameter.name} parameters cannot be validated. "
                f"Name each argument (or take one list parameter, e.g. items: list[str])."
            )
            raise ImproperlyConfigured(msg)
        keyword_only = parameter.kind is parameter.KEYWORD_ONLY
        if parameter.name in url_kwarg_names:
            url_params.append(parameter.name)
        elif keyword_only:
            if parameter.default is parameter.empty:
                msg = (
                    f"{where}: keyword-only parameter {parameter.name!r} is not a URL kwarg, so no "
                    f"client could fill it. Give it a default or make it positional."
                )
                raise ImproperlyConfigured(msg)
        else:
            client_params.append(parameter.name)
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        field = f"p{index}"
        fields[field] = (annotation, Field(default, alias=parameter.name))
        params.append(_Param(parameter.name, field, keyword_only))

    try:
        # No NaN or infinity, not even from "nan" or "1e999" strings (see finite).
        model = create_model(f"{owner}_{name}_arguments", __config__=ConfigDict(allow_inf_nan=False), **fields)
        model.model_rebuild(raise_errors=True)
    except (PydanticUserError, NameError, TypeError) as exc:
        msg = f"{where}: parameter types cannot be validated ({exc})"
        raise ImproperlyConfigured(msg) from exc

    return HandlerSpec(
        name=name,
        func=func,
        is_async=inspect.iscoroutinefunction(func),
        perm=perm,
        any_perm=any_perm,
        broadcast=broadcast,
        timeout=timeout,
        url_params=tuple(url_params),
        client_params=tuple(client_params),
        params=tuple(params),
        model=model,
        target_id=target_id,
        rate=rate,
    )
