"""The settings model: one declaration, validated once, reloaded when a setting changes."""

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, conf, handler
from hypergen_consumers.testing import ConsumerClient

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^   \* - ``(HYPERGEN_CONSUMERS_\w+)``\n     - ``(.+)``\n     - (.+)$", re.M)


def test_the_docs_table_is_the_model():
    rows = ROW.findall((ROOT / "docs" / "api.rst").read_text())
    fields = conf.HypergenConsumersSettings.model_fields
    assert rows == [(conf.setting_name(name), repr(info.default), info.description) for name, info in fields.items()]


def test_every_setting_is_read_in_conf_only():
    readers = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "hypergen_consumers").rglob("*.py")
        if re.search(r"getattr\(settings, \"HYPERGEN_CONSUMERS_|settings\.HYPERGEN_CONSUMERS_", path.read_text())
    }
    assert readers == set()


def test_defaults_when_nothing_is_set():
    assert conf.current() == conf.HypergenConsumersSettings()
    assert conf.current().max_frame_bytes == 256 * 1024
    assert conf.current().handler_timeout == conf.DEFAULT_HANDLER_TIMEOUT


def test_a_change_is_read_again_and_undone():
    before = conf.current()
    with override_settings(HYPERGEN_CONSUMERS_MAX_FRAME_BYTES=100, HYPERGEN_CONSUMERS_RATE_LIMIT=0):
        assert conf.current().max_frame_bytes == 100
        assert conf.current().rate_limit is None  # 0 turns it off.
        assert "max_frame_bytes" in conf.current().model_fields_set
    assert conf.current() == before
    assert conf.current() is conf.current()  # Read once, kept.


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("WORKER_THREADS", 0, "HYPERGEN_CONSUMERS_WORKER_THREADS = 0 is not valid: Input should be greater than 0."),
        (
            "WORKER_THREADS",
            True,
            "HYPERGEN_CONSUMERS_WORKER_THREADS = True is not valid: Input should be a valid integer",
        ),
        ("LAYER_CONCURRENCY", 2.5, "HYPERGEN_CONSUMERS_LAYER_CONCURRENCY = 2.5 is not valid"),
        ("PRESENCE_THROTTLE", 0, "HYPERGEN_CONSUMERS_PRESENCE_THROTTLE = 0 is not valid"),
        ("LAYER_TIMEOUT", "soon", "HYPERGEN_CONSUMERS_LAYER_TIMEOUT = 'soon' is not valid"),
        ("RATE_LIMIT", -1, "HYPERGEN_CONSUMERS_RATE_LIMIT = -1 is not valid"),
    ],
    ids=["zero-threads", "bool-threads", "fractional-concurrency", "zero-throttle", "text-timeout", "negative-rate"],
)
def test_a_bad_value_names_the_setting_and_the_default(setting, value, message):
    with override_settings(**{f"HYPERGEN_CONSUMERS_{setting}": value}):
        with pytest.raises(ImproperlyConfigured, match=re.escape(message)) as raised:
            conf.current()
        field = setting.lower()
        assert f"remove it for the default, {conf.HypergenConsumersSettings.model_fields[field].default!r}." in str(
            raised.value
        )
    assert conf.current().worker_threads == 16  # Good again once the override is gone.


async def test_frames_read_no_django_setting(monkeypatch):
    loads = []
    real_load = conf._load
    monkeypatch.setattr(conf, "_load", lambda: loads.append(1) or real_load())

    class Counter(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        async def bump(self, request, n: int):
            command("bumped", n)

    async with ConsumerClient(Counter) as client, ConsumerClient(Counter) as other:
        await client.call("bump", 0)
        await other.receive()
        with override_settings(HYPERGEN_CONSUMERS_MAX_FRAME_BYTES=1000):  # The next frame reads it again...
            loads.clear()
            for n in range(20):
                assert await client.call("bump", n) == [["bumped", n]]
                assert await other.receive() == [["bumped", n]]
                await Counter.agroup_send("bump", n)
                await client.receive()
                await other.receive()
            assert loads == [1]  # ...once, for forty frames.
