"""Versioned mask saves, the queried-region rule, and lease-based task assignment."""

from __future__ import annotations

import io
import threading
import zlib
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from numpy.typing import NDArray
from PIL import Image as PILImage
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.models import AnnotationSubmission, Query, QueryStatus, Round, RoundStatus
from core.models.base import utc_now
from tests.backend.builders import Account, World, grid_labels, png_bytes

WIDTH, HEIGHT, CELL = 32, 24, 8  # 4 x 3 = 12 superpixels of 64 px
QUERIED = [0, 5]


@dataclass
class Setup:
    lead: Account
    annotators: list[Account]
    project: int
    image: int
    round: int
    query: int
    superpixel_map: int

    @property
    def mask_url(self) -> str:
        return f"/api/v1/projects/{self.project}/images/{self.image}/mask"


@pytest.fixture
def setup(world: World) -> Setup:
    lead = world.user("lead@example.org")
    annotators = [world.user(f"ann{i}@example.org") for i in range(2)]
    project = world.project(lead, annotators=tuple(annotators))
    image = world.image(project, width=WIDTH, height=HEIGHT)
    superpixel_map = world.superpixel_grid(image, cell=CELL)
    round_ = world.round(project)
    query = world.query(round_, image, QUERIED)
    return Setup(lead, annotators, project, image, round_, query, superpixel_map)


def painted(base: NDArray[np.uint8], superpixel: int, class_index: int) -> NDArray[np.uint8]:
    mask = base.copy()
    mask[grid_labels(WIDTH, HEIGHT, CELL) == superpixel] = class_index
    return mask


def unlabeled() -> NDArray[np.uint8]:
    return np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)


def put_mask(
    client: TestClient,
    setup: Setup,
    account: Account,
    mask: NDArray[np.uint8],
    version: int,
    **params: object,
) -> Response:
    response: Response = client.put(
        setup.mask_url,
        content=png_bytes(mask),
        params=params,
        headers={**account.headers, "If-Match": f'"{version}"', "Content-Type": "image/png"},
    )
    return response


def stored_mask(client: TestClient, setup: Setup) -> tuple[NDArray[np.uint8], str]:
    response = client.get(setup.mask_url, headers=setup.lead.headers)
    assert response.status_code == 200
    return np.asarray(PILImage.open(io.BytesIO(response.content))), response.headers["etag"]


def history_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(AnnotationSubmission)) or 0


def test_fresh_image_serves_unlabeled_mask_at_version_zero(
    client: TestClient, setup: Setup
) -> None:
    mask, etag = stored_mask(client, setup)
    assert etag == '"0"'
    np.testing.assert_array_equal(mask, unlabeled())


