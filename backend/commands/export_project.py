"""``tessera export``: write a project's masks to a zip (or COCO JSON) file."""

from __future__ import annotations

from pathlib import Path

import click

from backend.export.service import coco_export_chunks, export_zip_chunks
from core.commands import command_session, find_project


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
        chunks = coco_export_chunks if export_format == "coco" else export_zip_chunks
        with partial.open("wb") as handle:
            for chunk in chunks(session, target):
                handle.write(chunk)
        partial.replace(out_path)
    click.echo(f"Exported project {target.id} ({target.name}) to {out_path}.")
