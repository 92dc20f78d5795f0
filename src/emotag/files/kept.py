"""Reading back the JSON files emotag keeps beside a labels CSV (the batch state, each
job's keys and opinions, the calibration map). Hand-edited, cut short by another tool or
written by another version, such a file is one line naming it, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from emotag.errors import InputError

T = TypeVar("T")


def read_kept(path: Path, what: str, parse: Callable[[dict[str, Any]], T]) -> T:
    """`parse` of the JSON object in `path`; any shape it does not expect is an
    `InputError` naming `what` and the file."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(found, dict):
            raise TypeError(f"a JSON object was expected, not {type(found).__name__}")
        return parse(found)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"Cannot read {what} {path}: {exc}") from exc
