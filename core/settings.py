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
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL (redis://host:6379/0 in production); unset: the "
        "embedded broker, message files under <data_dir>/broker (one machine, no service).",
    )
    task_queue: str = Field(
        default="tessera", description="Celery queue the API sends round jobs to."
    )
    ingest_queue: str | None = Field(
        default=None,
        description="Queue for superpixel ingest jobs (CPU work); unset: the task queue.",
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        description="production refuses to start with a default or empty secret key.",
    )
    secret_key: str = Field(
        default=DEFAULT_SECRET_KEY,
        description="Keys the stored hashes of session and API tokens; set a long random "
        "value in production (changing it signs everyone out).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Torch device for the worker: auto picks CUDA when present."
    )

    # Worker jobs: a running job renews its lease every lease/4 seconds; a lease that runs
    # out (worker killed, machine lost) is taken over by another worker's watchdog.
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a running job stays claimed without a heartbeat."
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="Runs a job gets when workers are lost; then it fails."
    )
    # The model and its training (DESIGN.md §1.2, §1.4); tests make them tiny.
    model_width: int = Field(default=16, ge=1, description="U-Net channels at full resolution.")
    model_depth: int = Field(default=4, ge=1, description="U-Net down-sampling levels.")
    model_initial_weights: Path | None = Field(
        default=None, description="Local state-dict file the first model starts from."
    )
    train_iterations: int = Field(
        default=1500, ge=1, description="Training iterations of a project's first model."
    )
    finetune_iterations: int = Field(
        default=600, ge=1, description="Fine-tuning iterations of each later round."
    )
    train_batch_size: int = Field(default=8, ge=1, description="Images per training batch.")
    train_crop_size: int | None = Field(
        default=None,
        ge=8,
        description="Random square crops (px) for training; unset: whole images.",
    )
    learning_rate: float = Field(default=1e-3, gt=0, description="Adam learning rate.")
    class_weights: bool = Field(
        default=False, description="Median-frequency class weights over the labeled pixels."
    )
    scoring_batch_size: int = Field(
        default=8, ge=1, description="Images per MC-dropout forward batch."
    )
    scoring_prefetch: bool = Field(
        default=True,
        description="Read and decode the next scoring batch while the model scores this one.",
    )
    train_image_cache_mb: int = Field(
        default=512,
        ge=0,
        description="Decoded training images kept in memory (MiB); the rest are read again.",
    )
    score_chunk_images: int = Field(
        default=64, ge=1, description="Pool images per scoring job (jobs are shared by workers)."
    )
    ingest_chunk_images: int = Field(
        default=50, ge=1, description="Uploaded images per superpixel ingest job."
    )

    # Browser sessions: a random token in an HttpOnly cookie, stored hashed server-side.
    session_cookie_name: str = Field(default="tessera_session", description="Cookie name.")
    session_max_age_seconds: int = Field(
        default=14 * 24 * 3600, gt=0, description="Browser session lifetime."
    )
    session_cookie_secure: bool = Field(
        default=False, description="Send the session cookie only over HTTPS."
    )

    # Login throttling (backend/auth/throttle.py): every attempt counts before its password is
    # checked, so parallel guesses cannot slip past; a client is stopped before it can lock
    # anyone else out, and locks double in length up to a cap.
    login_max_failures: int = Field(
        default=10,
        gt=0,
        description="Failed logins in a row on one account from one client before that "
        "client is locked out of that account.",
    )
    login_client_max_failures: int = Field(
        default=50,
        gt=0,
        description="Failed logins from one client (IP address), any accounts, per window.",
    )
    login_account_max_failures: int = Field(
        default=200,
        gt=0,
        description="Failed logins on one account from all clients together per window "
        "(slows a distributed attack; its lock is short and does not grow).",
    )
    login_window_seconds: int = Field(
        default=900, gt=0, description="The window the failed-login counts cover."
    )
    login_lockout_seconds: int = Field(
        default=300, gt=0, description="The first lock's length; each later one doubles."
    )
    login_max_lockout_seconds: int = Field(
        default=3600, gt=0, description="The longest a lock grows to."
    )

    # Upload limits. Pillow's own bomb guard (89 Mpx) is a second line behind max_image_pixels.
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0, description="Per image file.")
    max_request_bytes: int = Field(
        default=1024 * 1024 * 1024, gt=0, description="Per upload request (all files together)."
    )
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Per request that is not a multipart upload (JSON, a mask PNG): such "
        "bodies are held in memory. Counted as read; Content-Length is not trusted.",
    )
    max_image_pixels: int = Field(default=50_000_000, gt=0, description="Width x height cap.")
    max_zip_entries: int = Field(default=10_000, gt=0, description="Files per zip archive.")
    max_zip_uncompressed_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024,
        gt=0,
        description="Inflated size of one archive (and of one upload's files together).",
    )
    # The worker's share (issue 13): what one upload may queue, what one image costs it, and
    # how long a job may run. A job over its budget fails with the reason, freeing the queue.
    max_upload_pixels: int = Field(
        default=1_000_000_000,
        gt=0,
        description="Pixels of one upload's images together (the superpixel work it queues).",
    )
    work_max_pixels: int = Field(
        default=4_000_000,
        ge=10_000,
        description="Images with more pixels are downscaled (aspect kept) for superpixels; "
        "the map is enlarged back to full size (nearest).",
    )
    model_max_pixels: int = Field(
        default=2048 * 1024,
        ge=10_000,
        description="Images with more pixels are downscaled (aspect kept) for the model: "
        "training, encoder features and scoring run at that size, with masks and superpixel "
        "maps sampled to it (nearest); masks, queries and budgets stay full size.",
    )
    ingest_time_limit_seconds: float = Field(
        default=1800.0, gt=0, description="Time budget of one superpixel ingest job."
    )
    score_time_limit_seconds: float = Field(
        default=3600.0, gt=0, description="Time budget of one scoring chunk job."
    )
    round_time_limit_seconds: float = Field(
        default=12 * 3600.0,
        gt=0,
        description="Time budget of one run of a round job (training, querying).",
    )
    oracle_time_limit_seconds: float = Field(
        default=1800.0, gt=0, description="Time budget of one oracle (simulated labeling) job."
    )
    worker_memory_limit_mb: int | None = Field(
        default=None,
        ge=64,
        description="Heap cap (RLIMIT_DATA) of each worker pool process; a job that needs more "
        "fails with MemoryError. Unset: no cap.",
    )

    # Annotator task assignment: a handed-out task is reserved for this long.
    task_lease_seconds: int = Field(
        default=15 * 60, gt=0, description="How long a handed-out task stays reserved."
    )
    sent_back_hold_seconds: int = Field(
        default=3 * 24 * 3600,
        gt=0,
        description="How long an image a lead sent back stays reserved for its annotator.",
    )
    # Mask saves (backend/annotations): bounded memory under many annotators at once.
    mask_work_slots: int = Field(
        default=4,
        ge=1,
        description="Mask saves decoding, checking and encoding at once per API process "
        "(the others wait their turn).",
    )
    superpixel_cache_mb: int = Field(
        default=64,
        ge=0,
        description="Per-process cache of superpixel maps in the save path's compact form (MB).",
    )

    thumbnail_size: int = Field(default=256, gt=15, description="Longest side of thumbnails (px).")
    large_image_pixels: int = Field(
        default=4_000_000,
        ge=1,
        description="Images with more pixels get a preview made at upload: a JPEG downscaled "
        "to at most 2 Mpx (aspect kept) that the annotator shows while the full image "
        "downloads (GET .../images/{id}/preview). The annotator draws such images at screen "
        "resolution; keep this equal to LARGE_IMAGE_PIXELS in frontend/src/annotator/viewport.ts.",
    )
    frontend_dist_dir: Path | None = Field(default=None, description="Built UI (frontend/dist).")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Server log level."
    )

    def production_problems(self) -> list[str]:
        """What keeps this configuration from being safe to run in production."""
        if self.environment != "production":
            return []
        problems = []
        if not self.secret_key.strip() or self.secret_key == DEFAULT_SECRET_KEY:
            problems.append("TESSERA_SECRET_KEY is empty or the default; set a long random value")
        elif len(self.secret_key) < 32:
            problems.append("TESSERA_SECRET_KEY is shorter than 32 characters")
        return problems

    @property
    def broker_dir(self) -> Path:
        """Where the embedded broker keeps its message files."""
        return (self.data_dir / "broker").resolve()

    @property
    def resolved_ingest_queue(self) -> str:
        return self.ingest_queue or self.task_queue

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tessera.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()
