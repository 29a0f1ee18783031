import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.engine.strategies import (
    dynamic_query,
    even_pixel_shares,
    jenks_two_class_threshold,
    pixel_matched_query,
    plan_round,
    query_superpixels,
    random_superpixel_query,
    select_images,
    static_query,
    within_group_sum_of_squares,
)


def brute_force_min_ssw(values: np.ndarray) -> float:
    best = within_group_sum_of_squares(values, np.ones(values.size, bool))
    for size in range(1, values.size):
        for chosen in itertools.combinations(range(values.size), size):
            high = np.zeros(values.size, bool)
            high[list(chosen)] = True
            best = min(best, within_group_sum_of_squares(values, high))
    return best


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.floats(min_value=0, max_value=10, allow_nan=False, allow_subnormal=False),
        min_size=1,
        max_size=9,
    )
)
def test_jenks_split_is_optimal_against_brute_force(raw: list[float]) -> None:
    values = np.array(raw)
    high = values >= jenks_two_class_threshold(values)
    assert high.any()
    ours = within_group_sum_of_squares(values, high)
    assert ours == pytest.approx(brute_force_min_ssw(values), abs=1e-9)
    if (~high).any():
        assert values[~high].max() < values[high].min()


def test_jenks_keeps_ties_together_and_handles_small_inputs() -> None:
    assert jenks_two_class_threshold(np.array([0.3])) == 0.3
    assert jenks_two_class_threshold(np.array([1.0, 1.0, 1.0])) == 1.0
    assert jenks_two_class_threshold(np.array([0.0, 0.0, 5.0, 5.0])) == 5.0
    with pytest.raises(ValueError, match="empty"):
        jenks_two_class_threshold(np.array([]))
    with pytest.raises(ValueError, match="finite"):
        jenks_two_class_threshold(np.array([1.0, np.nan]))


def test_dynamic_query_picks_only_high_cluster() -> None:
    rng = np.random.default_rng(0)
    low = rng.uniform(0.0, 0.2, 40)
    high = rng.uniform(0.8, 1.0, 7)
    scores = rng.permutation(np.concatenate([low, high]))
    expected = np.flatnonzero(scores >= 0.8)
    np.testing.assert_array_equal(dynamic_query(scores), expected)


def test_dynamic_query_count_differs_between_images() -> None:
    confident_image = np.array([0.1, 0.12, 0.11, 0.9, 0.1, 0.13])
    confused_image = np.array([0.1, 0.8, 0.9, 0.85, 0.82, 0.11])
    assert dynamic_query(confident_image).tolist() == [3]
    assert dynamic_query(confused_image).tolist() == [1, 2, 3, 4]


def test_dynamic_query_skips_fully_labeled_superpixels() -> None:
    scores = np.array([np.nan, 0.9, 0.1, np.nan, 0.95, 0.05])
    assert dynamic_query(scores).tolist() == [1, 4]
    assert dynamic_query(np.array([np.nan, np.nan])).size == 0
    # A lone open superpixel is a tie with itself: nothing to split, nothing asked.
    assert dynamic_query(np.array([np.nan, 0.4])).size == 0


@pytest.mark.parametrize(("n", "fraction"), [(10, 0.275), (7, 0.5), (1, 0.275), (40, 1.0)])
def test_static_query_takes_ceil_k_n_highest(n: int, fraction: float) -> None:
    scores = np.random.default_rng(n).uniform(size=n)
    chosen = static_query(scores, fraction)
    assert len(chosen) == math.ceil(fraction * n)
    rest = np.setdiff1d(np.arange(n), chosen)
    if rest.size:
        assert scores[chosen].min() >= scores[rest].max()


def test_static_query_counts_only_candidates() -> None:
    scores = np.array([np.nan] * 6 + [0.1, 0.5, 0.9, 0.3])
    assert static_query(scores, 0.5).tolist() == [7, 8]
    with pytest.raises(ValueError, match="fraction"):
        static_query(scores, 0.0)


