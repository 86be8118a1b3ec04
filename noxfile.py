"""The version matrix: most of the suite on the oldest and newest supported versions.

``bash scripts/test.sh`` runs the whole suite (browser and soak tests too) on the main
combination: Python 3.11 with the newest Django, Channels and everything else. ``nox`` (run by
``.ci/run`` after it) runs the suite again on the combinations below, each in a fresh virtualenv
with the newest pydantic, django-hypergen and pyrsistent, except the first, which installs
every declared lower bound (pydantic 2.4.1, pyrsistent 0.18.0, asgiref 3.7.2); channels-redis
and redis-py are whatever pip picks for the session's Python and Channels. Interpreters come
from pyenv (``~/.pyenv/versions/3.X.*``) or ``python3.X`` on ``PATH``; nothing is downloaded.

Supported ranges (setup.cfg): Python 3.10-3.13, Django 4.2 LTS to 6.x (6.x needs Python
3.12+; Django 4.2 does not support Python 3.13), Channels 4.2 to 4.3 (why not 4.0 and
4.1: setup.cfg) with daphne 4.0 to 4.2. ``.ci/run`` must stay under 30 minutes on this 2-core
machine (with a fourth session it took 34), so instead of all 18 corners the set below, with
the main combination, runs every Python, every Django series (4.2.0 itself included) and both
Channels extremes, each extreme on an old and a new Python. Measured here: ``scripts/test.sh``
about 12 minutes; a session 6 1/2 (its tests 6, its install 10 to 20 s with uv), 8 1/2 before
the soak tests were left out, the long ones shortened and uv installed.

Each virtualenv is made and filled by uv when nox finds it (the ``[dev]`` extra installs it;
pip took 35 to 45 s a session here, uv 10 to 20 and resolves the same versions), with pip when
not; either way pip is installed too (tests/test_packaging.py builds a wheel with it) and the
bytecode is compiled at install.

What a session leaves out or shortens, and why (all of it runs in ``scripts/test.sh``):

* ``browser`` tests: client.js in chromium, the same script and browser in every session.
* ``soak`` tests (pyproject.toml's marker): long runs at scale or over time whose subject the
  matrix does not vary, each with a shorter test of the same path that stays in it.

  - ``test_scale_defaults.py`` (two tests, 30 s a session): 1,000 connections on
    channels-redis's and redis-py's own defaults, which the matrix does not set out to vary.
    Here: the default that once broke it, the blocking read against redis-py's socket timeout,
    read from each session's own versions (test_compat.py), and the outage and recovery paths
    at a smaller scale (test_redis.py, test_delivery_outage.py).
  - ``test_a_redis_restart_at_a_thousand_presence_connections_restores_every_entry_without_spinning``
    (test_attack19.py, 20 s): 1,000 presence rooms re-added after Redis restarts empty. Here:
    the re-adding with fewer rooms (test_presence_redis.py's restart and lost-keys tests) and
    the no-spin check (test_a_process_whose_pages_all_left_does_not_spin_while_redis_is_down).
  - ``test_quiet_rooms_cost_redis_a_few_commands_per_heartbeat_however_many_there_are``
    (test_presence_redis.py, 11 s): Redis commands counted over 5 s of quiet in 200 rooms, a
    count of this package's heartbeat whatever the versions. Here:
    test_heartbeats_are_one_write_per_process_not_per_connection counts its writes.

* ``LOAD_MESSAGES_EACH=4``: tests/test_load.py keeps its 1,000 connections and its mix of
  broadcast and sender-only frames, 4,000 messages instead of 50,000 (12 s instead of 21 with
  10 each): nothing lost, duplicated or reordered on each version; its speed is asserted nowhere.
* ``DELIVERY_EXAMPLES=40``: tests/test_delivery_protocol.py's property test plays 40 random
  scripts instead of 150 (each a third of a second, mostly waiting for frames that must not
  come); 40 still take every kind of step (cut, duplicate, overlap, ...) dozens of times.
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.default_venv_backend = "uv|venv"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.sessions = ["matrix"]

DJANGO = {
    "lowest": "django==4.2",  # The exact lower bound (Python 3.10 only: 4.2.0 predates 3.12).
    "4.2": "django~=4.2.0",
    "5.2": "django~=5.2.0",
    "newest": "django>=6.0,<7",
}
CHANNELS = {"lowest": ["channels==4.2.0", "daphne==4.0.0"], "newest": ["channels>=4.3,<5", "daphne>=4.2"]}
#: The lower bounds of the other dependencies (setup.cfg), installed with the lowest Django and
#: Channels so that every declared lower bound is tested in one session. django-hypergen's
#: lower bound is its newest release (1.5.6), which every session installs.
OTHERS = {"lowest": ["pydantic==2.4.1", "pyrsistent==0.18.0", "asgiref==3.7.2"], "newest": []}

#: (python, django, channels). With the main combination (3.11, Django 5.2, newest Channels:
#: scripts/test.sh's full run) every Python, Django series and Channels extreme is run.
COMBINATIONS = [
    ("3.10", "lowest", "lowest", "lowest"),
    ("3.12", "4.2", "newest", "newest"),
    ("3.13", "newest", "lowest", "newest"),
]


def interpreter(version: str) -> str:
    """pyenv's newest 3.X, else whatever ``python3.X`` is on PATH."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    return found[-1] if found else shutil.which(f"python{version}") or f"python{version}"


@nox.session
@nox.parametrize(
    "python,django,channels,others",
    [
        (interpreter(python), DJANGO[django], CHANNELS[channels], OTHERS[others])
        for python, django, channels, others in COMBINATIONS
    ],
    ids=[
        f"py{python}-django_{django}-channels_{channels}" + ("-others_lowest" if others == "lowest" else "")
        for python, django, channels, others in COMBINATIONS
    ],
)
def matrix(session: nox.Session, django: str, channels: list[str], others: list[str]) -> None:
    """The suite without the browser and soak tests, on one combination of versions."""
    # Compiled at install: with PYTHONDONTWRITEBYTECODE set (CI's machine sets it) every daphne
    # a test starts would otherwise compile Django, Twisted and the rest again.
    session.install("-e", ".[dev]", "pip", django, *channels, *others, env={"UV_COMPILE_BYTECODE": "1"})
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    # What the module docstring says why for: no browser or soak tests, a shorter load test and
    # fewer random delivery scripts (scripts/test.sh runs all of it in full).
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not browser and not soak",
        *session.posargs,
        env={"LOAD_MESSAGES_EACH": "4", "DELIVERY_EXAMPLES": "40"},
    )
