"""The run lock: one writer per labels CSV at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emotag.errors import OutputError


@contextmanager
def run_lock(labels_csv: Path) -> Iterator[None]:
    """Hold an exclusive lock for the labels CSV so two runs cannot interleave rows
    (filelock: the same on Linux, macOS and Windows)."""
    from filelock import FileLock, Timeout

    lock_path = labels_csv.with_name(f".{labels_csv.name}.lock")
    try:
        labels_csv.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path, timeout=0)
        lock.acquire()
    except Timeout as exc:
        if why := _cannot_open(lock_path):
            raise OutputError(f"Cannot write to {labels_csv.parent}: {why}") from exc
        raise OutputError(
            f"Another emotag run is writing {labels_csv}; wait for it to finish "
            "or choose another --output."
        ) from exc
    except OSError as exc:
        raise OutputError(f"Cannot write to {labels_csv.parent}: {exc.strerror or exc}") from exc
    try:
        yield
    finally:
        lock.release()


def _cannot_open(lock_path: Path) -> str | None:
    """Why the lock file cannot be opened at all: filelock reports that as a lock held
    by someone else, which would send the user looking for a run that does not exist."""
    try:
        os.close(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
