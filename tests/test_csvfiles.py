from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import csv_line
from emotag.csvfiles import (
    ERROR_COLUMNS,
    LABEL_COLUMNS,
    Appender,
    compact_failures,
    compact_labels,
    read_failures,
    read_labels,
)
from emotag.emotions import EMOTIONS
from emotag.errors import InputError, OutputError
from emotag.lock import run_lock
from emotag.records import Failure, Label


def write_labels(path: Path, labels: list[Label]) -> None:
    appender = Appender(path, LABEL_COLUMNS)
    for label in labels:
        appender.append(label.as_row())
    appender.close()


def test_appender_writes_header_once_and_rows_in_order(tmp_path: Path) -> None:
    csv_path = tmp_path / "l.csv"
    write_labels(csv_path, [Label("/a/1.png", "happy", 0.5)])
    write_labels(csv_path, [Label("/a/2.png", "sad")])
    text = csv_path.read_text()
    assert text.startswith("filename,path,emotion,confidence,")
    assert text.count("filename,path") == 1
    assert list(read_labels(csv_path).labels) == ["/a/1.png", "/a/2.png"]


def test_read_labels_repairs_a_torn_last_line(tmp_path: Path) -> None:
    csv_path = tmp_path / "l.csv"
    write_labels(csv_path, [Label("/a/1.png", "happy"), Label("/a/2.png", "sad")])
    with open(csv_path, "a") as handle:
        handle.write('3.png,"/a/3.p')  # a kill in the middle of a row
    table = read_labels(csv_path)
    assert table.torn and list(table.labels) == ["/a/1.png", "/a/2.png"]
    compact_labels(csv_path, table)
    again = read_labels(csv_path)
    assert not again.torn and list(again.labels) == ["/a/1.png", "/a/2.png"]


def test_read_labels_keeps_the_newest_row_per_path(tmp_path: Path) -> None:
    csv_path = tmp_path / "l.csv"
    write_labels(csv_path, [Label("/a/1.png", "happy"), Label("/a/1.png", "sad")])
    table = read_labels(csv_path)
    assert table.duplicates == 1 and table.labels["/a/1.png"].emotion == "sad"


def test_read_labels_reports_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    csv_path = tmp_path / "l.csv"
    write_labels(csv_path, [Label("/a/1.png", "happy")])
    with open(csv_path, "a", newline="") as handle:
        handle.write(csv_line("2.png", "/a/2.png", "serious"))
        handle.write(csv_line("3.png", "/a/3.png", "sad", "2.5"))
        handle.write(csv_line("4.png", "/a/4.png", "sad"))
    table = read_labels(csv_path)
    assert table.problems == [
        f"{csv_path}:3: 'serious' is not one of the seven emotions",
        f"{csv_path}:4: confidence 2.5 is outside [0, 1]",
    ]
    assert list(table.labels) == ["/a/1.png", "/a/4.png"]


def test_read_labels_rejects_a_foreign_header(tmp_path: Path) -> None:
    csv_path = tmp_path / "other.csv"
    csv_path.write_text("name,label\nx.png,happy\n")
    with pytest.raises(InputError, match="not an emotag labels CSV"):
        read_labels(csv_path)


def test_compact_failures_drops_labelled_and_repeated_paths(tmp_path: Path) -> None:
    errors = tmp_path / "e.csv"
    appender = Appender(errors, ERROR_COLUMNS)
    for failure in [Failure("/a", "x"), Failure("/b", "y"), Failure("/a", "z")]:
        appender.append(failure.as_row())
    appender.close()
    assert compact_failures(errors, ["/b"]) == 1
    assert {p: f.reason for p, f in read_failures(errors).items()} == {"/a": "z"}


def test_run_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    csv_path = tmp_path / "l.csv"
    with run_lock(csv_path):
        error: list[BaseException] = []

        def second() -> None:
            try:
                with run_lock(csv_path):
                    pass
            except OutputError as exc:
                error.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
        assert error and "Another emotag run" in str(error[0])
    with run_lock(csv_path):  # free again afterwards
        pass


def test_appender_reports_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="Cannot write"):
        Appender(blocker / "l.csv", LABEL_COLUMNS)


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(names, st.sampled_from(EMOTIONS)),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[0],
    )
)
def test_labels_round_trip_with_arbitrary_names(
    tmp_path_factory, rows: list[tuple[str, str]]
) -> None:
    csv_path = tmp_path_factory.mktemp("rt") / "l.csv"
    labels = [Label(f"/data/{name}", emotion, 0.25) for name, emotion in rows]
    write_labels(csv_path, labels)
    table = read_labels(csv_path)
    assert not table.problems and not table.torn
    assert list(table.labels.values()) == labels


def test_labels_round_trip_non_utf8_names(tmp_path: Path) -> None:
    odd = "/data/caf\udce9.png"  # the byte 0xE9 from a Latin-1 file system
    csv_path = tmp_path / "l.csv"
    write_labels(csv_path, [Label(odd, "sad")])
    assert list(read_labels(csv_path).labels) == [odd]
    assert b"caf\xe9.png" in csv_path.read_bytes()
