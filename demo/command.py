"""``tessera serve``, with ``--demo``: the API's own command (``backend.commands.serve``)
plus the options that add a worker and the demo project."""

from __future__ import annotations

import os

import click

from backend.commands.serve import checked_settings, serve_api
from backend.commands.serve import serve as api_serve
from demo.environment import DEMO_MODEL, DEMO_MODELS

_DEMO_OPTIONS = [
    click.Option(
        ["--demo"],
        is_flag=True,
        help="Also run a worker and, on first start, create a demo project with its first "
        "round queried (generated scenes, no download) and demo logins; Ctrl-C stops both.",
    ),
    click.Option(
        ["--demo-model"],
        type=click.Choice(DEMO_MODELS),
        default=DEMO_MODEL,
        show_default=True,
        help="The demo project's model: the pretrained encoder (features cached, learns from "
        "few labels on a CPU) or the U-Net from scratch.",
    ),
]


def _serve(host: str, port: int, workers: int, demo: bool, demo_model: str) -> None:
    if not demo:
        serve_api(checked_settings(), host, port, workers)
        return
    if workers != 1:
        raise click.UsageError("--demo runs one API process; leave out --workers.")
    # Imported here: a plain ``tessera serve`` loads neither the demo's server nor its seeder.
    from demo.environment import prepare_demo_environment
    from demo.run import run_demo

    applied = prepare_demo_environment(os.environ)
    run_demo(checked_settings(), host, port, applied, demo_model)


serve = click.Command(
    name="serve",
    params=[*api_serve.params, *_DEMO_OPTIONS],
    callback=_serve,
    help=api_serve.help,
    short_help=api_serve.short_help,
)
