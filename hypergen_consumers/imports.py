"""``from hypergen_consumers.imports import *``: everything of hypergen.imports plus this package.

This package's names win where both define one (notably ``group_send``, which here takes
a handler name and arguments instead of a raw Channels event).
"""

import hypergen.imports as _hypergen_imports

import hypergen_consumers as _hypergen_consumers

_hypergen_names = [name for name in vars(_hypergen_imports) if not name.startswith("_")]
globals().update({name: getattr(_hypergen_imports, name) for name in _hypergen_names})
globals().update({name: getattr(_hypergen_consumers, name) for name in _hypergen_consumers.__all__})

__all__ = sorted(set(_hypergen_names) | set(_hypergen_consumers.__all__))  # pyright: ignore[reportUnsupportedDunderAll]
