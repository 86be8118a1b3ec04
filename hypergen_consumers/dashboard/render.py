"""The dashboard's HTML: summary, charts (inline SVG), processes, consumers, groups, sockets, log.

Rendered with hypergen's elements inside a handler run (``DashboardConsumer.refresh``), so
every value is escaped; the charts are SVG built from numbers only.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from hypergen.imports import (
    b,
    button,
    callback,
    code,
    div,
    h2,
    li,
    p,
    raw,
    section,
    small,
    span,
    svg,
    table,
    tbody,
    td,
    th,
    thead,
    tr,
    ul,
)

from hypergen_consumers.dashboard.board import Board

__all__ = ["dashboard_body", "chart_points"]


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.1f} ms"


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%H:%M:%S")


def chart_points(values: list[float], width: int = 300, height: int = 60) -> str:
    """An SVG polyline's points for ``values`` scaled into ``width`` x ``height`` (numbers only)."""
    if not values:
        return ""
    top = max(values) or 1.0
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{index * step:.1f},{height - value / top * (height - 4) - 2:.1f}" for index, value in enumerate(values)
    )


def _chart(title: str, values: list[float], color: str, css_class: str) -> None:
    with div(class_=f"hc-chart {css_class}"):
        latest = values[-1] if values else 0.0
        with div(class_="hc-chart-title"):
            span(title)
            b(f"{latest:.1f}/s")
        points = chart_points(values)
        line = f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>' if points else ""
        with svg(viewBox="0 0 300 60", preserveAspectRatio="none", class_="hc-spark"):
            raw(line)


def _summary(board: Board) -> None:
    with div(class_="hc-cards"):
        for label, value, css in (
            ("processes", str(len(board.processes)), "hc-processes-count"),
            ("connections", str(board.connections()), "hc-connections-count"),
            ("frames/s", f"{board.frames_per_second():.1f}", "hc-frames-rate"),
            ("errors/s", f"{board.errors_per_second():.1f}", "hc-errors-rate"),
        ):
            with div(class_="hc-card"):
                div(value, class_=f"hc-card-value {css}")
                div(label, class_="hc-card-label")
    history = list(board.history)
    with div(class_="hc-charts"):
        _chart("frames", [point[1] for point in history], "#4f7cff", "hc-chart-frames")
        _chart("errors", [point[2] for point in history], "#e5484d", "hc-chart-errors")


def _processes(board: Board) -> None:
    with section(class_="hc-panel"):
        h2("Processes")
        with table(class_="hc-table"):
            with thead():
                with tr():
                    for heading in ("host", "pid", "uptime", "connections", "frames/s", "errors"):
                        th(heading)
            with tbody():
                for process in board.ordered_processes():
                    with tr(class_="hc-process", data_pid=str(process["pid"])):
                        td(process["host"])
                        td(str(process["pid"]))
                        td(_age(process["at"] - process["started"]))
                        td(str(process["connections"]))
                        td(f"{board.rate(process['id'])[0]:.1f}")
                        td(str(process["errors"]))


def _consumers(board: Board) -> None:
    with section(class_="hc-panel"):
        h2("Consumers")
        with table(class_="hc-table"):
            with thead():
                with tr():
                    for heading in ("consumer", "route", "connections", "frames/s", "errors by code", "p50", "p99"):
                        th(heading)
            with tbody():
                for entry in board.consumers():
                    with tr(class_="hc-consumer", data_consumer=entry["name"]):
                        td(b(entry["name"]))
                        td(code(entry["route"]))
                        td(str(entry["connections"]))
                        td(f"{entry['rate']:.1f}")
                        td(", ".join(f"{error}: {count}" for error, count in sorted(entry["errors"].items())) or "–")
                        td(_ms(entry["p50"]))
                        td(_ms(entry["p99"]))


def _groups(board: Board) -> None:
    with section(class_="hc-panel hc-wide"):
        h2("Groups and who is here")
        with table(class_="hc-table"):
            with thead():
                with tr():
                    for heading in ("group", "consumer", "members", "who is here"):
                        th(heading)
            with tbody():
                for group in board.groups()[:100]:
                    with tr(class_="hc-group", data_group=group["group"]):
                        td(code(group["group"]))
                        td(group["consumer"])
                        td(str(group["members"]))
                        td(", ".join(f"{user} ×{n}" if n > 1 else user for user, n in sorted(group["users"].items())))


def _sockets(board: Board, url: str, can_operate: bool) -> None:
    sockets = board.sockets()
    with section(class_="hc-panel hc-wide"):
        h2("Connections ", small(f"({len(sockets)} listed)"))
        with table(class_="hc-table"):
            with thead():
                with tr():
                    for heading in ("consumer", "group", "user", "process", "connected", ""):
                        th(heading)
            with tbody():
                now = time.time()
                for index, entry in enumerate(sockets[:300]):
                    with tr(class_="hc-connection", data_user=entry["user"] or "", data_pid=str(entry["pid"])):
                        td(entry["consumer"])
                        td(code(entry["group"]))
                        td(entry["user"] or "anonymous")
                        td(f"{entry['host']}:{entry['pid']}")
                        td(_age(now - entry["since"]))
                        with td(class_="hc-actions"):
                            if can_operate:
                                button(
                                    "close",
                                    class_="hc-close-connection",
                                    id_=f"hc-close-{index}",
                                    onclick=callback(url, "close_connection", entry["channel"]),
                                )
                                if entry["user_id"] is not None:
                                    button(
                                        "close all of user",
                                        class_="hc-close-user",
                                        id_=f"hc-close-user-{index}",
                                        onclick=callback(url, "close_user", entry["user_id"]),
                                    )


def _log(board: Board) -> None:
    with section(class_="hc-panel hc-wide"):
        h2("Live event log")
        with ul(class_="hc-log"):
            for event in list(board.log)[:100]:
                with li(class_=f"hc-event hc-event-{event['kind']}"):
                    span(_clock(event["at"]), class_="hc-event-time")
                    span(event["kind"], class_="hc-event-kind")
                    if event.get("consumer"):
                        span(event["consumer"], class_="hc-event-consumer")
                    span(event["detail"], class_="hc-event-detail")
                    if event.get("user"):
                        span("by " if event["kind"] == "operation" else "user ", event["user"], class_="hc-event-user")
                    if event.get("pid"):
                        small(f"{event['host']}:{event['pid']}")


def dashboard_body(board: Board, url: str, can_operate: bool) -> None:
    """Render the live part of the page (morphed into ``#hc-dashboard-body`` on every update)."""
    board.drop_stale()
    if not board.processes:
        p("Waiting for the first snapshot…", class_="hc-waiting")
        return
    _summary(board)
    with div(class_="hc-grid"):
        _processes(board)
        _consumers(board)
        _groups(board)
        _sockets(board, url, can_operate)
        _log(board)
