"""A project's image-score and class-balance settings as the scoring jobs pass them to the
engine (the end-to-end run is in test_pretrained_model.py)."""

from __future__ import annotations

import numpy as np

from core.models import ImageScoring, Project
from worker.tasks.score import ScoringOptions


def test_mean_score_without_class_balance_passes_nothing_extra() -> None:
    project = Project(image_score=ImageScoring.mean, background_classes=[0], class_balance=False)
    options = ScoringOptions.of(project, {"labeled_class_counts": [10, 0, 5]})
    assert options == ScoringOptions("mean", (), None)


def test_foreground_score_takes_the_projects_background_classes() -> None:
    project = Project(
        image_score=ImageScoring.foreground_weighted, background_classes=[0, 3], class_balance=False
    )
    options = ScoringOptions.of(project, {})
    assert (options.image_score_mode, options.background_classes) == ("foreground", (0, 3))
    assert options.class_weights is None


def test_class_balance_weights_rarely_labeled_classes_up_from_the_models_labels() -> None:
    project = Project(image_score=ImageScoring.mean, background_classes=[0], class_balance=True)
    options = ScoringOptions.of(project, {"labeled_class_counts": [9_000, 0, 900, 600]})
    weights = options.class_weights
    assert weights is not None and weights.shape == (4,)
    assert weights[1] > weights[3] > weights[2] > weights[0]  # never labeled, rare, ..., common
    assert np.all(weights <= 10.0)
    # A model that recorded no counts (trained before this option) scores unweighted.
    assert ScoringOptions.of(project, {}).class_weights is None
