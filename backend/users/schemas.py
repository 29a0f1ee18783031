"""User accounts as the API shows and accepts them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backend.auth.password_policy import MAX_LENGTH, MIN_LENGTH, password_problem


def _acceptable(password: str, user_inputs: tuple[str, ...] = ()) -> str:
    problem = password_problem(password, user_inputs)
    if problem is not None:
        raise ValueError(problem)
    return password


NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description=f"At least {MIN_LENGTH} characters, not blank, not a common or easily "
        "guessed password.",
    ),
    AfterValidator(_acceptable),
]


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
            "examples": [
                {"email": "ann@example.org", "name": "Ann", "password": "a long passphrase"}
            ]
        }
    )

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(default="", max_length=200)
    password: NewPassword
    is_admin: bool = False

    @model_validator(mode="after")
    def _not_made_of_the_account(self) -> Self:
        _acceptable(self.password, (self.email, self.name))
        return self


class UserUpdate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"is_active": False}]})

    name: str | None = Field(default=None, max_length=200)
    password: NewPassword | None = None
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
    new_password: NewPassword | None = None
