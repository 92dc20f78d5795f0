"""`emotag eval`: pair a labels CSV with a reference (file names or another CSV) and score it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emotag.choices import Score, Stage
from emotag.datasets.lookup import LabelStore
from emotag.emotions import emotion_from_filename
from emotag.errors import InputError
from emotag.files.csvfiles import read_labels
from emotag.providers.offline.weights import MODEL_NAME
from emotag.quality.metrics import Agreement, agreement
from emotag.records import Label

# `--truth final`: the final labels of the same CSV, where another model than the offline
# one gave them: how often the two stages of a cascade agree.
FINAL_LABELS = "final"


@dataclass(frozen=True, slots=True)
class CoveragePoint:
    """Keep only labels with confidence >= threshold: how many are kept, how accurate."""

    threshold: float
    kept: int
    share: float  # kept / all compared
    accuracy: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "threshold": self.threshold,
            "kept": self.kept,
            "share": round(self.share, 4),
            "accuracy": round(self.accuracy, 4),
        }


@dataclass
class Evaluation:
    result: Agreement
    reference: str
    compared: int
    without_reference: int  # labelled rows the reference has nothing for
    coverage: list[CoveragePoint] = field(default_factory=list)

    def at(self, threshold: float) -> CoveragePoint:
        """Accuracy and coverage of the labels with confidence >= `threshold`."""
        return coverage_at(self._scored, threshold)

    _scored: list[tuple[str, str, float | None]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, object]:
        return self.result.as_dict() | {
            "reference": self.reference,
            "without_reference": self.without_reference,
            "coverage": [point.as_dict() for point in self.coverage],
        }


def coverage_at(scored: list[tuple[str, str, float | None]], threshold: float) -> CoveragePoint:
    """`scored` holds (reference, label, confidence); a label without one is kept only at
    threshold 0."""
    kept = [(r, p) for r, p, c in scored if (c if c is not None else 0.0) >= threshold]
    correct = sum(1 for r, p in kept if r == p)
    share = len(kept) / len(scored) if scored else 0.0
    return CoveragePoint(threshold, len(kept), share, correct / len(kept) if kept else 0.0)


def coverage_curve(scored: list[tuple[str, str, float | None]]) -> list[CoveragePoint]:
    """One point per confidence value present (and 0): the thresholds worth choosing."""
    thresholds = sorted({0.0} | {round(c, 4) for _, _, c in scored if c is not None})
    return [coverage_at(scored, t) for t in thresholds]


def evaluate(
    labels_csv: Path, truth: str, *, by: Score = Score.CONFIDENCE, stage: Stage = Stage.FINAL
) -> Evaluation:
    """`truth` is "filenames" (emotion parsed from sex_age_ethnicity_emotion names, aliases
    applied), "final" (with `stage` local: the same CSV's labels that another model gave)
    or the path of another labels CSV, matched by path, then unique file name.
    `by`: the coverage keeps labels by their confidence, or by their calibrated value.
    `stage`: the final labels, or the offline model's opinions (rows without one left out)."""

    def number(label: Label) -> float | None:
        if stage is Stage.LOCAL:
            return label.local_confidence
        return label.calibrated if by is Score.CALIBRATED else label.confidence

    def judged(label: Label) -> str | None:
        return (label.local_emotion or None) if stage is Stage.LOCAL else label.emotion

    if not labels_csv.is_file():
        raise InputError(f"Labels CSV not found: {labels_csv}")
    table = read_labels(labels_csv)
    scored: list[tuple[str, str, float | None]] = []
    if truth == "filenames":
        for label in table.labels.values():
            reference = emotion_from_filename(label.filename)
            if reference is not None and (emotion := judged(label)) is not None:
                scored.append((reference, emotion, number(label)))
        name = "emotions in file names"
    elif truth == FINAL_LABELS and stage is Stage.LOCAL:
        for label in table.labels.values():
            if label.model != MODEL_NAME and (emotion := judged(label)) is not None:
                scored.append((label.emotion, emotion, number(label)))
        name = "the final labels another model gave"
    else:
        other = Path(truth)
        if not other.is_file():
            raise InputError(f"Reference not found: {truth} (give a labels CSV or 'filenames')")
        store = LabelStore.from_csv(other)
        for label in table.labels.values():
            found = store.match(label.path)
            if found is not None and (emotion := judged(label)) is not None:
                scored.append((found.emotion, emotion, number(label)))
        name = str(other)
    if not scored:
        raise InputError(f"No image in {labels_csv} has a reference label in {name}.")
    return Evaluation(
        agreement((r, p) for r, p, _ in scored),
        name,
        len(scored),
        len(table.labels) - len(scored),
        coverage_curve(scored),
        scored,
    )