def test_random_strategies_are_reproducible_from_seed() -> None:
    scores = np.random.default_rng(1).uniform(size=50)
    first = random_superpixel_query(scores, 0.2, np.random.default_rng(7))
    again = random_superpixel_query(scores, 0.2, np.random.default_rng(7))
    other = random_superpixel_query(scores, 0.2, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert len(first) == 10
    assert not np.array_equal(first, other)
    image_scores = np.arange(30, dtype=float)
    picks = [select_images(image_scores, 5, np.random.default_rng(3), at_random=True) for _ in "ab"]
    np.testing.assert_array_equal(picks[0], picks[1])
    assert not np.array_equal(picks[0], select_images(image_scores, 5, np.random.default_rng(3)))


def test_select_images_by_score_skips_unselectable() -> None:
    scores = np.array([0.2, np.nan, 0.9, 0.5, np.nan])
    assert select_images(scores, 2, np.random.default_rng(0)).tolist() == [2, 3]
    assert select_images(scores, 10, np.random.default_rng(0)).tolist() == [2, 3, 0]


def _plan_inputs() -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    image_scores = np.array([0.9, 0.1, 0.5, 0.7])
    sp_scores = [np.array([0.9, 0.1, 0.85, 0.05]) for _ in range(4)]
    counts = [np.array([100, 100, 100, 100]) for _ in range(4)]
    return image_scores, sp_scores, counts


def test_plan_round_picks_top_images_and_dynamic_superpixels() -> None:
    image_scores, sp_scores, counts = _plan_inputs()
    plan = plan_round("dynamic", image_scores, sp_scores, counts, 2, np.random.default_rng(0))
    assert [q.image_index for q in plan] == [0, 3]
    assert all(q.superpixel_ids.tolist() == [0, 2] for q in plan)
    assert all(q.pixel_count == 200 for q in plan)


def test_plan_round_stops_at_pixel_budget_and_full_takes_all() -> None:
    image_scores, sp_scores, counts = _plan_inputs()
    rng = np.random.default_rng(0)
    budgeted = plan_round("dynamic", image_scores, sp_scores, counts, 4, rng, pixel_budget=450)
    assert [q.image_index for q in budgeted] == [0, 3]
    full = plan_round("full", image_scores, sp_scores, counts, 1, rng)
    assert sorted(q.image_index for q in full) == [0, 1, 2, 3]
    assert all(len(q.superpixel_ids) == 4 for q in full)


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'best'"):
        query_superpixels("best", np.array([0.1]), np.random.default_rng(0))


def test_jenks_is_exact_for_close_scores_around_an_offset() -> None:
    # Scores 1e-6 apart around 1000: uncentred prefix sums of squares lose every digit
    # that separates the splits (issue 11 item 7).
    rng = np.random.default_rng(11)
    for _ in range(200):
        steps = rng.integers(0, 30, size=int(rng.integers(3, 9)))
        values = 1000.0 + steps * 1e-6
        if np.unique(values).size < 2:
            continue
        high = values >= jenks_two_class_threshold(values)
        shifted = values - 1000.0  # the sums of squares do not change with a shift
        assert within_group_sum_of_squares(shifted, high) == pytest.approx(
            brute_force_min_ssw(shifted), rel=1e-6, abs=1e-24
        )


def test_dynamic_query_asks_nothing_when_remaining_superpixels_tie() -> None:
    assert dynamic_query(np.array([0.4, 0.4, np.nan, 0.4])).size == 0
    assert dynamic_query(np.array([np.nan, 0.0])).size == 0
    # One differing superpixel is a high group again.
    assert dynamic_query(np.array([0.4, 0.4, 0.5])).tolist() == [2]


def test_plan_round_passes_over_a_tied_image_to_the_next() -> None:
    image_scores = np.array([0.9, 0.5, 0.1])
    sp_scores = [np.full(4, 0.7), np.array([0.9, 0.1, 0.85, 0.05]), np.array([0.9, 0.1, 0, 0])]
    counts = [np.full(4, 100) for _ in range(3)]
    plan = plan_round("dynamic", image_scores, sp_scores, counts, 2, np.random.default_rng(0))
    assert [q.image_index for q in plan] == [1, 2]
    assert plan[0].superpixel_ids.tolist() == [0, 2]


def test_plan_round_skips_an_image_over_the_budget_and_tries_the_next() -> None:
    image_scores = np.array([0.9, 0.8, 0.7, 0.6])
    sp_scores = [np.array([0.9, 0.1, 0.85, 0.05]) for _ in range(4)]
    counts = [np.array([100, 10, 100, 10]), np.array([300, 10, 300, 10])]
    counts += [np.array([50, 10, 40, 10]), np.array([20, 10, 20, 10])]
    plan = plan_round(
        "dynamic", image_scores, sp_scores, counts, 4, np.random.default_rng(0), pixel_budget=330
    )
    # 200 fits; 600 does not and is skipped; 90 (290) and 40 (330) still fit.
    assert [q.image_index for q in plan] == [0, 2, 3]
    assert sum(q.pixel_count for q in plan) == 330
    with pytest.raises(ValueError, match="pixel_budget"):
        plan_round(
            "dynamic", image_scores, sp_scores, counts, 4, np.random.default_rng(0), pixel_budget=-1
        )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30),
    st.integers(min_value=1, max_value=3000),
)
def test_pixel_matched_query_is_within_half_a_superpixel_of_the_target(
    sizes: list[int], target: int
) -> None:
    counts = np.array(sizes)
    scores = np.random.default_rng(len(sizes)).uniform(size=counts.size)
    ids = pixel_matched_query(scores, counts, target)
    spent = int(counts[ids].sum())
    if target >= counts.sum():
        assert spent == counts.sum()
    else:
        boundary = counts[np.argsort(-scores, kind="stable")][len(ids) - (spent > target)]
        assert abs(spent - target) <= boundary / 2 or len(ids) == 1
    rest = np.setdiff1d(np.arange(counts.size), ids)
    if rest.size:
        assert scores[ids].min() >= scores[rest].max()


