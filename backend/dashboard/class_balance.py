"""The class-balance part: each class's share of the labeled pixels against its share of the
validation ground truth, read from ``class_pixel_counts`` (no mask is decoded here)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.dashboard.schemas import ClassBalance, ClassShare
from backend.projects.service import project_classes
from core.class_counts import project_class_pixels
from core.models import CountSource, Image, Project, Split

# A class is starved when its share of the labeled pixels is under this part of its share
# of the validation ground truth (the paper warns that dominant classes crowd out rare ones).
STARVED_RATIO = 0.5


def class_balance(session: Session, project: Project) -> ClassBalance:
    """Labeled pixels per class over the project's masks against the validation split's
    ground truth (255 = unlabeled is left out of both)."""
    labeled = project_class_pixels(session, project.id, CountSource.mask)
    truth = project_class_pixels(session, project.id, CountSource.ground_truth, Split.validation)
    validation_images = int(
        session.scalar(
            select(func.count(Image.id)).where(
                Image.project_id == project.id,
                Image.split == Split.validation,
                Image.ground_truth_png.is_not(None),
            )
        )
        or 0
    )
    labeled_total = int(labeled.sum())
    truth_total = int(truth.sum())
    classes = []
    for label_class in project_classes(session, project.id):
        labeled_share = int(labeled[label_class.index]) / labeled_total if labeled_total else 0.0
        truth_share = int(truth[label_class.index]) / truth_total if truth_total else 0.0
        classes.append(
            ClassShare(
                index=label_class.index,
                name=label_class.name,
                colour=label_class.colour,
                labeled_pixels=int(labeled[label_class.index]),
                labeled_share=labeled_share,
                validation_pixels=int(truth[label_class.index]),
                validation_share=truth_share,
                starved=labeled_total > 0
                and truth_share > 0
                and labeled_share < STARVED_RATIO * truth_share,
            )
        )
    return ClassBalance(
        classes=classes,
        labeled_pixels=labeled_total,
        validation_pixels=truth_total,
        validation_images=validation_images,
        rule=f"starved: labeled share below {STARVED_RATIO:g} x the validation share",
    )
