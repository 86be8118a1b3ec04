# Shared by scripts/example.sh and scripts/test.sh: a project virtualenv in .venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
VENV_PYTHON="$PWD/.venv/bin/python"
"$VENV_PYTHON" -m pip install --quiet --upgrade pip
