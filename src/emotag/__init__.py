"""emotag: label face images with one of seven emotions using Google's Gemini API."""

from emotag.emotions import ALIASES, EMOTIONS, emotion_from_filename
from emotag.errors import EmotagError
from emotag.lookup import AmbiguousLabel, LabelStore, MissingLabel

__all__ = [
    "ALIASES",
    "EMOTIONS",
    "AmbiguousLabel",
    "EmotagError",
    "LabelStore",
    "MissingLabel",
    "emotion_from_filename",
]


def __getattr__(name: str) -> str:
    # Reading package metadata costs tens of milliseconds; only pay it when asked.
    if name == "__version__":
        from importlib.metadata import version

        return version("emotag")
    raise AttributeError(name)
