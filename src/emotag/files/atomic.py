"""Whole-file writes that never leave a half-written file: a temp file beside the target,
synced, then renamed over it, keeping the replaced file's permission bits."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Final

from emotag.errors import OutputError

# File names on Linux may be any bytes; surrogateescape writes them back unchanged.
ENCODING: Final = "utf-8"
ERRORS: Final = "surrogateescape"
# For reading: the same, less a leading byte-order mark (Excel's "CSV UTF-8" writes one).
READING: Final = "utf-8-sig"


@contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    """A temp file beside `path` that replaces it only once everything is written and synced."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}") from exc
    try:
        # mkstemp makes the file 0600; give it the bits the replaced file had, or what
        # the umask gives a new file, so a CSV shared with a group stays readable.
        os.chmod(tmp, _mode_for(path))
        with os.fdopen(fd, "w", encoding=ENCODING, errors=ERRORS, newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
