#!/usr/bin/env bash
# Install the package and start the example site on http://127.0.0.1:8000/
# (daphne's runserver, in-memory channel layer: no Redis needed; set REDIS_URL to use Redis).
source "$(dirname "$0")/_env.sh"
"$VENV_PYTHON" -m pip install --quiet -e ".[redis]"
cd example
"$VENV_PYTHON" manage.py migrate --noinput -v 0
echo "Serving the example on http://127.0.0.1:${PORT:-8000}/ (Ctrl-C stops it)"
exec "$VENV_PYTHON" manage.py runserver "127.0.0.1:${PORT:-8000}"
