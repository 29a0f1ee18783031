"""Every dashboard figure equals what the database holds after a scripted project: two rounds
answered by the oracle (the worker's own ``answer_round``, through the save path), human saves
through the API (one of them refused with 412), models with metrics, a round in training.

Expected numbers are recomputed here from the stored rows (masks decoded, ground truth
decoded, history rows summed), not from the rounds' running totals the API reads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.dashboard.budget import warning_level
from backend.dashboard.learning_curve import fit_log_curve
from backend.rounds.service import close_round
from core.masks import UNLABELED, decode_stored_mask
from core.models import (
    Annotation,
    AnnotationSubmission,
    Image,
    ModelCheckpoint,
    Query,
    QueryStatus,
    Round,
    RoundStatus,
    SaveConflict,
    Split,
    SuperpixelMap,
    User,
)
from core.settings import Settings
from tests.backend.builders import Account, World, png_bytes
from tests.backend.test_dashboard_counts import assert_counts_match

W, H, CELL = 32, 24, 8  # 4 x 3 = 12 grid superpixels of 64 pixels per image
BUDGET_PIXELS = 2300
BUDGET_HOURS = 1.0


def pool_truth() -> np.ndarray[Any, Any]:
    """Sky on top, road below; no car in the pool."""
    truth = np.zeros((H, W), dtype=np.uint8)
    truth[H // 2 :] = 1
    return truth


def validation_truth() -> np.ndarray[Any, Any]:
    """A third each: the car (class 2) is common here, so the pool starves it."""
    truth = np.zeros((H, W), dtype=np.uint8)
    truth[:, W // 3 :] = 1
    truth[:, 2 * W // 3 :] = 2
    truth[0, 0] = UNLABELED  # unlabeled ground truth counts for no class
    return truth


@dataclass
class Scripted:
    project: int
    lead: Account
    annotators: tuple[Account, Account]
    rounds: list[int]
    pool: list[int]


def _model(factory: sessionmaker[Session], project: int, round_id: int, miou: float) -> None:
    with factory() as session:
        session.add(
            ModelCheckpoint(
                project_id=project,
                round_id=round_id,
                architecture="unet",
                checkpoint=b"\0",
                metrics={"miou": miou, "per_class_iou": [miou, miou, None]},
            )
        )
        session.commit()


def _oracle(factory: sessionmaker[Session], round_id: int, settings: Settings) -> None:
    from worker.tasks.oracle import answer_round  # imports torch: only where needed

    with factory() as session:
        outcome = answer_round(session, round_id, settings, mode="exact")
        assert outcome.answered > 0


def _close(factory: sessionmaker[Session], round_id: int) -> None:
    with factory() as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        close_round(session, round_)
        session.commit()


def _save(
    client: TestClient, who: Account, project: int, image: int, mask: Any, **params: Any
) -> int:
    version = params.pop("version")
    response = client.put(
        f"/api/v1/projects/{project}/images/{image}/mask",
        content=png_bytes(mask),
        params=params,
        headers={**who.headers, "If-Match": f'"{version}"', "Content-Type": "image/png"},
    )
    return response.status_code


def script(world: World, client: TestClient, settings: Settings) -> Scripted:
    factory = world.factory
    lead = world.user("lead@example.org")
    ann1, ann2 = world.user("ann1@example.org"), world.user("ann2@example.org")
    project = world.project(
        lead, annotators=(ann1, ann2), budget_pixels=BUDGET_PIXELS, budget_hours=BUDGET_HOURS
    )
    pool = [world.image(project) for _ in range(4)]
    for image in pool:
        world.superpixel_grid(image, cell=CELL)
        world.ground_truth(image, pool_truth())
    for _ in range(2):
        image = world.image(project, split=Split.validation)
        world.ground_truth(image, validation_truth())

    # Round 1: two whole images, answered by the oracle.
    first = world.round(project, number=1)
    world.query(first, pool[0], list(range(12)))
    world.query(first, pool[1], list(range(12)))
    _oracle(factory, first, settings)
    _close(factory, first)

    # Round 2: a model trained on round 1, two picked images with different counts.
    second = world.round(project, number=2)
    _model(factory, project, second, 0.40)
    world.query(second, pool[2], [0, 1, 5])
    world.query(second, pool[3], [2, 3])
    # ann1 labels pool[3] by hand; ann2 saves on the same version a moment later: 412.
    mask = np.full((H, W), UNLABELED, dtype=np.uint8)
    mask[:CELL, 2 * CELL : 4 * CELL] = 0
    saved = _save(client, ann1, project, pool[3], mask, version=0, seconds=30, clicks=2, done=True)
    assert saved == 200
    assert (
        _save(client, ann2, project, pool[3], mask, version=0, seconds=5, clicks=1, done=True)
        == 412
    )
    # ann2 starts pool[2] (one superpixel, not done); the oracle answers the rest.
    mask = np.full((H, W), UNLABELED, dtype=np.uint8)
    mask[:CELL, :CELL] = 0
    assert (
        _save(client, ann2, project, pool[2], mask, version=0, seconds=12, clicks=1, done=False)
        == 200
    )
    _oracle(factory, second, settings)
    _close(factory, second)

    # Round 3 is training: its model is stored, the round has not asked anything yet.
    third = world.round(project, number=3, status=RoundStatus.training)
    _model(factory, project, third, 0.55)
    return Scripted(project, lead, (ann1, ann2), [first, second, third], pool)


@pytest.fixture
def scripted(world: World, client: TestClient, settings: Settings) -> Scripted:
    return script(world, client, settings)


def _get(client: TestClient, who: Account, path: str) -> Any:
    response = client.get(path, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _masks(session: Session, project: int, split: Split) -> dict[int, np.ndarray[Any, Any]]:
    rows = session.execute(
        select(Image.id, Annotation.mask_png, Image.width, Image.height)
        .join(Image, Image.id == Annotation.image_id)
        .where(Image.project_id == project, Image.split == split)
    )
    return {image: decode_stored_mask(png, w, h) for image, png, w, h in rows}


def _truths(session: Session, project: int) -> list[np.ndarray[Any, Any]]:
    rows = session.execute(
        select(Image.ground_truth_png, Image.width, Image.height).where(
            Image.project_id == project, Image.split == Split.validation
        )
    )
    return [decode_stored_mask(png, w, h) for png, w, h in rows]


def test_dashboard_figures_equal_the_database(
    scripted: Scripted, client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    p = scripted.project
    board = _get(client, scripted.lead, f"/api/v1/projects/{p}/dashboard")
    # Each part's own route answers the same as the summary.
    for part, key in (
        ("budget", "budget"),
        ("learning-curve", "learning_curve"),
        ("rounds", "rounds"),
        ("class-balance", "class_balance"),
        ("team", "team"),
        ("jobs", "jobs"),
    ):
        assert _get(client, scripted.lead, f"/api/v1/projects/{p}/dashboard/{part}") == board[key]

    with session_factory() as session:
        masks_by_image = _masks(session, p, Split.pool)
        masks = list(masks_by_image.values())
        truths = _truths(session, p)
        submissions = list(session.scalars(select(AnnotationSubmission)))
        conflicts = list(session.scalars(select(SaveConflict)))
        queries = list(session.scalars(select(Query).order_by(Query.id)))
        rounds = {r.id: r for r in session.scalars(select(Round))}
        maps = list(session.scalars(select(SuperpixelMap)))
        images = {i.id: i for i in session.scalars(select(Image))}
        users = {u.id: u for u in session.scalars(select(User))}

    # Budget.
    labeled_pixels = sum(int((m != UNLABELED).sum()) for m in masks)
    done_superpixels = sum(len(q.superpixel_ids) for q in queries if q.status == QueryStatus.done)
    labeled_images = sum(1 for m in masks if (m != UNLABELED).any())
    seconds = sum(s.seconds for s in submissions)
    pool_pixels = sum(images[i].width * images[i].height for i in scripted.pool)
    mean_superpixel = sum(images[m.image_id].width * images[m.image_id].height for m in maps) / sum(
        m.count for m in maps
    )
    lines = {line["unit"]: line for line in board["budget"]["lines"]}
    assert labeled_pixels == 2 * W * H + 3 * 64 + 2 * 64  # the script's own arithmetic
    assert lines["pixels"]["spent"] == labeled_pixels
    assert lines["pixels"]["set"] == BUDGET_PIXELS
    assert lines["pixels"]["remaining"] == BUDGET_PIXELS - labeled_pixels
    assert lines["superpixels"]["spent"] == done_superpixels == 12 + 12 + 3 + 2
    assert lines["superpixels"]["set"] == pytest.approx(BUDGET_PIXELS / mean_superpixel)
    assert lines["superpixels"]["equivalent"] is True
    assert lines["images"]["spent"] == labeled_images == 4
    assert lines["images"]["set"] == pytest.approx(BUDGET_PIXELS / (pool_pixels / 4))
    assert lines["hours"]["spent"] == pytest.approx(seconds / 3600) == pytest.approx(42 / 3600)
    assert lines["hours"]["set"] == BUDGET_HOURS
    assert labeled_pixels / BUDGET_PIXELS > 0.75
    assert board["budget"]["level"] == "warning"
    assert board["budget"]["pool_pixels"] == pool_pixels

    # Learning curve: each model against the pixels labeled in earlier rounds.
    curve = board["learning_curve"]
    first_round_pixels = sum(
        int((masks_by_image[image] != UNLABELED).sum()) for image in scripted.pool[:2]
    )
    assert first_round_pixels == 2 * W * H
    assert [(pt["round_number"], pt["labeled_pixels"], pt["miou"]) for pt in curve["points"]] == [
        (2, first_round_pixels, 0.40),
        (3, labeled_pixels, 0.55),
    ]
    assert curve["points"][1]["labeled_fraction"] == pytest.approx(labeled_pixels / pool_pixels)
    b, a = np.polyfit(np.log([first_round_pixels, labeled_pixels]), [0.40, 0.55], 1)
    projection = curve["projection"]
    assert projection["a"] == pytest.approx(a) and projection["b"] == pytest.approx(b)
    assert projection["at_pixels"] == BUDGET_PIXELS
    assert projection["miou"] == pytest.approx(min(1.0, a + b * math.log(BUDGET_PIXELS)))
    assert "least-squares" in projection["method"] and "ln" in projection["method"]
    assert curve["simulated"] == []

    # Rounds table.
    table = {row["id"]: row for row in board["rounds"]}
    assert [row["number"] for row in board["rounds"]] == [1, 2, 3]
    for round_id, row in table.items():
        asked = [q for q in queries if q.round_id == round_id]
        assert row["images_queried"] == len(asked)
        assert row["superpixels_per_image"] == [len(q.superpixel_ids) for q in asked]
        assert row["superpixels_queried"] == sum(len(q.superpixel_ids) for q in asked)
        assert row["queries_done"] == sum(q.status == QueryStatus.done for q in asked)
        assert row["labeled_pixels"] == rounds[round_id].spent_pixels
        assert row["seconds"] == pytest.approx(
            sum(s.seconds for s in submissions if s.round_id == round_id)
        )
        assert row["status"] == rounds[round_id].status.value
    first, second, third = scripted.rounds
    assert table[second]["superpixels_per_image"] == [3, 2]
    assert table[second]["labeled_pixels"] == 5 * 64
    assert table[second]["miou"] == 0.40 and table[third]["miou"] == 0.55
    assert table[first]["model_id"] is None

    # Class balance.
    labeled = sum(np.bincount(m.ravel(), minlength=256) for m in masks)
    truth = sum(np.bincount(t.ravel(), minlength=256) for t in truths)
    balance = board["class_balance"]
    assert balance["labeled_pixels"] == int(labeled[:255].sum()) == labeled_pixels
    assert balance["validation_pixels"] == int(truth[:255].sum()) == 2 * (W * H - 1)
    assert balance["validation_images"] == 2
    for share in balance["classes"]:
        k = share["index"]
        assert share["labeled_pixels"] == labeled[k]
        assert share["labeled_share"] == pytest.approx(labeled[k] / labeled[:255].sum())
        assert share["validation_share"] == pytest.approx(truth[k] / truth[:255].sum())
    assert [c["name"] for c in balance["classes"] if c["starved"]] == ["car"]
    assert_counts_match(session_factory)

    # Team.
    team = {member["user_id"]: member for member in board["team"]}
    savers = {s.user_id for s in submissions}
    assert set(team) == savers | {scripted.lead.id, *(a.id for a in scripted.annotators)}
    for user_id, member in team.items():
        mine = [s for s in submissions if s.user_id == user_id]
        refused = sum(1 for c in conflicts if c.user_id == user_id)
        hours = sum(s.seconds for s in mine) / 3600
        assert member["email"] == users[user_id].email
        assert member["submissions"] == len(mine)
        assert member["superpixels"] == sum(s.changed_superpixels for s in mine)
        assert member["pixels"] == sum(s.changed_pixels for s in mine)
        assert member["hours"] == pytest.approx(hours)
        assert member["conflicts"] == refused
        if hours:
            assert member["pixels_per_hour"] == pytest.approx(member["pixels"] / hours)
        if mine or refused:
            assert member["conflict_share"] == pytest.approx(refused / (refused + len(mine)))
    ann1, ann2 = scripted.annotators
    assert (team[ann1.id]["pixels"], team[ann1.id]["conflicts"]) == (128, 0)
    assert (team[ann2.id]["conflicts"], team[ann2.id]["conflict_share"]) == (1, 0.5)
    assert team[ann2.id]["role"] == "annotator" and team[scripted.lead.id]["role"] == "lead"

    # Jobs and what the lead may do.
    jobs = board["jobs"]
    assert jobs["current_round"]["number"] == 3 and jobs["current_round"]["status"] == "training"
    assert jobs["can_start_round"] is False
    assert jobs["oracle_available"] is False


def test_dashboard_is_for_leads_only(scripted: Scripted, client: TestClient, world: World) -> None:
    p = scripted.project
    refused = client.get(f"/api/v1/projects/{p}/dashboard", headers=scripted.annotators[0].headers)
    assert refused.status_code == 403
    outsider = world.user("outsider@example.org")
    assert client.get(f"/api/v1/projects/{p}/dashboard", headers=outsider.headers).status_code == (
        404
    )


def test_budget_without_limits_has_no_warning(world: World, client: TestClient) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    budget = _get(client, lead, f"/api/v1/projects/{project}/dashboard/budget")
    assert budget["level"] == "none"
    assert all(line["set"] is None and line["spent"] == 0 for line in budget["lines"])
    curve = _get(client, lead, f"/api/v1/projects/{project}/dashboard/learning-curve")
    assert curve == {"points": [], "projection": None, "simulated": [], "pool_pixels": 0}


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def test_uploaded_simulation_becomes_curves_per_strategy(world: World, client: TestClient) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    world.image(project)  # pool pixels: 32 x 24
    rows = [
        {"strategy": s, "seed": seed, "round": r, "labeled_pixel_fraction": f, "val_miou": m}
        for s, seed, r, f, m in [
            ("dynamic", 0, 0, 0.10, 0.30),
            ("dynamic", 1, 0, 0.12, 0.34),
            ("dynamic", 0, 1, 0.20, 0.50),
            ("random_images", 0, 0, 0.10, 0.28),
        ]
    ]
    url = f"/api/v1/projects/{project}/dashboard/simulations"
    created = client.post(
        url,
        headers=lead.headers,
        files={"file": ("rounds.jsonl", _jsonl(rows))},
        data={"name": "camvid sample"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["strategies"] == ["dynamic", "random_images"]
    assert created.json()["rows"] == 4
    curves = _get(client, lead, f"/api/v1/projects/{project}/dashboard/learning-curve")["simulated"]
    dynamic = next(c for c in curves if c["strategy"] == "dynamic")
    assert dynamic["simulation_name"] == "camvid sample"
    start = dynamic["points"][0]
    assert start["seeds"] == 2
    assert start["labeled_fraction"] == pytest.approx(0.11)
    assert start["labeled_pixels"] == pytest.approx(0.11 * 32 * 24)
    assert start["miou_mean"] == pytest.approx(0.32)
    assert start["miou_sd"] == pytest.approx(np.std([0.30, 0.34], ddof=1))

    bad = client.post(
        url,
        headers=lead.headers,
        files={"file": ("rounds.jsonl", b'{"strategy": "dynamic"}\n')},
    )
    assert bad.status_code == 422 and "line 1" in bad.json()["detail"]
    simulation = created.json()["id"]
    assert client.delete(f"{url}/{simulation}", headers=lead.headers).status_code == 204
    assert _get(client, lead, f"/api/v1/projects/{project}/dashboard/simulations") == []


@pytest.mark.parametrize(
    ("fractions", "level"),
    [
        ([], "none"),
        ([0.1, 0.74], "ok"),
        ([0.75], "warning"),
        ([0.2, 0.9], "critical"),
        ([1.0, 0.1], "exhausted"),
    ],
)
def test_warning_level_follows_the_most_spent_budget(fractions: list[float], level: str) -> None:
    assert warning_level(fractions) == level


def test_log_fit_needs_two_distinct_pixel_counts() -> None:
    assert fit_log_curve([0.0, 100.0], [0.1, 0.2]) is None
    assert fit_log_curve([100.0, 100.0], [0.1, 0.2]) is None
    a, b = fit_log_curve([1e3, 1e4, 1e5], [0.2, 0.3, 0.4]) or (0.0, 0.0)
    assert b == pytest.approx(0.1 / math.log(10)) and a == pytest.approx(0.2 - b * math.log(1e3))
