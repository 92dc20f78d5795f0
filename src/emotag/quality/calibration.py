"""The calibration map: from a label's confidence (or, without one, its label) to the
probability it is right, fitted on an audit's checked rows, kept beside the labels CSV
(`<stem>.calibration.json`) with its provenance, and applied by `tag` and `batch fetch`
to new rows (`calibration_for`). The statistics under it are `stats`."""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from emotag.emotions import EMOTIONS
from emotag.files.kept import read_kept
from emotag.quality import stats
from emotag.records import HUMAN, Label, decimal

# A confidence band: the audit's strata, and the cells of the "strata" map.
NO_CONFIDENCE: Final = "none"
BANDS: Final = ((0.7, "<0.7"), (0.9, "0.7-0.9"), (0.99, "0.9-0.99"), (2.0, ">=0.99"))


def band(confidence: float | None) -> str:
    if confidence is None:
        return NO_CONFIDENCE
    return next(name for end, name in BANDS if confidence < end)


@dataclass(frozen=True, slots=True)
class Checked:
    """One audited row: what the model said, how sure, whether the person agreed."""

    path: str
    emotion: str
    confidence: float | None
    stratum: str
    weight: float
    right: bool


@dataclass
class Calibrator:
    """confidence (or, without one, the label) -> probability right, with provenance."""

    models: list[str]
    created: str
    audited: int
    method: str
    curve: stats.CalibrationMap | None
    precision: dict[str, float]  # by label: for rows without a confidence
    offsets: dict[str, float] = field(default_factory=dict)  # by label, on the logit scale
    # One map per model where the audited rows came from several (a cascade's offline
    # model and its paid one): their confidences mean different things.
    parts: dict[str, Calibrator] = field(default_factory=dict)
    # Methods "strata" and "levels": each cell's own share right (`CELLS` says how a row
    # finds its cell), where that predicted the checked rows better than the curve.
    cells: dict[str, float] = field(default_factory=dict)

    def __call__(self, label: Label) -> float | None:
        if label.confidence_source == HUMAN:
            return 1.0
        if (part := self.parts.get(label.model)) is not None:
            return part(label)
        if self.method in CELLS and (
            found := self.cells.get(CELLS[self.method](label.confidence, label.emotion))
        ):
            return found
        if label.confidence is not None and self.curve is not None:
            return self.probability(label.confidence, label.emotion)
        return self.precision.get(label.emotion)

    def probability(self, confidence: float, emotion: str) -> float:
        """The curve, shifted by the label's offset (a label the model is wrong about more
        often than its confidence says sits lower)."""
        assert self.curve is not None
        return stats.shifted(self.curve(confidence), self.offsets.get(emotion, 0.0))

    def applies_to(self, label: Label) -> bool:
        return label.model in self.models or label.confidence_source == HUMAN

    def as_dict(self) -> dict[str, Any]:
        curve = asdict(self.curve) if self.curve is not None else None
        return {
            "models": self.models,
            "created": self.created,
            "audited": self.audited,
            "method": self.method,
            "curve": curve,
            "precision": self.precision,
            "offsets": self.offsets,
            "parts": {model: part.as_dict() for model, part in self.parts.items()},
            "cells": self.cells,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        raw = data.get("curve")
        curve = None
        if raw:
            points = tuple((float(x), float(y)) for x, y in raw.get("points", ()))
            curve = stats.CalibrationMap(raw["method"], points, raw["a"], raw["b"])
        return cls(
            list(data["models"]),
            str(data["created"]),
            int(data["audited"]),
            str(data["method"]),
            curve,
            {k: float(v) for k, v in data["precision"].items()},
            {k: float(v) for k, v in data.get("offsets", {}).items()},
            {model: cls.from_dict(part) for model, part in data.get("parts", {}).items()},
            {k: float(v) for k, v in data.get("cells", {}).items()},
        )


def map_path(labels_csv: Path) -> Path:
    return labels_csv.with_name(f"{labels_csv.stem}.calibration.json")


def load_calibrator(labels_csv: Path) -> Calibrator | None:
    """The map `audit score` kept beside the labels CSV; None if there is none."""
    path = map_path(labels_csv)
    if not path.is_file():
        return None
    return read_kept(path, "the calibration map", Calibrator.from_dict)


def calibration_for(labels_csv: Path) -> Callable[[Label], float | None] | None:
    """What `tag` and `batch fetch` apply to each new row: the kept map, for the rows of
    the models it was fitted on (None for others); None when there is no map."""
    calibrator = load_calibrator(labels_csv)
    if calibrator is None:
        return None
    return lambda label: calibrator(label) if calibrator.applies_to(label) else None


def fit_calibrator(checked: Sequence[Checked], models: list[str]) -> Calibrator:
    """The map that best predicts held-out checked rows (cross-validated log loss): the
    curve (`fit_curve`), each stratum's own share right (a curve through the confidence
    cannot follow a label the model is always right or always wrong about), or each
    confidence level's (a model that says few distinct values, as votes do, where the
    curve's shape does not fit them). Each label's precision serves rows the map has no
    value for."""
    calibrator = fit_curve(checked, models)
    if len(checked) < CHOOSE_FROM:
        return calibrator
    rows = cv_rows(checked)
    losses = {"curve": _log_loss(stats.cross_validated(rows, _curve_predictor), rows)}
    for method, cell in CELLS.items():
        if method == "levels" and len({c.confidence for c in checked}) > MOST_LEVELS:
            continue
        predicted = stats.cross_validated(rows, functools.partial(_cell_predictor, cell=cell))
        losses[method] = _log_loss(predicted, rows)
    best = min(losses, key=losses.__getitem__)
    if best != "curve":
        calibrator.method, calibrator.cells = best, _cell_shares(checked, CELLS[best])
    return calibrator


# Below this many checked rows, five folds are too small to choose between the maps.
CHOOSE_FROM: Final = 50
MOST_LEVELS: Final = 12  # more distinct confidences than this: a continuous score
CELLS: Final[dict[str, Callable[[float | None, str], str]]] = {
    "strata": lambda confidence, emotion: f"{emotion}|{band(confidence)}",
    "levels": lambda confidence, emotion: decimal(confidence),
}


def _cell_shares(
    checked: Sequence[Checked], cell: Callable[[float | None, str], str]
) -> dict[str, float]:
    """Each cell's weighted share right, drawn towards its label's share as far as a
    couple of rows would (a cell of three rows says little on its own)."""
    groups: dict[str, list[Checked]] = defaultdict(list)
    by_label: dict[str, list[Checked]] = defaultdict(list)
    for c in checked:
        groups[cell(c.confidence, c.emotion)].append(c)
        by_label[c.emotion].append(c)
    label_share = {emotion: _smoothed_share(rows) for emotion, rows in by_label.items()}
    shares = {}
    for key, rows in groups.items():
        prior = label_share[rows[0].emotion] if len({r.emotion for r in rows}) == 1 else None
        shares[key] = _drawn_share(rows, prior)
    return shares


PRIOR_ROWS: Final = 2.0  # how many rows' worth the label's share counts in a cell


def _drawn_share(rows: Sequence[Checked], prior: float | None) -> float:
    if prior is None:
        return _smoothed_share(rows)
    share = sum(c.weight for c in rows if c.right) / sum(c.weight for c in rows)
    return (share * len(rows) + PRIOR_ROWS * prior) / (len(rows) + PRIOR_ROWS)


def _log_loss(predicted: Sequence[float], rows: Sequence[CvRow]) -> float:
    loss = 0.0
    for p, (_, right, weight, _) in zip(predicted, rows, strict=True):
        p = min(max(p, 1e-6), 1 - 1e-6)
        loss -= weight * math.log(p if right else 1 - p)
    return loss


def fit_curve(checked: Sequence[Checked], models: list[str]) -> Calibrator:
    """One curve on the rows with a confidence, shifted per label; each label's precision
    for the rows without one.

    A label's shift is the logit gap between how often its checked rows were right and
    what the curve says for them, shrunk towards 0 as far as the gaps look like sampling
    noise (`stats.shrunk`), so a label with few checked rows stays near the common curve."""
    mean = sum(c.weight for c in checked) / len(checked) if checked else 1.0
    points = [
        (c, stats.Point(c.confidence, c.right, c.weight / mean))
        for c in checked
        if c.confidence is not None
    ]
    curve = stats.fit([point for _, point in points]) if points else None
    precision: dict[str, float] = {}
    gaps: dict[str, tuple[float, float]] = {}  # label -> (logit gap, its sampling variance)
    for emotion in EMOTIONS:
        if mine := [c for c in checked if c.emotion == emotion]:
            precision[emotion] = _smoothed_share(mine)
        sure = [(c, point) for c, point in points if c.emotion == emotion]
        if curve is not None and sure:
            weight = sum(point.weight for _, point in sure)
            said = sum(curve(point.confidence) * point.weight for _, point in sure) / weight
            seen = _smoothed_share([c for c, _ in sure])
            gap = stats.logit(seen) - stats.logit(said)
            gaps[emotion] = (gap, 1 / (len(sure) * seen * (1 - seen)))
    method = curve.method if curve is not None else "precision"
    today = datetime.now(UTC).date().isoformat()
    offsets = stats.shrunk(gaps)
    return Calibrator(models, today, len(checked), method, curve, precision, offsets)


def _smoothed_share(checked: Sequence[Checked]) -> float:
    """The weighted share right, Jeffreys-smoothed: a label checked twice and right twice
    is not "certain"."""
    share = sum(c.weight for c in checked if c.right) / sum(c.weight for c in checked)
    return (share * len(checked) + 0.5) / (len(checked) + 1)


CvRow = tuple[float | None, bool, float, str]


def cv_rows(checked: Sequence[Checked]) -> list[CvRow]:
    return [(c.confidence, c.right, c.weight, c.emotion) for c in checked]


def _checked(train: Sequence[CvRow]) -> list[Checked]:
    """`cv_rows` read back: the rows a fold's map is fitted on."""
    return [Checked("", label, c, "", w, right) for c, right, w, label in train]


def predictor(
    train: Sequence[CvRow], fit: Callable[[Sequence[Checked], list[str]], Calibrator] | None = None
) -> Callable[[float | None, str], float]:
    """The calibrator fitted on `train`, as a function of (confidence, label)."""
    fitted = (fit or fit_calibrator)(_checked(train), [])

    def predict(confidence: float | None, emotion: str) -> float:
        found = fitted(Label("", emotion, confidence))
        if found is not None:
            return found
        known = list(fitted.precision.values())
        return sum(known) / len(known) if known else 0.5

    return predict


def _curve_predictor(train: Sequence[CvRow]) -> Callable[[float | None, str], float]:
    return predictor(train, fit_curve)


def _cell_predictor(
    train: Sequence[CvRow], cell: Callable[[float | None, str], str]
) -> Callable[[float | None, str], float]:
    checked = _checked(train)
    shares, overall = _cell_shares(checked, cell), _smoothed_share(checked)
    return lambda confidence, emotion: shares.get(cell(confidence, emotion), overall)
