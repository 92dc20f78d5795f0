"""emotag: label face images with one of seven emotions using Google's Gemini API."""

from importlib.metadata import version

from emotag.errors import EmotagError
from emotag.labels import ALIASES, EMOTIONS, emotion_from_filename
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
__version__ = version("emotag")
