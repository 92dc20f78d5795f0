"""Labels where ML teams work: a Hugging Face imagefolder, class folders, a Label Studio
task list, or a FiftyOne image classification dataset, each with copies (or links) of the
labelled images.

The export is built in a hidden folder beside the target and renamed into place once
complete, so an interrupted export leaves no half-written dataset under the chosen name.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import quoteattr

from emotag.choices import Format
from emotag.emotions import EMOTIONS
from emotag.errors import InputError, OutputError
from emotag.files.atomic import ENCODING, ERRORS
from emotag.files.csvfiles import read_whole
from emotag.files.roots import Boundary, boundary
from emotag.records import Label, decimal

# What Keras' image_dataset_from_directory reads; torchvision's ImageFolder also takes
# .ppm, .pgm, .tif, .tiff and .webp.
KERAS_EXTENSIONS: Final = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif"})


@dataclass
class ExportResult:
    format: str
    output: str
    images: int = 0
    linked: bool = False
    missing: list[str] = field(default_factory=list)  # labelled paths no longer on disk
    refused: list[str] = field(default_factory=list)  # rows naming a file it may not read
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Item:
    label: Label
    name: str  # the file's name in the export, unique


def export(
    labels_csv: Path,
    fmt: Format,
    output: Path,
    *,
    link: bool = False,
    document_root: Path | None = None,
    roots: Sequence[Path] = (),
    follow_symlinks: bool = False,
) -> ExportResult:
    """Write `labels_csv` as `fmt` into the new folder `output`: only files under the
    folders `tag` labelled for the CSV (or `roots`)."""
    output = Path(os.path.abspath(output))
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InputError(f"{output} is in the way; export into a new or empty folder.")
    if not labels_csv.exists():
        raise InputError(f"Labels CSV not found: {labels_csv}")
    within = boundary(labels_csv, roots, follow_symlinks=follow_symlinks)
    items, missing, refused = _items(labels_csv, within)
    result = ExportResult(fmt.value, str(output), linked=link, missing=missing, refused=refused)
    building = output.with_name(f".{output.name}.partial")
    shutil.rmtree(building, ignore_errors=True)  # an earlier interrupted export
    try:
        building.mkdir(parents=True)
        _WRITERS[fmt](items, building, _placer(link), output, document_root or output.parent)
        if output.exists():
            output.rmdir()  # empty (checked above); a rename onto it would fail on Windows
        building.rename(output)
    except OSError as exc:
        raise OutputError(f"Cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(building, ignore_errors=True)  # gone once renamed; else the remains
    result.images = len(items)
    if fmt is Format.FOLDERS:
        suffixes = {Path(item.name).suffix.lower() for item in items}
        unread = sorted(suffixes - KERAS_EXTENSIONS)
        if unread:
            result.warnings.append(
                f"Keras' image_dataset_from_directory skips {', '.join(unread)} files "
                "(torchvision's ImageFolder reads .tif and .webp)"
            )
    return result


def _items(labels_csv: Path, within: Boundary) -> tuple[list[_Item], list[str], list[str]]:
    """The labelled images still on disk, each with a name unique in the export; the rows
    it may not read are listed apart."""
    table = read_whole(labels_csv, "an export would leave them out without a word")
    present: list[Label] = []
    missing: list[str] = []
    refused: list[str] = []
    for label in table.labels.values():
        if refusal := within.refusal(label.path):
            refused.append(f"{label.path}: {refusal}")
        elif os.path.isfile(full := within.resolve(label.path)):
            present.append(replace(label, path=full))  # read where the check looked
        else:
            missing.append(label.path)
    # Same-named files from different folders get a short hash of their source path,
    # compared without case (Windows, macOS) and by stem (FiftyOne keys labels by it).
    stems = Counter(_stem(label.path).casefold() for label in present)
    items = []
    for label in present:
        name = os.path.basename(label.path)
        tag = hashlib.sha256(label.path.encode(ENCODING, ERRORS)).hexdigest()[:8]
        if not _utf8(name):
            # Bytes that are no UTF-8 would make metadata.csv (and tasks.json) unloadable.
            name = f"image_{tag}{_utf8_suffix(name)}"
        elif stems[_stem(label.path).casefold()] > 1:
            name = f"{_stem(label.path)}_{tag}{os.path.splitext(name)[1]}"
        items.append(_Item(label, name))
    return items, missing, refused


def _inert(cell: str) -> str:
    """A descriptive cell a spreadsheet would run as a formula (=, +, -, @ first) gets a
    leading apostrophe; the columns a loader reads (file_name, emotion) are left exact."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@") else cell


def _text(path: str) -> str:
    """A path as text: bytes that are no UTF-8 escaped (`\xe9`), so it can be written."""
    return path.encode(ENCODING, ERRORS).decode(ENCODING, "backslashreplace")


