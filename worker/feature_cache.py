"""Encoder features of a frozen pretrained encoder, cached per image in ``image_features``.

Next to the superpixel maps, in the database: one row per (image, encoder fingerprint) with
the feature maps as zlib-compressed float16 (``worker.engine.features.pack_encoded``).
Ingest computes them for projects whose model is pretrained; training and scoring read them
and compute what is missing (a project switched models, a worker's encoder weights changed,
the ingest ran on a worker that had no encoder). The fingerprint hashes the encoder's kind,
its weights and the image size, so any change finds no row, the features are computed
again, and the image's rows of other fingerprints are deleted then (invalidation).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import Image, ImageFeatures
from worker.data import image_rgb, model_shape
from worker.engine.features import (
    EncodedImage,
    encode_images,
    encoder_fingerprint,
    pack_encoded,
    unpack_encoded,
)
from worker.engine.model import SegmentationModel

log = logging.getLogger(__name__)


@dataclass
class FeatureCache:
    """Reads and fills the cache for one model (its fingerprints are computed once per size).

    Images of more than ``max_pixels`` are encoded downscaled to it (``worker.data.
    model_shape``); the size is part of the fingerprint, so changing it finds no rows.
    hits/misses count images found/computed by this object, for the job's metrics.
    """

    model: SegmentationModel
    device: torch.device
    batch_size: int = 8
    max_pixels: int | None = None
    hits: int = 0
    misses: int = 0
    stored_bytes: int = 0
    _fingerprints: dict[tuple[int, int], str] = field(default_factory=dict)

    def fingerprint(self, image: Image) -> str:
        """The cache key of ``image``'s features at the size the model sees it."""
        size = (image.height, image.width)
        if self.max_pixels is not None:
            size = model_shape(image, self.max_pixels)
        if size not in self._fingerprints:
            self._fingerprints[size] = encoder_fingerprint(self.model, size)
        return self._fingerprints[size]

    def cached(
        self, session: Session, images: Sequence[Image], *, count_hits: bool = True
    ) -> list[EncodedImage | None]:
        """Each image's stored features, in order, None where there are none; reads only
        (safe in a prefetch thread: it never runs the model). ``count_hits``: False for
        a re-read of features this object has counted already."""
        keys = [self.fingerprint(image) for image in images]
        found: dict[tuple[int, str], bytes] = {}
        ids = [image.id for image in images]
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(ImageFeatures.image_id, ImageFeatures.fingerprint, ImageFeatures.data)
                .where(ImageFeatures.image_id.in_(ids[start : start + 500]))
                .where(ImageFeatures.fingerprint.in_(set(keys)))
            )
            found.update({(image_id, key): data for image_id, key, data in rows})
        result: list[EncodedImage | None] = []
        for image, key in zip(images, keys, strict=True):
            blob = found.get((image.id, key))
            result.append(None if blob is None else unpack_encoded(zlib.decompress(blob)))
        if count_hits:
            self.hits += sum(item is not None for item in result)
        return result

    def features(
        self,
        session: Session,
        images: Sequence[Image],
        cached: Sequence[EncodedImage | None] | None = None,
    ) -> list[EncodedImage]:
        """Each image's encoded features, in order; computes and stores what is missing,
        committing each new row (so call it with nothing else pending). A row another worker
        stored first for the same image and fingerprint is kept; ours is dropped.
        ``cached``: what ``cached()`` found already (it is not read again)."""
        found = list(cached) if cached is not None else self.cached(session, images)
        missing = [position for position, item in enumerate(found) if item is None]
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            pixels = [image_rgb(session, images[p].id, self.max_pixels) for p in batch]
            encoded = encode_images(self.model, pixels, self.device, self.batch_size)
            for position, item in zip(batch, encoded, strict=True):
                image = images[position]
                self._store(session, image, self.fingerprint(image), item)
                found[position] = item
        return [item for item in found if item is not None]

    def _store(self, session: Session, image: Image, key: str, encoded: EncodedImage) -> None:
        # Features of another fingerprint are stale (another encoder, weights or size).
        session.execute(
            delete(ImageFeatures)
            .where(ImageFeatures.image_id == image.id, ImageFeatures.fingerprint != key)
            .execution_options(synchronize_session=False)
        )
        data = zlib.compress(pack_encoded(encoded), 1)
        session.add(
            ImageFeatures(
                image_id=image.id,
                fingerprint=key,
                shapes=[list(f.shape) for f in encoded.features],
                raw_bytes=encoded.nbytes,
                data=data,
            )
        )
        try:
            session.commit()
        except IntegrityError:  # stored meanwhile by another worker (or the image is gone)
            session.rollback()
            return
        self.misses += 1
        self.stored_bytes += len(data)


def feature_sizes(session: Session, image_ids: Sequence[int]) -> dict[int, int]:
    """Stored (compressed) feature bytes per image id, for reports."""
    rows = session.execute(
        select(ImageFeatures.image_id, ImageFeatures.data).where(
            ImageFeatures.image_id.in_(list(image_ids))
        )
    )
    return {image_id: len(data) for image_id, data in rows}


def as_float32(encoded: EncodedImage) -> list[np.ndarray[tuple[int, ...], np.dtype[np.float32]]]:
    """The maps as float32 arrays (tests compare cached and freshly computed features)."""
    return [f.float().numpy() for f in encoded.features]
