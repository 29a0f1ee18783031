"""Configuration: one ``Settings`` object read from ``TESSERA_*`` environment variables.

The API and the worker share it. Nothing here touches the disk or the network at import;
``get_settings()`` builds the object once per process on first use.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me"


class Settings(BaseSettings):
    """Every knob of a Tessera deployment; each field is ``TESSERA_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Directory for the embedded SQLite database."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/tessera.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db.",
    )
    broker_url: str = Field(default="redis://127.0.0.1:6379/0", description="Celery broker URL.")
    task_queue: str = Field(
        default="tessera", description="Celery queue the API sends round jobs to."
    )
    secret_key: str = Field(
        default=DEFAULT_SECRET_KEY,
        description="Keys the stored hashes of session and API tokens; set a long random "
        "value in production (changing it signs everyone out).",
    )
    device: str = Field(default="cpu", description="Torch device for the worker (cpu, cuda).")

    # Browser sessions: a random token in an HttpOnly cookie, stored hashed server-side.
    session_cookie_name: str = Field(default="tessera_session", description="Cookie name.")
    session_max_age_seconds: int = Field(
        default=14 * 24 * 3600, gt=0, description="Browser session lifetime."
    )
    session_cookie_secure: bool = Field(
        default=False, description="Send the session cookie only over HTTPS."
    )

    login_max_failures: int = Field(
        default=10, gt=0, description="Wrong passwords in a row before an account is locked."
    )
    login_lockout_seconds: int = Field(
        default=300, gt=0, description="How long such an account refuses logins."
    )

    # Upload limits. Pillow's own bomb guard (89 Mpx) is a second line behind max_image_pixels.
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0, description="Per image file.")
    max_request_bytes: int = Field(
        default=1024 * 1024 * 1024, gt=0, description="Per upload request (all files together)."
    )
    max_image_pixels: int = Field(default=50_000_000, gt=0, description="Width x height cap.")
    max_zip_entries: int = Field(default=10_000, gt=0, description="Files per zip archive.")
    max_zip_uncompressed_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024,
        gt=0,
        description="Inflated size of one archive (and of one upload's files together).",
    )

    # Annotator task assignment: a handed-out task is reserved for this long.
    task_lease_seconds: int = Field(
        default=15 * 60, gt=0, description="How long a handed-out task stays reserved."
    )

    thumbnail_size: int = Field(default=256, gt=15, description="Longest side of thumbnails (px).")
    frontend_dist_dir: Path | None = Field(default=None, description="Built UI (frontend/dist).")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Server log level."
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tessera.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()
