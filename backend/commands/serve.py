"""``tessera serve``: upgrade the database, then run the API with uvicorn."""

from __future__ import annotations

import click

from backend.migrate import upgrade_database
from backend.settings import get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the Tessera API (upgrades the database schema first)."""
    import uvicorn

    from backend.app import create_app

    settings = get_settings()
    upgrade_database(settings)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
