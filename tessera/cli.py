"""The ``tessera`` command group: each subcommand by the dotted path of its click command,
imported only when it runs (or when its own help is asked for)."""

from __future__ import annotations

import importlib

import click

# name -> ("module:attribute" of a click.Command, one-line help shown by `tessera --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": (
        "demo.command:serve",
        "Run the API (upgrades the database first); --demo adds a worker and a demo project.",
    ),
    "migrate": ("backend.commands.migrate:migrate", "Upgrade the database schema, then exit."),
    "user": ("backend.commands.user:user", "Manage user accounts (tessera user add EMAIL)."),
    "import": (
        "backend.commands.import_images:import_images",
        "Import a folder of images (and ground-truth masks) into a project.",
    ),
    "export": (
        "backend.commands.export_project:export_project",
        "Export a project's masks (zip with manifest, or COCO RLE JSON).",
    ),
    "worker": (
        "worker.commands.worker:worker",
        "Run a worker: superpixels, training, scoring, queries (Celery).",
    ),
    "oracle": (
        "worker.commands.oracle:oracle",
        "Answer a labeling round's queries from ground truth (no annotators needed).",
    ),
    "simulate": (
        "worker.simulation.cli:simulate",
        "Replay the active-learning loop on a labeled dataset with an oracle.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when they run (or help lists them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        target = COMMANDS[cmd_name][0]
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing uses the stored one-liners, so `tessera --help` imports no subcommand.
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        for name in super().list_commands(ctx):
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str()))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup)
@click.version_option(package_name="tessera")
def main() -> None:
    """Tessera: label segmentation masks by painting only what the model is unsure about."""
