#!/usr/bin/env bash
# Install everything the tests need and run the whole suite. Extra arguments go to pytest.
# System packages (Debian's chromium and redis-server) are installed when missing.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
source "$(dirname "$0")/_env.sh"
"$VENV_PYTHON" -m pip install --quiet -e ".[dev]"
# Formatting and lint first (a second): `.venv/bin/ruff format . && .venv/bin/ruff check --fix .` fixes most.
"$VENV_PYTHON" -m ruff format --check --quiet . || { echo "ruff: files above need formatting: .venv/bin/ruff format ." >&2; exit 1; }
"$VENV_PYTHON" -m ruff check --quiet .
exec "$VENV_PYTHON" -m pytest "$@"
