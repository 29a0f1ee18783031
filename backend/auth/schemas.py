"""Request and response bodies for logging in and managing API tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "lead@example.org", "password": "s3cret-pass"}]}
    )

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "upload script"}]})

    name: str = Field(min_length=1, max_length=200)
    expires_in_days: int | None = Field(default=None, gt=0, le=3650)


class TokenInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class TokenCreated(TokenInfo):
    token: str = Field(description="The secret. Shown this once; only its hash is stored.")
