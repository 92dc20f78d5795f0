"""`emotag audit`: how good are the labels? A person checks a stratified random sample;
the answers give the whole CSV's accuracy with an honest interval, the precision of each
label, and a calibrated probability of being right for every row.

`sample` draws the sample by label by confidence band, so rare labels and both sure and
unsure answers are checked, and writes `sample.csv` and a keyboard-first `audit.html`.
`score` reads the person's `truth.csv`, estimates, fits the calibration map, keeps it
beside the labels CSV (`<stem>.calibration.json`, with its provenance) and writes the
`calibrated` column. `tag` applies the map to new rows of the models it was fitted for.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from emotag.emotions import EMOTIONS
from emotag.errors import InputError
from emotag.files.atomic import atomic_text
from emotag.files.csvfiles import LABEL_COLUMNS, read_rows, read_whole, write_csv_atomic
from emotag.files.rewrites import rewriting
from emotag.quality import stats
from emotag.quality.calibration import (
    Calibrator,
    Checked,
    band,
    cv_rows,
    fit_calibrator,
    map_path,
    predictor,
)
from emotag.records import HUMAN, Label, decimal

SAMPLE_COLUMNS: Final = ("path", "emotion", "confidence", "stratum", "weight")
TRUTH_COLUMNS: Final = ("path", "truth")
SKIP: Final = "skip"  # no face, or the person cannot tell
# Upper ends of the confidence bands (a band holds confidence < its end; the last one, 1).
KEEP_AT: Final = 0.9  # the threshold of the sentence a person can act on


def stratum(label: Label) -> str:
    """label by confidence band; a person's correction is its own stratum (always right).
    Where the offline model of a cascade disagreed with the final label, the row is in a
    stratum of its own, so those doubtful rows get their own floor in the sample."""
    if label.confidence_source == HUMAN:
        return f"{label.emotion}|{HUMAN}"
    disagree = "|disagree" if label.local_emotion not in ("", label.emotion) else ""
    return f"{label.emotion}|{band(label.confidence)}{disagree}"


@dataclass(frozen=True, slots=True)
class Sampled:
    path: str
    emotion: str
    confidence: float | None
    stratum: str
    weight: float  # rows of the labels CSV this one stands for

    def as_row(self) -> dict[str, str]:
        return {
            "path": self.path,
            "emotion": self.emotion,
            "confidence": decimal(self.confidence),
            "stratum": self.stratum,
            "weight": f"{self.weight:.6g}",
        }


@dataclass
class SampleResult:
    sample_csv: Path
    page: Path  # where the sample's page goes (`pages.audit_page.build_page` writes it)
    size: int
    population: int
    strata: dict[str, tuple[int, int]]  # stratum -> (rows, drawn)
    drawn: list[Sampled] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample_csv": str(self.sample_csv),
            "page": str(self.page),
            "size": self.size,
            "population": self.population,
            "strata": {name: {"rows": n, "drawn": k} for name, (n, k) in self.strata.items()},
        }


def draw(labels: Iterable[Label], size: int, seed: int) -> list[Sampled]:
    """A stratified random sample; the same labels and seed give the same sample."""
    groups: dict[str, list[Label]] = defaultdict(list)
    for label in sorted(labels, key=lambda row: row.path):
        if label.confidence_source != HUMAN:  # a person's label needs no second look
            groups[stratum(label)].append(label)
    counts = allocate({name: len(rows) for name, rows in sorted(groups.items())}, size)
    rng = random.Random(seed)
    drawn = [
        Sampled(row.path, row.emotion, row.confidence, name, len(groups[name]) / count)
        for name, count in counts.items()
        if count
        for row in rng.sample(groups[name], count)
    ]
    rng.shuffle(drawn)  # one stratum after another would anchor the person's eye
    return drawn


def allocate(sizes: dict[str, int], size: int) -> dict[str, int]:
    """How many rows to draw per stratum: a floor in every one (so rare labels are
    checked), the rest in proportion to what each stratum has left."""
    total = sum(sizes.values())
    size = min(size, total)
    if not sizes or size <= 0:
        return dict.fromkeys(sizes, 0)
    floor = max(1, min(10, size // (2 * len(sizes))))
    counts = {name: min(n, floor) for name, n in sizes.items()}
    if sum(counts.values()) > size:  # more strata than rows to draw: the largest first
        counts = dict.fromkeys(sizes, 0)
        for name in sorted(sizes, key=lambda s: -sizes[s])[:size]:
            counts[name] = 1
        return counts
    while (left := size - sum(counts.values())) > 0:
        room = {name: sizes[name] - counts[name] for name in sizes if sizes[name] > counts[name]}
        spare = sum(room.values())
        shares = {name: left * r / spare for name, r in room.items()}
        given = {name: min(room[name], int(share)) for name, share in shares.items()}
        if not any(given.values()):  # hand out the remainders, largest first
            for name in sorted(shares, key=lambda s: shares[s] - int(shares[s]), reverse=True):
                given[name] = 1
                if sum(given.values()) >= left:
                    break
        for name, extra in given.items():
            counts[name] += extra
    return counts


def sample(labels_csv: Path, size: int, seed: int, folder: Path) -> SampleResult:
    """`audit sample`: draw, then write `sample.csv` into `folder`."""
    labels = _labels(labels_csv)
    drawn = draw(labels, size, seed)
    if not drawn:
        raise InputError(f"{labels_csv} has no model labels to audit.")
    sample_csv = folder / "sample.csv"
    write_csv_atomic(sample_csv, SAMPLE_COLUMNS, (row.as_row() for row in drawn))
    sizes = Counter(stratum(label) for label in labels if label.confidence_source != HUMAN)
    taken = Counter(row.stratum for row in drawn)
    strata = {name: (n, taken[name]) for name, n in sorted(sizes.items())}
    page = folder / "audit.html"
    return SampleResult(sample_csv, page, len(drawn), sum(sizes.values()), strata, drawn)


def _labels(labels_csv: Path) -> list[Label]:
    if not labels_csv.is_file():
        raise InputError(f"Labels CSV not found: {labels_csv}")
    return list(
        read_whole(labels_csv, "an audit would leave them out of its count").labels.values()
    )


def read_sample(path: Path) -> list[Sampled]:
    """The sample's rows; a weight that is no positive number, or a confidence outside
    [0, 1] (NaN, a hand edit), is refused with its line."""
    sampled = []
    for line, r in read_rows(path, SAMPLE_COLUMNS, "an audit sample"):
        try:
            confidence = float(r["confidence"]) if r["confidence"] else None
            weight = float(r["weight"])
        except (ValueError, TypeError) as exc:  # TypeError: a short row's missing field
            raise InputError(
                f"{path}:{line}: not a row 'emotag audit sample' wrote ({exc})."
            ) from exc
        if not (math.isfinite(weight) and weight > 0) or (
            confidence is not None and not 0.0 <= confidence <= 1.0
        ):
            raise InputError(
                f"{path}:{line}: weight {r['weight']!r} or confidence {r['confidence']!r} is "
                "not what 'emotag audit sample' writes; draw the sample again."
            )
        sampled.append(Sampled(r["path"], r["emotion"], confidence, r["stratum"], weight))
    return sampled


def read_truth(path: Path) -> dict[str, str]:
    """path -> one of the seven, or "skip"; anything else is refused with its line."""
    truth: dict[str, str] = {}
    for line, row in read_rows(path, TRUTH_COLUMNS, "a truth CSV"):
        value = (row["truth"] or "").strip().lower()
        if value not in (*EMOTIONS, SKIP):
            raise InputError(
                f"{path}:{line}: truth '{row['truth'] or ''}' is not one of the seven emotions "
                f"or '{SKIP}'."
            )
        truth[row["path"]] = value
    return truth


@dataclass
class LabelScore:
    precision: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": _round(self.precision),
            "ci95": [_round(self.low), _round(self.high)],
            "n": self.n,
        }


@dataclass
class Keep:
    """Keep the labels with calibrated >= threshold: how many, how many of them wrong."""

    threshold: float
    kept: int
    error: float
    low: float
    high: float

    def sentence(self) -> str:
        if not self.kept:
            return f"No label has calibrated >= {self.threshold:g}; review the least sure first."
        return (
            f"Keep the {self.kept:,} labels with calibrated >= {self.threshold:g}: about "
            f"{self.error:.1%} ({self.low:.1%}-{self.high:.1%}) of them are wrong."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "kept": self.kept,
            "error": _round(self.error),
            "error_ci95": [_round(self.low), _round(self.high)],
            "sentence": self.sentence(),
        }


@dataclass
class AuditScore:
    labels: int
    audited: int
    skipped: int
    accuracy: stats.Estimate
    per_label: dict[str, LabelScore]
    ece_raw: float | None
    ece_calibrated: float | None
    keep: Keep
    calibrator: Calibrator
    calibrated: int = 0  # rows of the labels CSV given a calibrated value
    map_file: str = ""
    raw_reliability: list[tuple[float, float, float]] = field(default_factory=list)
    calibrated_reliability: list[tuple[float, float, float]] = field(default_factory=list)
    coverage: list[tuple[float, float]] = field(default_factory=list)  # (share kept, accuracy)

    def as_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "audited": self.audited,
            "skipped": self.skipped,
            "accuracy": _round(self.accuracy.value),
            "accuracy_ci95": [_round(self.accuracy.low), _round(self.accuracy.high)],
            "per_label": {name: score.as_dict() for name, score in self.per_label.items()},
            "ece_raw": _round(self.ece_raw),
            "ece_calibrated": _round(self.ece_calibrated),
            "keep": self.keep.as_dict(),
            "calibration": self.calibrator.as_dict() | {"file": self.map_file},
            "calibrated_rows": self.calibrated,
        }


def _round(value: float | None) -> float | None:
    return None if value is None or value != value else round(value, 4)


def score(
    labels_csv: Path, truth_csv: Path, sample_csv: Path | None = None, *, write: bool = True
) -> AuditScore:
    """`audit score`: estimate from the person's answers; keep the map and write the
    `calibrated` column (under the run lock) unless `write` is False."""
    sample_csv = sample_csv or truth_csv.with_name("sample.csv")
    drawn = read_sample(sample_csv)
    truth = read_truth(truth_csv)
    labels = _labels(labels_csv)
    checked = [
        Checked(
            row.path,
            row.emotion,
            row.confidence,
            row.stratum,
            row.weight,
            truth[row.path] == row.emotion,
        )
        for row in drawn
        if truth.get(row.path, SKIP) != SKIP
    ]
    skipped = sum(1 for row in drawn if truth.get(row.path) == SKIP)
    if not checked:
        raise InputError(f"{truth_csv} answers none of the rows of {sample_csv}.")
    model_of = {label.path: label.model for label in labels}
    models = sorted({model_of[r.path] for r in drawn if r.path in model_of})
    calibrator = fit_calibrator(checked, models)
    if len(models) > 1:
        calibrator.parts = {
            model: fit_calibrator(mine, [model])
            for model in models
            if (mine := [c for c in checked if model_of.get(c.path) == model])
        }
    raw = [(c.confidence, c.right, c.weight) for c in checked if c.confidence is not None]
    # Cross-validated, and measured on the same groups as the raw confidence (its bins;
    # by label where there is none): binning by a prediction that differs between folds
    # only by noise would sort the folds apart and measure that noise.
    probability = stats.cross_validated(cv_rows(checked), predictor)
    predicted = [(p, c.right, c.weight) for p, c in zip(probability, checked, strict=True)]
    groups = [
        stats.bin_of(c.confidence) if c.confidence is not None else c.emotion for c in checked
    ]
    result = AuditScore(
        labels=len(labels),
        audited=len(checked),
        skipped=skipped,
        accuracy=stats.stratified(_strata(labels, checked)),
        per_label=_per_label(labels, checked),
        ece_raw=stats.ece(raw),
        ece_calibrated=stats.ece(predicted, groups),
        keep=_keep(labels, checked, calibrator),
        calibrator=calibrator,
    )
    result.raw_reliability = stats.reliability(raw)
    result.calibrated_reliability = stats.reliability(predicted)
    result.coverage = _coverage(checked, calibrator)
    if write:
        result.map_file = str(map_path(labels_csv))
        result.calibrated = write_calibrated(labels_csv, calibrator)
    return result


def _strata(labels: Iterable[Label], checked: Sequence[Checked]) -> list[stats.Stratum]:
    sizes = Counter(stratum(label) for label in labels)
    audited = Counter(c.stratum for c in checked)
    right = Counter(c.stratum for c in checked if c.right)
    strata = []
    for name, size in sizes.items():
        if name.endswith(f"|{HUMAN}"):
            strata.append(stats.Stratum(size, size, size))  # a person's label is the truth
        else:
            strata.append(stats.Stratum(size, audited[name], right[name]))
    return strata


def _per_label(labels: Sequence[Label], checked: Sequence[Checked]) -> dict[str, LabelScore]:
    scores = {}
    for emotion in EMOTIONS:
        mine = [c for c in checked if c.emotion == emotion]
        if not any(label.emotion == emotion for label in labels):
            continue
        found = stats.stratified(_strata((r for r in labels if r.emotion == emotion), mine))
        scores[emotion] = LabelScore(found.value, found.low, found.high, len(mine))
    return scores


def _keep(labels: Sequence[Label], checked: Sequence[Checked], calibrator: Calibrator) -> Keep:
    """Post-stratified: within each stratum, only the rows at or above the threshold."""
    sure = {label.path for label in labels if (calibrator(label) or 0.0) >= KEEP_AT}
    kept = [c for c in checked if c.path in sure]
    found = stats.stratified(_strata((r for r in labels if r.path in sure), kept))
    return Keep(KEEP_AT, len(sure), 1 - found.value, 1 - found.high, 1 - found.low)


def _coverage(checked: Sequence[Checked], calibrator: Calibrator) -> list[tuple[float, float]]:
    """(share kept, accuracy) keeping the most probably right first, from the sample."""
    rows = sorted(
        ((_probability(calibrator, c), c.right, c.weight) for c in checked),
        key=lambda row: -row[0],
    )
    total = sum(w for _, _, w in rows)
    points, weight, right = [], 0.0, 0.0
    for _, correct, w in rows:
        weight += w
        right += w if correct else 0.0
        points.append((weight / total, right / weight))
    return points


def _probability(calibrator: Calibrator, checked: Checked) -> float:
    label = Label("", checked.emotion, checked.confidence)
    return calibrator(label) or 0.0


def write_calibrated(labels_csv: Path, calibrator: Calibrator) -> int:
    """Keep the map beside the CSV and give every row it applies to its `calibrated`
    value (atomically, under the run lock); returns how many rows got one."""
    with rewriting(labels_csv) as table:
        count = 0
        for label in table.labels.values():
            if calibrator.applies_to(label):
                label.calibrated = calibrator(label)
                count += label.calibrated is not None
        with atomic_text(map_path(labels_csv)) as handle:
            json.dump(calibrator.as_dict(), handle, indent=1)
        write_csv_atomic(
            labels_csv, LABEL_COLUMNS, (label.as_row() for label in table.labels.values())
        )
    return count