def test_save_bumps_version_appends_history_and_counts_cost(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    annotator = setup.annotators[0]
    mask = painted(unlabeled(), 0, 1)
    response = put_mask(client, setup, annotator, mask, 0, clicks=3, seconds=2.5, done=True)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    assert response.json() == {
        "image_id": setup.image,
        "version": 1,
        "changed_pixels": 64,
        "changed_superpixels": 1,
        "labeled_pixels": 64,
        "query_done": True,
    }
    stored, etag = stored_mask(client, setup)
    np.testing.assert_array_equal(stored, mask)
    assert etag == '"1"'
    history = client.get(
        f"/api/v1/projects/{setup.project}/images/{setup.image}/submissions",
        headers=annotator.headers,
    ).json()
    assert [(h["version"], h["user_id"], h["superpixel_ids"], h["clicks"]) for h in history] == [
        (1, annotator.id, [0], 3)
    ]
    with session_factory() as session:
        round_ = session.get(Round, setup.round)
        query = session.get(Query, setup.query)
        assert round_ is not None and query is not None
        assert (round_.spent_pixels, round_.spent_superpixels, round_.spent_seconds) == (64, 2, 2.5)
        assert query.status == QueryStatus.done


def test_stale_version_is_refused_and_changes_nothing(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    first = painted(unlabeled(), 0, 1)
    assert put_mask(client, setup, setup.annotators[0], first, 0).status_code == 200
    response = put_mask(client, setup, setup.annotators[1], painted(unlabeled(), 5, 2), 0)
    assert response.status_code == 412
    assert "changed since version 0 (now 1)" in response.json()["detail"]
    assert response.headers["etag"] == '"1"'
    stored, etag = stored_mask(client, setup)
    np.testing.assert_array_equal(stored, first)
    assert etag == '"1"'
    assert history_count(session_factory) == 1


def test_save_without_if_match_is_refused(client: TestClient, setup: Setup) -> None:
    response = client.put(
        setup.mask_url,
        content=png_bytes(unlabeled()),
        headers={**setup.lead.headers, "Content-Type": "image/png"},
    )
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]


def test_labels_outside_queried_superpixels_are_refused_with_pixel_count(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    mask = painted(painted(unlabeled(), 0, 1), 1, 2)  # superpixel 1 is not queried
    mask[23, 31] = 0  # one more pixel, in superpixel 11
    response = put_mask(client, setup, setup.annotators[0], mask, 0)
    assert response.status_code == 422
    assert "65 pixels outside the queried superpixels" in response.json()["detail"]
    assert stored_mask(client, setup)[1] == '"0"'
    assert history_count(session_factory) == 0


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.full((HEIGHT, WIDTH), 9, np.uint8), "pixels have values [9]"),
        (np.full((5, 5), 255, np.uint8), "the mask is 5x5 but the image is 32x24"),
    ],
)
def test_invalid_mask_is_refused(
    client: TestClient, setup: Setup, mask: NDArray[np.uint8], message: str
) -> None:
    response = put_mask(client, setup, setup.annotators[0], mask, 0)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_image_without_open_query_cannot_be_saved(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        session.execute(
            update(Round).where(Round.id == setup.round).values(status=RoundStatus.complete)
        )
        session.commit()
    response = put_mask(client, setup, setup.annotators[0], painted(unlabeled(), 0, 1), 0)
    assert response.status_code == 409
    assert "not queried" in response.json()["detail"]


def test_previous_labels_outside_this_rounds_query_are_kept(
    client: TestClient, setup: Setup, world: World
) -> None:
    first = painted(unlabeled(), 0, 1)
    assert put_mask(client, setup, setup.annotators[0], first, 0).status_code == 200
    # A later round queries superpixel 3 only; superpixel 0 stays as labeled.
    world.query(world.round(setup.project, number=2), setup.image, [3])
    second = painted(first, 3, 2)
    assert put_mask(client, setup, setup.annotators[0], second, 1).status_code == 200
    np.testing.assert_array_equal(stored_mask(client, setup)[0], second)


@pytest.mark.parametrize("attempt", range(12))
def test_concurrent_saves_with_same_version_exactly_one_wins(
    app: FastAPI, setup: Setup, session_factory: sessionmaker[Session], attempt: int
) -> None:
    masks = [painted(unlabeled(), 0, 1), painted(unlabeled(), 5, 2)]
    barrier = threading.Barrier(2)
    results: list[Response | None] = [None, None]

    def save(index: int) -> None:
        client = TestClient(app)
        body = png_bytes(masks[index])
        headers = {
            **setup.annotators[index].headers,
            "If-Match": '"0"',
            "Content-Type": "image/png",
        }
        barrier.wait()
        results[index] = client.put(setup.mask_url, content=body, headers=headers)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results if r is not None)
    assert statuses == [200, 412], [r.text for r in results if r is not None]
    winner = next(i for i, r in enumerate(results) if r is not None and r.status_code == 200)
    stored, etag = stored_mask(TestClient(app), setup)
    np.testing.assert_array_equal(stored, masks[winner])
    assert etag == '"1"'
    assert history_count(session_factory) == 1


