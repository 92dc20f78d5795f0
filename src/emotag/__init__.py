"""emotag: label face images with one of seven emotions using Gemini or any
OpenAI-compatible API.

The public API is `__all__`; everything else may change between releases. Names are
imported on first use, so `import emotag` (and every CLI start) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emotag.datasets.lookup import AmbiguousLabel, LabelStore, MissingLabel
    from emotag.emotions import ALIASES, EMOTIONS, emotion_from_filename
    from emotag.errors import EmotagError

__all__ = [
    "ALIASES",
    "EMOTIONS",
    "AmbiguousLabel",
    "EmotagError",
    "LabelStore",
    "MissingLabel",
    "emotion_from_filename",
]

_HOMES = {
    "ALIASES": "emotag.emotions",
    "EMOTIONS": "emotag.emotions",
    "emotion_from_filename": "emotag.emotions",
    "EmotagError": "emotag.errors",
    "AmbiguousLabel": "emotag.datasets.lookup",
    "LabelStore": "emotag.datasets.lookup",
    "MissingLabel": "emotag.datasets.lookup",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    if name == "__version__":
        # Reading package metadata costs tens of milliseconds; only pay it when asked.
        from importlib.metadata import version

        return version("emotag")
    raise AttributeError(name)


def __dir__() -> list[str]:
    """The public API for tab completion (IPython, notebooks), though it loads lazily."""
    return sorted({*globals(), *__all__, "__version__"})
