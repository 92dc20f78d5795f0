from __future__ import annotations

import csv
from pathlib import Path

import pytest

from emotag import AmbiguousLabel, LabelStore, MissingLabel
from emotag.datasets.lookup import Match
from emotag.files.csvfiles import LABEL_COLUMNS
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
    for query in ("x/f.png", "x/../x/f.png", r"x\f.png"):
        found = store.match(query)
        assert found is not None and found.how == "path" and found.label is store.labels()[0]


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


def test_a_match_carries_the_labelled_row_and_how_it_was_found(store: LabelStore) -> None:
    """extract_landmarks.py may want the row's confidence or model, not only the emotion."""
    rows = {label.path: label for label in store.labels()}
    for query, how, path in [
        ("/data/faces/a/one.png", "path", "/data/faces/a/one.png"),
        ("b/two.png", "relative", "/data/faces/b/two.png"),
        ("/moved/two.png", "filename", "/data/faces/b/two.png"),
    ]:
        found = store.match(query)
        assert found is not None and found.how == how and found.label is rows[path]


@pytest.mark.parametrize(
    ("query", "how"),
    [
        ("/data//faces/a/one.png", "path"),
        ("/data/faces/a/one.png/", "path"),
        ("./a/one.png", "relative"),
        (r".\a\one.png", "relative"),
        ("a//one.png", "relative"),
    ],
)
def test_a_path_written_another_way_finds_the_same_row(
    store: LabelStore, query: str, how: str
) -> None:
    """one.png names two rows: only the path itself, however spelt, can find this one."""
    found = store.match(query)
    assert found is not None and (found.emotion, found.how) == ("happy", how)


@pytest.mark.parametrize("root", ["/", "/data/faces/", "/data/./faces"])
def test_relative_lookups_work_from_any_root_spelling(root: str) -> None:
    store = LabelStore([Label("/data/faces/b/two.png", "fear"), Label("/x/two.png", "sad")])
    relative = "data/faces/b/two.png" if root == "/" else "b/two.png"
    found = LabelStore(store.labels(), root=root).match(relative)
    assert found is not None and (found.emotion, found.how) == ("fear", "relative")


def test_the_file_name_is_a_fallback_never_an_override(store: LabelStore) -> None:
    """A labelled image keeps its label even where its name says another emotion, and a
    name that says none finds nothing."""
    named = Label("/data/m_young_asian_happy.png", "sad")
    fallback = LabelStore([*store.labels(), named], fallback="filename")
    found = fallback.match(named.path)
    assert found is not None and (found.emotion, found.how) == ("sad", "path")
    assert fallback.match("/new/holiday.png") is None
    assert LabelStore([named]).emotion_for("/new/f_o_w_fear.png") is None  # not asked for


def test_a_name_is_ambiguous_only_where_no_path_matched(store: LabelStore) -> None:
    assert store.is_ambiguous(r"D:\moved\one.png")
    assert not store.is_ambiguous("/data/faces/a/one.png")  # its path finds it
    assert not store.is_ambiguous("a/one.png")
    assert not store.is_ambiguous("/moved/two.png")  # one row of that name: found
    assert not store.is_ambiguous("/moved/three.png")  # no row: missing, not ambiguous


def test_min_calibrated_keeps_only_labels_audited_at_least_that_sure() -> None:
    """An unaudited label has no probability of being right, so it does not pass; a label
    left out is missing, and its file name is still one of the names it shares."""
    labels = [
        Label("/d/sure.png", "happy", calibrated=0.91),
        Label("/d/edge.png", "sad", calibrated=0.8),
        Label("/d/unsure.png", "fear", calibrated=0.79),
        Label("/d/unaudited.png", "angry"),
    ]
    kept = LabelStore(labels, min_calibrated=0.8)
    assert sorted(label.path for label in kept.labels()) == ["/d/edge.png", "/d/sure.png"]
    assert kept.below_calibrated == 2 and kept.calibrated
    assert kept.emotion_for("/d/unsure.png") is None
    assert kept.emotion_for("/moved/unsure.png") is None
    every = LabelStore(labels)
    assert len(every) == 4 and every.below_calibrated == 0 and every.calibrated
    assert not LabelStore(labels[3:]).calibrated  # no audited label: nothing to filter by


def test_from_csv_takes_every_option_and_lists_the_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, LABEL_COLUMNS)
        writer.writeheader()
        writer.writerow(Label("/d/a/one.png", "happy", calibrated=0.9).as_row())
        writer.writerow(Label("/d/b/one.png", "sad", calibrated=0.5).as_row())
        writer.writerow(Label("/d/b/bored.png", "bored").as_row())
    store = LabelStore.from_csv(
        path, root="/d", fallback="filename", missing="raise", min_calibrated=0.6
    )
    assert len(store) == 1 and store.below_calibrated == 1
    assert store.match("a/one.png") == Match("happy", "relative", store.labels()[0])
    assert store.emotion_for("/new/f_o_w_fear.png") == "fear"
    with pytest.raises(AmbiguousLabel):  # never the other one.png's label
        store.emotion_for("/d/b/one.png")
    assert len(store.problems) == 1 and "bored" in store.problems[0]
    assert LabelStore.from_csv(path).emotion_for("/d/b/one.png") == "sad"  # the defaults


def test_a_row_written_with_backslashes_is_found_with_either_separator() -> None:
    store = LabelStore([Label(r"\data\b\two.png", "fear"), Label("/data/a/two.png", "sad")])
    assert store.emotion_for("/data/b/two.png") == "fear"
    assert store.emotion_for(r"\data\a\two.png") == "sad"
    assert store.is_ambiguous(r"\elsewhere\two.png") and store.problems == []
