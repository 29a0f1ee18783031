import json
import math
from pathlib import Path

import numpy as np
import pytest

from worker.simulation.loop import QueryRow, RoundRow
from worker.simulation.report import (
    area_table,
    common_pixel_range,
    curves_figure,
    equal_pixel_table,
    format_equal_pixels,
    interpolate_miou,
    main,
    normalised_area,
    read_queries,
    seed_curves,
    write_queries,
    write_rows,
)


def _row(strategy: str, seed: int, round_number: int, pixels: float, miou: float) -> RoundRow:
    return RoundRow(strategy, seed, round_number, pixels, 0, 0, miou, [], 0.0)


def _curve(strategy: str, seed: int, points: list[tuple[float, float]]) -> list[RoundRow]:
    return [_row(strategy, seed, r, x, y) for r, (x, y) in enumerate(points)]


def test_interpolation_and_area_on_a_hand_made_curve() -> None:
    curve = (np.array([0.1, 0.2, 0.4]), np.array([0.3, 0.5, 0.6]))
    np.testing.assert_allclose(
        interpolate_miou(curve, [0.1, 0.15, 0.3, 0.4]), [0.3, 0.4, 0.55, 0.6]
    )
    assert np.isnan(interpolate_miou(curve, [0.05, 0.5])).all()  # no extrapolation
    # Over [0.1, 0.4]: trapezoids 0.1*(0.3+0.5)/2 + 0.2*(0.5+0.6)/2 = 0.04 + 0.11 = 0.15
    assert normalised_area(curve, 0.1, 0.4) == pytest.approx(0.15 / 0.3)
    # Over [0.15, 0.3]: 0.05*(0.4+0.5)/2 + 0.1*(0.5+0.55)/2 = 0.0225 + 0.0525 = 0.075
    assert normalised_area(curve, 0.15, 0.3) == pytest.approx(0.075 / 0.15)
    assert math.isnan(normalised_area(curve, 0.05, 0.3))


def test_equal_pixel_table_interpolates_each_seed_then_averages() -> None:
    rows = [
        *_curve("dynamic", 0, [(0.1, 0.3), (0.2, 0.5), (0.3, 0.6)]),
        *_curve("dynamic", 1, [(0.1, 0.3), (0.3, 0.7)]),
        *_curve("static", 0, [(0.1, 0.3), (0.4, 0.6)]),
        *_curve("static", 1, [(0.1, 0.3), (0.25, 0.45)]),
        _row("full", 0, 0, 1.0, 0.9),
    ]
    curves = seed_curves(rows)
    assert set(curves) == {"dynamic", "static"}
    assert common_pixel_range(curves) == (0.1, 0.25)
    table = {(r.strategy, round(r.pixel_fraction, 6)): r for r in equal_pixel_table(rows, [0.2])}
    dynamic = table[("dynamic", 0.2)]
    assert dynamic.seeds == 2
    assert dynamic.miou_mean == pytest.approx((0.5 + 0.5) / 2)
    static = table[("static", 0.2)]
    assert static.miou_mean == pytest.approx((0.4 + 0.4) / 2)
    spaced = equal_pixel_table(rows, points=4)
    assert sorted({round(r.pixel_fraction, 6) for r in spaced}) == [0.1, 0.15, 0.2, 0.25]
    areas = {a.strategy: a for a in area_table(rows)}
    # dynamic seed 0 over [0.1, 0.25]: 0.1*(0.3+0.5)/2 + 0.05*(0.5+0.55)/2 = 0.06625
    seed0 = 0.06625 / 0.15
    seed1 = (0.3 + 0.6) / 2  # linear 0.3 -> 0.6 at 0.25
    assert areas["dynamic"].area_mean == pytest.approx((seed0 + seed1) / 2)
    assert areas["dynamic"].area_std == pytest.approx(np.std([seed0, seed1], ddof=1))
    text = format_equal_pixels(equal_pixel_table(rows, [0.2, 0.35]), list(areas.values()))
    lines = text.splitlines()
    assert lines[0].startswith("| strategy | mIoU @ 20.00% px | mIoU @ 35.00% px | AUC 10.00")
    assert lines[2] == "| dynamic | 50.0 ± 0.0 | — | 44.6 ± 0.6 |"
    assert lines[3] == "| static | 40.0 ± 0.0 | 55.0 ± 0.0 (1 of 2 seeds) | 37.5 ± 0.0 |"


def _visible_tick_labels(rows: list[RoundRow]) -> list[str]:
    figure = curves_figure(rows)
    figure.canvas.draw()
    axes = figure.axes[0]
    low, high = axes.get_xlim()
    return [
        t.get_text()
        for t in axes.get_xticklabels()
        if t.get_text() and low <= t.get_position()[0] <= high
    ]


@pytest.mark.parametrize(
    "points",
    [
        [(0.005, 0.3), (0.006, 0.4), (0.007, 0.5)],  # 0.5-0.7 %: a tiny linear range
        [(0.01, 0.3), (0.1, 0.5), (0.9, 0.6)],  # 1-90 %: log
        [(0.02, 0.3)],  # one point
    ],
)
def test_plot_x_axis_always_has_tick_labels(points: list[tuple[float, float]]) -> None:
    labels = _visible_tick_labels([*_curve("dynamic", 0, points), _row("full", 0, 0, 1.0, 0.8)])
    assert len(labels) >= 2, labels


def test_queries_round_trip_and_report_main_writes_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = QueryRow("dynamic", 0, 1, "img_7", 0.4, 12, 130, 130, 3000, 43200, 43200, 3000 / 43200)
    write_queries([query], tmp_path)
    assert read_queries(tmp_path / "queries.jsonl") == [query]
    assert (tmp_path / "queries.csv").read_text().splitlines()[1].startswith("dynamic,0,1,img_7,")
    rows = _curve("dynamic", 0, [(0.1, 0.3), (0.2, 0.5)]) + _curve(
        "static", 0, [(0.1, 0.3), (0.3, 0.4)]
    )
    write_rows(rows, tmp_path)
    main([str(tmp_path), "--at", "15"])
    printed = capsys.readouterr().out
    assert "mIoU @ 15.00% px" in printed
    assert "| dynamic | 40.0 ± 0.0 |" in printed
    assert (tmp_path / "equal_pixels.csv").is_file() and (tmp_path / "auc.csv").is_file()
    assert (tmp_path / "miou_vs_pixels.png").stat().st_size > 5000


def test_merge_combines_per_seed_runs_into_one_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = []
    for seed, miou in ((0, 0.4), (1, 0.6)):
        part = tmp_path / f"seed{seed}"
        write_rows(_curve("dynamic", seed, [(0.1, 0.3), (0.2, miou)]), part)
        query = QueryRow("dynamic", seed, 1, f"img_{seed}", 0.4, 12, 130, 130, 3, 43, 43, 3 / 43)
        write_queries([query], part)
        (part / "config.json").write_text(json.dumps({"seeds": [seed], "test_split": "test"}))
        parts.append(part)
    out = tmp_path / "merged"
    main([str(out), "--merge", *map(str, parts)])
    assert "| dynamic | 1 | 2 | 20.00% | 50.0 ± 14.1 |" in capsys.readouterr().out
    assert [q.seed for q in read_queries(out / "queries.jsonl")] == [0, 1]
    assert len((out / "queries.csv").read_text().splitlines()) == 3
    assert json.loads((out / "config.json").read_text())["seeds"] == [0, 1]
