from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):  # type: ignore[misc]  # Django ships no types.
    """Installing the app turns on collecting and publishing in every process."""

    name = "hypergen_consumers.dashboard"
    label = "hypergen_consumers_dashboard"
    verbose_name = "Hypergen consumers dashboard"

    def ready(self) -> None:
        from hypergen_consumers.dashboard import collector

        collector.install()
