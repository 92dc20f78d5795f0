from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emotag.emotions import EMOTIONS
from emotag.errors import InputError, OutputError
from emotag.files.csvfiles import (
    ANSWER_COLUMNS,
    ERROR_COLUMNS,
    LABEL_COLUMNS,
    Appender,
    answers_path_for,
    compact_failures,
    compact_labels,
    errors_path_for,
    label_from_row,
    no_face_hashes,
    read_answers,
    read_failures,
    read_for_rewrite,
    read_labels,
)
from emotag.files.lock import run_lock
from emotag.records import NO_FACE, Failure, Label
from helpers import csv_line


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


def test_a_lock_that_cannot_be_made_is_not_blamed_on_another_run(tmp_path: Path) -> None:
    (tmp_path / ".l.csv.lock").mkdir()  # filelock says only "not acquired"
    with (
        pytest.raises(OutputError, match=r"^Cannot write to .*: Is a directory"),
        run_lock(tmp_path / "l.csv"),
    ):
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


# --- the rules of the three CSV files, stated over many inputs ----------------------------

probabilities = st.one_of(st.none(), st.sampled_from([0.0, 1.0, 0.5]), st.floats(0, 1))
full_labels = st.builds(
    Label,
    path=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1).map(
        lambda s: "/d/" + s
    ),
    emotion=st.sampled_from(EMOTIONS),
    confidence=probabilities,
    confidence_source=st.sampled_from(["", "logprobs", "votes", "human", "softmax"]),
    model=st.sampled_from(["", "gemini-3.5-flash-lite", "local-fer-26562110"]),
    faces=st.sampled_from(["", "1", "2+"]),
    sha256=st.sampled_from(["", "ab" * 32]),
    duplicate_of=st.sampled_from(["", "/d/first.png"]),
    votes=st.sampled_from(["", "happy:3", "happy:2 sad:2"]),
    calibrated=probabilities,
    local_emotion=st.sampled_from(["", *EMOTIONS]),
    local_confidence=probabilities,
)


def rounded(label: Label) -> Label:
    """A label as the CSV keeps it: probabilities to four places."""

    def four(p: float | None) -> float | None:
        return None if p is None else float(f"{p:.4f}")

    return Label(
        label.path, label.emotion, four(label.confidence), label.confidence_source,
        label.model, label.faces, label.sha256, label.duplicate_of, label.votes,
        four(label.calibrated), label.local_emotion, four(label.local_confidence),
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(full_labels, min_size=1, max_size=6, unique_by=lambda label: label.path))
def test_every_field_of_every_row_round_trips(tmp_path_factory, labels: list[Label]) -> None:
    path = tmp_path_factory.mktemp("rt") / "l.csv"
    write_labels(path, labels)
    table = read_labels(path)
    assert not table.problems and not table.torn and not table.duplicates
    assert list(table.labels.values()) == [rounded(label) for label in labels]
    assert [label_from_row(label.as_row()) for label in labels] == list(table.labels.values())


