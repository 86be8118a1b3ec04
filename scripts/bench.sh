#!/usr/bin/env bash
# Install what the benchmark needs and run it: bash scripts/bench.sh [--quick]
set -euo pipefail
command -v redis-server >/dev/null 2>&1 || {
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
}
source "$(dirname "$0")/_env.sh"
"$VENV_PYTHON" -m pip install --quiet -e ".[bench]"
exec "$VENV_PYTHON" bench/run.py "$@"