def test_next_task_leases_distinct_images(
    client: TestClient, world: World, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    second_image = world.image(setup.project)
    world.superpixel_grid(second_image, cell=CELL)
    world.query(setup.round, second_image, [1], image_score=0.1)
    first_ann, second_ann = setup.annotators
    url = f"/api/v1/projects/{setup.project}/tasks/next"
    task = client.post(url, headers=first_ann.headers).json()
    assert task["image_id"] == setup.image  # higher image score first
    assert task["superpixel_ids"] == QUERIED
    assert task["mask_version"] == 0
    assert task["links"]["mask"] == setup.mask_url
    assert client.post(url, headers=first_ann.headers).json()["query_id"] == task["query_id"]
    other = client.post(url, headers=second_ann.headers).json()
    assert other["image_id"] == second_image
    assert client.post(url, headers=setup.lead.headers).status_code == 204
    # An expired lease returns the query to the pool.
    with session_factory() as session:
        session.execute(
            update(Query)
            .where(Query.id == task["query_id"])
            .values(lease_expires_at=utc_now() - timedelta(seconds=1))
        )
        session.commit()
    assert client.post(url, headers=setup.lead.headers).json()["query_id"] == task["query_id"]


def test_released_task_goes_to_the_next_annotator(client: TestClient, setup: Setup) -> None:
    base = f"/api/v1/projects/{setup.project}/tasks"
    first_ann, second_ann = setup.annotators
    task = client.post(f"{base}/next", headers=first_ann.headers).json()
    assert client.post(f"{base}/next", headers=second_ann.headers).status_code == 204
    release = client.post(f"{base}/{task['query_id']}/release", headers=second_ann.headers)
    assert release.status_code == 403
    release = client.post(f"{base}/{task['query_id']}/release", headers=first_ann.headers)
    assert release.status_code == 204
    assert client.post(f"{base}/next", headers=second_ann.headers).json()["image_id"] == setup.image


def test_simultaneous_next_task_calls_never_share_a_query(
    app: FastAPI, world: World, setup: Setup
) -> None:
    for _ in range(2):
        image = world.image(setup.project)
        world.superpixel_grid(image, cell=CELL)
        world.query(setup.round, image, [2])
    annotators = [world.user(f"extra{i}@example.org") for i in range(6)]
    with world.factory() as session:
        from core.models import Membership, Role

        for annotator in annotators:
            session.add(
                Membership(project_id=setup.project, user_id=annotator.id, role=Role.annotator)
            )
        session.commit()
    barrier = threading.Barrier(len(annotators))
    results: list[Response | None] = [None] * len(annotators)

    def ask(index: int) -> None:
        client = TestClient(app)
        barrier.wait()
        results[index] = client.post(
            f"/api/v1/projects/{setup.project}/tasks/next", headers=annotators[index].headers
        )

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(annotators))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    given = [r.json()["query_id"] for r in results if r is not None and r.status_code == 200]
    assert sorted(r.status_code for r in results if r is not None) == [200] * 3 + [204] * 3
    assert len(set(given)) == 3


def test_a_crowd_asking_at_once_each_gets_a_task_while_queries_are_open(
    app: FastAPI, world: World, setup: Setup
) -> None:
    # More callers and open queries than one read of candidates covers (20): a caller that
    # loses every race must read on instead of answering 204.
    crowd = 30
    for _ in range(crowd):
        image = world.image(setup.project)
        world.superpixel_grid(image, cell=CELL)
        world.query(setup.round, image, [2])
    annotators = [world.user(f"crowd{i}@example.org") for i in range(crowd)]
    with world.factory() as session:
        from core.models import Membership, Role

        for annotator in annotators:
            session.add(
                Membership(project_id=setup.project, user_id=annotator.id, role=Role.annotator)
            )
        session.commit()
    barrier = threading.Barrier(crowd)
    results: list[Response | None] = [None] * crowd

    def ask(index: int) -> None:
        client = TestClient(app)
        barrier.wait()
        results[index] = client.post(
            f"/api/v1/projects/{setup.project}/tasks/next", headers=annotators[index].headers
        )

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(crowd)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results if r is not None] == [200] * crowd
    assert len({r.json()["query_id"] for r in results if r is not None}) == crowd


def test_superpixel_map_round_trips_through_the_compact_encoding(
    client: TestClient, setup: Setup
) -> None:
    task = client.post(
        f"/api/v1/projects/{setup.project}/tasks/next", headers=setup.annotators[0].headers
    ).json()
    response = client.get(task["links"]["superpixels"], headers=setup.annotators[0].headers)
    assert response.headers["x-superpixel-map-id"] == str(task["superpixel_map_id"])
    assert response.status_code == 200
    headers = response.headers
    assert (headers["x-superpixel-width"], headers["x-superpixel-height"]) == ("32", "24")
    assert (headers["x-superpixel-dtype"], headers["x-superpixel-count"]) == ("uint16", "12")
    labels = np.frombuffer(zlib.decompress(response.content), dtype="<u2").reshape(HEIGHT, WIDTH)
    np.testing.assert_array_equal(labels, grid_labels(WIDTH, HEIGHT, CELL))


def test_missing_superpixels_and_uncertainty_are_404_with_reason(
    client: TestClient, world: World, setup: Setup
) -> None:
    image = world.image(setup.project)
    response = client.get(
        f"/api/v1/projects/{setup.project}/images/{image}/superpixels", headers=setup.lead.headers
    )
    assert response.status_code == 404
    assert "not computed yet" in response.json()["detail"]
    response = client.get(
        f"/api/v1/projects/{setup.project}/images/{image}/superpixels",
        params={"map_id": 1},  # the map of another image
        headers=setup.lead.headers,
    )
    assert response.status_code == 404
    assert "has no superpixel map 1" in response.json()["detail"]
    response = client.get(
        f"/api/v1/projects/{setup.project}/queries/{setup.query}/uncertainty",
        headers=setup.lead.headers,
    )
    assert response.status_code == 404
    assert "no uncertainty map" in response.json()["detail"]


