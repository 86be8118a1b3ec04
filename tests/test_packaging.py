"""The wheel a user installs: built without setuptools' warnings, with the script and py.typed.

setuptools warned "Package 'hypergen_consumers.static.hypergen_consumers' is absent from the
`packages` configuration" (and announced it would stop shipping such folders): the client
script would one day be missing from the wheel, and every page with it.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_builds_without_warnings_and_ships_the_client_script(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ["setup.cfg", "pyproject.toml", "README.md"]:
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "hypergen_consumers", source / "hypergen_consumers", ignore=shutil.ignore_patterns("__pycache__")
    )
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "is absent from the `packages` configuration" not in output, output[-3000:]
    [wheel] = (tmp_path / "dist").glob("hypergen_consumers-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hypergen_consumers/static/hypergen_consumers/client.js" in names
    assert "hypergen_consumers/py.typed" in names
    assert not [name for name in names if "__pycache__" in name or name.startswith("tests/")]


def extras():
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    section = config["options.extras_require"]
    return {
        name: {line.split(">")[0].split("=")[0].split("[")[0] for line in section[name].split()} for name in section
    }


def test_the_test_extra_is_what_a_users_own_tests_need_and_dev_is_the_suites():
    found = extras()
    assert found["test"] == {"pytest", "pytest-asyncio", "pytest-django"}  # consumer_client, ConsumerClient.
    assert found["test"] < found["dev"]
    assert {"channels-redis", "playwright", "hypothesis", "mypy", "pyright", "sphinx", "websockets"} <= found["dev"]
    assert '-e ".[dev]"' in (ROOT / "scripts" / "test.sh").read_text()
    assert '"-e", ".[dev]"' in (ROOT / "noxfile.py").read_text()


def test_no_file_points_outside_the_repository():
    """The docs carry the contract: nothing refers to a document beside the repository."""
    import re

    outside = re.compile(r"\.\./shared|\bSP" + r"EC\b")  # Spelled apart, so this file does not match.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or path.suffix in {".png", ".whl"}:
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}: {match[0]}" for match in outside.finditer(text)]
    assert offenders == []