def test_static_matched_spends_dynamic_pixels_within_one_superpixel_per_image() -> None:
    rng = np.random.default_rng(5)
    images = 12
    sp_scores = [rng.uniform(size=int(rng.integers(20, 60))) for _ in range(images)]
    counts = [rng.integers(20, 200, size=s.size) for s in sp_scores]
    image_scores = rng.uniform(size=images)
    dynamic = plan_round("dynamic", image_scores, sp_scores, counts, 5, rng)
    dynamic_pixels = sum(q.pixel_count for q in dynamic)
    matched = plan_round(
        "static", image_scores, sp_scores, counts, len(dynamic), rng, matched_pixels=dynamic_pixels
    )
    assert [q.image_index for q in matched] == [q.image_index for q in dynamic]
    spent = [q.pixel_count for q in matched]
    largest = [int(counts[q.image_index].max()) for q in matched]
    assert abs(sum(spent) - dynamic_pixels) <= max(largest)  # one superpixel in the round
    for query, pixels in zip(matched, spent, strict=True):  # each near its even share
        assert abs(pixels - dynamic_pixels / len(dynamic)) <= 2 * counts[query.image_index].max()
    with pytest.raises(ValueError, match="static only"):
        plan_round("dynamic", image_scores, sp_scores, counts, 5, rng, matched_pixels=100)


def test_even_pixel_shares_fill_small_images_first() -> None:
    assert even_pixel_shares(300, [1000, 1000, 1000]) == [100, 100, 100]
    assert even_pixel_shares(300, [1000, 40, 1000]) == [130, 40, 130]
    assert even_pixel_shares(300, [50, 40, 60]) == [50, 40, 60]  # not enough anywhere


def test_static_matched_makes_up_an_image_with_few_open_pixels() -> None:
    image_scores = np.array([0.9, 0.8, 0.7])
    sp_scores = [np.linspace(1, 0, 10), np.array([0.5, np.nan, np.nan]), np.linspace(1, 0, 10)]
    counts = [np.full(10, 20), np.array([30, 0, 0]), np.full(10, 20)]
    plan = plan_round(
        "static", image_scores, sp_scores, counts, 3, np.random.default_rng(0), matched_pixels=210
    )
    assert [q.pixel_count for q in plan] == [80, 30, 100]  # 90 + 90 wanted, 80/100 in 20s