def _utf8(text: str) -> bool:
    try:
        text.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def _utf8_suffix(name: str) -> str:
    suffix = os.path.splitext(name)[1]
    return suffix if _utf8(suffix) else ""


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


Place = Callable[[str, Path], None]


def _placer(link: bool) -> Place:
    """Copy, or link: a hard link where the file system allows it, else a symlink."""
    if not link:
        return _copy

    def place(source: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            try:
                os.symlink(os.path.abspath(source), target)
            except OSError as exc:
                raise OutputError(
                    f"Cannot link {source} here ({exc.strerror or exc}); leave out --link "
                    "to copy the images."
                ) from exc

    return place


def _copy(source: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _hf(items: list[_Item], folder: Path, place: Place, output: Path, root: Path) -> None:
    """An imagefolder with metadata.csv: `datasets.load_dataset("imagefolder", data_dir=…)`."""
    columns = ["file_name", "emotion", "confidence", "calibrated", "model", "source_path"]
    # Strict UTF-8: `datasets` cannot load a metadata.csv holding other bytes, so a source
    # path that has some is written with them escaped (\xe9), the file itself renamed.
    with open(folder / "metadata.csv", "w", encoding=ENCODING, errors="strict", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for item in items:
            place(item.label.path, folder / "images" / item.name)
            writer.writerow(
                [
                    f"images/{item.name}",
                    item.label.emotion,
                    decimal(item.label.confidence),
                    decimal(item.label.calibrated),
                    _inert(item.label.model),
                    _inert(_text(item.label.path)),
                ]
            )


def _folders(items: list[_Item], folder: Path, place: Place, output: Path, root: Path) -> None:
    """One folder per emotion: torchvision's ImageFolder, Keras' image_dataset_from_directory."""
    for item in items:
        place(item.label.path, folder / item.label.emotion / item.name)


def _labelstudio(items: list[_Item], folder: Path, place: Place, output: Path, root: Path) -> None:
    """tasks.json with one prediction each, and the labelling config (config.xml). Images
    are served by Label Studio's local-files storage as /data/local-files/?d=<path under
    LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT>."""
    try:
        under_root = output.relative_to(Path(os.path.abspath(root)))
    except ValueError as exc:
        raise InputError(
            f"{output} is not under the document root {root}; pass --document-root."
        ) from exc
    tasks = []
    for item in items:
        place(item.label.path, folder / "images" / item.name)
        prediction: dict[str, Any] = {
            "model_version": item.label.model or "emotag",
            "result": [
                {
                    "from_name": "emotion",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [item.label.emotion]},
                }
            ],
        }
        # The audit's probability of being right where there is one, else the model's.
        score = (
            item.label.calibrated if item.label.calibrated is not None else item.label.confidence
        )
        if score is not None:
            prediction["score"] = score
        image = (under_root / "images" / item.name).as_posix()
        # Percent-encoded: a name holding '&', '#' or '%2F' must not break out of `d=`.
        url = f"/data/local-files/?d={urllib.parse.quote(image, safe='/')}"
        tasks.append(
            {
                "data": {"image": url, "source": _text(item.label.path)},
                "predictions": [prediction],
            }
        )
    (folder / "tasks.json").write_text(json.dumps(tasks, indent=1), encoding=ENCODING)
    choices = "\n".join(f"    <Choice value={quoteattr(e)}/>" for e in EMOTIONS)
    (folder / "config.xml").write_text(
        '<View>\n  <Image name="image" value="$image"/>\n'
        f'  <Choices name="emotion" toName="image" choice="single" showInLine="true">\n'
        f"{choices}\n  </Choices>\n</View>\n",
        encoding=ENCODING,
    )


def _fiftyone(items: list[_Item], folder: Path, place: Place, output: Path, root: Path) -> None:
    """A FiftyOneImageClassificationDataset: data/<uuid>.<ext> and labels.json, each
    target `{"label", "confidence"}`."""
    labels: dict[str, dict[str, Any]] = {}
    for item in items:
        place(item.label.path, folder / "data" / item.name)
        target: dict[str, Any] = {"label": item.label.emotion}
        if item.label.confidence is not None:
            target["confidence"] = item.label.confidence
        labels[os.path.splitext(item.name)[0]] = target
    document = {"classes": list(EMOTIONS), "labels": labels}
    (folder / "labels.json").write_text(json.dumps(document, indent=1), encoding=ENCODING)


_WRITERS: dict[Format, Callable[[list[_Item], Path, Place, Path, Path], None]] = {
    Format.HF: _hf,
    Format.FOLDERS: _folders,
    Format.LABELSTUDIO: _labelstudio,
    Format.FIFTYONE: _fiftyone,
}
