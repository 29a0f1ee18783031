"""The lead's image browser and review: states from asked to accepted, filters and paging,
a sent-back image returning to its annotator's queue with the comment, and the refusals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.models import Query, Round, RoundStatus
from core.models.base import utc_now
from core.settings import Settings
from tests.backend.builders import Account, World

API = "/api/v1"
QUERIED = [0, 5]


@dataclass
class Setup:
    lead: Account
    annotators: list[Account]
    project: int
    images: list[int]  # queried in round 1
    spare: int  # never queried
    round: int
    maps: dict[int, int]

    def url(self, path: str) -> str:
        return f"{API}/projects/{self.project}/{path}"


@pytest.fixture
def setup(world: World) -> Setup:
    lead = world.user("lead@example.org")
    annotators = [world.user(f"ann{i}@example.org") for i in range(2)]
    project = world.project(lead, annotators=tuple(annotators))
    images = [world.image(project, name=f"street{i}.png") for i in range(3)]
    spare = world.image(project, name="spare.png")
    maps = {image: world.superpixel_grid(image, cell=8) for image in images}
    round_ = world.round(project)
    for image in images:
        world.query(round_, image, QUERIED)
    return Setup(lead, annotators, project, images, spare, round_, maps)


def submit_next(client: TestClient, setup: Setup, annotator: Account) -> dict[str, object]:
    """The annotator takes their next task and submits it with both superpixels labeled."""
    task = client.post(setup.url("tasks/next"), headers=annotator.headers)
    assert task.status_code == 200, task.text
    body: dict[str, object] = task.json()
    saved = client.patch(
        setup.url(f"images/{body['image_id']}/mask"),
        json={
            "superpixel_map_id": body["superpixel_map_id"],
            "fills": [[0, 1], [5, 2]],
            "done": True,
        },
        headers={**annotator.headers, "If-Match": f'"{body["mask_version"]}"'},
    )
    assert saved.status_code == 200, saved.text
    return body


def browse(client: TestClient, setup: Setup, **params: object) -> dict[str, object]:
    response = client.get(setup.url("review/images"), params=params, headers=setup.lead.headers)
    assert response.status_code == 200, response.text
    page: dict[str, object] = response.json()
    return page


def states(page: dict[str, object]) -> dict[int, str]:
    items = page["items"]
    assert isinstance(items, list)
    return {item["image_id"]: item["state"] for item in items}


def review(
    client: TestClient, setup: Setup, image: int, decision: str, comment: str = ""
) -> Response:
    response: Response = client.post(
        setup.url(f"review/images/{image}"),
        json={"decision": decision, "comment": comment},
        headers=setup.lead.headers,
    )
    return response


def test_states_follow_asked_submitted_sent_back_resubmitted_accepted(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    ann, other = setup.annotators
    first, second, third = setup.images
    assert states(browse(client, setup)) == {
        first: "asked",
        second: "asked",
        third: "asked",
        setup.spare: "unlabeled",
    }
    task = submit_next(client, setup, ann)
    image = int(str(task["image_id"]))
    page = browse(client, setup, state="submitted")
    assert list(states(page)) == [image]
    item = page["items"][0]  # type: ignore[index]
    assert item["annotator"]["email"] == "ann0@example.org"
    assert item["round_number"] == 1 and item["links"]["thumbnail"].endswith("/thumbnail")

    sent = review(client, setup, image, "sent_back", "The car is road.")
    assert sent.status_code == 201, sent.text
    assert states(browse(client, setup))[image] == "sent_back"
    with session_factory() as session:
        spent = session.scalar(select(Round.spent_superpixels).where(Round.id == setup.round))
    assert spent == 0  # paid again when it comes back

    # Someone else asking never gets it; its annotator gets it first, with the comment.
    for _ in range(2):
        assert client.post(setup.url("tasks/next"), headers=other.headers).json()["image_id"] != (
            image
        )
    again = client.post(setup.url("tasks/next"), headers=ann.headers).json()
    assert again["image_id"] == image
    assert again["review_note"]["comment"] == "The car is road."
    assert again["review_note"]["reviewer"] == "lead@example.org"

    submit_next(client, setup, ann)
    assert states(browse(client, setup))[image] == "submitted"
    assert client.post(setup.url("tasks/next"), headers=ann.headers).json()["review_note"] is None
    accepted = review(client, setup, image, "accepted")
    assert accepted.status_code == 201
    assert states(browse(client, setup, state="accepted")) == {image: "accepted"}

    detail = client.get(setup.url(f"review/images/{image}"), headers=setup.lead.headers).json()
    assert detail["state"] == "accepted"
    assert detail["superpixel_ids"] == QUERIED
    assert detail["mask_version"] == 2
    assert [(h["decision"], h["comment"], h["mask_version"]) for h in detail["history"]] == [
        ("sent_back", "The car is road.", 1),
        ("accepted", "", 2),
    ]
    assert detail["history"][0]["reviewer"]["email"] == "lead@example.org"
    assert detail["history"][0]["annotator"]["email"] == "ann0@example.org"

    # Labels saved after the acceptance need another look.
    edited = client.patch(
        setup.url(f"images/{image}/mask"),
        json={"superpixel_map_id": setup.maps[image], "fills": [[0, 0]], "done": True},
        headers={**ann.headers, "If-Match": '"2"'},
    )
    assert edited.status_code == 200, edited.text
    assert states(browse(client, setup))[image] == "submitted"


def test_filters_by_round_annotator_and_pages(
    client: TestClient, setup: Setup, world: World
) -> None:
    ann, other = setup.annotators
    mine = int(str(submit_next(client, setup, ann)["image_id"]))
    theirs = int(str(submit_next(client, setup, other)["image_id"]))
    assert states(browse(client, setup, annotator_id=ann.id)) == {mine: "submitted"}
    assert states(browse(client, setup, annotator_id=other.id)) == {theirs: "submitted"}
    # A second round asks about the spare image only.
    world.superpixel_grid(setup.spare, cell=8)
    later = world.round(setup.project, number=2)
    world.query(later, setup.spare, [1])
    assert states(browse(client, setup, round_id=later)) == {setup.spare: "asked"}
    assert len(states(browse(client, setup, round_id=setup.round))) == 3
    first_page = browse(client, setup, limit=3)
    second_page = browse(client, setup, limit=3, offset=3)
    assert first_page["total"] == second_page["total"] == 4
    assert len(first_page["items"]) == 3 and len(second_page["items"]) == 1  # type: ignore[arg-type]
    assert set(states(first_page)) | set(states(second_page)) == {*setup.images, setup.spare}


def test_refusals_name_the_problem(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session]
) -> None:
    ann = setup.annotators[0]
    asked = setup.images[0]
    not_submitted = review(client, setup, asked, "accepted")
    assert not_submitted.status_code == 409
    assert "is asked" in not_submitted.json()["detail"]
    image = int(str(submit_next(client, setup, ann)["image_id"]))
    no_comment = review(client, setup, image, "sent_back", "   ")
    assert no_comment.status_code == 422
    assert "comment is required" in no_comment.text
    by_annotator = client.post(
        setup.url(f"review/images/{image}"), json={"decision": "accepted"}, headers=ann.headers
    )
    assert by_annotator.status_code == 403
    assert client.get(setup.url("review/images"), headers=ann.headers).status_code == 403
    assert browse_status(client, setup, round_id=999) == 404
    assert browse_status(client, setup, state="finished") == 422
    assert review(client, setup, 999, "accepted").status_code == 404
    assert review(client, setup, image, "accepted").status_code == 201
    twice = review(client, setup, image, "accepted")
    assert twice.status_code == 409
    with session_factory() as session:
        round_ = session.get(Round, setup.round)
        assert round_ is not None
        round_.status = RoundStatus.complete
        session.commit()
    closed = review(client, setup, image, "sent_back", "Redo the car.")
    assert closed.status_code == 409
    assert "no longer collects labels" in closed.json()["detail"]


def browse_status(client: TestClient, setup: Setup, **params: object) -> int:
    response = client.get(setup.url("review/images"), params=params, headers=setup.lead.headers)
    return int(response.status_code)


def test_a_sent_back_image_is_held_for_its_annotator_then_anyone_may_take_it(
    client: TestClient, setup: Setup, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    ann, other = setup.annotators
    task = submit_next(client, setup, ann)
    image, query_id = int(str(task["image_id"])), int(str(task["query_id"]))
    before = utc_now()
    assert review(client, setup, image, "sent_back", "Redo the sky.").status_code == 201
    with session_factory() as session:
        query = session.get(Query, query_id)
        assert query is not None and query.assignee_id == ann.id
        assert query.lease_expires_at is not None
        held = (query.lease_expires_at - before).total_seconds()
        others = [q for q in session.scalars(select(Query.id)) if q != query_id]
    assert settings.sent_back_hold_seconds <= held < settings.sent_back_hold_seconds + 60
    ask = {"exclude": others}
    # Passing over the two other images, the other annotator hears there is nothing to do.
    held_back = client.post(setup.url("tasks/next"), params=ask, headers=other.headers)
    assert held_back.status_code == 204
    with session_factory() as session:
        session.execute(
            update(Query)
            .where(Query.id == query_id)
            .values(lease_expires_at=utc_now() - timedelta(seconds=1))
        )
        session.commit()
    taken = client.post(setup.url("tasks/next"), params=ask, headers=other.headers)
    assert taken.json()["query_id"] == query_id
    assert taken.json()["review_note"]["comment"] == "Redo the sky."
