"""``tessera simulate``: replay the loop on a labeled dataset and report mIoU vs pixels spent."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NoReturn

import click
import numpy as np
import torch
from tqdm import tqdm

from worker.engine.features import encoder_fingerprint
from worker.engine.model import build_model, model_kinds, resolve_device
from worker.engine.reductions import IMAGE_SCORES
from worker.engine.superpixels import ALGORITHMS, compute_superpixels
from worker.engine.training import STOP_CRITERIA
from worker.engine.uncertainty import METHODS
from worker.simulation.cost import StepTimes, count_work, estimate_run, format_estimate
from worker.simulation.dataset import ClassList, DatasetError, hold_out, read_classes, read_split
from worker.simulation.feature_store import cached_encode
from worker.simulation.loop import (
    ACTIVE_STRATEGIES,
    SIMULATION_STRATEGIES,
    QueryRow,
    RoundRow,
    SeedRun,
    SimulationConfig,
    StoppingSplit,
    Validation,
)
from worker.simulation.report import report, write_queries
from worker.simulation.synthetic import write_dataset


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from error


def _class_ids(text: str, classes: ClassList) -> tuple[int, ...]:
    """Comma-separated class names or ids -> ids; an unknown one is a DatasetError."""
    by_name = {label.name: label.index for label in classes.classes}
    ids = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in by_name:
            ids.append(by_name[part])
        elif part.isdigit() and int(part) < len(classes.classes):
            ids.append(int(part))
        else:
            raise DatasetError(
                f"--background-classes: {part!r} is neither a class name nor an id "
                f"0..{len(classes.classes) - 1} (classes: {', '.join(classes.names)})"
            )
    return tuple(sorted(set(ids)))


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(2)


@click.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path), help="Dataset root.")
@click.option(
    "--generate-demo",
    type=click.Path(path_type=Path),
    help="Write a small generated dataset here (if absent) and simulate on it.",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/simulation"))
@click.option(
    "--strategies",
    default="dynamic,static,random_images,full",
    show_default=True,
    help=f"Comma-separated, from: {', '.join(SIMULATION_STRATEGIES)}.",
)
@click.option("--rounds", default=3, show_default=True, help="Rounds after the initial one.")
@click.option("--initial-images", default=10, show_default=True)
@click.option("--images-per-round", default=10, show_default=True)
@click.option("--superpixel-size", default=16, show_default=True, help="Superpixel side, px.")
@click.option("--superpixel-algorithm", type=click.Choice(sorted(ALGORITHMS)), default="slic")
@click.option("--uncertainty", type=click.Choice(METHODS), default="entropy", show_default=True)
@click.option("--mc-samples", default=20, show_default=True, help="T dropout passes.")
@click.option("--naive-uncertainty", is_flag=True, help="T full passes instead of the cheap path.")
@click.option(
    "--static-fraction",
    default=0.275,
    show_default=True,
    help="static: share of each picked image's open SUPERPIXELS asked (the paper's 27.5%); "
    "its pixel share is reported per round.",
)
@click.option(
    "--image-score",
    type=click.Choice(IMAGE_SCORES),
    default="mean",
    show_default=True,
    help="Image ranking: mean pixel uncertainty, or the paper's foreground-weighted score "
    "(mean over pixels predicted foreground x foreground share).",
)
@click.option(
    "--background-classes",
    default="",
    help="Comma-separated class names or ids that --image-score foreground treats as background.",
)
@click.option(
    "--class-balance",
    is_flag=True,
    help="Weight pixel uncertainty by the inverse labeled frequency of the predicted class.",
)
@click.option("--oracle", type=click.Choice(["exact", "dominant"]), default="exact")
@click.option("--scale", default=1.0, show_default=True, help="Resize factor for images.")
@click.option(
    "--model",
    type=click.Choice(model_kinds()),
    default="efficientnet_lite0",
    show_default=True,
    help="Pretrained encoder (frozen; features computed once per image, only the decoder "
    "trains) or unet (from scratch).",
)
@click.option(
    "--encoder-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Local weights file for the encoder [default: the installed package's].",
)
@click.option("--unfreeze-encoder", is_flag=True, help="Train the encoder too (a GPU's job).")
@click.option("--decoder-channels", default=64, show_default=True)
@click.option(
    "--encoder-zoom",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="2: the encoder sees each image upsampled 2x (finer features for small objects, 4x "
    "the encoding time; the decoder's cost stays).",
)
@click.option("--width", default=16, show_default=True, help="U-Net base width.")
@click.option("--depth", default=4, show_default=True, help="U-Net levels.")
@click.option("--iterations", default=500, show_default=True, help="Initial training (max).")
@click.option("--finetune-iterations", default=200, show_default=True, help="Per round (max).")
@click.option("--full-iterations", default=1000, show_default=True, help="Full supervision (max).")
@click.option(
    "--patience",
    default=4,
    show_default=True,
    help="Early stopping: evaluations without a better --stop-on on the validation split "
    "before a training stops (0: off). Needs a test split for the reported mIoU.",
)
@click.option(
    "--stop-on",
    type=click.Choice(STOP_CRITERIA),
    default="miou",
    show_default=True,
    help="What early stopping watches on the validation split: its mIoU or its loss.",
)
@click.option("--eval-every", default=50, show_default=True, help="Iterations per evaluation.")
@click.option(
    "--keep-previous-model/--no-keep-previous-model",
    default=True,
    show_default=True,
    help="With early stopping, a round's model stays the previous one unless its training "
    "beats it on validation; --no-keep-previous-model takes the best of each training.",
)
@click.option(
    "--warmup-iterations",
    default=0,
    show_default=True,
    help="Learning rate rises linearly over these first iterations of every training, and "
    "--patience counts only evaluations after them.",
)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--learning-rate", default=1e-3, show_default=True)
@click.option("--crop-size", type=int, default=None, help="Train on random square crops.")
@click.option("--class-weights", is_flag=True, help="Median-frequency class weights.")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast (GPU).")
@click.option("--round-pixel-budget", type=int, default=None, help="Pixels per round at most.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--pool-split", default="train", show_default=True)
@click.option("--val-split", default=None, help="Validation split folder [default: val].")
@click.option(
    "--val-fraction",
    type=float,
    default=None,
    help="Hold out this share of the pool split as validation (a dataset without val).",
)
@click.option("--split-seed", default=0, show_default=True, help="Seed of --val-fraction.")
@click.option("--max-pool-images", type=int, default=None, help="Use only the first N.")
@click.option("--max-val-images", type=int, default=None, help="Use only the first N.")
@click.option(
    "--test-split",
    default=None,
    help="Split the reported mIoU is measured on [default: test, when it exists]; "
    "validation then only stops training. Without one, mIoU is on validation and early "
    "stopping is off.",
)
@click.option("--max-test-images", type=int, default=None, help="Use only the first N.")
@click.option(
    "--feature-cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the frozen encoder's features in this folder (one file per split, keyed by "
    "encoder and images) and reuse them; parallel runs compute them once.",
)
@click.option("--features-only", is_flag=True, help="Compute the --feature-cache files, then stop.")
def simulate(
    data_dir: Path | None,
    generate_demo: Path | None,
    out_dir: Path,
    strategies: str,
    seeds: str,
    device: str,
    scale: float,
    pool_split: str,
    val_split: str | None,
    val_fraction: float | None,
    split_seed: int,
    background_classes: str,
    max_pool_images: int | None,
    max_val_images: int | None,
    test_split: str | None,
    max_test_images: int | None,
    feature_cache: Path | None,
    features_only: bool,
    encoder_weights: Path | None,
    naive_uncertainty: bool,
    iterations: int,
    **options: object,
) -> None:
    """Replay the active-learning loop on a labeled dataset with an oracle annotator.

    Writes OUT/rounds.jsonl, OUT/rounds.csv (a row per seed x strategy x round),
    OUT/queries.jsonl, OUT/queries.csv (a row per picked image and round),
    OUT/equal_pixels.csv, OUT/auc.csv and OUT/miou_vs_pixels.png, and prints mean ± sd
    summaries over seeds.
    """
    if (data_dir is None) == (generate_demo is None):
        _fail("give exactly one of --data DIR or --generate-demo DIR")
    if generate_demo is not None:
        if not (generate_demo / "classes.json").is_file():
            write_dataset(generate_demo, {"train": 40, "val": 12}, height=96, width=128)
        data_dir = generate_demo
    assert data_dir is not None
    if val_split is not None and val_fraction is not None:
        _fail("give --val-split NAME or --val-fraction F, not both")
    if features_only and feature_cache is None:
        _fail("--features-only needs --feature-cache DIR")
    try:
        classes = read_classes(data_dir)
        config = SimulationConfig(
            strategies=tuple(s.strip() for s in strategies.split(",") if s.strip()),
            cheap_uncertainty=not naive_uncertainty,
            initial_iterations=iterations,
            background_classes=_class_ids(background_classes, classes),
            encoder_weights=None if encoder_weights is None else str(encoder_weights),
            **options,  # type: ignore[arg-type]
        )
        torch_device = resolve_device(device)
        seed_list = _int_list(seeds)
        if val_fraction is None and not (data_dir / (val_split or "val")).is_dir():
            raise DatasetError(
                f"{data_dir} has no {val_split or 'val'!r} split: name one with --val-split "
                f"(e.g. test) or hold out part of {pool_split!r} with --val-fraction 0.2"
            )
        pool = read_split(data_dir, pool_split, classes, scale)
        if val_fraction is not None:
            pool, validation = hold_out(pool, val_fraction, split_seed)
        else:
            validation = read_split(data_dir, val_split or "val", classes, scale)
        if test_split is not None and not (data_dir / test_split).is_dir():
            raise DatasetError(f"{data_dir} has no {test_split!r} split (--test-split)")
        test_name = test_split or ("test" if (data_dir / "test").is_dir() else None)
        test = None if test_name is None else read_split(data_dir, test_name, classes, scale)
        # The model is built (and its weights checked) before any work is done.
        encoder_model = (
            build_model(config.model_config(len(classes.classes)))
            if config.cached_features
            else None
        )
    except (ValueError, click.BadParameter) as error:  # DatasetError is a ValueError
        _fail(str(error))
    if not seed_list:
        _fail("--seeds must name at least one seed")
    if feature_cache is not None and encoder_model is None:
        # Scripts pass the same options for every model; without features there is no work.
        click.echo(f"--feature-cache unused: model {config.model} has no frozen encoder")
        if features_only:
            return
    pool_images = pool.images[:max_pool_images]
    pool_truth = pool.masks[:max_pool_images]
    ignore = classes.ignore_index
    held_out = (validation.images[:max_val_images], validation.masks[:max_val_images])
    if test is None:
        # Without a test split the validation split is reported, so nothing may stop on it.
        val = Validation(*held_out, len(classes.classes), ignore)
        stopping = None
    else:
        val = Validation(
            test.images[:max_test_images],
            test.masks[:max_test_images],
            len(classes.classes),
            ignore,
        )
        stopping = StoppingSplit.from_ground_truth(*held_out, ignore)
    click.echo(
        f"simulate: {len(pool_images)} pool, {len(held_out[0])} validation and "
        f"{len(val.images) if test is not None else 0} test images "
        f"of {pool_images[0].shape[1]}x{pool_images[0].shape[0]} from {data_dir}, "
        f"model {config.model}, device {torch_device}, {torch.get_num_threads()} CPU threads"
    )
    if stopping is None or config.patience == 0:
        click.echo(
            "early stopping off"
            + ("" if test is not None else " (no test split: mIoU is on validation)")
            + f"; trainings run {config.initial_iterations}/{config.finetune_iterations}/"
            f"{config.full_iterations} iterations"
        )
    else:
        click.echo(
            f"early stopping on validation {config.stop_on} every {config.eval_every} iterations, "
            f"patience {config.patience}; mIoU on {test_name}"
        )
    started = time.perf_counter()
    pool_encoded = None
    if encoder_model is not None:
        # A frozen encoder's features are computed once per image here and shared by every
        # seed, strategy and round (in memory); only decoder and head run after this.
        encoder_model.to(torch_device)
        encode_started = time.perf_counter()
        try:
            store = (encoder_model, torch_device, feature_cache)
            pool_encoded, hit = cached_encode(pool_images, *store)
            val.encoded, _ = cached_encode(val.images, *store)
            if stopping is not None:
                stopping.encoded, _ = cached_encode(stopping.images, *store)
        except (OSError, ValueError) as error:
            _fail(str(error))
        encoded_count = len(pool_encoded) + len(val.encoded) + len(held_out[0]) * bool(stopping)
        size_mb = sum(e.nbytes for e in pool_encoded) / len(pool_encoded) * encoded_count / 1e6
        click.echo(
            f"encoder features: {encoded_count} images "
            + ("read from " if hit else "computed ")
            + (f"{feature_cache} " if feature_cache is not None else "")
            + f"in {time.perf_counter() - encode_started:.0f} s, {size_mb:.0f} MB float16 in "
            f"memory, key {encoder_fingerprint(encoder_model, pool_images[0].shape[:2])}"
        )
        del encoder_model
    if features_only:
        return
    superpixels = [
        compute_superpixels(image, config.superpixel_size, config.superpixel_algorithm)
        for image in tqdm(pool_images, desc="superpixels", unit="img", leave=False)
    ]
    mean_count = np.mean([s.max() + 1 for s in superpixels])
    click.echo(f"superpixels: {mean_count:.0f} per image on average")
    probe = SeedRun(
        pool_images,
        pool_truth,
        superpixels,
        val,
        config,
        seed_list[0],
        torch_device,
        pool_encoded=pool_encoded,
        stopping=stopping,
    )
    work = count_work(
        config,
        len(pool_images),
        len(val.images),
        len(seed_list),
        stopping_images=0 if stopping is None else len(stopping.images),
    )
    estimate = estimate_run(
        config, work, StepTimes(*probe.step_times()), torch_device.type, torch.get_num_threads()
    )
    click.echo(format_estimate(estimate))

    active = sum(s in ACTIVE_STRATEGIES for s in config.strategies)
    rows_per_seed = active * (config.rounds + 1) + ("full" in config.strategies)
    rows: list[RoundRow] = []
    queries: list[QueryRow] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    # Rows are appended as they come, so an interrupted run keeps what it measured.
    with (
        tqdm(total=rows_per_seed * len(seed_list), desc="simulate", unit="round") as bar,
        (out_dir / "rounds.jsonl").open("w") as live_rows,
        (out_dir / "queries.jsonl").open("w") as live_queries,
    ):

        def on_query(query: QueryRow) -> None:
            live_queries.write(json.dumps(query.as_dict()) + "\n")
            live_queries.flush()

        def on_row(row: RoundRow) -> None:
            live_rows.write(json.dumps(row.as_dict()) + "\n")
            live_rows.flush()
            bar.update(1)
            bar.set_postfix_str(
                f"seed {row.seed} {row.strategy} r{row.round} "
                f"mIoU {100 * row.val_miou:.1f} pixels {100 * row.labeled_pixel_fraction:.1f}%"
            )

        for seed in seed_list:
            run = SeedRun(
                pool_images,
                pool_truth,
                superpixels,
                val,
                config,
                seed,
                torch_device,
                on_row,
                image_names=pool.names[:max_pool_images],
                on_query=on_query,
                pool_encoded=pool_encoded,
                stopping=stopping,
            )
            rows.extend(run.run())
            queries.extend(run.queries)
    write_queries(queries, out_dir)
    text = report(rows, out_dir, title=data_dir.name, split="test" if test_name else "validation")
    (out_dir / "config.json").write_text(
        json.dumps(
            {
                "data": str(data_dir),
                "seeds": seed_list,
                "scale": scale,
                "val_split": val_split,
                "test_split": test_name,
                "val_fraction": val_fraction,
                "split_seed": split_seed,
                **vars(config),
            },
            indent=1,
            default=str,
        )
    )
    click.echo(text)
    click.echo(
        f"wrote rounds, queries, equal_pixels and auc (.csv/.jsonl) and miou_vs_pixels.png "
        f"to {out_dir} in {time.perf_counter() - started:.0f} s"
    )
