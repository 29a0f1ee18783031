"""The lead's image browser and review decisions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.models import ReviewDecision, Split


class ImageState(enum.StrEnum):
    """Where an image stands, from its newest query (or the query of the round filtered on)."""

    unlabeled = "unlabeled"  # never asked in a round
    asked = "asked"  # queried, not submitted yet
    # Submitted, or again after a send-back, or saved again after its acceptance: to review.
    submitted = "submitted"
    accepted = "accepted"
    sent_back = "sent_back"  # back in its annotator's queue with the lead's comment


class Person(BaseModel):
    id: int
    email: str
    name: str


class BrowserLinks(BaseModel):
    thumbnail: str
    image: str
    mask: str


class BrowserImage(BaseModel):
    image_id: int
    filename: str
    width: int
    height: int
    split: Split
    state: ImageState
    round_id: int | None
    round_number: int | None
    query_id: int | None
    annotator: Person | None = Field(description="Who last saved the query's labels, or holds it.")
    submitted_at: datetime | None = Field(description="When the query's labels were last saved.")
    links: BrowserLinks


class ImagePage(BaseModel):
    total: int = Field(description="Images matching the filters, on all pages.")
    offset: int
    limit: int
    items: list[BrowserImage]


class ReviewRead(BaseModel):
    id: int
    decision: ReviewDecision
    comment: str
    reviewer: Person | None
    annotator: Person | None
    mask_version: int
    created_at: datetime


class ReviewDetail(BrowserImage):
    """One image as the review page shows it: the labels to judge and what happened so far."""

    superpixel_map_id: int | None
    superpixel_ids: list[int] = Field(description="The superpixels the query asked for.")
    mask_version: int
    superpixels: str | None = Field(description="Link to the query's superpixel map.")
    history: list[ReviewRead] = Field(description="Every decision on this image, oldest first.")


class ReviewCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"decision": "sent_back", "comment": "The car's wheels are labeled as road."}
            ]
        }
    )

    decision: ReviewDecision
    comment: str = Field(
        default="",
        max_length=2000,
        description="Required when sending back: what the annotator should fix.",
    )

    @model_validator(mode="after")
    def _comment_when_sent_back(self) -> Self:
        if self.decision == ReviewDecision.sent_back and not self.comment.strip():
            raise ValueError("Say what to fix: a comment is required when sending an image back.")
        return self


class ReviewNote(BaseModel):
    """The lead's comment on a task that was sent back, shown in the workspace."""

    comment: str
    reviewer: str = Field(description="The reviewer's name, or e-mail without a name.")
    created_at: datetime
