"""Metrics checked against values computed by hand."""

from __future__ import annotations

import pytest

from emotag.quality.metrics import Agreement, ClassScore, agreement


def test_hand_computed_three_class_example() -> None:
    # reference: a a a b b c ; predicted: a a b b b c
    pairs = [
        ("happy", "happy"),
        ("happy", "happy"),
        ("happy", "sad"),
        ("sad", "sad"),
        ("sad", "sad"),
        ("fear", "fear"),
    ]
    result = agreement(pairs)
    assert result.n == 6
    assert result.accuracy == pytest.approx(5 / 6)
    assert result.labels == ["happy", "fear", "sad"]  # the seven's order, present ones only
    happy, sad, fear = result.per_class["happy"], result.per_class["sad"], result.per_class["fear"]
    assert (happy.precision, happy.recall, happy.support) == (1.0, pytest.approx(2 / 3), 3)
    assert happy.f1 == pytest.approx(0.8)
    assert (sad.precision, sad.recall) == (pytest.approx(2 / 3), 1.0)
    assert (fear.precision, fear.recall, fear.f1) == (1.0, 1.0, 1.0)
    assert result.macro_f1 == pytest.approx((0.8 + 0.8 + 1.0) / 3)
    # p_e = (3*2 + 2*3 + 1*1) / 36 = 13/36; kappa = (5/6 - 13/36) / (1 - 13/36) = 17/23
    assert result.kappa == pytest.approx(17 / 23)
    assert result.confusion["happy"] == {"happy": 2, "fear": 0, "sad": 1}


def test_kappa_textbook_example() -> None:
    # Cohen (1960)-style 2x2: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> kappa 0.4
    pairs = (
        [("happy", "happy")] * 20
        + [("happy", "sad")] * 5
        + [("sad", "happy")] * 10
        + [("sad", "sad")] * 15
    )
    assert agreement(pairs).kappa == pytest.approx(0.4)


def test_perfect_and_chance_agreement() -> None:
    assert agreement([("sad", "sad")] * 4).kappa == 1.0
    chance = agreement([("happy", "happy"), ("happy", "sad"), ("sad", "happy"), ("sad", "sad")])
    assert chance.kappa == pytest.approx(0.0) and chance.accuracy == 0.5


def test_never_predicted_class_has_zero_precision_and_counts_in_macro_f1() -> None:
    result = agreement([("angry", "sad"), ("sad", "sad")])
    assert result.per_class["angry"].precision == 0.0 and result.per_class["angry"].f1 == 0.0
    assert result.macro_f1 == pytest.approx((0 + 2 / 3) / 2)


def test_empty_input_is_all_zeros_never_a_division_by_zero() -> None:
    assert agreement([]) == Agreement(0, 0.0, 0.0, 0.0, {}, {}, [])


def test_a_class_only_predicted_has_no_support_and_zero_recall() -> None:
    result = agreement([("sad", "fear"), ("sad", "sad")])
    assert result.per_class["fear"] == ClassScore(0.0, 0.0, 0.0, 0)
    assert result.per_class["sad"] == ClassScore(1.0, 0.5, pytest.approx(2 / 3), 2)


def test_the_json_form_names_every_figure() -> None:
    """`emotag eval --json` prints it: the keys are part of the interface."""
    assert agreement([("sad", "sad"), ("sad", "fear")]).as_dict() == {
        "n": 2,
        "accuracy": 0.5,
        "kappa": 0.0,
        "macro_f1": pytest.approx(1 / 3),
        "per_class": {
            "fear": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
            "sad": {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
        },
        "confusion": {"fear": {"fear": 0, "sad": 0}, "sad": {"fear": 1, "sad": 1}},
        "labels": ["fear", "sad"],
    }
