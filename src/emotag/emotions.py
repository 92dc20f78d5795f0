"""The seven emotions, strict validation of model answers, and emotions in file names."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import PurePath
from typing import Final

from emotag.errors import AnswerError

EMOTIONS: Final[tuple[str, ...]] = (
    "happy",
    "surprise",
    "angry",
    "disgust",
    "fear",
    "neutral",
    "sad",
)

# Words people (and older datasets) use for the seven classes. Applied only where the
# user asks for it (file-name parsing, rename), never to a model answer.
ALIASES: Final[dict[str, str]] = {
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "smiling": "happy",
    "surprised": "surprise",
    "shock": "surprise",
    "shocked": "surprise",
    "anger": "angry",
    "mad": "angry",
    "disgusted": "disgust",
    "contempt": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "serious": "neutral",
    "calm": "neutral",
    "sadness": "sad",
    "unhappy": "sad",
}


class MultiFace(StrEnum):
    """What to do with an image in which the model sees several faces."""

    LABEL = "label"
    SKIP = "skip"


# How many faces the model sees, as the schema asks and as the `faces` column records it.
FACE_COUNTS: Final[dict[str, str]] = {"none": "0", "one": "1", "several": "2+"}

_WORD = re.compile(r"[a-z]+")


def is_emotion(value: str) -> bool:
    return value in EMOTIONS


def normalise(token: str, *, aliases: bool = True) -> str | None:
    """Map one token to an emotion, through the alias table when asked; None if it is not one."""
    word = token.strip().lower()
    if word in EMOTIONS:
        return word
    return ALIASES.get(word) if aliases else None


def parse_answer(text: str) -> tuple[str, str]:
    """Return (emotion, faces) from a model answer, or raise AnswerError.

    Accepted: the JSON object the schema asks for, a bare label, or a chatty answer that
    names exactly one of the seven labels as a word. Aliases are never applied here.
    `faces` is "0", "1" or "2+" from the schema's face count, or "" when the answer has none.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            answer = json.loads(stripped)
            value, count = answer.get("emotion"), answer.get("faces")
        except (ValueError, AttributeError) as exc:
            raise AnswerError(f"answer is not valid JSON: {_clip(stripped)}") from exc
        faces = FACE_COUNTS.get(count, "") if isinstance(count, str) else ""
        if count is not None and not faces:
            raise AnswerError(f"off-list face count: {_clip(str(count))}")
        word = value.strip().lower() if isinstance(value, str) else ""
        if word in EMOTIONS:
            return word, faces
        raise AnswerError(f"off-list answer: {_clip(str(value))}")
    found: set[str] = {w for w in _WORD.findall(stripped.lower()) if w in EMOTIONS}
    if len(found) == 1:
        return found.pop(), ""
    if not found:
        raise AnswerError(f"off-list answer: {_clip(stripped)}")
    raise AnswerError(f"ambiguous answer names {len(found)} labels: {_clip(stripped)}")


def emotion_from_filename(name: str | PurePath, *, aliases: bool = True) -> str | None:
    """The emotion a `sex_age_ethnicity_emotion.ext` name carries (its last `_` token)."""
    stem = PurePath(str(name).replace("\\", "/")).stem
    last = stem.rsplit("_", 1)[-1]
    return normalise(last, aliases=aliases)


def _clip(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
