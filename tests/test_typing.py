"""The package is clean under mypy --strict and pyright, and so is a user's consumer module."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER_MODULE = "tests/typing_samples/user_consumers.py"


def check(*command: str) -> str:
    """Run a checker module with this interpreter (pyright is told to use it too)."""
    if command[0] == "pyright":
        command = ("pyright", "--pythonpath", sys.executable, *command[1:])
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_package_passes_mypy_strict():
    assert "Success: no issues found" in check("mypy", "--strict", "hypergen_consumers")


def test_the_package_passes_pyright():
    assert "0 errors" in check("pyright", "hypergen_consumers")


@pytest.mark.parametrize(
    "checker", [["mypy", "--strict", "--warn-unused-ignores"], ["pyright"]], ids=["mypy", "pyright"]
)
def test_a_users_consumer_module_type_checks(checker):
    """reverse() is a str, @consumer gives a consumer class, @handler keeps each signature."""
    check(*checker, USER_MODULE)


def test_a_wrong_assertion_in_the_user_module_fails_the_check(tmp_path):
    """The check above can fail: the same module with a wrong type asserted is rejected."""
    wrong = (
        (ROOT / USER_MODULE)
        .read_text()
        .replace(
            'assert_type(ChatRoom.reverse(room_name="vip"), str)', 'assert_type(ChatRoom.reverse(room_name="vip"), int)'
        )
    )
    module = ROOT / "tests/typing_samples/wrong_user_consumers.py"
    module.write_text(wrong)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", str(module.relative_to(ROOT))],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        module.unlink()
    assert result.returncode == 1
    assert 'Expression is of type "str", not "int"' in result.stdout
