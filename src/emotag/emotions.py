"""The seven emotions, the alias table, and the emotion a file name carries."""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePath
from typing import Final

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


def is_emotion(value: str) -> bool:
    return value in EMOTIONS


def normalise(token: str, *, aliases: bool = True) -> str | None:
    """Map one token to an emotion, through the alias table when asked; None if it is not one."""
    word = token.strip().lower()
    if word in EMOTIONS:
        return word
    return ALIASES.get(word) if aliases else None


def emotion_from_filename(name: str | PurePath, *, aliases: bool = True) -> str | None:
    """The emotion a `sex_age_ethnicity_emotion.ext` name carries (its last `_` token)."""
    stem = PurePath(str(name).replace("\\", "/")).stem
    last = stem.rsplit("_", 1)[-1]
    return normalise(last, aliases=aliases)
