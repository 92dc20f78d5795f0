"""`emotag eval`: pair a labels CSV with a reference (file names or another CSV) and score it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emotag.emotions import emotion_from_filename
from emotag.errors import InputError
from emotag.ledger import read_labels
from emotag.lookup import LabelStore
from emotag.metrics import Agreement, agreement


@dataclass
class Evaluation:
    result: Agreement
    reference: str
    compared: int
    without_reference: int  # labelled rows the reference has nothing for


def evaluate(labels_csv: Path, truth: str) -> Evaluation:
    """`truth` is "filenames" (emotion parsed from sex_age_ethnicity_emotion names, aliases
    applied) or the path of another labels CSV, matched by path, then unique file name."""
    if not labels_csv.is_file():
        raise InputError(f"Labels CSV not found: {labels_csv}")
    table = read_labels(labels_csv)
    pairs: list[tuple[str, str]] = []
    if truth == "filenames":
        for label in table.labels.values():
            reference = emotion_from_filename(label.filename)
            if reference is not None:
                pairs.append((reference, label.emotion))
        name = "emotions in file names"
    else:
        other = Path(truth)
        if not other.is_file():
            raise InputError(f"Reference not found: {truth} (give a labels CSV or 'filenames')")
        store = LabelStore.from_csv(other)
        for label in table.labels.values():
            found = store.match(label.path)
            if found is not None:
                pairs.append((found.emotion, label.emotion))
        name = str(other)
    if not pairs:
        raise InputError(f"No image in {labels_csv} has a reference label in {name}.")
    return Evaluation(agreement(pairs), name, len(pairs), len(table.labels) - len(pairs))
