"""What an answer means for one image: a label, or a failure and its reason.

Live and batch runs both call `decide`, so a policy such as `--multi-face skip` cannot
hold in one and not the other.
"""

from __future__ import annotations

from typing import Final

from emotag.answers import Answer
from emotag.ledger import NO_FACE, Failure, Label

SEVERAL_FACES_SKIPPED: Final = "several faces (--multi-face skip)"


def decide(
    answer: Answer, path: str, digest: str, model: str, *, skip_multi_face: bool
) -> Label | Failure:
    """The row this answer earns: no face and skipped several-face images are failures."""
    if answer.faces == "0":
        return Failure(path, NO_FACE, model, digest)
    if answer.faces == "2+" and skip_multi_face:
        return Failure(path, SEVERAL_FACES_SKIPPED, model, digest)
    return Label(
        path=path,
        emotion=answer.emotion,
        confidence=answer.confidence,
        confidence_source=answer.confidence_source,
        model=model,
        faces=answer.faces,
        sha256=digest,
    )
