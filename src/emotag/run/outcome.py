"""What the answers mean for one image: a label, or a failure and its reason.

Live and batch runs both call `decide`, so a policy such as `--multi-face skip` cannot
hold in one and not the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from emotag.providers.answers import Answer
from emotag.records import NO_FACE, Failure, Label
from emotag.votes import tally

SEVERAL_FACES_SKIPPED: Final = "several faces (--multi-face skip)"


def decide(
    answers: Sequence[Answer] | Sequence[tuple[str, str]],
    path: str,
    digest: str,
    model: str,
    *,
    skip_multi_face: bool,
    votes: int = 1,
) -> Label | Failure:
    """The row these answers earn: one answer as it is, or (with `votes` > 1) the
    majority of (emotion, faces) votes. No face and skipped several-face images fail."""
    if votes == 1 and len(answers) == 1 and isinstance(answers[0], Answer):
        answer = answers[0]
        emotion, faces = answer.emotion, answer.faces
        confidence, source, counted = answer.confidence, answer.confidence_source, ""
    else:
        pairs = [(a.emotion, a.faces) if isinstance(a, Answer) else a for a in answers]
        result = tally(pairs)
        emotion, faces, confidence = result.emotion, result.faces, result.confidence
        source, counted = "votes", result.votes
    if faces == "0":
        return Failure(path, NO_FACE, model, digest)
    if faces == "2+" and skip_multi_face:
        return Failure(path, SEVERAL_FACES_SKIPPED, model, digest)
    return Label(
        path=path,
        emotion=emotion,
        confidence=confidence,
        confidence_source=source,
        model=model,
        faces=faces,
        sha256=digest,
        votes=counted,
    )
