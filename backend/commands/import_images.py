"""``tessera import DIR``: load a folder of images (and optional masks) into a project.

The same validation as the upload API applies to each file; refused files are reported and
skipped, the rest are stored in batches.
"""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from backend.images.service import ingest_images, set_ground_truth
from backend.images.validation import UploadRefused, UploadSource
from core.commands import command_session, find_project
from core.models import Image, Split
from core.settings import get_settings


def _files(directory: Path, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in directory.glob(pattern) if p.is_file() and not p.name.startswith("."))


@click.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--project", required=True, help="Project id or name.")
@click.option(
    "--split",
    type=click.Choice([s.value for s in Split]),
    default=Split.pool.value,
    show_default=True,
)
@click.option(
    "--masks",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of ground-truth masks, matched to images by file stem.",
)
@click.option("--recursive", is_flag=True, help="Also import from subfolders.")
def import_images(
    directory: Path, project: str, split: str, masks: Path | None, recursive: bool
) -> None:
    """Import every image in DIRECTORY (zip archives included) into a project."""
    settings = get_settings()
    mask_by_stem = {p.stem: p for p in _files(masks, recursive)} if masks else {}
    created = duplicates = refused = truths = 0
    with command_session(settings) as session:
        target = find_project(session, project)
        for path in _files(directory, recursive):
            try:
                with path.open("rb") as stream:
                    source = UploadSource(name=path.name, stream=stream)
                    result = ingest_images(session, target, [source], Split(split), settings)
            except UploadRefused as error:
                session.rollback()
                refused += 1
                click.echo(f"refused  {error.message}", err=True)
                continue
            created += len(result.created)
            duplicates += len(result.duplicates)
            image_ids = result.created + [
                d.existing_image_id for d in result.duplicates if d.existing_image_id
            ]
            mask_path = mask_by_stem.get(path.stem)
            if mask_path is not None and len(image_ids) == 1:
                image = session.scalar(select(Image).where(Image.id == image_ids[0]))
                assert image is not None
                try:
                    set_ground_truth(
                        session, image, mask_path.name, mask_path.read_bytes(), settings
                    )
                    truths += 1
                except UploadRefused as error:
                    # The image goes too: an image without its promised truth is a silent gap.
                    session.rollback()
                    created -= len(result.created)
                    duplicates -= len(result.duplicates)
                    refused += 1
                    click.echo(
                        f"refused  {error.message} (image {path.name} not imported)", err=True
                    )
                    continue
            session.commit()
    click.echo(
        f"{created} images imported, {duplicates} duplicates skipped, "
        f"{truths} ground-truth masks, {refused} files refused."
    )
    if refused:
        raise SystemExit(1)
