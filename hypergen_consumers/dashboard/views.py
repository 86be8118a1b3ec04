"""The dashboard page: a hypergen liveview for active staff (anonymous: the login page; others: 403)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from hypergen.imports import (
    NO_PERM_REQUIRED,
    body,
    button,
    callback,
    command,
    div,
    doctype,
    h1,
    head,
    html,
    input_,
    label,
    liveview,
    meta,
    p,
    section,
    span,
    style,
    title,
)

from hypergen_consumers.dashboard.consumer import OPERATE_PERM, DashboardConsumer, is_staff
from hypergen_consumers.dashboard.style import CSS

__all__ = ["dashboard"]


@contextmanager
def _page() -> Iterator[None]:
    doctype()
    with html():
        with head():
            meta(charset="utf-8")
            meta(name="viewport", content="width=device-width, initial-scale=1")
            title("Consumers · live dashboard")
            style(CSS)
        with body(class_="hc-dashboard"):
            yield


@liveview(perm=NO_PERM_REQUIRED, base_template=_page, autourl=False, partial=False)  # type: ignore[untyped-decorator]
def _dashboard(request: Any) -> None:
    url = DashboardConsumer.reverse()
    command("hypergen.websocket.open", url)
    with div(id_="hc-dashboard-page"):
        with div(class_="hc-header"):
            h1("Consumers ", span("live", class_="hc-live"))
            span(f"signed in as {request.user.get_username()}", class_="hc-who")
        div(p("Waiting for the first snapshot…", class_="hc-waiting"), id_="hc-dashboard-body")
        if request.user.has_perm(OPERATE_PERM):
            with section(class_="hc-panel hc-operations"):
                label("Send a notice to a group")
                group = input_(id_="hc-notice-group", placeholder="group (from the table above)")
                text = input_(id_="hc-notice-text", placeholder="notice")
                button("Send notice", id_="hc-notice-send", onclick=callback(url, "notify_group", group, text))


@wraps(_dashboard)
def dashboard(request: Any, *args: Any, **kwargs: Any) -> Any:
    """The page, for active staff only: the login page for anonymous users, 403 for anyone else."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not is_staff(request.user):
        raise PermissionDenied("The consumers dashboard is for staff only.")
    return _dashboard(request, *args, **kwargs)
