"""Lintas: the event integration platform for the OPD applications of a Pemda.

The core shared by every component: settings, errors, Kafka and PostgreSQL client
factories, migrations and the ``lintas`` CLI. Components live in ``lintas.producers``,
``lintas.streams``, ``lintas.consumers`` and ``lintas.schemas``.
"""

from lintas.exceptions import ConfigurationError, LintasError
from lintas.settings import Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    # errors
    "ConfigurationError",
    "LintasError",
    # settings
    "Settings",
    "load_settings",
    "__version__",
]
