from __future__ import annotations

from pathlib import Path

import pytest

from emotag import AmbiguousLabel, LabelStore, MissingLabel
from emotag.records import Label


@pytest.fixture
def store() -> LabelStore:
    return LabelStore(
        [
            Label("/data/faces/a/one.png", "happy", 0.9),
            Label("/data/faces/b/one.png", "sad"),
            Label("/data/faces/b/two.png", "fear"),
        ],
        root="/data/faces",
    )


@pytest.mark.parametrize(
    ("query", "emotion", "how"),
    [
        pytest.param("/data/faces/a/one.png", "happy", "path", id="absolute"),
        pytest.param("/data/faces/b/../a/./one.png", "happy", "path", id="dot-segments"),
        pytest.param("a/one.png", "happy", "relative", id="relative-to-root"),
        pytest.param(r"b\two.png", "fear", "relative", id="windows-separators"),
        pytest.param(r"C:\elsewhere\two.png", "fear", "filename", id="windows-absolute-by-name"),
        pytest.param("/moved/two.png", "fear", "filename", id="unique-name"),
        pytest.param(Path("/data/faces/b/one.png"), "sad", "path", id="pathlike"),
    ],
)
def test_lookup_matches(store: LabelStore, query: str, emotion: str, how: str) -> None:
    found = store.match(query)
    assert found is not None and (found.emotion, found.how) == (emotion, how)
    assert store.emotion_for(query) == emotion


def test_lookup_refuses_ambiguous_file_names(store: LabelStore) -> None:
    assert store.emotion_for("/moved/one.png") is None
    assert store.is_ambiguous("/moved/one.png")
    strict = LabelStore(store.labels(), missing="raise")
    with pytest.raises(AmbiguousLabel, match="several labelled files"):
        strict.emotion_for("/moved/one.png")
    with pytest.raises(MissingLabel, match="no label"):
        strict.emotion_for("nothing.png")


def test_lookup_relative_to_working_directory(tmp_path: Path, monkeypatch) -> None:
    store = LabelStore([Label(str(tmp_path / "x" / "f.png"), "angry"), Label("/o/f.png", "sad")])
    monkeypatch.chdir(tmp_path)
    assert store.emotion_for("x/f.png") == "angry"
    assert store.emotion_for("x/../x/f.png") == "angry"


def test_lookup_fallback_parses_file_names_with_aliases(store: LabelStore) -> None:
    fallback = LabelStore(store.labels(), fallback="filename")
    assert fallback.emotion_for("/new/male_young_asian_serious.png") == "neutral"
    found = fallback.match("/new/f_o_w_surprised.jpg")
    assert found is not None and found.how == "fallback" and found.emotion == "surprise"
    assert fallback.emotion_for("/new/holiday.png") is None


def test_lookup_from_csv_loads_100k_rows(tmp_path: Path) -> None:
    """Correctness at size; the speed itself is measured in benchmarks/bench_merge.py."""
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="") as handle:
        handle.write("filename,path,emotion,confidence\n")
        for i in range(100_000):
            handle.write(f"{i}.png,/d/{i % 100}/{i}.png,sad,0.5\n")
    store = LabelStore.from_csv(path)
    assert len(store) == 100_000
    assert store.emotion_for("/d/7/99907.png") == "sad"
    assert store.emotion_for("99907.png") == "sad"


def test_dir_lists_the_whole_public_api_before_any_is_loaded() -> None:
    import subprocess
    import sys

    # A fresh process: nothing imported yet, as in a new notebook.
    code = (
        "import emotag, sys; print(sorted(dir(emotag))); "
        "print('emotag.datasets.lookup' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed, loaded = out.stdout.splitlines()
    import emotag

    assert all(f"'{name}'" in listed for name in emotag.__all__) and "'__version__'" in listed
    assert loaded == "False"  # listing did not import the heavy modules
