"""Self-consistency: K independent answers per image, the majority as the label and its
share as the confidence. The same for every model; needs no log probabilities.

Ties: the tied label that comes first in the seven-emotion order (happy, surprise,
angry, disgust, fear, neutral, sad) is written, and the `votes` column shows the tie
(`happy:2 sad:2`), so a reviewer can find it (the report marks it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from emotag.emotions import EMOTIONS

MAX_VOTES = 9
_ORDER = {emotion: i for i, emotion in enumerate(EMOTIONS)}
_FACE_ORDER = {"1": 0, "2+": 1, "0": 2, "": 3}  # a face tie is read as "a face"


@dataclass(frozen=True, slots=True)
class Tally:
    """The outcome of an image's votes."""

    emotion: str
    confidence: float  # the majority's share of the votes
    faces: str  # the majority face count
    votes: str  # "happy:3 surprise:2", most votes first


def tally(answers: Sequence[tuple[str, str]]) -> Tally:
    """Combine (emotion, faces) answers; the emotion majority is taken over the answers
    that saw a face, so a stray "no face" vote does not dilute it."""
    faces = Counter(face for _, face in answers)
    face = min(faces, key=lambda f: (-faces[f], _FACE_ORDER.get(f, 9)))
    counted = [emotion for emotion, f in answers if f != "0"] or [e for e, _ in answers]
    emotions = Counter(counted)
    ranked = sorted(emotions, key=lambda e: (-emotions[e], _ORDER[e]))
    return Tally(
        emotion=ranked[0],
        confidence=emotions[ranked[0]] / len(counted),
        faces=face,
        votes=" ".join(f"{e}:{emotions[e]}" for e in ranked),
    )


def counted(votes: str) -> list[tuple[str, int]] | None:
    """A `votes` column value as (label, count) pairs; None when it is not one (a hand
    edit, a hostile CSV): each part a label, a colon and a count from 1 to 99."""
    pairs = []
    for part in votes.split():
        emotion, _, count = part.rpartition(":")
        if emotion not in _ORDER or not count.isdigit() or not 1 <= int(count) <= 99:
            return None
        pairs.append((emotion, int(count)))
    return pairs


def is_split(votes: str) -> bool:
    """The answers did not all agree."""
    return " " in votes.strip()


def is_tie(votes: str) -> bool:
    """The two most voted labels have as many votes each."""
    counts = [count for _, count in counted(votes) or ()]
    return len(counts) > 1 and counts[0] == counts[1]


def vote_count(votes: str) -> int:
    """How many answers a `votes` column value holds (0 when empty or unreadable)."""
    return sum(count for _, count in counted(votes) or ())


def answers_in(votes: str, faces: str) -> list[tuple[str, str]]:
    """The answers a `votes` value stands for, when the answers ledger is gone."""
    return [(emotion, faces) for emotion, count in counted(votes) or () for _ in range(count)]
