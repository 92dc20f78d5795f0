"""The calibration map: which probability a row gets (a person's 1, its own model's part,
its cell, the curve shifted for its label, else its label's precision), what is kept and
read back, and which map an audit's checked rows choose."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emotag.quality import stats
from emotag.quality.calibration import (
    CHOOSE_FROM,
    Calibrator,
    Checked,
    band,
    calibration_for,
    fit_calibrator,
    fit_curve,
    map_path,
    predictor,
)
from emotag.records import HUMAN, Label

LINE = stats.CalibrationMap("isotonic", ((0.0, 0.0), (1.0, 1.0)))  # says what it is told


def checked(emotion: str, confidence: float | None, right: bool, weight: float = 1.0) -> Checked:
    return Checked("", emotion, confidence, "", weight, right)


@pytest.mark.parametrize(
    ("confidence", "name"),
    [
        (None, "none"),
        (0.0, "<0.7"),
        (0.699, "<0.7"),
        (0.7, "0.7-0.9"),
        (0.9, "0.9-0.99"),
        (0.99, ">=0.99"),
        (1.0, ">=0.99"),
    ],
)
def test_bands_start_at_their_lower_edge(confidence: float | None, name: str) -> None:
    assert band(confidence) == name


def test_a_rows_probability_comes_from_the_most_specific_rule() -> None:
    cells = Calibrator(["m"], "d", 9, "strata", LINE, {"sad": 0.4}, cells={"happy|0.9-0.99": 0.8})
    part = Calibrator(["local"], "d", 9, "isotonic", None, {"happy": 0.3})
    calibrator = Calibrator(
        ["m", "local"],
        "d",
        9,
        "strata",
        LINE,
        {"sad": 0.4, "happy": 0.6},
        offsets={"fear": 1.0},
        parts={"local": part},
        cells=cells.cells,
    )
    assert calibrator(Label("", "sad", 0.2, HUMAN, "m")) == 1.0  # a person is the truth
    assert calibrator(Label("", "happy", 0.95, model="local")) == 0.3  # its model's own map
    assert calibrator(Label("", "happy", 0.95, model="m")) == 0.8  # its cell
    assert calibrator(Label("", "happy", 0.5, model="m")) == pytest.approx(0.5)  # the curve
    assert calibrator(Label("", "fear", 0.5, model="m")) == pytest.approx(stats.shifted(0.5, 1.0))
    assert calibrator(Label("", "sad", None, model="m")) == 0.4  # no confidence: its label's
    assert calibrator(Label("", "angry", None, model="m")) is None  # nothing to go by
    assert Calibrator(["m"], "d", 9, "isotonic", None, {})(Label("", "sad", 0.5)) is None


def test_the_kept_map_reads_back_whole_and_applies_to_its_models_only(tmp_path: Path) -> None:
    part = Calibrator(["local"], "d", 3, "isotonic", LINE, {"happy": 0.3}, cells={"x": 0.2})
    kept = Calibrator(
        ["m"],
        "2026-12-05",
        40,
        "levels",
        stats.CalibrationMap("logistic", (), 2.0, -1.0),
        {"sad": 0.4},
        {"fear": -0.5},
        {"local": part},
        {"0.9000": 0.7},  # a level, as `decimal` writes it
    )
    labels = tmp_path / "labels.csv"
    map_path(labels).write_text(json.dumps(kept.as_dict()), encoding="utf-8")
    assert Calibrator.from_dict(json.loads(map_path(labels).read_text())) == kept
    apply = calibration_for(labels)
    assert apply is not None
    assert apply(Label("", "sad", 0.9, model="m")) == 0.7
    assert apply(Label("", "sad", 0.9, model="other")) is None  # another model's rows
    assert apply(Label("", "sad", 0.9, HUMAN, "other")) == 1.0
    assert calibration_for(tmp_path / "unaudited.csv") is None


def test_a_label_the_model_is_wrong_about_more_often_sits_lower() -> None:
    rng = random.Random(7)
    rows = []
    for _ in range(150):
        for emotion, hit in (("happy", 0.95), ("sad", 0.9), ("fear", 0.3)):
            rows.append(checked(emotion, 0.9, rng.random() < hit))
    fitted = fit_curve(rows, ["m"])
    assert fitted.audited == 450 and fitted.models == ["m"]
    fear, happy = (fitted(Label("", e, 0.9, model="m")) for e in ("fear", "happy"))
    assert fear is not None and happy is not None and fear < 0.45 < 0.8 < happy
    assert fitted.offsets["fear"] < 0 < fitted.offsets["happy"]


def test_labels_that_differ_only_by_chance_share_one_curve() -> None:
    rng = random.Random(3)
    rows = [checked(e, 0.8, rng.random() < 0.8) for _ in range(60) for e in ("happy", "sad")]
    offsets = fit_curve(rows, []).offsets
    assert set(offsets) == {"happy", "sad"} and all(abs(o) < 0.05 for o in offsets.values())
    assert fit_curve([checked("sad", 0.8, True)], []).offsets == {"sad": 0.0}


def test_a_labels_precision_is_smoothed_and_weighted() -> None:
    """Right twice in two checks is not "certain"; a row drawn from a big stratum counts
    for more."""
    two = fit_curve([checked("sad", None, True), checked("sad", None, True)], [])
    assert two.precision == {"sad": pytest.approx((2 + 0.5) / 3)} and two.curve is None
    weighted = fit_curve([checked("sad", None, True, 3.0), checked("sad", None, False, 1.0)], [])
    assert weighted.precision["sad"] == pytest.approx((0.75 * 2 + 0.5) / 3)
    assert two.method == "precision"


def test_from_fifty_checked_rows_a_map_may_be_chosen_below_the_curve_stays() -> None:
    always_wrong = [checked(e, 0.95, e != "fear") for _ in range(25) for e in ("happy", "fear")]
    assert len(always_wrong) == CHOOSE_FROM
    assert fit_calibrator(always_wrong, []).method in ("strata", "levels")
    assert fit_calibrator(always_wrong[:-1], []).method in ("isotonic", "logistic")


def test_a_continuous_score_is_never_mapped_level_by_level() -> None:
    """Past twelve distinct confidences each level holds too few rows to stand alone."""
    rng = random.Random(11)
    levels = [0.5 + i / 40 for i in range(13)]
    rows = [
        checked("sad", c, rng.random() < (0.9 if i % 2 else 0.1))
        for i, c in enumerate(levels)
        for _ in range(12)
    ]
    assert fit_calibrator(rows, []).method != "levels"
    assert fit_calibrator([r for r in rows if r.confidence != levels[-1]], []).method == "levels"


def test_a_cell_of_several_labels_is_its_own_share_not_drawn_to_one_label() -> None:
    shares = {1 / 3: 0.9, 2 / 3: 0.2, 1.0: 0.95}
    rows = [
        checked(e, c, i < p * 20)
        for c, p in shares.items()
        for e in ("sad", "fear")
        for i in range(20)
    ]
    chosen = fit_calibrator(rows, [])
    assert chosen.method == "levels"
    assert chosen.cells["0.6667"] == pytest.approx((0.2 * 40 + 0.5) / 41)  # smoothed share


def test_a_map_from_an_older_version_reads_without_its_newer_fields() -> None:
    old = {
        "models": ["m"],
        "created": "2026-10-01",
        "audited": 80,
        "method": "logistic",
        "curve": {"method": "logistic", "a": 1.0, "b": 0.0},
        "precision": {"sad": 0.5},
    }
    calibrator = Calibrator.from_dict(old)
    assert (calibrator.offsets, calibrator.parts, calibrator.cells) == ({}, {}, {})
    assert calibrator(Label("", "sad", 0.8, model="m")) == pytest.approx(0.8)
    today = datetime.now(UTC).date().isoformat()
    assert fit_curve([checked("sad", None, True)], ["m"]).created == today


def test_a_label_always_wrong_at_high_confidence_chooses_its_own_cell() -> None:
    """No curve through the confidence can follow a label the model is always wrong about
    at the same confidence as labels it is always right about."""
    rows = [checked(e, 0.95, e != "fear") for _ in range(30) for e in ("happy", "fear")]
    chosen = fit_calibrator(rows, [])
    assert chosen.method in ("strata", "levels") or chosen.offsets["fear"] < -2
    fear = chosen(Label("", "fear", 0.95))
    assert fear is not None and fear < 0.1


def test_a_model_of_few_distinct_confidences_is_mapped_level_by_level() -> None:
    """Votes say 1/3, 2/3 or 1: each level its own share, whatever the curve's shape."""
    shares = {1 / 3: 0.9, 2 / 3: 0.2, 1.0: 0.95}  # not monotone: no curve follows it
    rng = random.Random(5)
    rows = [checked("sad", c, rng.random() < p) for c, p in shares.items() for _ in range(40)]
    chosen = fit_calibrator(rows, [])
    assert chosen.method == "levels"
    low, middle = (chosen(Label("", "sad", c)) for c in (1 / 3, 2 / 3))
    assert low is not None and middle is not None and middle < 0.4 < 0.75 < low


def test_a_fold_without_a_value_predicts_the_mean_precision_else_a_coin() -> None:
    train = [(None, True, 1.0, "sad"), (None, False, 1.0, "happy")]
    predict = predictor(train, fit_curve)
    assert predict(None, "fear") == pytest.approx(0.5)
    assert predict(None, "sad") == pytest.approx(0.75)
    assert predictor([(0.9, True, 1.0, "sad")] * 3, fit_curve)(None, "fear") > 0.5
