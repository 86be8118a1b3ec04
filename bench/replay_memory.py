"""Redis memory per active group for the replay window, and trimming by length and by age.

    python bench/replay_memory.py [--groups 200] [--frames 200] [--frame-bytes 1024]

Starts its own redis-server, fills ``--groups`` group windows with ``--frames`` frames of
``--frame-bytes`` each through ``RedisWindow`` (what channels-redis users get), and prints
Redis's ``used_memory`` growth per group. Then checks that the window is trimmed by length
(``replay_frames``) and by age (``replay_seconds``), and that a silent group's stream expires.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")

from processes import redis_server  # noqa: E402


async def measure(url: str, groups: int, frames: int, frame_bytes: int) -> dict:
    from redis import asyncio as aioredis

    from hypergen_consumers.delivery.replay import RedisWindow
    from hypergen_consumers.layers.redis_client import LoopClients

    window = RedisWindow(LoopClients({"address": url}))
    KEY_PREFIX = window._keys  # noqa: N806  # <layer prefix>:hc:replay:
    client = aioredis.Redis.from_url(url)
    text = json.dumps([["hypergen.append", "log", "x" * frame_bytes]])
    message = {"type": "hypergen_consumers.frame", "text": text}
    before = (await client.info("memory"))["used_memory"]
    for group in range(groups):
        for _ in range(frames):
            await window.append(f"g{group}", message, frames, 120)
    after = (await client.info("memory"))["used_memory"]
    lengths = [await client.xlen(f"{KEY_PREFIX}g{group}") for group in range(groups)]

    # By length: twice the window in, about one window kept ("~": whole stream nodes).
    for _ in range(2 * frames):
        await window.append("long", message, frames, 120)
    by_length = await client.xlen(KEY_PREFIX + "long")
    # By age: frames older than replay_seconds go at the next append, however few there are.
    for _ in range(150):
        await window.append("old", message, frames, 1)
    time.sleep(1.2)
    await window.append("old", message, frames, 1)
    by_age = await client.xlen(KEY_PREFIX + "old")
    ttl_ms = await client.pttl(KEY_PREFIX + "old")
    await client.aclose()
    return {
        "groups": groups,
        "frames_per_group": frames,
        "frame_bytes": frame_bytes,
        "encoded_frame_bytes": len(json.dumps(message)),
        "bytes_per_group": (after - before) / groups,
        "kept_per_group": sum(lengths) / groups,
        "kept_after_2x_window": by_length,
        "kept_after_age_trim": by_age,
        "silent_stream_expires_in_ms": ttl_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--frame-bytes", type=int, default=1024)
    config = parser.parse_args()
    with redis_server() as url:
        result = asyncio.run(measure(url, config.groups, config.frames, config.frame_bytes))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
