"""Turn a results file of bench/run.py into tables: text for the terminal, reST for the docs.

    python bench/report.py                              # docs/performance.rst from bench/results/latest.json
    python bench/report.py bench/results/quick.json     # ... from another results file

Only the part of docs/performance.rst between the ``.. results-start`` and ``.. results-end``
comments is replaced, so the page's numbers are always the output of one run.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DOCS = BENCH.parent / "docs" / "performance.rst"
START, END = ".. results-start", ".. results-end"

HEADLINE = {
    "roundtrip": "messages_per_s",
    "fanout": "deliveries_per_s",
    "memory": "kib_per_connection",
    "connect": "connects_per_s",
    "inprocess": "validate_us",
}
UNIT = {
    "roundtrip": "messages/s",
    "fanout": "deliveries/s",
    "memory": "KiB per idle connection",
    "connect": "handshakes/s",
}

# (ours, baseline, why this pair): each ratio is ours / baseline, so > 1 means ours is faster
# (for memory: uses more). The first pair of each family is the fair one.
PAIRS = {
    "roundtrip": [
        ("ours_async", "raw_render_nohop", "fair: same template, same bytes, no hop"),
        ("ours_async", "raw_render", "a plain Channels consumer as Channels ships it"),
        ("ours_command", "chanx", "peer: a typed command, no HTML, vs chanx's typed echo"),
        ("ours_command", "raw_echo_nohop", "no rendering vs a plain echo, no hop"),
        ("ours_sync", "upstream", "def handler vs django-hypergen's consumer"),
        ("ours_async", "upstream", "async handler vs django-hypergen's consumer"),
        ("ours_async", "ours_async_noreplay", "delivery guarantees on (frame ids, acks) vs off, goal >= 0.9"),
        ("raw_render_nohop", "raw_echo_nohop", "what rendering costs a plain consumer"),
        ("raw_echo_nohop", "floor", "Channels + server vs the websockets library"),
    ],
    "fanout": [
        ("ours_async", "raw_group_send_nohop", "fair: group_send, no hop"),
        ("ours_async", "raw_group_send", "group_send as Channels ships it"),
        ("ours_async", "chanx", "peer: chanx's broadcast_message"),
        ("ours_async", "floor", "websockets.broadcast(), goal >= 0.5"),
        ("ours_async", "raw_local_send", "vs daphne's ceiling: direct sends to local sockets, no layer"),
        ("raw_local_send", "floor", "daphne's ceiling vs websockets.broadcast()"),
        ("ours_async", "ours_async_noreplay", "replay window and positions on vs off, goal >= 0.9"),
        ("ours_sync", "upstream", "def handler vs django-hypergen's consumer"),
        ("ours_presence", "ours_async", "presence on vs off"),
    ],
    "connect": [
        ("ours_presence", "ours_async", "presence on vs off"),
        ("ours_async", "raw_group_send_nohop", "fair: a plain consumer's group_add at connect"),
    ],
    "memory": [
        ("ours_async", "raw_echo", "vs a plain Channels consumer"),
        ("ours_async", "chanx", "peer"),
        ("ours_async", "upstream", "vs django-hypergen's consumer"),
    ],
}


def family(key: str) -> str:
    return key.split("/")[0]


def paired(scenario: dict, ours: str, base: str) -> list[float]:
    """ours / base within each repetition both completed."""
    if ours not in scenario or base not in scenario:
        return []
    a, b = scenario[ours]["by_rep"], scenario[base]["by_rep"]
    return [a[rep] / b[rep] for rep in sorted(a) if rep in b and b[rep]]


def ratio_cell(ratios: list[float]) -> str:
    if not ratios:
        return "-"
    median = f"{statistics.median(ratios):.2f}"
    return median if len(ratios) == 1 else f"{median} ({min(ratios):.2f}-{max(ratios):.2f})"


def number(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def endpoints_of(result: dict, fam: str) -> list[str]:
    seen: list[str] = []
    for key, scenario in result["scenarios"].items():
        if family(key) == fam:
            seen += [e for e in scenario if e not in seen]
    return seen


def keys_of(result: dict, fam: str) -> list[str]:
    return [key for key in result["scenarios"] if family(key) == fam]


def headline_rows(result: dict, fam: str) -> tuple[list[str], list[list[str]]]:
    endpoints = endpoints_of(result, fam)
    rows = []
    for key in keys_of(result, fam):
        scenario = result["scenarios"][key]
        rows.append([key] + [number(scenario[e][HEADLINE[fam]]) if e in scenario else "-" for e in endpoints])
    return ["scenario", *endpoints], rows


def ratio_rows(result: dict, fam: str) -> tuple[list[str], list[list[str]]]:
    pairs = PAIRS[fam]
    rows = [
        [key] + [ratio_cell(paired(result["scenarios"][key], ours, base)) for ours, base, _ in pairs]
        for key in keys_of(result, fam)
    ]
    return ["scenario", *[f"{ours} / {base}" for ours, base, _ in pairs]], rows


def latency_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    keys = [key for key in keys_of(result, "roundtrip") if "/50conn/" in key]
    endpoints = endpoints_of(result, "roundtrip")
    rows = [
        [e]
        + [
            f"{result['scenarios'][k][e]['p50_ms']:.1f} / {result['scenarios'][k][e]['p99_ms']:.1f}"
            if e in result["scenarios"][k]
            else "-"
            for k in keys
        ]
        for e in endpoints
    ]
    return ["endpoint", *[k.split("/")[-1] for k in keys]], rows


def verdicts(result: dict) -> list[str]:
    """One plain sentence per pair of ours: where it is behind (named), ahead, or level within 5 %."""
    lines = []
    for fam, pairs in PAIRS.items():
        for ours, base, why in pairs:
            if not ours.startswith("ours"):
                continue
            medians = {
                key: statistics.median(r)
                for key in keys_of(result, fam)
                if (r := paired(result["scenarios"][key], ours, base))
            }
            if not medians:
                continue
            sign = 1 if fam != "memory" else -1  # for memory, less is better
            behind = {k: m for k, m in medians.items() if sign * (m - 1) < -0.05}
            ahead = [k for k, m in medians.items() if sign * (m - 1) > 0.05]
            low, high = min(medians.values()), max(medians.values())
            span = f"{low:.2f}" if len(medians) == 1 else f"{low:.2f} to {high:.2f}"
            words = [f"behind in {', '.join(f'{k} ({m:.2f})' for k, m in behind.items())}"] if behind else []
            if ahead:
                words.append(f"ahead in {len(ahead)} of {len(medians)} scenarios")
            if len(behind) + len(ahead) < len(medians):
                words.append(f"level in {len(medians) - len(behind) - len(ahead)}")
            lines.append(f"``{ours} / {base}`` ({UNIT[fam]}; {why}): {span}; {'; '.join(words)}.")
    return lines


def rst_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return lines + [""]


def rst(result: dict) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in result.get("versions", {}).items())
    reps = result.get("repetitions", {})
    kind = (
        (
            "A quick run (one repetition, so no ranges; a smoke test, its ratios move by 20 % or more between "
            "runs on a shared machine)"
        )
        if result["quick"]
        else "A full run"
    )
    took = f"{result['seconds']:.0f} s" if result["seconds"] < 120 else f"{result['seconds'] / 60:.0f} minutes"
    out = [
        f"{kind} on {result.get('date', '?')}, {took}: {result['machine']['cpus']} "
        f"CPUs, {result['machine']['platform']}, Python {result['machine']['python']}; {versions}. "
        f"Repetitions: {reps.get('roundtrip', '?')} for round trips and memory, {reps.get('fanout', '?')} for "
        "fan-out. Ratios are paired: taken within each repetition, then the median (and the range over "
        "repetitions) is shown; above 1 means ours is faster (for memory: uses more).",
        "",
        "Where hypergen-consumers stands, pair by pair (within 5 % counts as level):",
        "",
        *[f"- {line}" for line in verdicts(result)],
        "",
    ]
    failures = result.get("failures") or []
    if failures:
        out += ["Failures in this run (not hidden, not retried):", "", *[f"- ``{f}``" for f in failures], ""]
    for fam, title in [
        ("roundtrip", "Round trip"),
        ("fanout", "Fan-out"),
        ("connect", "Connect burst"),
        ("memory", "Memory"),
    ]:
        if not keys_of(result, fam):
            continue
        out += [f"Paired ratios: {title.lower()}", "~" * len(f"Paired ratios: {title.lower()}"), ""]
        out += rst_table(*ratio_rows(result, fam))
        out += [f"{title}: {UNIT[fam]}, median", "~" * len(f"{title}: {UNIT[fam]}, median"), ""]
        out += rst_table(*headline_rows(result, fam))
    if keys_of(result, "roundtrip"):
        out += ["Latency at 50 connections, p50 / p99 ms", "~" * 39, ""]
        out += rst_table(*latency_rows(result))
    if "inprocess/steps" in result["scenarios"]:
        f = result["scenarios"]["inprocess/steps"]["ours_async"]
        out += [
            f"In process, one message of ``ours_async`` costs {f['decode_us']:.1f} µs to decode, "
            f"{f['validate_us']:.1f} µs to validate (the compiled pydantic validator), "
            f"{f['rendering_state_us']:.1f} µs to set up and collect hypergen's rendering state, "
            f"{f['template_us']:.1f} µs to render the template and {f['encode_us']:.1f} µs to encode; "
            f"``raw_render``'s ``hypergen()`` call and encoding cost {f['raw_render_us']:.1f} µs.",
            "",
        ]
    return "\n".join(out)


def text_tables(result: dict) -> str:
    """The same tables, for the terminal."""
    blocks = []
    for fam in ("roundtrip", "fanout", "connect", "memory"):
        for header, rows in (headline_rows(result, fam), ratio_rows(result, fam)):
            if not rows:
                continue
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            blocks.append("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [header, *rows]))
    if keys_of(result, "roundtrip"):
        header, rows = latency_rows(result)
        blocks.append("\n".join("  ".join(c.ljust(18) for c in r) for r in [header, *rows]))
    return "\n\n".join(blocks)


def write_docs(result: dict) -> None:
    page = DOCS.read_text()
    if START not in page or END not in page:
        raise SystemExit(f"{DOCS} lacks the {START!r} and {END!r} comments that mark where results go.")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{START}\n\n{rst(result)}\n{END}{tail}")


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH / "results" / "latest.json"
    write_docs(json.loads(path.read_text()))
    print(f"written {DOCS} from {path}")
