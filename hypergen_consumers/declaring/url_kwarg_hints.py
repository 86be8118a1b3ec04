"""Say which URL kwargs a handler left unbound when its arguments do not fit.

A handler parameter meant to come from the URL but named unlike the path's kwarg
(``room`` where the path says ``<slug:slug>``) silently becomes one more argument the
client must send. The error then says "takes 2 arguments from the client", which sends a
newcomer to the page instead of the signature; this names the path's URL kwargs that the
handler does not take, with a "did you mean" where a parameter's name is close to one.
Only built on the error path, never per message.
"""

from __future__ import annotations

import difflib
from typing import Any

from hypergen_consumers.declaring.handlers import HandlerSpec

__all__ = ["unbound_url_kwargs", "url_kwarg_hint"]


def unbound_url_kwargs(cls: Any, spec: HandlerSpec) -> list[str]:
    """The URL kwargs of ``cls.path`` that no parameter of ``spec`` is named after."""
    route = getattr(cls, "_route", None)
    names: tuple[str, ...] = route.kwarg_names if route is not None else ()
    return [name for name in names if name not in spec.url_params]


def url_kwarg_hint(cls: Any, spec: HandlerSpec) -> str:
    """`` The path ... has URL kwarg(s) [...] ...`` for an error message, or "" when all are bound."""
    unbound = unbound_url_kwargs(cls, spec)
    if not unbound:
        return ""
    guesses = []
    for param in spec.client_params:
        close = difflib.get_close_matches(param, unbound, n=1, cutoff=0.6)
        if close:
            guesses.append(f"{close[0]!r} for {param!r}")
    text = (
        f" {cls.__name__}.path {cls.path!r} has URL kwarg(s) {unbound} that {spec.name}() does not take; "
        f"a URL kwarg fills only the parameter of the same name"
    )
    if guesses:
        return f"{text}: did you mean {', '.join(guesses)}?"
    return f"{text}: rename a parameter to it if its value should come from the URL."
