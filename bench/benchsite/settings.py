"""Settings for the benchmark site. BENCH_LAYER picks the channel layer: memory, redis, pubsub."""

import os
import sys

# bench/observability.py measures the cost of what a site observes: BENCH_OBSERVE=off runs as
# if prometheus_client were not installed, "metrics" with it, "dashboard" with the dashboard too.
_observe = os.environ.get("BENCH_OBSERVE", "metrics")
if _observe == "off":
    sys.modules["prometheus_client"] = None  # type: ignore[assignment]  # Importing it raises ImportError.

SECRET_KEY = "bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "hypergen",
    "hypergen_consumers",
    *(["hypergen_consumers.dashboard"] if _observe == "dashboard" else []),
]
MIDDLEWARE: list = []
ROOT_URLCONF = "benchsite.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

_layer = os.environ.get("BENCH_LAYER", "memory")
_redis = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
_backend = {
    "memory": "channels.layers.InMemoryChannelLayer",
    "redis": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}[_layer]
_config: dict = {"capacity": 10_000}
if _layer != "memory":
    # redis-py 8 caps a pool at 100 connections and fails the excess (docs/deployment.rst).
    _config["hosts"] = [{"address": _redis, "max_connections": 2000}]
if _layer == "pubsub":
    _config.pop("capacity")
if os.environ.get("BENCH_DEFAULTS"):  # bench/scale.py: what `pip install hypergen-consumers[redis]` gives.
    _config = {"hosts": [_redis]} if _layer != "memory" else {}
CHANNEL_LAYERS = {"default": {"BACKEND": _backend, "CONFIG": _config}}
