"""The audit's statistics, each stated as the rule a reader of docs/audit.md relies on."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emotag.quality import stats
from emotag.quality.stats import (
    ISOTONIC_FROM,
    CalibrationMap,
    Estimate,
    Point,
    Stratum,
    bin_of,
    cross_validated,
    ece,
    fit,
    isotonic,
    logistic,
    logit,
    reliability,
    shifted,
    stratified,
)

strata = st.lists(
    st.builds(
        lambda size, audited, right: Stratum(size, min(audited, size), min(right, audited, size)),
        st.integers(1, 5000),
        st.integers(0, 200),
        st.integers(0, 200),
    ),
    min_size=1,
    max_size=8,
)


@given(strata)
def test_the_interval_holds_the_estimate_and_stays_in_0_1(found: list[Stratum]) -> None:
    estimate = stratified(found)
    assert 0.0 <= estimate.low <= estimate.high <= 1.0
    if any(s.audited for s in found):
        assert estimate.low <= estimate.value <= estimate.high


def test_the_estimate_weighs_each_stratum_by_its_size() -> None:
    estimate = stratified([Stratum(100, 10, 5), Stratum(300, 10, 9)])
    assert estimate.value == pytest.approx(0.25 * 0.5 + 0.75 * 0.9)
    assert estimate.low < estimate.value < estimate.high


def test_rows_all_checked_leave_no_doubt_and_an_all_right_sample_some() -> None:
    assert stratified([Stratum(40, 40, 30)]) == Estimate(0.75, 0.75, 0.75)
    sure = stratified([Stratum(10_000, 50, 50)])
    assert sure.value == 1.0 and 0.9 < sure.low < 0.95 and sure.high == 1.0  # Wilson, not Wald


def test_an_unchecked_stratum_could_be_anything() -> None:
    half = stratified([Stratum(100, 20, 20), Stratum(100, 0, 0)])
    checked = stratified([Stratum(100, 20, 20)])
    assert half.low == pytest.approx(checked.low / 2) and half.high == 1.0
    nothing = stratified([Stratum(100, 0, 0)])
    assert math.isnan(nothing.value) and (nothing.low, nothing.high) == (0.0, 1.0)
    empty = stratified([])
    assert math.isnan(empty.value) and (empty.low, empty.high) == (0.0, 1.0)


def test_more_checked_rows_and_less_confidence_narrow_the_interval() -> None:
    few = stratified([Stratum(10_000, 30, 24)])
    many = stratified([Stratum(10_000, 300, 240)])
    assert few.high - few.low > many.high - many.low > 0
    wide = stratified([Stratum(10_000, 300, 240)], z=3.0)
    assert wide.high - wide.low > many.high - many.low
    # The Wilson interval at 300 rows, 80% right: the textbook bounds.
    n, p, z = 300, 0.8, stats.Z95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert many.low == pytest.approx(centre - half, abs=0.005)
    assert many.high == pytest.approx(centre + half, abs=0.005)


def test_unequal_weights_count_as_fewer_rows() -> None:
    """Kish: a sample spread over strata of very unequal size informs less than its count."""
    even = stratified([Stratum(1000, 100, 80), Stratum(1000, 100, 80)])
    uneven = stratified([Stratum(10_000, 100, 80), Stratum(100, 100, 80)])
    assert uneven.high - uneven.low > even.high - even.low


def test_a_map_is_a_curve_or_steps_joined_by_straight_lines() -> None:
    curve = CalibrationMap("logistic", a=2.0, b=-1.0)
    assert curve(0.7) == pytest.approx(1 / (1 + math.exp(-(2 * math.log(0.7 / 0.3) - 1))))
    steps = CalibrationMap("isotonic", ((0.2, 0.1), (0.8, 0.9)))
    assert steps(0.5) == pytest.approx(0.5) and steps(0.35) == pytest.approx(0.3)
    assert steps(0.1) == 0.1 and steps(0.95) == 0.9 and steps(0.8) == 0.9
    assert CalibrationMap("isotonic", ((0.5, 0.2), (0.5, 0.6)))(0.5) == 0.2
    assert math.isnan(CalibrationMap("isotonic")(0.5))


def test_few_rows_get_a_curve_and_many_get_steps() -> None:
    rng = random.Random(1)
    points = [Point(rng.random(), rng.random() < 0.7) for _ in range(ISOTONIC_FROM)]
    assert fit(points[:-1]).method == "logistic" and fit(points).method == "isotonic"


@given(st.lists(st.tuples(st.floats(0.01, 0.99), st.booleans(), st.floats(0.1, 5)), min_size=1))
def test_isotonic_steps_never_go_down_and_keep_the_weighted_share(
    rows: list[tuple[float, bool, float]],
) -> None:
    steps = isotonic([Point(c, r, w) for c, r, w in rows])
    ys = [y for _, y in steps.points]
    xs = [x for x, _ in steps.points]
    assert ys == sorted(ys)
    # The steps' places are weighted means: equal confidences may differ in the last bit.
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(xs))
    total = sum(w for _, _, w in rows)
    right = sum(w for _, r, w in rows if r)
    # Pooling keeps each block's weighted share, so the blocks hold the whole share.
    assert 0.0 <= ys[0] <= right / total + 1e-9 <= ys[-1] + 2e-9


def test_isotonic_pools_a_violation_into_its_weighted_mean() -> None:
    steps = isotonic([Point(0.2, True, 1.0), Point(0.4, False, 3.0), Point(0.9, True)])
    assert steps.points == (
        pytest.approx((0.35, 0.25)),
        (0.9, 1.0),
    )


def test_the_logistic_fit_finds_the_curve_the_data_came_from() -> None:
    rng = random.Random(7)
    points = []
    for _ in range(4000):
        c = rng.uniform(0.05, 0.99)
        truth = 1 / (1 + math.exp(-(0.6 * logit(c) - 0.5)))
        points.append(Point(c, rng.random() < truth))
    curve = logistic(points)
    assert curve.a == pytest.approx(0.6, abs=0.1) and curve.b == pytest.approx(-0.5, abs=0.1)
    weighted = logistic([Point(p.confidence, p.right, 2.0) for p in points])
    assert weighted.a == pytest.approx(curve.a, abs=0.05)


def test_the_logistic_fit_is_defined_where_the_data_say_little() -> None:
    assert logistic([]) == CalibrationMap("logistic", a=1.0, b=0.0)
    same = logistic([Point(0.9, i % 4 != 0) for i in range(40)])  # one confidence, 75% right
    assert same(0.9) == pytest.approx(0.75, abs=0.03)
    right = logistic([Point(0.9, True) for _ in range(10)])
    assert 0.9 < right(0.9) < 1.0  # Platt's targets: all right is not certainty


def test_ece_is_the_weighted_gap_between_said_and_seen() -> None:
    assert ece([(0.9, True, 1.0), (0.9, False, 1.0)]) == pytest.approx(0.4)
    assert ece([(0.8, True, 4.0), (0.8, False, 1.0)]) == pytest.approx(0.0)
    assert ece([(0.2, True, 1.0), (0.9, True, 3.0)]) == pytest.approx(0.25 * 0.8 + 0.75 * 0.1)
    grouped = ece([(0.2, True, 1.0), (0.9, False, 1.0)], groups=["a", "a"])
    assert grouped == pytest.approx(abs(0.55 - 0.5))
    assert ece([]) is None and ece([(0.5, True, 0.0)]) is None


def test_the_reliability_diagram_has_one_point_per_bin_in_order() -> None:
    rows = [(0.92, True, 1.0), (0.98, False, 1.0), (0.15, False, 2.0), (0.55, True, 1.0)]
    assert reliability(rows) == [
        (pytest.approx(0.15), 0.0, 2.0),
        (pytest.approx(0.55), 1.0, 1.0),
        (pytest.approx(0.95), 0.5, 2.0),
    ]


@pytest.mark.parametrize(
    ("p", "expected"), [(0.0, 0), (0.099, 0), (0.1, 1), (0.35, 3), (0.999, 9), (1.0, 9), (-1, 0)]
)
def test_a_probability_falls_in_one_of_ten_bins(p: float, expected: int) -> None:
    assert bin_of(p) == expected
    assert bin_of(0.5, bins=4) == 2


def test_cross_validation_never_predicts_a_row_from_itself() -> None:
    rows = [(0.5, True, 1.0, f"row{i}") for i in range(12)]

    def predictor(train: list[tuple[float | None, bool, float, str]]):  # type: ignore[no-untyped-def]
        seen = {label for *_, label in train}
        return lambda confidence, label: 1.0 if label in seen else float(len(train))

    predicted = cross_validated(rows, predictor)
    assert predicted == [float(12 - len(range(fold, 12, 5))) for fold in [i % 5 for i in range(12)]]
    assert cross_validated(rows[:3], predictor) == [2.0, 2.0, 2.0]  # fewer rows than folds


@given(st.floats(0.05, 0.95), st.one_of(st.floats(-2, -0.01), st.floats(0.01, 2)))
def test_a_shift_moves_a_probability_along_the_logit(p: float, offset: float) -> None:
    assert shifted(p, 0.0) == p
    moved = shifted(p, offset)
    assert logit(moved) == pytest.approx(logit(p) + offset, abs=1e-6)
    assert (moved > p) == (offset > 0)


def test_logit_is_clamped_and_the_identity_curve_gives_back_what_it_is_given() -> None:
    assert logit(0.5) == 0.0 and logit(0.0) == logit(1e-4)
    assert logit(1.0) == pytest.approx(-logit(0.0)) == pytest.approx(math.log(9999))
    identity = CalibrationMap("logistic")
    assert [identity(p) for p in (0.1, 0.5, 0.8)] == pytest.approx([0.1, 0.5, 0.8])
    steep = CalibrationMap("logistic", a=1000.0)  # no overflow however steep the curve
    assert steep(0.99) == 1.0 and steep(0.01) == 0.0
    assert CalibrationMap("logistic", b=-2.0)(0.5) == pytest.approx(1 / (1 + math.exp(2)))


def test_shrunk_is_dersimonian_and_lairds_estimate_worked_by_hand() -> None:
    """Weights 10, 10, 5 (total 25); centre (20 + 0 + 5) / 25 = 1; Q = 10 + 10 + 0 = 20;
    C = 25 - (100 + 100 + 25) / 25 = 16; tau² = (20 - 2) / 16 = 1.125; each gap times
    tau² / (tau² + its variance)."""
    gaps = {"a": (2.0, 0.1), "b": (0.0, 0.1), "c": (1.0, 0.2)}
    assert stats.shrunk(gaps) == pytest.approx(
        {"a": 2 * 1.125 / 1.225, "b": 0.0, "c": 1.125 / 1.325}
    )


def test_gaps_no_wider_than_their_noise_shrink_to_nothing() -> None:
    """Q below its degrees of freedom: no real difference between the groups."""
    assert stats.shrunk({"a": (0.1, 0.5), "b": (-0.1, 0.5)}) == {"a": 0.0, "b": 0.0}
    two = stats.shrunk({"a": (3.0, 0.01), "b": (-3.0, 0.01)})  # two groups far apart
    assert two["a"] == pytest.approx(3.0, rel=0.01) and two["b"] == pytest.approx(-3.0, rel=0.01)
    assert stats.shrunk({"a": (3.0, 0.01)}) == {"a": 0.0}  # one group: nothing to compare
    assert stats.shrunk({}) == {}
