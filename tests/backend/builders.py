"""Test data made through the same services the API uses (no mocks of our own code).

Typical use in a test::

    lead = world.user("lead@x.org")
    project = world.project(lead, annotators=[ann])
    image = world.image(project, width=32, height=24)
    world.superpixel_grid(image, cell=8)             # 4x3 = 12 superpixels
    round_ = world.round(project)                    # status "labeling"
    query = world.query(round_, image, [0, 1, 5])
    client.get(..., headers=lead.headers)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.service import create_user, issue_token
from backend.images.service import ingest_images, set_ground_truth
from backend.images.validation import UploadSource
from backend.projects.schemas import ClassCreate, ProjectCreate
from backend.projects.service import create_project
from core.models import (
    Image,
    Job,
    Membership,
    ModelCheckpoint,
    Project,
    Query,
    Role,
    Round,
    RoundStatus,
    Split,
    SuperpixelMap,
    TokenKind,
    User,
)
from core.passwords import hash_password
from core.settings import Settings
from core.superpixel_maps import store_superpixel_map

PASSWORD = "correct horse battery"
CLASSES = [("sky", "#8080ff"), ("road", "#804080"), ("car", "#40008c")]


@lru_cache(maxsize=1)
def password_hash() -> str:
    # Argon2 is slow on purpose; hash once and reuse it for every test user.
    return hash_password(PASSWORD)


def png_bytes(array: NDArray[Any], mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def rgb_image(width: int, height: int, seed: int = 0) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def grid_labels(width: int, height: int, cell: int) -> NDArray[np.int32]:
    """Square superpixels of side ``cell``, numbered row by row."""
    columns = -(-width // cell)
    rows, cols = np.indices((height, width))
    return ((rows // cell) * columns + cols // cell).astype(np.int32)


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    token: str
    token_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class World:
    """Creates rows through the service layer, committing each step."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        self._seed = 0

    def user(self, email: str, *, admin: bool = False) -> Account:
        with self.factory() as session:
            user = create_user(
                session, email, PASSWORD, is_admin=admin, password_hash=password_hash()
            )
            token, secret = issue_token(
                session, user, TokenKind.api, key=self.settings.secret_key, name="tests"
            )
            session.commit()
            return Account(user.id, user.email, secret, token.id)

    def project(
        self,
        lead: Account,
        *,
        annotators: tuple[Account, ...] = (),
        name: str = "Streets",
        **settings: Any,
    ) -> int:
        body = ProjectCreate(
            name=name,
            classes=[ClassCreate(name=n, colour=c) for n, c in CLASSES],
            **settings,
        )
        with self.factory() as session:
            creator = session.get(User, lead.id)
            assert creator is not None
            project = create_project(session, creator, body)
            for annotator in annotators:
                session.add(
                    Membership(project_id=project.id, user_id=annotator.id, role=Role.annotator)
                )
            session.commit()
            return project.id

    def ground_truth(self, image_id: int, mask: NDArray[np.uint8]) -> None:
        with self.factory() as session:
            image = session.get(Image, image_id)
            assert image is not None
            set_ground_truth(session, image, "truth.png", png_bytes(mask), self.settings)
            session.commit()

    def image(
        self,
        project_id: int,
        *,
        width: int = 32,
        height: int = 24,
        split: Split = Split.pool,
        name: str | None = None,
    ) -> int:
        self._seed += 1
        data = png_bytes(rgb_image(width, height, seed=self._seed))
        with self.factory() as session:
            project = session.get(Project, project_id)
            assert project is not None
            result = ingest_images(
                session,
                project,
                [UploadSource(name or f"img{self._seed}.png", io.BytesIO(data))],
                split,
                self.settings,
            )
            session.commit()
            return result.created[0]

    def superpixel_grid(self, image_id: int, *, cell: int = 8) -> int:
        """Stores a grid superpixel map under the project's current size and algorithm."""
        with self.factory() as session:
            image = session.get(Image, image_id)
            assert image is not None
            project = session.get(Project, image.project_id)
            assert project is not None
            row = store_superpixel_map(
                session,
                image,
                grid_labels(image.width, image.height, cell),
                size=project.superpixel_size,
                algorithm=project.superpixel_algorithm.value,
            )
            session.commit()
            return row.id

    def round(
        self, project_id: int, *, number: int = 1, status: RoundStatus = RoundStatus.labeling
    ) -> int:
        with self.factory() as session:
            round_ = Round(project_id=project_id, number=number, strategy="dynamic", status=status)
            session.add(round_)
            session.commit()
            return round_.id

    def query(
        self,
        round_id: int,
        image_id: int,
        superpixel_ids: list[int],
        *,
        uncertainty_png: bytes | None = None,
        image_score: float = 0.5,
    ) -> int:
        with self.factory() as session:
            superpixel_map = (
                session.query(SuperpixelMap).filter(SuperpixelMap.image_id == image_id).one()
            )
            query = Query(
                round_id=round_id,
                image_id=image_id,
                superpixel_map_id=superpixel_map.id,
                superpixel_ids=superpixel_ids,
                superpixel_scores=[0.5] * len(superpixel_ids),
                image_score=image_score,
                uncertainty_png=uncertainty_png,
            )
            session.add(query)
            session.commit()
            return query.id

    def job(self, project_id: int, kind: str = "train") -> int:
        with self.factory() as session:
            job = Job(project_id=project_id, kind=kind)
            session.add(job)
            session.commit()
            return job.id

    def model(self, project_id: int, round_id: int | None = None) -> int:
        with self.factory() as session:
            model = ModelCheckpoint(
                project_id=project_id,
                round_id=round_id,
                architecture="unet",
                checkpoint=b"\x00" * 16,
                metrics={"miou": 0.5},
            )
            session.add(model)
            session.commit()
            return model.id
