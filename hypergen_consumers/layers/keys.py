"""Names of what the package keeps in Redis: under the layer's prefix, no session key in them.

Two rules, each a promise to the site:

- **Every key under the channel layer's ``prefix``** (channels-redis ``CONFIG["prefix"]``,
  default ``"asgi"``), as channels-redis keeps its own: two sites sharing one Redis and
  differing by prefix never see each other's replay windows, frame-id claims, replies or
  presence. Keys are ``<prefix>:hc:<kind>:...``.
- **No session key in Redis**, neither in a key's name nor in a value: a page's socket is
  known there by a keyed digest (Django's ``salted_hmac``, keyed by ``SECRET_KEY``) of its
  consumer class, session key and socket id. Whoever reads Redis (``SCAN``, a dump, a replica)
  learns nothing that opens a session; every process of the site computes the same digest.
"""

from __future__ import annotations

from typing import Any

from django.utils.crypto import salted_hmac

__all__ = ["DEFAULT_LAYER_PREFIX", "layer_prefix", "key_prefix", "socket_digest"]

#: channels-redis's own default ``prefix``.
DEFAULT_LAYER_PREFIX = "asgi"
_SOCKET_SALT = "hypergen_consumers.keys.socket"  # As before the move to layers/: every version digests alike.


def layer_prefix(layer: Any) -> str:
    """The channel layer's ``prefix`` (both channels-redis layers keep it as ``.prefix``)."""
    prefix = getattr(layer, "prefix", None)
    return prefix if isinstance(prefix, str) and prefix else DEFAULT_LAYER_PREFIX


def key_prefix(prefix: str, kind: str) -> str:
    """Where the package's keys of ``kind`` (``"replay"``, ``"replies"``, ``"presence"``) live
    under the layer prefix ``prefix``: ``<prefix>:hc:<kind>:``."""
    return f"{prefix}:hc:{kind}:"


def socket_digest(consumer: str, session_key: str, socket_id: str) -> str:
    """What a page's socket is known by in the stores: a keyed digest, never the session key."""
    value = f"{consumer}\x00{session_key}\x00{socket_id}"
    digest: str = salted_hmac(_SOCKET_SALT, value, algorithm="sha256").hexdigest()
    return digest[:40]