def test_superpixels_are_paid_once_per_query(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    first = painted(unlabeled(), 0, 1)
    assert put_mask(client, setup, setup.annotators[0], first, 0, done=True).status_code == 200
    second = painted(first, 5, 2)
    response = put_mask(client, setup, setup.annotators[0], second, 1, done=True, seconds=1)
    assert response.status_code == 200
    with session_factory() as session:
        round_ = session.get(Round, setup.round)
        assert round_ is not None
        assert (round_.spent_pixels, round_.spent_superpixels) == (128, 2)


# The superpixel-native edit (PATCH): fills of queried superpixels and brushed runs.


def patch_mask(
    client: TestClient,
    setup: Setup,
    account: Account,
    version: int | None,
    *,
    fills: list[list[int]] | None = None,
    runs: list[list[int]] | None = None,
    map_id: int | None = None,
    **fields: object,
) -> Response:
    if map_id is None:
        map_id = setup.superpixel_map
    headers = dict(account.headers)
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    body = {"superpixel_map_id": map_id, "fills": fills or [], "runs": runs or [], **fields}
    response: Response = client.patch(setup.mask_url, json=body, headers=headers)
    return response


def offset(x: int, y: int) -> int:
    return y * WIDTH + x


def test_edit_of_fills_and_brush_runs_stores_the_expected_mask(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    annotator = setup.annotators[0]
    # Superpixel 0 filled with class 1; in superpixel 5 (x 8..15, y 8..15) a brush stroke of
    # class 2 over two rows, one run crossing nothing but queried pixels.
    runs = [[offset(9, 10), 4, 2], [offset(10, 11), 3, 2]]
    response = patch_mask(
        client, setup, annotator, 0, fills=[[0, 1]], runs=runs, clicks=4, seconds=3.0
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    assert response.json() == {
        "image_id": setup.image,
        "version": 1,
        "changed_pixels": 71,
        "changed_superpixels": 2,
        "labeled_pixels": 71,
        "query_done": False,
    }
    expected = painted(unlabeled(), 0, 1)
    expected[10, 9:13] = 2
    expected[11, 10:13] = 2
    stored, etag = stored_mask(client, setup)
    np.testing.assert_array_equal(stored, expected)
    assert etag == '"1"'
    # A second edit on top: superpixel 5 filled, two pixels of superpixel 0 erased.
    response = patch_mask(
        client, setup, annotator, 1, fills=[[5, 0]], runs=[[offset(3, 2), 2, 255]], done=True
    )
    assert response.status_code == 200, response.text
    expected = painted(expected, 5, 0)
    expected[2, 3:5] = 255
    assert response.json()["labeled_pixels"] == 126
    assert response.json()["changed_pixels"] == 66
    assert response.json()["query_done"] is True
    np.testing.assert_array_equal(stored_mask(client, setup)[0], expected)
    history = client.get(
        f"/api/v1/projects/{setup.project}/images/{setup.image}/submissions",
        headers=annotator.headers,
    ).json()
    assert [
        (h["version"], h["superpixel_ids"], h["changed_pixels"], h["clicks"]) for h in history
    ] == [
        (1, [0, 5], 71, 4),
        (2, [0, 5], 66, 0),
    ]
    with session_factory() as session:
        round_ = session.get(Round, setup.round)
        query = session.get(Query, setup.query)
        assert round_ is not None and query is not None
        # Newly labeled pixels: 71, then 64 - 7 (superpixel 5's brushed pixels were labeled).
        assert (round_.spent_pixels, round_.spent_superpixels) == (71 + 57, 2)
        assert query.status == QueryStatus.done


def test_edit_updates_the_class_balance(client: TestClient, setup: Setup) -> None:
    url = f"/api/v1/projects/{setup.project}/dashboard/class-balance"
    assert client.get(url, headers=setup.lead.headers).json()["labeled_pixels"] == 0
    response = patch_mask(
        client, setup, setup.annotators[0], 0, fills=[[0, 1]], runs=[[offset(8, 8), 5, 2]]
    )
    assert response.status_code == 200, response.text
    balance = client.get(url, headers=setup.lead.headers).json()
    assert balance["labeled_pixels"] == 69
    assert {c["index"]: c["labeled_pixels"] for c in balance["classes"]} == {0: 0, 1: 64, 2: 5}
    # Erasing counts too: the cached counts of version 1 are not reused for version 2.
    response = patch_mask(client, setup, setup.annotators[0], 1, runs=[[offset(8, 8), 5, 255]])
    assert response.status_code == 200, response.text
    balance = client.get(url, headers=setup.lead.headers).json()
    assert {c["index"]: c["labeled_pixels"] for c in balance["classes"]} == {0: 0, 1: 64, 2: 0}


@pytest.mark.parametrize(
    ("fills", "runs", "message"),
    [
        ([[1, 1]], [], "fills name superpixels [1] that are not queried"),
        ([[0, 1]], [[offset(16, 0), 2, 1]], "2 brushed pixels lie outside the queried"),
        # A run that starts in superpixel 5 and runs on into superpixel 6.
        ([], [[offset(14, 9), 4, 1]], "2 brushed pixels lie outside the queried"),
        ([[99, 1]], [], "fills name superpixels [99] that map"),
        ([[0, 9]], [], "classes [9] are not class indices"),
        ([], [[offset(9, 9), 1, 7]], "classes [7] are not class indices"),
        ([[0, 1], [0, 2]], [], "more than once"),
        ([], [[WIDTH * HEIGHT - 1, 2, 1]], "ends past the image's last pixel"),
        ([], [[offset(9, 9), 3, 1], [offset(10, 9), 2, 1]], "sorted by offset"),
        ([[5, 1]], [[offset(9, 9), 2, 2]], "runs brush superpixels [5] that the edit also fills"),
    ],
)
def test_edit_breaking_a_rule_is_refused_by_name_and_writes_nothing(
    client: TestClient,
    setup: Setup,
    session_factory: sessionmaker[Session],
    fills: list[list[int]],
    runs: list[list[int]],
    message: str,
) -> None:
    response = patch_mask(client, setup, setup.annotators[0], 0, fills=fills, runs=runs)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    stored, etag = stored_mask(client, setup)
    assert etag == '"0"'
    np.testing.assert_array_equal(stored, unlabeled())
    assert history_count(session_factory) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"fills": [[-1, 1]]},
        {"runs": [[0, 0, 1]]},
        {"runs": [[0, 1, 256]]},
        {"runs": [[0, 1]]},
        {"fills": [[0, 1]], "pixels": []},
    ],
)
def test_malformed_edit_is_refused_by_the_schema(
    client: TestClient, setup: Setup, body: dict[str, object]
) -> None:
    headers = {**setup.annotators[0].headers, "If-Match": '"0"'}
    response = client.patch(setup.mask_url, json={"superpixel_map_id": 1, **body}, headers=headers)
    assert response.status_code == 422
    assert stored_mask(client, setup)[1] == '"0"'


