"""The domain records: one labelled image (`Label`), one that got none (`Failure`), and
everything a labels CSV holds (`LabelTable`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

NO_FACE: Final = "no face"  # a definitive answer: the same bytes are not sent again
HUMAN: Final = "human"  # confidence_source of a person's label; `tag` never re-labels it


def decimal(value: float | None) -> str:
    """A probability as the CSVs write it: four places, or empty when there is none."""
    return "" if value is None else f"{value:.4f}"


@dataclass(slots=True)
class Label:
    """One labelled image, as a row of the labels CSV (not frozen: 100k rows load faster)."""

    path: str
    emotion: str
    confidence: float | None = None
    confidence_source: str = ""
    model: str = ""
    faces: str = ""
    sha256: str = ""
    duplicate_of: str = ""
    votes: str = ""  # "happy:3 surprise:2" for a --votes label, most votes first
    calibrated: float | None = None  # the audited probability that the label is right
    # The offline model's opinion of the same image, where it saw it (`tag --cascade`).
    local_emotion: str = ""
    local_confidence: float | None = None

    def done_for(self, model: str, aliases: frozenset[str] = frozenset()) -> bool:
        """Labelled by `model` (or under a name its server reported for it), or corrected
        by a person, which outranks any model."""
        return self.model == model or self.model in aliases or self.confidence_source == HUMAN

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)

    def as_row(self) -> dict[str, str]:
        return {
            "filename": self.filename,
            "path": self.path,
            "emotion": self.emotion,
            "confidence": decimal(self.confidence),
            "confidence_source": self.confidence_source,
            "model": self.model,
            "faces": self.faces,
            "sha256": self.sha256,
            "duplicate_of": self.duplicate_of,
            "votes": self.votes,
            "calibrated": decimal(self.calibrated),
            "local_emotion": self.local_emotion,
            "local_confidence": decimal(self.local_confidence),
        }


@dataclass(frozen=True, slots=True)
class Failure:
    """One image that got no label, and why."""

    path: str
    reason: str
    model: str = ""
    sha256: str = ""

    def as_row(self) -> dict[str, str]:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return {
            "path": self.path,
            "reason": self.reason,
            "model": self.model,
            "time": now,
            "sha256": self.sha256,
        }


@dataclass
class LabelTable:
    """Everything a labels CSV holds: valid rows (last per path wins) and bad lines."""

    labels: dict[str, Label] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    duplicates: int = 0
    torn: bool = False
