"""The audit's statistics on seeded simulated datasets whose truth is known: the 95%
interval covers the real accuracy in at least 186 of 200 audits, and the calibrated
probabilities are close to the hidden probability of every row."""

from __future__ import annotations

import random

import pytest

from emotag.emotions import EMOTIONS
from emotag.quality import stats
from emotag.quality.audit import allocate, draw, stratum
from emotag.quality.calibration import Checked, fit_calibrator
from emotag.records import Label

# Labels are common or rare (disgust, fear), and the model is surer of some than others.
SHARES = {"happy": 0.3, "neutral": 0.25, "sad": 0.15, "surprise": 0.12, "angry": 0.1,
          "fear": 0.05, "disgust": 0.03}  # fmt: skip


def overconfident(confidence: float, emotion: str) -> float:
    """The hidden probability that a label is right: below what the model says, and
    worse for the rare labels (a model that says 0.95 is right about 0.8 of the time)."""
    penalty = 0.12 if emotion in ("disgust", "fear") else 0.0
    return max(0.05, min(1.0, 0.5 + 0.65 * (confidence - 0.5) - penalty + 0.05))


def population(
    seed: int, size: int = 6000
) -> tuple[list[Label], dict[str, bool], dict[str, float]]:
    rng = random.Random(seed)
    labels, right, hidden = [], {}, {}
    for i in range(size):
        emotion = rng.choices(list(SHARES), weights=list(SHARES.values()))[0]
        confidence = min(0.999, max(0.3, rng.betavariate(6, 1.2)))
        path = f"/data/{i:06d}.png"
        labels.append(Label(path, emotion, round(confidence, 4), "logprobs", "m"))
        hidden[path] = overconfident(confidence, emotion)
        right[path] = rng.random() < hidden[path]
    return labels, right, hidden


def audit(labels: list[Label], right: dict[str, bool], size: int, seed: int) -> list[Checked]:
    return [
        Checked(s.path, s.emotion, s.confidence, s.stratum, s.weight, right[s.path])
        for s in draw(labels, size, seed)
    ]


def test_the_interval_covers_the_real_accuracy_in_186_of_200_audits() -> None:
    from emotag.quality.audit import _strata

    datasets = [population(1000 + seed) for seed in range(10)]  # 20 audits of each
    covered = 0
    for trial in range(200):
        labels, right, _ = datasets[trial // 20]
        truth = sum(right.values()) / len(right)
        found = stats.stratified(_strata(labels, audit(labels, right, 300, trial)))
        covered += found.low <= truth <= found.high
    assert covered >= 186, covered


def test_an_all_right_stratum_still_leaves_doubt() -> None:
    found = stats.stratified([stats.Stratum(10_000, 50, 50)])
    assert found.value == 1.0 and 0.9 < found.low < 0.95 and found.high == 1.0
    exact = stats.stratified([stats.Stratum(40, 40, 30)])  # every row checked: no doubt
    assert exact == stats.Estimate(0.75, 0.75, 0.75)
    unknown = stats.stratified([stats.Stratum(100, 20, 20), stats.Stratum(100, 0, 0)])
    assert unknown.low < 0.5 and unknown.high == 1.0  # an unchecked half could be anything


def test_calibration_is_close_to_the_hidden_truth_of_every_row() -> None:
    labels, right, hidden = population(7)
    checked = audit(labels, right, 300, 3)
    calibrator = fit_calibrator(checked, ["m"])
    raw_gap = sum(abs(label.confidence - hidden[label.path]) for label in labels) / len(labels)
    gaps = [abs(calibrator(label) - hidden[label.path]) for label in labels]
    assert raw_gap > 0.08  # the model is overconfident
    assert sum(gaps) / len(gaps) < min(0.05, raw_gap / 2), sum(gaps) / len(gaps)
    assert calibrator.method == "logistic"  # 300 rows: too few for isotonic steps
    many = fit_calibrator(audit(labels, right, 1500, 3), ["m"])
    assert many.method == "isotonic"
    assert sum(abs(many(label) - hidden[label.path]) for label in labels) / len(labels) < 0.05


@pytest.mark.parametrize("size", [5, 30, 300])
def test_allocation_draws_every_stratum_and_exactly_the_size(size: int) -> None:
    sizes = {"a": 5000, "b": 40, "c": 3, "d": 900}
    counts = allocate(sizes, size)
    assert sum(counts.values()) == size
    assert all(counts[name] >= 1 for name in sizes) and counts["c"] <= 3
    assert counts["a"] >= counts["d"] >= counts["b"]


def test_the_same_seed_gives_the_same_sample() -> None:
    labels, _, _ = population(1, 2000)
    first, again, other = draw(labels, 100, 5), draw(labels, 100, 5), draw(labels, 100, 6)
    assert first == again and first != other
    assert {s.stratum for s in first} == {stratum(label) for label in labels}
    assert {label.emotion for label in labels} == set(EMOTIONS)


# A model wrong on about 30% of 600 images, overconfident at the few values it says (0.95
# where 80% are right), always right about one label and always wrong about another.
LEVELS = {0.6: (0.15, 0.25), 0.8: (0.2, 0.55), 0.95: (0.4, 0.8), 0.99: (0.25, 0.97)}


def levelled(seed: int, *, confidences: bool = True) -> tuple[list[Label], dict[str, bool]]:
    rng = random.Random(seed)
    labels, right = [], {}
    for i in range(600):
        emotion = rng.choices(list(SHARES), weights=list(SHARES.values()))[0]
        said = rng.choices(list(LEVELS), weights=[share for share, _ in LEVELS.values()])[0]
        hidden = {"happy": 1.0, "surprise": 0.0}.get(emotion, LEVELS[said][1])
        path = f"/data/{i:04d}.png"
        labels.append(Label(path, emotion, said if confidences else None, "logprobs", "m"))
        right[path] = rng.random() < hidden
    return labels, right


def test_calibrated_values_are_honest_where_the_model_says_few_values_and_labels_differ() -> None:
    """The usual reliability-diagram ECE (ten equal-width bins of the calibrated value)
    over all 600 rows against the truth, 200 of them audited: at most 0.07 on every
    seed, where the model's own numbers are off by about 0.16."""
    from emotag.quality.audit import _strata

    for seed in range(8):
        labels, right = levelled(seed)
        checked = audit(labels, right, 200, seed)
        calibrator = fit_calibrator(checked, ["m"])
        raw = stats.ece([(label.confidence, right[label.path], 1.0) for label in labels])
        found = stats.ece([(calibrator(label), right[label.path], 1.0) for label in labels])
        assert raw is not None and found is not None
        assert raw > 0.12 and found <= 0.07, (seed, raw, found, calibrator.method)
        truth = sum(right.values()) / len(right)
        estimate = stats.stratified(_strata(labels, checked))
        assert estimate.low <= truth <= estimate.high
        # Always right about happy, always wrong about surprise: the map says so.
        by_label = {label.emotion: calibrator(label) for label in labels}
        assert by_label["happy"] > 0.9 and by_label["surprise"] < 0.1


def test_every_row_gets_a_value_without_any_confidence() -> None:
    labels, right = levelled(1, confidences=False)
    calibrator = fit_calibrator(audit(labels, right, 200, 1), ["m"])
    values = [calibrator(label) for label in labels]
    assert all(value is not None and 0 < value < 1 for value in values)
    truths = [right[label.path] for label in labels]
    found = stats.ece([(v, r, 1.0) for v, r in zip(values, truths, strict=True)])
    assert found is not None and found <= 0.07
