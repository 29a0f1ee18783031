"""User accounts as the API shows and accepts them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    is_admin: bool
    is_active: bool
    created_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "ann@example.org", "name": "Ann", "password": "long-passphrase"}]
        }
    )

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(default="", max_length=200)
    password: str = Field(min_length=8, max_length=1024)
    is_admin: bool = False


class UserUpdate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"is_active": False}]})

    name: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    is_admin: bool | None = None
    is_active: bool | None = None


class OwnAccountUpdate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"current_password": "old passphrase", "new_password": "new passphrase"}]
        }
    )

    name: str | None = Field(default=None, max_length=200)
    current_password: str | None = Field(default=None, max_length=1024)
    new_password: str | None = Field(default=None, min_length=8, max_length=1024)
