"""Garbage-collector switches for bench/profile_tails.py, read from the environment.

``BENCH_GC_LOG=PATH`` appends the duration of every full (generation 2) collection to PATH,
one number of milliseconds a line. ``BENCH_GC_FREEZE=1`` calls ``gc.freeze()`` once the site
is loaded, moving every object that exists at start-up out of the collector's reach.
"""

import gc
import os
import time


def apply() -> None:
    log = os.environ.get("BENCH_GC_LOG")
    if log:
        began = [0.0]

        def note_full_collections(phase: str, info: dict) -> None:
            if info["generation"] != 2:
                return
            if phase == "start":
                began[0] = time.perf_counter()
            else:
                with open(log, "a") as out:
                    out.write(f"{(time.perf_counter() - began[0]) * 1000:.2f}\n")

        gc.callbacks.append(note_full_collections)
    if os.environ.get("BENCH_GC_FREEZE"):
        gc.collect()
        gc.freeze()
