"""Tessera's service: settings, database, REST API, services and the ``tessera`` CLI.

The backend never imports torch; commands that need the engine load it lazily.
"""

__version__ = "0.1.0"