def test_a_bad_row_in_the_middle_is_reported_and_the_rows_after_it_kept(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    text = ",".join(LABEL_COLUMNS) + "\r\n"
    text += csv_line("a.png", "/d/a.png", "happy")
    text += csv_line("b.png", "/d/b.png", "bored")  # line 3
    text += csv_line("d.png", "/d/d.png", "sad")
    text += csv_line("e.png", "/d/e.png", "fear", "1.5")  # out of range
    text += csv_line("f.png", "/d/f.png", "fear", "nan")
    text += csv_line("g.png", "/d/g.png", "fear", "", "", "", "", "", "", "happy:x")
    text += csv_line("h.png", "/d/h.png", "neutral")
    path.write_text(text, encoding="utf-8")
    table = read_labels(path)
    assert "/d/a.png" in table.labels and "/d/h.png" in table.labels
    assert any(":3: 'bored' is not one of the seven" in p for p in table.problems)
    assert any("confidence 1.5 is outside [0, 1]" in p for p in table.problems)
    assert any("votes 'happy:x'" in p for p in table.problems)
    with pytest.raises(InputError, match="bad row"):
        read_for_rewrite(path)
    before = path.read_bytes()
    compact_labels(path, table)  # never drops the rows it cannot read
    assert path.read_bytes() == before


@pytest.mark.parametrize("tail", ["i.png,/d/i.png,hap", 'i.png,"/d/i.png,happy,0.9'])
def test_a_torn_last_line_is_dropped_and_the_file_repaired(tmp_path: Path, tail: str) -> None:
    path = tmp_path / "l.csv"
    write_labels(path, [Label("/d/a.png", "happy")])
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write(tail)  # a crash mid-row: no newline
    table = read_labels(path)
    assert table.torn and list(table.labels) == ["/d/a.png"] and not table.problems
    compact_labels(path, table)
    assert path.read_bytes().endswith(b"\r\n") and b"/d/i.png" not in path.read_bytes()


def test_an_older_header_is_read_by_name_and_rewritten_in_full(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("filename,path,emotion,confidence\r\na.png,/d/a.png,sad,0.5\r\n")
    table = read_labels(path)
    assert table.labels["/d/a.png"] == Label("/d/a.png", "sad", 0.5)
    compact_labels(path, table)
    assert path.read_text().splitlines()[0] == ",".join(LABEL_COLUMNS)
    assert read_labels(path).labels == table.labels
    unchanged = path.read_bytes()
    compact_labels(path, read_labels(path))  # nothing to mend: not rewritten
    assert path.read_bytes() == unchanged


def test_answers_are_the_models_own_valid_and_counted_once(tmp_path: Path) -> None:
    path = answers_path_for(tmp_path / "labels.csv")
    assert path.name == "labels.answers.csv" and errors_path_for(path).name.endswith(".errors.csv")
    rows = [
        ("d1", "m", "happy", "1", "", ""),
        ("d1", "m", "sad", "1", "", ""),
        ("d1", "other", "fear", "1", "", ""),
        ("d2", "m", "bored", "1", "", ""),  # off the list: not an answer
        ("d3", "m", "sad", "2+", "", "job/k1"),
        ("d3", "m", "sad", "2+", "", "job/k1"),  # a fetch run twice
    ]
    path.write_text(",".join(ANSWER_COLUMNS) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    assert read_answers(path, "m") == {"d1": [("happy", "1"), ("sad", "1")], "d3": [("sad", "2+")]}
    assert read_answers(tmp_path / "none.csv", "m") == {}


def test_no_face_is_remembered_per_model_and_content(tmp_path: Path) -> None:
    errors = tmp_path / "l.errors.csv"
    failures = [
        Failure("/d/a.png", NO_FACE, "m", "h1"),
        Failure("/d/b.png", NO_FACE, "other", "h2"),
        Failure("/d/c.png", "unreadable image: x", "m", "h3"),
        Failure("/d/d.png", NO_FACE, "m", ""),
    ]
    appender = Appender(errors, ERROR_COLUMNS)
    for failure in failures:
        appender.append(failure.as_row())
    appender.close()
    assert no_face_hashes(errors, "m") == {"h1"}
    assert compact_failures(errors, ["/d/a.png"]) == 3
    assert set(read_failures(errors)) == {"/d/b.png", "/d/c.png", "/d/d.png"}


def test_a_row_from_a_dict_is_checked_as_the_csv_is() -> None:
    with pytest.raises(InputError, match="not one of the seven"):
        label_from_row({"path": "/d/a.png", "emotion": "Happy"})
    assert label_from_row({"path": "/d/a.png", "emotion": "happy", "faces": "1"}).faces == "1"


def test_the_appender_writes_one_header_however_often_it_is_opened(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    for name in ("a", "b"):
        appender = Appender(path, LABEL_COLUMNS)
        appender.append(Label(f"/d/{name}.png", "sad").as_row())
        assert appender.rows == 1
        appender.close()
    lines = path.read_text().splitlines()
    assert lines.count(",".join(LABEL_COLUMNS)) == 1 and len(lines) == 3


def test_a_quote_opened_mid_file_and_never_closed_drops_no_row(tmp_path: Path) -> None:
    """It swallows the rows after it into one field: a bad row, refused, never a torn tail
    that compaction would cut (with every row after it)."""
    path = tmp_path / "l.csv"
    text = ",".join(LABEL_COLUMNS) + "\r\n" + csv_line("a.png", "/d/a.png", "happy")
    text += 'b.png,"/d/b.png,sad\r\n' + csv_line("c.png", "/d/c.png", "sad")
    path.write_text(text, encoding="utf-8")
    table = read_labels(path)
    assert table.problems and not table.torn
    compact_labels(path, table)
    assert path.read_text(encoding="utf-8") == text.replace("\r\n", "\n")


@pytest.mark.parametrize("change", ["replaced", "deleted", "shortened"])
def test_the_appender_notices_its_file_changed(tmp_path: Path, change: str) -> None:
    path = tmp_path / "labels.csv"
    appender = Appender(path, LABEL_COLUMNS)
    appender.append(Label("/a.png", "happy").as_row())
    if change == "replaced":
        (tmp_path / "new.csv").write_text("x\n")
        os.replace(tmp_path / "new.csv", path)
    elif change == "deleted":
        path.unlink()
    else:
        os.truncate(path, 10)
    with pytest.raises(OutputError) as stopped:
        appender.append(Label("/b.png", "sad").as_row())
    appender.close()
    what = "deleted" if change == "deleted" else "replaced or shortened"
    assert f"{path} was {what} by another program" in str(stopped.value)
    assert "(1 row(s) written before)" in str(stopped.value)


def test_the_appender_goes_on_while_its_file_only_grows(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    appender = Appender(path, LABEL_COLUMNS)
    appender.append(Label("/a.png", "happy").as_row())
    with open(path, "a", encoding="utf-8") as other:  # another appender: the file grows
        other.write("b.png,/b.png,sad,,,,,,,,,,\r\n")
    appender.append(Label("/c.png", "fear").as_row())
    appender.close()
    assert list(read_labels(path).labels) == ["/a.png", "/b.png", "/c.png"]


def test_the_errors_csv_keeps_the_last_row_per_path_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "l.errors.csv"
    appender = Appender(path, ERROR_COLUMNS)
    appender.append(Failure("/d/a.png", "first", "m1", "h1").as_row())
    appender.append(Failure("/d/a.png", NO_FACE, "m2", "h2").as_row())
    appender.append({"path": "", "reason": "a row without a path is no failure"})
    appender.close()
    assert read_failures(path) == {"/d/a.png": Failure("/d/a.png", NO_FACE, "m2", "h2")}
    assert read_failures(tmp_path / "none.csv") == {}


def test_a_rewrite_is_refused_naming_how_many_rows_and_the_first_three(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    text = ",".join(LABEL_COLUMNS) + "\r\n"
    text += "".join(csv_line(f"{i}.png", f"/d/{i}.png", "bored") for i in range(4))
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as refused:
        read_for_rewrite(path)
    message = str(refused.value)
    assert message.startswith(f"4 bad row(s) in {path} ({path}:2: ")
    assert f"{path}:4: " in message and f"{path}:5: " not in message  # the first three
    assert message.endswith("emotag will not rewrite a CSV with rows it cannot read.")
    with pytest.raises(InputError) as bad:
        label_from_row({"path": "/d/a.png", "emotion": "Happy"})
    assert str(bad.value) == (
        "Not a label row ('Happy' is not one of the seven emotions): /d/a.png"
    )


def test_an_empty_file_gets_its_header_before_the_first_row(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.touch()
    appender = Appender(path, ERROR_COLUMNS)
    appender.append(Failure("/d/a.png", "x").as_row())
    appender.close()
    assert path.read_text().splitlines()[0] == ",".join(ERROR_COLUMNS)
    assert list(read_failures(path)) == ["/d/a.png"]
