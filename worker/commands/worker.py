"""``tessera worker``: run a Celery worker for Tessera's jobs."""

from __future__ import annotations

import logging
import os

import click

from core.logs import configure_logging
from core.settings import Settings, get_settings


@click.command()
@click.option(
    "--queues",
    "-Q",
    default=None,
    help="Comma-separated queues to consume [default: TESSERA_TASK_QUEUE and "
    "TESSERA_INGEST_QUEUE].",
)
@click.option(
    "--concurrency",
    "-c",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Pool processes; one per GPU is the rule (each loads its own model).",
)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
    help="prefork isolates each job in a process (a crash loses one job, not the worker).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="Torch device [default: TESSERA_DEVICE].",
)
@click.option("--hostname", "-n", default=None, help="Celery node name (default: celery@host).")
@click.option(
    "--loglevel",
    "-l",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="[default: TESSERA_LOG_LEVEL]",
)
def worker(
    queues: str | None,
    concurrency: int,
    pool: str,
    device: str | None,
    hostname: str | None,
    loglevel: str | None,
) -> None:
    """Run a worker: superpixel ingest, training, scoring, querying and oracle jobs."""
    # Ask NVML, not the CUDA runtime, whether a GPU exists: the main process then holds no
    # CUDA context that forked pool processes would inherit (torch refuses CUDA after that).
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    settings = get_settings()
    if device is not None:
        settings = settings.model_copy(update={"device": device})
    level = (loglevel or settings.log_level).upper()
    configure_logging(level)  # JSON lines; a job's carry its job_id
    _log_startup(settings, concurrency, pool)

    from celery.signals import worker_process_init

    from core.migrate import upgrade_database
    from worker.celery_app import create_celery_app
    from worker.parent_death import die_with

    upgrade_database(settings)
    _refuse_unloadable_encoders(settings)
    app = create_celery_app(settings)
    # A pool process dies with this one, even when this one is killed by SIGKILL: none is
    # left behind holding a model (on a GPU, its memory) or a job's lease.
    pool_process_arrange = die_with(os.getpid())
    worker_process_init.connect(lambda **_: pool_process_arrange(), weak=False)
    names = queues or ",".join(dict.fromkeys([settings.task_queue, settings.resolved_ingest_queue]))
    argv = ["worker", f"--queues={names}", f"--concurrency={concurrency}", f"--pool={pool}"]
    argv.append(f"--loglevel={level}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)


def _log_startup(settings: Settings, concurrency: int, pool: str) -> None:
    import torch

    from core.broker import broker_connection
    from worker.engine.model import resolve_device

    # Named without initialising CUDA here (see above); each pool process logs its GPU.
    resolved = resolve_device(settings.device)
    device = f"cuda ({torch.cuda.device_count()} GPUs)" if resolved.type == "cuda" else "cpu"
    connection = broker_connection(settings)
    broker = (
        "embedded (files in " + str(settings.broker_dir) + ")"
        if connection.embedded
        else (connection.url.split("@")[-1])
    )
    logging.getLogger("tessera.worker").info(
        "tessera worker: device %s (TESSERA_DEVICE=%s), %s x %s, broker %s",
        device,
        settings.device,
        concurrency,
        pool,
        broker,
    )


def _refuse_unloadable_encoders(settings: Settings) -> None:
    """Exits with every project whose pretrained encoder weights torch refuses, before the
    worker takes any job (a round would otherwise fail half-way).

    The weights are loaded in a spawned process: torch work in this one would start its
    OpenMP thread pool, which forked pool processes inherit broken (they hang at their first
    parallel torch call).
    """
    import multiprocessing

    from worker.encoder_check import encoder_problems
    from worker.parent_death import exit_with_parent

    # It dies with this process: a worker killed while it starts leaves no checker (and no
    # multiprocessing resource tracker, which ends with its last user) loading weights.
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1, initializer=exit_with_parent, initargs=(os.getpid(),)) as checker:
        problems = checker.apply(encoder_problems, (settings,))
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise click.ClickException(
            f"encoder weights that cannot be loaded:\n{lines}\nFix the file, or change the "
            "project's encoder_weights_path or model_architecture, then start the worker again."
        )
