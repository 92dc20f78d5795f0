"""Agreement between two labellings: accuracy, per-class precision/recall/F1, macro-F1,
Cohen's kappa and the confusion matrix, in plain Python (no scikit-learn needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from emotag.emotions import EMOTIONS


@dataclass(frozen=True, slots=True)
class ClassScore:
    precision: float
    recall: float
    f1: float
    support: int  # how many items the reference gives this class


@dataclass
class Agreement:
    """How well `predicted` matches `reference` (or how much two labellings agree)."""

    n: int
    accuracy: float
    kappa: float
    macro_f1: float
    per_class: dict[str, ClassScore]
    confusion: dict[str, dict[str, int]]  # confusion[reference][predicted]
    labels: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "kappa": self.kappa,
            "macro_f1": self.macro_f1,
            "per_class": {
                k: {"precision": v.precision, "recall": v.recall, "f1": v.f1, "support": v.support}
                for k, v in self.per_class.items()
            },
            "confusion": self.confusion,
            "labels": self.labels,
        }


def agreement(pairs: Iterable[tuple[str, str]], order: Sequence[str] = EMOTIONS) -> Agreement:
    """Score (reference, predicted) pairs. Classes that occur on neither side are left out,
    as scikit-learn does; a class never predicted has precision 0."""
    cells: Counter[tuple[str, str]] = Counter(pairs)
    n = sum(cells.values())
    present = {label for pair in cells for label in pair}
    labels = [label for label in order if label in present] + sorted(present - set(order))
    confusion = {r: {p: cells[(r, p)] for p in labels} for r in labels}
    if n == 0:
        return Agreement(0, 0.0, 0.0, 0.0, {}, confusion, labels)
    ref_totals = {label: sum(confusion[label].values()) for label in labels}
    pred_totals = {label: sum(confusion[r][label] for r in labels) for label in labels}
    correct = sum(confusion[label][label] for label in labels)
    per_class = {}
    for label in labels:
        hit = confusion[label][label]
        precision = hit / pred_totals[label] if pred_totals[label] else 0.0
        recall = hit / ref_totals[label] if ref_totals[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = ClassScore(precision, recall, f1, ref_totals[label])
    observed = correct / n
    expected = sum(ref_totals[k] * pred_totals[k] for k in labels) / (n * n)
    kappa = 1.0 if expected == 1.0 else (observed - expected) / (1.0 - expected)
    macro_f1 = sum(score.f1 for score in per_class.values()) / len(per_class)
    return Agreement(n, observed, kappa, macro_f1, per_class, confusion, labels)
