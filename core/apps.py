from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared pieces every app may import: errors, DB helpers, API errors, request helpers.

    An app only so that its management command (ensure_database) is found; it has no models.
    """

    name = "core"
    verbose_name = "Core"
