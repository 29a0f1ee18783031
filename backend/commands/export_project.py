"""``tessera export``: write a project's masks to a zip (or COCO JSON) file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from backend.commands.common import command_session, find_project
from backend.export.service import coco_export, write_export_zip


@click.command("export")
@click.option("--project", required=True, help="Project id or name.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["zip", "coco"]),
    default="zip",
    show_default=True,
)
def export_project(project: str, out_path: Path, export_format: str) -> None:
    """Export PNG masks + classes.json + manifest (zip), or COCO RLE JSON."""
    with command_session() as session:
        target = find_project(session, project)
        # Write beside the target and rename, so a failed export never leaves half a file.
        partial = out_path.with_name(out_path.name + ".partial")
        with partial.open("wb") as handle:
            if export_format == "coco":
                handle.write(json.dumps(coco_export(session, target)).encode())
            else:
                write_export_zip(session, target, handle)
        partial.replace(out_path)
    click.echo(f"Exported project {target.id} ({target.name}) to {out_path}.")
