from django.apps import AppConfig


class HypergenConsumersConfig(AppConfig):
    """Django app: ships the client script as a static file and patches hypergen's context."""

    name = "hypergen_consumers"
    verbose_name = "Hypergen consumers"

    def ready(self) -> None:
        from . import _context, checks  # noqa: F401 - registers the system checks

        _context.install()
