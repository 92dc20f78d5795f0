"""`emotag export`: each format as its own library reads it (Hugging Face `datasets` for
real; the others by their readers' documented rules, see docs/export.md)."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from fakes.gemini_api import FakeGemini
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
# torchvision.datasets.folder.IMG_EXTENSIONS
TORCHVISION_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@pytest.fixture
def tagged(gemini: FakeGemini, tmp_path: Path) -> dict[str, str]:
    """Nine labelled images, two of them named alike in different folders."""
    root = tmp_path / "faces"
    truth = {}
    for i, emotion in enumerate(EMOTIONS):
        truth[str(make_image(root / f"p{i}.png", emotion, size=(30 + i, 30)))] = emotion
    truth[str(make_image(root / "a" / "same.png", "sad", size=(41, 31)))] = "sad"
    truth[str(make_image(root / "b" / "same.png", "fear", size=(42, 31)))] = "fear"
    result = runner.invoke(app, ["tag", str(root)])
    assert result.exit_code == 0, result.output
    return truth


def export(*args: str):
    return runner.invoke(app, ["export", str(LABELS), *args])


# `datasets` leaves metadata.csv open when it reads an imagefolder (its own handle, not
# emotag's): the ResourceWarning is collected here rather than failing the next test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_hf_imagefolder_loads_in_datasets_with_every_label(tagged: dict[str, str]) -> None:
    datasets = pytest.importorskip("datasets")
    result = export("--format", "hf", "-o", "hf", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 9
    loaded = datasets.load_dataset("imagefolder", data_dir="hf", split="train")
    assert len(loaded) == 9
    assert {row["source_path"]: row["emotion"] for row in loaded} == tagged
    assert set(loaded.column_names) >= {"image", "emotion", "confidence", "model"}
    assert all(row["image"].size[1] in (30, 31) for row in loaded)  # the images themselves
    del loaded
    gc.collect()


def test_class_folders_follow_imagefolder_rules(tagged: dict[str, str]) -> None:
    result = export("--format", "folders", "-o", "classes")
    assert result.exit_code == 0, result.output
    root = Path("classes")
    # ImageFolder: classes are the sorted sub-folders; every file has an image extension;
    # no folder may be empty. Two "same.png" from different folders do not collide.
    classes = sorted(p.name for p in root.iterdir())
    assert all(p.is_dir() for p in root.iterdir()) and set(classes) <= set(EMOTIONS)
    found = {}
    for emotion in classes:
        files = list((root / emotion).iterdir())
        assert files and all(f.suffix.lower() in TORCHVISION_EXTENSIONS for f in files)
        found.update({f.name: emotion for f in files})
    assert len(found) == 9 and sorted(found.values()) == sorted(tagged.values())
    assert sum(1 for name in found if name.startswith("same_")) == 2


def test_label_studio_tasks_and_config(tagged: dict[str, str], tmp_path: Path) -> None:
    result = export("--format", "labelstudio", "-o", "ls/project", "--document-root", "ls")
    assert result.exit_code == 0, result.output
    tasks = json.loads(Path("ls/project/tasks.json").read_text(encoding="utf-8"))
    assert len(tasks) == 9
    for task in tasks:
        url = task["data"]["image"]
        assert url.startswith("/data/local-files/?d=project/images/")
        assert (Path("ls") / url.removeprefix("/data/local-files/?d=")).is_file()
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "gemini-3.5-flash-lite"
        assert 0 < prediction["score"] <= 1
        (choice,) = prediction["result"]
        assert (choice["from_name"], choice["to_name"], choice["type"]) == (
            "emotion",
            "image",
            "choices",
        )
        assert choice["value"]["choices"] == [tagged[task["data"]["source"]]]
    config = Path("ls/project/config.xml").read_text(encoding="utf-8")
    assert '<Image name="image" value="$image"/>' in config
    assert all(f'<Choice value="{e}"/>' in config for e in EMOTIONS)
    outside = export("--format", "labelstudio", "-o", "elsewhere", "--document-root", "ls")
    assert outside.exit_code == 2 and "--document-root" in outside.stderr


def test_fiftyone_classification_dataset(tagged: dict[str, str]) -> None:
    result = export("--format", "fiftyone", "-o", "fo")
    assert result.exit_code == 0, result.output
    document = json.loads(Path("fo/labels.json").read_text(encoding="utf-8"))
    assert document["classes"] == list(EMOTIONS)
    media = {p.stem: p for p in Path("fo/data").iterdir()}
    assert set(document["labels"]) == set(media) and len(media) == 9  # uuid = file stem
    for target in document["labels"].values():
        assert target["label"] in EMOTIONS and 0 < target["confidence"] <= 1
    emotions = sorted(t["label"] for t in document["labels"].values())
    assert emotions == sorted(tagged.values())


def test_links_a_folder_in_the_way_and_missing_images(
    tagged: dict[str, str], tmp_path: Path
) -> None:
    linked = export("--format", "folders", "-o", "linked", "--link")
    assert linked.exit_code == 0, linked.output
    source = next(iter(tagged))
    copy = next(Path("linked").rglob(Path(source).name))
    assert os.path.samefile(copy, source)  # a link, not a copy
    Path("busy").mkdir()
    (Path("busy") / "keep.txt").write_text("mine")
    refused = export("--format", "hf", "-o", "busy")
    assert refused.exit_code == 2 and "in the way" in refused.stderr
    assert os.listdir("busy") == ["keep.txt"]
    Path(source).unlink()
    partial = export("--format", "hf", "-o", "later", "--json")
    assert partial.exit_code == 1 and json.loads(partial.stdout)["missing"] == [source]
    assert len(read_csv(Path("later/metadata.csv"))) == 8
    assert not list(Path().glob(".*.partial"))


def test_a_bad_row_refuses_the_export_before_anything_is_written(
    tagged: dict[str, str],
) -> None:
    """An export that left a row out would say nothing of it: it names the line instead."""
    with LABELS.open("a", encoding="utf-8", newline="") as handle:
        handle.write(f"x.png,{next(iter(tagged))},furious,0.5\r\n")
    result = export("--format", "folders", "-o", "out")
    assert result.exit_code == 2
    assert "1 bad row(s) in" in result.output
    assert "an export would leave them out" in result.output
    assert not Path("out").exists()
