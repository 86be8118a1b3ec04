"""Settings for the benchmark site. BENCH_LAYER picks the channel layer: memory, redis, pubsub."""

import os

SECRET_KEY = "bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "hypergen",
    "hypergen_consumers",
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
