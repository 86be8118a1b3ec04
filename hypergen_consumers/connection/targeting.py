"""Who gets a handler's output: ``broadcast`` (True, False, "others"), checked at class creation.

``send_commands`` (to this connection alone) is in ``sending``; where the output goes, in
``PipelineMixin._run``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = ["BROADCAST_CHOICES", "OTHERS", "check_broadcast"]

#: ``broadcast = "others"``: handler output goes to the group, the sender excluded.
OTHERS = "others"
BROADCAST_CHOICES = (True, False, OTHERS)


def check_broadcast(owner: str, value: Any) -> Any:
    """``value`` if it is True, False or "others"; else ImproperlyConfigured naming ``owner``."""
    if value is True or value is False or value == OTHERS:
        return value
    msg = (
        f"{owner}: broadcast must be True (the group), False (the sender only) or "
        f"'others' (the group but the sender), not {value!r}."
    )
    raise ImproperlyConfigured(msg)
