"""The package's settings: every ``HYPERGEN_CONSUMERS_*`` in one validated model, read once.

Why one model: the settings used to be read by a dozen accessors in nine modules, each
with its own default and its own idea of a bad value, and several were looked up in
Django's settings on every frame. Here each setting is declared once (type, default,
what it is for), validated together (the presence expiry must outlast the heartbeat), and
read from Django once; ``current()`` then costs a global lookup. A bad value raises
ImproperlyConfigured naming the setting and the fix, the first time any setting is read.

Django's ``setting_changed`` signal (``override_settings``, pytest-django's ``settings``)
drops the cached model, so the next read sees the change.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PositiveFloat, ValidationError, model_validator

__all__ = [
    "PREFIX",
    "DAPHNE_MAX_MESSAGE_BYTES",
    "DEFAULT_HANDLER_TIMEOUT",
    "HypergenConsumersSettings",
    "current",
    "setting_name",
]

PREFIX = "HYPERGEN_CONSUMERS_"
#: daphne's default ``--websocket-max-message-size``, for incoming and outgoing messages.
DAPHNE_MAX_MESSAGE_BYTES = 1024 * 1024
DEFAULT_HANDLER_TIMEOUT = 30.0


def _off_when_falsy(value: Any) -> Any:
    """``0``, ``None`` and ``False`` turn a bound off (the documented way to disable it)."""
    return None if not value else value


_Off = BeforeValidator(_off_when_falsy)


class HypergenConsumersSettings(BaseModel):
    """``HYPERGEN_CONSUMERS_<FIELD NAME IN CAPITALS>``: each field's description is its one-line doc."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_frame_bytes: int = Field(
        256 * 1024, gt=0, description="largest incoming frame; larger ones get frame_too_large"
    )
    server_max_message_bytes: int = Field(
        DAPHNE_MAX_MESSAGE_BYTES,
        gt=0,
        description="the server's own message limit (daphne's --websocket-max-message-size)",
    )
    max_queued_bytes: int = Field(
        4 * 1024 * 1024,
        ge=0,
        description="unsent bytes a connection may hold under daphne before it is dropped; 0: no bound",
    )
    rate_limit: Annotated[PositiveFloat | None, _Off] = Field(
        None, description="messages per second per connection; None or 0: no limit"
    )
    worker_threads: int = Field(16, gt=0, strict=True, description="threads that run def handlers and hooks")
    handler_timeout: Annotated[PositiveFloat | None, _Off] = Field(
        DEFAULT_HANDLER_TIMEOUT, description="seconds a handler or hook may run; None or 0: no bound"
    )
    layer_concurrency: int = Field(
        50, gt=0, strict=True, description="channel layer calls in flight at once per process (below Redis's pool size)"
    )
    layer_timeout: float = Field(5.0, gt=0, description="seconds one channel layer call may take")
    auth_recheck_seconds: float = Field(
        5.0, ge=0, description="how stale a connection's user may get; 0: re-read before every message"
    )
    presence_heartbeat: float = Field(5.0, gt=0, description="seconds between two heartbeats of a process")
    #: A dead process leaves presence() within this, and its survivors' on_presence within one
    #: heartbeat more (20 s < the documented 30 s); three missed heartbeats, so a busy process is not dropped.
    presence_expiry: float = Field(15.0, gt=0, description="seconds a dead process stays in presence lists")
    presence_throttle: float = Field(0.1, gt=0, description="shortest time between two presence renders of a group")
    dashboard_interval: float = Field(1.5, gt=0, description="seconds between two dashboard snapshots of a process")

    @model_validator(mode="after")
    def _expiry_outlasts_heartbeat(self) -> HypergenConsumersSettings:
        if self.presence_expiry <= self.presence_heartbeat:
            msg = (
                f"{setting_name('presence_expiry')} ({self.presence_expiry:g}) must be longer than "
                f"{setting_name('presence_heartbeat')} ({self.presence_heartbeat:g}), or live processes "
                f"would vanish from presence between heartbeats; e.g. 2.5 times as long."
            )
            raise ImproperlyConfigured(msg)
        return self


def setting_name(field: str) -> str:
    """``max_frame_bytes`` -> ``HYPERGEN_CONSUMERS_MAX_FRAME_BYTES``."""
    return PREFIX + field.upper()


_current: HypergenConsumersSettings | None = None


def current() -> HypergenConsumersSettings:
    """The validated settings, read from Django once and kept until a setting changes."""
    global _current
    if _current is None:
        _current = _load()
    return _current


def _load() -> HypergenConsumersSettings:
    given = {
        field: getattr(settings, setting_name(field))
        for field in HypergenConsumersSettings.model_fields
        if hasattr(settings, setting_name(field))
    }
    try:
        return HypergenConsumersSettings(**given)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        info = HypergenConsumersSettings.model_fields.get(field)
        if info is None:
            raise ImproperlyConfigured(str(exc)) from exc
        msg = (
            f"{setting_name(field)} = {given.get(field)!r} is not valid: {error['msg']}. It is "
            f"{info.description}; set a valid value or remove it for the default, {info.default!r}."
        )
        raise ImproperlyConfigured(msg) from exc


def _forget(setting: str, **kwargs: Any) -> None:
    global _current
    if setting.startswith(PREFIX):
        _current = None


setting_changed.connect(_forget, dispatch_uid="hypergen_consumers.conf")
