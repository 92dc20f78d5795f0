"""`tag --cascade P`: the offline model judges every image first; where its probability
of being right is at least P its label is final and nothing is paid, and the rest (and
every image where it found no face or several) goes to the paid provider.

The probability is the calibrated one where an audit has mapped the offline model's rows
(docs/audit.md), else its raw softmax. Both opinions are kept: a paid row carries the
offline model's in `local_emotion` and `local_confidence`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emotag.providers import offline
from emotag.records import Label


@dataclass(frozen=True, slots=True)
class Cascade:
    """The first stage of a run: the threshold, and the audit's map if it has one."""

    threshold: float
    calibrate: Callable[[Label], float | None] | None = None
    # The paid provider's input tokens for an image of (width, height): what settling saves.
    tokens: Callable[[int, int], int] = lambda width, height: 0

    @property
    def calibrated(self) -> bool:
        """An audit's map covers the offline model's rows."""
        probe = Label("", "happy", 0.5, offline.CONFIDENCE_SOURCE, offline.MODEL_NAME, "1")
        return self.calibrate is not None and self.calibrate(probe) is not None

    def opinion(self, path: str, digest: str, jpeg: bytes) -> Label | None:
        """The offline model's label for a prepared image (with its own opinion in the local
        columns too); None where it found no face."""
        judgement = offline.judge(jpeg)
        if judgement.probability is None:
            return None
        return Label(
            path,
            judgement.emotion,
            judgement.probability,
            offline.CONFIDENCE_SOURCE,
            offline.MODEL_NAME,
            judgement.faces,
            digest,
            local_emotion=judgement.emotion,
            local_confidence=judgement.probability,
        )

    def probability(self, label: Label) -> float | None:
        """How likely the offline label is right: calibrated where mapped, else raw."""
        mapped = self.calibrate(label) if self.calibrate is not None else None
        return mapped if mapped is not None else label.confidence

    def settles(self, label: Label) -> bool:
        """The offline label is final: one face, and probably right enough."""
        if label.model != offline.MODEL_NAME or label.faces != "1":
            return False
        probability = self.probability(label)
        return probability is not None and probability >= self.threshold
