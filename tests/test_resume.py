"""The one rule of what is already done, shared by live, batch and dry-run runs: no image
is paid for twice, and an image with fewer votes than asked for is asked only for the
missing ones."""

from __future__ import annotations

import csv
from pathlib import Path

from emotag.files.csvfiles import ANSWER_COLUMNS, ERROR_COLUMNS
from emotag.providers.answers import Answer
from emotag.records import HUMAN, NO_FACE, Failure, Label, LabelTable
from emotag.run.resume import ResumeIndex

MODEL = "m-1"


def table(*labels: Label) -> LabelTable:
    return LabelTable(labels={label.path: label for label in labels})


def write(path: Path, columns: tuple[str, ...], *rows: dict[str, str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in columns} for row in rows)
    return path


def load(tmp_path: Path, *labels: Label, **options: object) -> ResumeIndex:
    return ResumeIndex.load(table(*labels), tmp_path / "none.csv", MODEL, **options)  # type: ignore[arg-type]


def test_done_means_this_model_its_aliases_or_a_person(tmp_path: Path) -> None:
    rows = [
        Label("/d.png", "sad", model="other", sha256="h-d"),
        Label("/a.png", "sad", model=MODEL, sha256="h-a"),
        Label("/b.png", "sad", model="m-1-2026-10", sha256="h-b"),  # the name its server reports
        Label("/c.png", "fear", model="other", confidence_source=HUMAN),
    ]
    index = load(tmp_path, *rows, force=False, aliases=frozenset({"m-1-2026-10"}))
    assert index.done_paths == {"/a.png", "/b.png", "/c.png"}
    assert set(index.by_hash) == {"h-a", "h-b"}  # a row without a hash is done by path alone
    assert load(tmp_path, *rows, force=True).done_paths == set()


def test_another_models_row_counts_only_where_settled_says(tmp_path: Path) -> None:
    sure = Label("/s.png", "happy", 0.95, model="local", sha256="h-s")
    unsure = Label("/u.png", "happy", 0.40, model="local", sha256="h-u")
    index = load(tmp_path, sure, unsure, force=False, settled=lambda lab: lab.confidence > 0.9)
    assert index.done_paths == {"/s.png"} and set(index.by_hash) == {"h-s"}


def test_the_first_row_of_the_same_bytes_stands_for_them(tmp_path: Path) -> None:
    first = Label("/a.png", "sad", model=MODEL, sha256="same")
    copy = Label("/copy/a.png", "fear", model=MODEL, sha256="same")
    assert load(tmp_path, first, copy, force=False).by_hash == {"same": first}


def test_no_face_counts_for_this_model_only(tmp_path: Path) -> None:
    errors = write(
        tmp_path / "errors.csv",
        ERROR_COLUMNS,
        {"path": "/a.png", "reason": NO_FACE, "model": MODEL, "sha256": "h-a"},
        {"path": "/b.png", "reason": NO_FACE, "model": "other", "sha256": "h-b"},
        {"path": "/c.png", "reason": "timed out", "model": MODEL, "sha256": "h-c"},
        {"path": "/d.png", "reason": NO_FACE, "model": MODEL},
    )
    index = ResumeIndex.load(table(), errors, MODEL, force=False)
    assert index.no_face == {"h-a"}
    assert ResumeIndex.load(table(), errors, MODEL, force=True).no_face == set()


def test_with_votes_a_row_is_done_only_with_every_vote(tmp_path: Path) -> None:
    three = Label("/3.png", "sad", model=MODEL, sha256="h3", votes="sad:2 fear:1")
    one = Label("/1.png", "sad", model=MODEL, sha256="h1", votes="sad:1", faces="1")
    plain = Label("/p.png", "fear", model=MODEL, sha256="hp", faces="2+")  # before --votes
    person = Label("/h.png", "fear", model=MODEL, sha256="hh", confidence_source=HUMAN)
    index = load(tmp_path, three, one, plain, person, force=False, votes=3)
    assert index.done_paths == {"/3.png", "/h.png"}
    # What the earlier, smaller runs paid for counts towards this one.
    assert index.answers("h1") == [("sad", "1")] and index.missing("h1") == 2
    assert index.answers("hp") == [("fear", "2+")] and index.missing("hp") == 2
    assert index.missing("h3") == 3 and index.missing("new") == 3  # nothing in the ledger
    assert load(tmp_path, one, force=False, votes=1).done_paths == {"/1.png"}


def test_the_answers_ledger_outranks_the_votes_cell(tmp_path: Path) -> None:
    """The ledger holds every answer paid for, also those of a row not yet written."""
    ledger = write(
        tmp_path / "answers.csv",
        ANSWER_COLUMNS,
        {"sha256": "h1", "model": MODEL, "emotion": "sad", "faces": "1"},
        {"sha256": "h1", "model": MODEL, "emotion": "fear", "faces": "1"},
        {"sha256": "h1", "model": "other", "emotion": "happy"},
        {"sha256": "h9", "model": MODEL, "emotion": "angry", "request": "r1"},
        {"sha256": "h9", "model": MODEL, "emotion": "angry", "request": "r1"},  # fetched twice
    )
    one = Label("/1.png", "sad", model=MODEL, sha256="h1", votes="sad:1")
    index = load(tmp_path, one, force=False, votes=3, answers_csv=ledger)
    assert index.answers("h1") == [("sad", "1"), ("fear", "1")] and index.missing("h1") == 1
    assert index.missing("h9") == 2
    assert load(tmp_path, force=False, votes=2, answers_csv=ledger).missing("h1") == 0
    assert load(tmp_path, one, force=False, votes=1, answers_csv=ledger).paid == {}


def test_an_outcome_in_this_run_settles_every_copy(tmp_path: Path) -> None:
    index = ResumeIndex()
    label = Label("/a.png", "sad")
    index.settled("h-a", label)
    index.settled("h-b", Failure("/b.png", NO_FACE))
    index.settled("h-c", Failure("/c.png", "timed out"))  # worth another try
    assert index.by_hash == {"h-a": label} and index.no_face == {"h-b"}


def test_only_votes_keep_a_ledger_and_a_claim_names_the_first_sender() -> None:
    answer = Answer("sad", 0.9, "logprobs", 10, 1, faces="1")
    single, voting = ResumeIndex(), ResumeIndex(votes=2)
    for index in (single, voting):
        index.paid_for("h", answer)
    assert single.answers("h") == [] and voting.answers("h") == [("sad", "1")]
    assert voting.missing("h") == 1
    voting.paid_for("h", answer)
    voting.paid_for("h", answer)
    assert voting.missing("h") == 0  # never below none
    assert single.claim("h", "/a.png") is None and single.claim("h", "/a.png") is None
    assert single.claim("h", "/copy.png") == "/a.png"
    assert single.claim("k", "/other.png") is None  # other bytes, their own claim
