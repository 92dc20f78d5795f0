"""The fixed choices of the command-line options, apart from the modules that use them:
Typer needs them to build the help, and `emotag --help` should import none of those."""

from __future__ import annotations

from enum import StrEnum


class Format(StrEnum):
    """`emotag export --format`."""

    HF = "hf"
    FOLDERS = "folders"
    LABELSTUDIO = "labelstudio"
    FIFTYONE = "fiftyone"


class Prefer(StrEnum):
    """Whose label wins when the table already has one that disagrees (`merge`)."""

    LABELS = "labels"
    EXISTING = "existing"


class OnConflict(StrEnum):
    """What to do when a target name exists or two files want the same one (`rename`)."""

    SUFFIX = "suffix"
    SKIP = "skip"
    FAIL = "fail"


class Score(StrEnum):
    """Which number of a label the coverage uses: the model's, or the audit's (`eval`)."""

    CONFIDENCE = "confidence"
    CALIBRATED = "calibrated"


class Stage(StrEnum):
    """Which opinion of a row is scored: the final label, or the offline model's (the
    `local_*` columns a `tag --cascade` keeps)."""

    FINAL = "final"
    LOCAL = "local"
