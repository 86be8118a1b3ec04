"""Settings for the test suite: in-memory channel layer, SQLite, hypergen's middleware."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "hypergen-consumers-tests"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost", "example.com"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "hypergen",
    "hypergen_consumers",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hypergen.context.context_middleware",
]

ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels.layers.InMemoryChannelLayer",
        "CONFIG": {"capacity": int(os.environ.get("HYPERGEN_TEST_CAPACITY", 100))},
    }
}

# The Redis tests run daphne and helper scripts with these set (see tests/test_redis.py).
if os.environ.get("TEST_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": os.environ.get("TEST_REDIS_LAYER", "channels_redis.core.RedisChannelLayer"),
            # Only the host: redis-py's and channels-redis's own defaults (pool size, timeouts,
            # capacity), which is what a user gets; no test tunes one to hide its problem.
            "CONFIG": {"hosts": [os.environ["TEST_REDIS_URL"]]},
        }
    }

# tests/test_hostile_third_pass.py: two sites on one Redis differ by prefix; a shorter recheck.
if os.environ.get("TEST_REDIS_PREFIX"):
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = os.environ["TEST_REDIS_PREFIX"]
if os.environ.get("TEST_AUTH_RECHECK"):
    HYPERGEN_CONSUMERS_AUTH_RECHECK_SECONDS = float(os.environ["TEST_AUTH_RECHECK"])

# The presence tests shorten heartbeats so a killed process drops out in seconds, not 25 s.
HYPERGEN_CONSUMERS_PRESENCE_HEARTBEAT = float(os.environ.get("TEST_PRESENCE_HEARTBEAT", 5))
HYPERGEN_CONSUMERS_PRESENCE_EXPIRY = float(os.environ.get("TEST_PRESENCE_EXPIRY", 15))

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "test-db.sqlite3"}}
# Wire tests that need users and sessions shared by several processes set their own file.
if os.environ.get("TEST_DB_PATH"):
    DATABASES["default"]["NAME"] = os.environ["TEST_DB_PATH"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "/static/"
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"hypergen_consumers": {"handlers": ["console"], "level": "WARNING"}},
}
