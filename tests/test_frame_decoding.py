"""Client frames are decoded with bounded rules (frame_decoding.py): the crafted frames a review found."""

import datetime
import json
from collections import deque

import pytest

from hypergen_consumers.errors import INVALID_FRAME, Rejected
from hypergen_consumers.wire.frame_decoding import MAX_DEPTH, MAX_RANGE_LENGTH, decode_frame, nesting_depth


def tagged(kind, value):
    return json.dumps({"_": [kind, value]})


@pytest.mark.parametrize(
    "text, expected",
    [
        (tagged("float", 1.5), 1.5),
        (tagged("float", 3), 3.0),
        (tagged("date", "2024-02-29"), datetime.date(2024, 2, 29)),
        (tagged("datetime", "2024-02-29T10:00:00"), datetime.datetime(2024, 2, 29, 10)),
        (tagged("time", "10:30"), datetime.time(10, 30)),
        (tagged("tuple", [1, "a"]), (1, "a")),
        (tagged("set", [1, 1, 2]), {1, 2}),
        (tagged("frozenset", [1]), frozenset([1])),
        (tagged("deque", [1, 2]), deque([1, 2])),
        (tagged("range", [0, 10, 2]), range(0, 10, 2)),
        (json.dumps({"_": "not a tag"}), {"_": "not a tag"}),
        ('{"args": [{"_": ["set", [{"_": ["tuple", [1, 2]]}]]}], "meta": {}}', {"args": [{(1, 2)}], "meta": {}}),
    ],
    ids=lambda value: str(value)[:40],
)
def test_the_tags_a_hypergen_page_sends_are_revived(text, expected):
    assert decode_frame(text) == expected


@pytest.mark.parametrize(
    "text, fragment",
    [
        (tagged("range", [0, 30_000_000]), f"at most {MAX_RANGE_LENGTH}"),
        (tagged("range", [0, 10**30]), f"at most {MAX_RANGE_LENGTH}"),
        (tagged("range", [0, 10, 0]), "Bad range"),
        (tagged("range", "0-9"), "[start, stop, step]"),
        (tagged("float", "nan"), "takes a number"),
        (tagged("float", 10**400), "out of range"),
        (tagged("date", "2020-99-99"), "not a valid date"),
        (tagged("date", "x" * 10_000), "ISO 8601"),
        (tagged("datetime", "yesterday"), "not a valid datetime"),
        (tagged("set", [[1]]), "Cannot build a set"),
        (tagged("tuple", "abc"), "takes a list"),
        (tagged("EVENT", None), "Unknown tagged value 'EVENT'"),
        (tagged("nonsense", 1), "Unknown tagged value"),
        ('{"args": [NaN], "meta": {}}', "NaN is not allowed"),
        ('{"args": [Infinity], "meta": {}}', "Infinity is not allowed"),
        ('{"args": [-Infinity], "meta": {}}', "-Infinity is not allowed"),
        ('{"args": [1e999], "meta": {}}', "out of range"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"more than {MAX_DEPTH} deep"),
        ("[" * 100_000, "more than"),
        ("not json", "not valid JSON"),
        ('{"args": [' + "9" * 5000 + "]}", "not valid JSON"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_crafted_frames_are_refused_with_invalid_frame(text, fragment):
    with pytest.raises(Rejected) as refused:
        decode_frame(text)
    assert refused.value.code == INVALID_FRAME
    assert fragment in refused.value.message
    assert len(refused.value.message) <= 300


def test_nesting_is_measured_outside_strings_and_up_to_the_limit_is_accepted():
    assert nesting_depth('{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert nesting_depth(r'["\"[[[["]') == 1
    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert nesting_depth(deepest) == MAX_DEPTH
    assert decode_frame(deepest) == json.loads(deepest)


def test_the_range_budget_is_one_per_frame_not_one_per_process():
    """Each thread decodes with one decoder; the ranges' budget is the frame's own: a frame
    spending most of it leaves the next frame the whole of it, a refused frame too."""
    most = MAX_RANGE_LENGTH * 3 // 5
    frame = json.dumps({"args": [{"_": ["range", [0, most]]}], "meta": {}})
    twice = json.dumps({"args": [{"_": ["range", [0, most]]}, {"_": ["range", [0, most]]}], "meta": {}})
    assert decode_frame(frame)["args"] == [range(most)]
    assert decode_frame(frame)["args"] == [range(most)]
    with pytest.raises(Rejected, match=f"at most {MAX_RANGE_LENGTH}"):
        decode_frame(twice)
    assert decode_frame(frame)["args"] == [range(most)]
