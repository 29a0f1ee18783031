"""``tessera serve``: upgrade the database, then run the API with uvicorn."""

from __future__ import annotations

import os

import click

from core.migrate import upgrade_database
from core.settings import DEFAULT_SECRET_KEY, get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="API processes."
)
@click.option(
    "--demo",
    is_flag=True,
    help="Also run a worker and, on first start, create a demo project with its first round "
    "queried (generated scenes, no download) and demo logins; Ctrl-C stops both.",
)
@click.option(
    "--demo-model",
    type=click.Choice(["efficientnet_lite0", "unet"]),
    default="efficientnet_lite0",
    show_default=True,
    help="The demo project's model: the pretrained encoder (features cached, learns from "
    "few labels on a CPU) or the U-Net from scratch.",
)
def serve(host: str, port: int, workers: int, demo: bool, demo_model: str) -> None:
    """Run the Tessera API (upgrades the database schema first)."""
    import uvicorn

    from backend.app import create_app

    applied: dict[str, str] = {}
    if demo:
        if workers != 1:
            raise click.UsageError("--demo runs one API process; leave out --workers.")
        # Lazily: the demo module is the worker side's (the backend never loads it otherwise).
        from worker.demo import prepare_demo_environment

        applied = prepare_demo_environment(os.environ)
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
    if demo:
        from worker.demo import run_demo

        run_demo(settings, host, port, applied, demo_model)
    elif workers == 1:
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
