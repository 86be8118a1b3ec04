"""The version matrix: the non-browser suite on the oldest and newest supported versions.

``bash scripts/test.sh`` runs the whole suite (browser tests too) on the main combination:
Python 3.11 with the newest Django, Channels and everything else. ``nox`` (run by ``.ci/run``
after it) runs the rest of the suite on the combinations below, each in a fresh virtualenv
with the newest pydantic, django-hypergen and pyrsistent, except the first, which installs
every declared lower bound (pydantic 2.4.1, pyrsistent 0.18.0, asgiref 3.7.2). Interpreters
come from pyenv (``~/.pyenv/versions/3.X.*``) or ``python3.X`` on ``PATH``; nothing is
downloaded.

Supported ranges (setup.cfg): Python 3.10-3.13, Django 4.2 LTS to 6.x (6.x needs Python
3.12+; Django 4.2 does not support Python 3.13), Channels 4.2 to 4.3 (why not 4.0 and
4.1: setup.cfg) with daphne 4.0 to 4.2. A session takes five to ten minutes on a
busy 2-core machine (``scripts/test.sh``'s full run about five) and ``.ci/run`` must stay
under 30 (with a fourth session it took 34), so instead of all 18 corners the set below, with
the main combination, runs every Python, every Django series (4.2.0 itself included) and both
Channels extremes, each extreme on an old and a new Python.
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.default_venv_backend = "venv"
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
    """The suite without the browser tests, on one combination of versions."""
    session.install("-e", ".[dev]", django, *channels, *others)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    # The load test keeps its 1000 connections but sends a fifth of the messages here: its full
    # 50 000 run is the main combination's (scripts/test.sh), and CI must stay under 30 minutes.
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not browser",
        *session.posargs,
        env={"LOAD_MESSAGES_EACH": "10"},
    )
