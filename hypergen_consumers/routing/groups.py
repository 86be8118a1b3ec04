"""Channels group names derived from consumer classes and URL kwargs.

Channels accepts group names of ASCII letters, digits, ``-``, ``_`` and ``.``, shorter
than 100 characters. URL kwargs may hold anything (unicode, spaces, 300 characters), so
names are built readable where possible and made safe and distinct with a hash where not.
The scheme is deterministic: every process (and every machine sharing Redis) computes
the same name for the same URL.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = [
    "default_group_name",
    "safe_group_name",
    "is_valid_group_name",
    "is_reserved_group_name",
    "RESERVED_PREFIXES",
    "digest",
]

MAX_GROUP_NAME_LENGTH = 99  # Channels requires len(name) < 100.
_VALID_GROUP_NAME = re.compile(r"^[a-zA-Z\d\-_.]+$")
_VALUE_IS_CLEAN = re.compile(r"^[a-zA-Z\d_-]+$")
_LABEL_IS_CLEAN = re.compile(r"^[a-zA-Z\d_.]+$")
_NOT_SLUG_CHARACTER = re.compile(r"[^a-zA-Z\d_-]+")
_NOT_LABEL_CHARACTER = re.compile(r"[^a-zA-Z\d_.]+")
_HASH_LENGTH = 16
PREFIX = "hc."
#: Every name the package derives itself starts with one of these: the default rule's
#: ``hc.<module>.<Class>...`` and internal groups (``hc-...``). A custom rule may return
#: anything else, but never one of these, so no URL value can reach a consumer's group.
RESERVED_PREFIXES = (PREFIX, "hc-")
#: Prefix of the valid name made from an invalid custom name (outside the reserved namespace).
CUSTOM_PREFIX = "custom."


def is_valid_group_name(name: object) -> bool:
    """True when Channels accepts ``name`` as a group name."""
    return isinstance(name, str) and len(name) <= MAX_GROUP_NAME_LENGTH and _VALID_GROUP_NAME.match(name) is not None


def _slug(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG_CHARACTER.sub("-", ascii_text).strip("-")


def _digest(canonical: str) -> str:
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=_HASH_LENGTH // 2).hexdigest()


def digest(text: str) -> str:
    """A short, stable hash of ``text`` that is valid in a group name."""
    return _digest(text)


def _with_hash(readable: str, canonical: str) -> str:
    digest = _digest(canonical)
    room = MAX_GROUP_NAME_LENGTH - len(digest) - 1
    readable = readable[:room].rstrip("-_.")
    return f"{readable}.{digest}" if readable else digest


def default_group_name(label: str, url_kwargs: Mapping[str, Any]) -> str:
    """The group every connection to one URL of one consumer joins.

    ``label`` identifies the consumer class (``module.QualName``). The readable form is
    ``hc.<label>.<key>-<value>...``: label segments never contain ``-`` and every kwarg
    segment does, and clean values contain no ``.``, so the readable form alone is
    injective. Anything else (unsafe characters, too long) gets a hash of the exact
    label and kwargs appended, which keeps distinct URLs in distinct groups.
    """
    items = sorted((str(key), str(value)) for key, value in url_kwargs.items())
    clean = _LABEL_IS_CLEAN.match(label) is not None and all(_VALUE_IS_CLEAN.match(value) for _, value in items)
    if clean:
        readable = PREFIX + ".".join([label] + [f"{key}-{value}" for key, value in items])
        if len(readable) <= MAX_GROUP_NAME_LENGTH:
            return readable
    readable = PREFIX + ".".join(
        [_NOT_LABEL_CHARACTER.sub("_", label)] + [f"{key}-{_slug(value)}" for key, value in items]
    )
    canonical = json.dumps([label, items], ensure_ascii=False)
    return _with_hash(readable, canonical)


def is_reserved_group_name(name: str) -> bool:
    """True for names in the package's own namespace (the default rule's, internal groups)."""
    return name.startswith(RESERVED_PREFIXES)


def safe_group_name(name: str) -> str:
    """Return ``name`` if Channels accepts it, else a valid, distinct name derived from it.

    Used for names returned by a custom ``group_name`` callable, so users can return
    ``f"user-{user.email}"`` without learning Channels' rules. A made-up name starts with
    ``custom.``, outside the reserved namespace. Whether a valid name is reserved is
    checked by the caller (the consumer), which knows whom to blame.
    """
    if is_valid_group_name(name):
        return name
    return _with_hash(CUSTOM_PREFIX + _slug(str(name)), "custom:" + str(name))