def test_edit_with_a_stale_version_is_refused_and_changes_nothing(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    first = patch_mask(client, setup, setup.annotators[0], 0, fills=[[0, 1]])
    assert first.status_code == 200, first.text
    response = patch_mask(client, setup, setup.annotators[1], 0, fills=[[5, 2]])
    assert response.status_code == 412
    assert "changed since version 0 (now 1)" in response.json()["detail"]
    assert response.headers["etag"] == '"1"'
    stored, etag = stored_mask(client, setup)
    np.testing.assert_array_equal(stored, painted(unlabeled(), 0, 1))
    assert etag == '"1"'
    assert history_count(session_factory) == 1


def test_edit_without_if_match_or_on_another_map_is_refused(
    client: TestClient, setup: Setup
) -> None:
    missing = patch_mask(client, setup, setup.annotators[0], None, fills=[[0, 1]])
    assert missing.status_code == 428
    other_map = patch_mask(client, setup, setup.annotators[0], 0, fills=[[0, 1]], map_id=10**6)
    assert other_map.status_code == 409
    assert "is not the map of an open query" in other_map.json()["detail"]
    assert stored_mask(client, setup)[1] == '"0"'


def test_edit_applies_on_top_of_a_full_mask_put(client: TestClient, setup: Setup) -> None:
    """Scripts PUT whole PNGs, the browser PATCHes edits: both work on the same versions."""
    first = painted(unlabeled(), 0, 1)
    assert put_mask(client, setup, setup.annotators[0], first, 0).status_code == 200
    response = patch_mask(client, setup, setup.annotators[0], 1, runs=[[offset(8, 15), 8, 2]])
    assert response.status_code == 200, response.text
    expected = first.copy()
    expected[15, 8:16] = 2
    np.testing.assert_array_equal(stored_mask(client, setup)[0], expected)
    second = painted(expected, 5, 0)
    assert put_mask(client, setup, setup.annotators[0], second, 2).status_code == 200
    np.testing.assert_array_equal(stored_mask(client, setup)[0], second)
