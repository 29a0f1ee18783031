"""``tessera serve``: upgrade the database, then run the API with uvicorn."""

from __future__ import annotations

import click

from backend.migrate import upgrade_database
from backend.settings import DEFAULT_SECRET_KEY, get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="API processes."
)
def serve(host: str, port: int, workers: int) -> None:
    """Run the Tessera API (upgrades the database schema first)."""
    import uvicorn

    from backend.app import create_app

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
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
    else:
        # Several processes need an import string; each builds its app from the environment.
        uvicorn.run(
            "backend.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
        )
