"""emotag's built-in offline model: BlazeFace finds the faces, mini-XCEPTION judges the
most prominent one. Runs on onnxruntime with files shipped in the package; no key, no
network (docs/providers.md has its sources, licences and published accuracy)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from emotag.providers.offline.weights import MODEL_NAME, ModelUnavailable

__all__ = ["CONFIDENCE_SOURCE", "MODEL_NAME", "Judgement", "ModelUnavailable", "judge", "load"]

# The confidence column's source for the offline model: its own softmax probability.
CONFIDENCE_SOURCE = "softmax"


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the offline model saw: how many faces, and the chosen face's emotion and its
    probability (empty where there is no face)."""

    faces: str  # "0", "1" or "2+", as the answers' face counts
    emotion: str = ""
    probability: float | None = None


def load() -> None:
    """Load and check every model file now, so a broken install fails before any work."""
    from emotag.providers.offline.weights import FILES, session

    for name in FILES:
        session(name)


def judge(jpeg: bytes) -> Judgement:
    """Judge one prepared image (emotag's upload bytes)."""
    from PIL import Image

    from emotag.providers.offline.expressions import classify
    from emotag.providers.offline.faces import find_faces

    with Image.open(io.BytesIO(jpeg)) as opened:
        image = opened.convert("RGB")
    faces = find_faces(image)
    if not faces:
        return Judgement("0")
    scores = classify(image.convert("L"), faces[0])
    emotion = max(scores, key=scores.__getitem__)
    return Judgement("1" if len(faces) == 1 else "2+", emotion, scores[emotion])
