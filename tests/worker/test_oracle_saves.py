"""The oracle stores its answers through the write every save shares (``core.mask_versions``),
run in-process on a real database: versions, history, query state, the round's spend and the
class counts move as for a person's save; labels saved before it are answered on top of."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from core.class_counts import pixels_per_class, project_class_pixels
from core.masks import UNLABELED, decode_stored_mask, encode_mask_png
from core.models import (
    Annotation,
    AnnotationSubmission,
    CountSource,
    Image,
    Query,
    QueryStatus,
    Round,
    User,
)
from tests.backend.builders import grid_labels
from tests.worker.conftest import Api, Stack
from worker.tasks.oracle import ORACLE_EMAIL, answer_round

WIDTH, HEIGHT, CELL = 32, 24, 8  # a 4 x 3 grid of superpixels 0..11


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_oracle_answers_through_the_shared_versioned_write(
    make_stack: Any, make_api: Any, database: str
) -> None:
    stack: Stack = make_stack(database, "embedded")
    api: Api = make_api(stack)
    world = api.world
    lead = world.user("oracle-lead@example.org")
    project = world.project(lead)
    image_id = world.image(project, width=WIDTH, height=HEIGHT)
    world.superpixel_grid(image_id, cell=CELL)
    truth = (np.arange(WIDTH * HEIGHT).reshape(HEIGHT, WIDTH) % 3).astype(np.uint8)
    world.ground_truth(image_id, truth)
    round_id = world.round(project)
    asked = [0, 5, 11]
    query_id = world.query(round_id, image_id, asked)

    with world.factory() as session:
        outcome = answer_round(session, round_id, stack.settings)
    assert (outcome.answered, outcome.without_truth, outcome.leased_to_people) == (1, 0, 0)

    labels = grid_labels(WIDTH, HEIGHT, CELL)
    inside = np.isin(labels, asked)
    with world.factory() as session:
        annotation = session.scalar(select(Annotation).where(Annotation.image_id == image_id))
        image = session.get(Image, image_id)
        assert annotation is not None and image is not None
        mask = decode_stored_mask(annotation.mask_png, WIDTH, HEIGHT)
        assert annotation.version == 1
        assert (mask[inside] == truth[inside]).all() and (mask[~inside] == UNLABELED).all()
        assert annotation.labeled_pixels == int(inside.sum())
        [submission] = session.scalars(
            select(AnnotationSubmission).where(AnnotationSubmission.image_id == image_id)
        )
        assert submission.query_id == query_id and submission.round_id == round_id
        assert submission.version == 1 and submission.changed_pixels == int(inside.sum())
        assert sorted(submission.superpixel_ids) == asked
        oracle = session.get(User, submission.user_id)
        assert oracle is not None and oracle.email == ORACLE_EMAIL
        query = session.get(Query, query_id)
        round_ = session.get(Round, round_id)
        assert query is not None and round_ is not None
        assert query.status == QueryStatus.done
        assert round_.spent_pixels == int(inside.sum())
        assert round_.spent_superpixels == len(asked)
        counted = project_class_pixels(session, project, CountSource.mask)
        assert (counted == pixels_per_class(mask)).all()


@pytest.mark.parametrize("database", ["sqlite"])
def test_oracle_answers_on_top_of_a_persons_partial_labels(
    make_stack: Any, make_api: Any, database: str
) -> None:
    stack: Stack = make_stack(database, "embedded")
    api: Api = make_api(stack)
    world = api.world
    lead = world.user("oracle-lead@example.org")
    project = world.project(lead)
    image_id = world.image(project, width=WIDTH, height=HEIGHT)
    world.superpixel_grid(image_id, cell=CELL)
    truth = np.full((HEIGHT, WIDTH), 2, np.uint8)
    world.ground_truth(image_id, truth)
    round_id = world.round(project)
    world.query(round_id, image_id, [0, 1])
    labels = grid_labels(WIDTH, HEIGHT, CELL)
    # A person labeled superpixel 0 (as class 1) before the oracle ran: version 1.
    person = np.full((HEIGHT, WIDTH), UNLABELED, np.uint8)
    person[labels == 0] = 1
    with world.factory() as session:
        annotation = session.scalar(select(Annotation).where(Annotation.image_id == image_id))
        assert annotation is not None
        annotation.mask_png, annotation.version = encode_mask_png(person), 1
        session.commit()

    with world.factory() as session:
        assert answer_round(session, round_id, stack.settings).answered == 1
    with world.factory() as session:
        annotation = session.scalar(select(Annotation).where(Annotation.image_id == image_id))
        assert annotation is not None and annotation.version == 2
        mask = decode_stored_mask(annotation.mask_png, WIDTH, HEIGHT)
    # exact mode copies the truth into every asked pixel, the person's ones included.
    assert (mask[np.isin(labels, [0, 1])] == 2).all()
    assert (mask[~np.isin(labels, [0, 1])] == UNLABELED).all()
