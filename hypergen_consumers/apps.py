from __future__ import annotations

from django.apps import AppConfig


class HypergenConsumersConfig(AppConfig):  # type: ignore[misc]  # Django ships no types.
    """Django app: ships the client script as a static file and applies the speed-ups in ``_compat``."""

    name = "hypergen_consumers"
    verbose_name = "Hypergen consumers"

    def ready(self) -> None:
        """Register the system checks; patch other libraries' internals now, not at import,
        each only if its shape checks out."""
        from hypergen_consumers import _compat
        from hypergen_consumers.auth import authority
        from hypergen_consumers.declaring import checks  # noqa: F401 - registers the system checks
        from hypergen_consumers.layers import pool_check  # noqa: F401 - registers its system check

        _compat.apply_all()
        authority.connect_signals()
