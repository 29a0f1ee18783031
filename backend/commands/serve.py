"""``tessera serve``: upgrade the database, then run the API with uvicorn.

The ``--demo`` flag is added by the ``demo`` package (``demo/command.py``), which wraps this
command: the backend knows nothing of the demo or the worker.
"""

from __future__ import annotations

import click

from core.migrate import upgrade_database
from core.settings import DEFAULT_SECRET_KEY, Settings, get_settings


def checked_settings() -> Settings:
    """The settings to serve with, after refusing a production start with unsafe values
    (a usage error naming each) and upgrading the database schema."""
    settings = get_settings()
    problems = settings.production_problems()
    if problems:
        raise click.UsageError("refusing to start in production: " + "; ".join(problems))
    if settings.secret_key == DEFAULT_SECRET_KEY:
        click.echo(
            "warning: TESSERA_SECRET_KEY is the default; set a long random value in production.",
            err=True,
        )
    upgrade_database(settings)
    return settings


def serve_api(settings: Settings, host: str, port: int, workers: int) -> None:
    """Runs the API until it is stopped (Ctrl-C or SIGTERM)."""
    import uvicorn

    from backend.app import create_app

    if workers == 1:
        # The app logs each request itself (JSON, with its request id): no uvicorn access log.
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=settings.log_level,
            access_log=False,
        )
    else:
        # Several processes need an import string; each builds its app from the environment.
        uvicorn.run(
            "backend.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            access_log=False,
        )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="API processes."
)
def serve(host: str, port: int, workers: int) -> None:
    """Run the Tessera API (upgrades the database schema first)."""
    serve_api(checked_settings(), host, port, workers)
