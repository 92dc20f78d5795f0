"""`--votes K`: K independent answers per image, the majority as the label and its share as
the confidence; resumable vote by vote, live and batch alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.votes import answers_in, counted, is_split, is_tie, tally, vote_count
from fakes.gemini_api import FakeGemini
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
ANSWERS = Path("dataset/llm_labels.answers.csv")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def folder(root: Path, ambiguous: int, clear: int) -> None:
    for i in range(ambiguous):
        make_image(root / f"amb_{i:02d}.png", "ambiguous", size=(40 + i, 40))
    for i in range(clear):
        make_image(root / f"clear_{i:02d}.png", EMOTIONS[i % 7], size=(40 + i, 50))


def rows() -> dict[str, dict[str, str]]:
    return {Path(r["path"]).name: r for r in read_csv(LABELS)}


@pytest.mark.parametrize(
    ("answers", "emotion", "share", "votes"),
    [
        ([("happy", "1")] * 3 + [("surprise", "1")] * 2, "happy", 0.6, "happy:3 surprise:2"),
        ([("sad", "1")] * 5, "sad", 1.0, "sad:5"),
        ([("sad", "1"), ("happy", "1")], "happy", 0.5, "happy:1 sad:1"),  # tie: list order
        ([("fear", "1"), ("fear", "0"), ("angry", "1")], "angry", 0.5, "angry:1 fear:1"),
    ],
)
def test_tally_majority_share_and_ties(
    answers: list[tuple[str, str]], emotion: str, share: float, votes: str
) -> None:
    result = tally(answers)
    assert (result.emotion, result.confidence, result.votes) == (emotion, share, votes)
    assert vote_count(result.votes) == len([a for a in answers if a[1] != "0"])


def test_tally_faces_follow_the_majority() -> None:
    assert tally([("happy", "0"), ("happy", "0"), ("sad", "1")]).faces == "0"
    assert tally([("happy", "1"), ("happy", "2+"), ("sad", "2+")]).faces == "2+"
    assert tally([("happy", "1"), ("sad", "2+")]).faces == "1"  # a face tie: one face
    assert is_tie(tally([("happy", "1"), ("happy", "1")]).votes) is False
    assert is_tie(tally([("happy", "1"), ("sad", "1")]).votes) is True


def test_votes_5_on_18_images_pay_5_answers_each_and_split_as_the_model_does(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "in", ambiguous=10, clear=8)
    result = invoke("tag", str(tmp_path / "in"), "--votes", "5", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    answered = [
        s for s in gemini.labelling_requests() if "candidateCount" not in s.body["generationConfig"]
    ]
    assert summary["answers"] == len(answered) == 90  # Gemini 3: one answer a request
    assert summary["refused_settings"] == 1  # candidateCount, learned once
    by_name = rows()
    assert len(by_name) == 18
    happy = 0
    for name, row in by_name.items():
        counts = {e: int(c) for e, c in (p.split(":") for p in row["votes"].split())}
        assert sum(counts.values()) == 5
        assert row["emotion"] == max(counts, key=lambda e: (counts[e], -EMOTIONS.index(e)))
        assert float(row["confidence"]) == pytest.approx(counts[row["emotion"]] / 5)
        assert row["confidence_source"] == "votes"
        if name.startswith("clear"):
            assert float(row["confidence"]) == 1.0 and len(counts) == 1
        else:
            assert set(counts) <= {"happy", "surprise"}
            happy += counts.get("happy", 0)
    # The fake answers an ambiguous face happy 60% of the time: 50 independent draws.
    assert 0.4 <= happy / 50 <= 0.8
    assert summary["split_votes"] == sum(1 for r in by_name.values() if " " in r["votes"])
    assert len(read_csv(ANSWERS)) == 90


def test_a_model_that_takes_a_candidate_count_pays_one_request_per_image(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "in", ambiguous=4, clear=2)
    result = invoke("tag", str(tmp_path / "in"), "--votes", "3", "-m", "gemini-2.5-flash", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answers"] == 18
    requests = gemini.labelling_requests()
    assert len(requests) == 6 and {
        s.body["generationConfig"]["candidateCount"] for s in requests
    } == {3}
    assert all("temperature" not in s.body["generationConfig"] for s in requests)
    assert all(vote_count(r["votes"]) == 3 for r in rows().values())


def test_raising_votes_asks_only_the_missing_answers(gemini: FakeGemini, tmp_path: Path) -> None:
    folder(tmp_path / "in", ambiguous=3, clear=3)
    assert invoke("tag", str(tmp_path / "in"), "--votes", "3").exit_code == 0
    before = len(gemini.labelling_requests())
    again = invoke("tag", str(tmp_path / "in"), "--votes", "3", "--json")
    assert json.loads(again.stdout)["answers"] == 0 and len(gemini.labelling_requests()) == before
    planned = json.loads(
        invoke("tag", str(tmp_path / "in"), "--votes", "5", "--dry-run", "--json").stdout
    )
    assert planned["to_send"] == 6 * 2
    more = invoke("tag", str(tmp_path / "in"), "--votes", "5", "--json")
    assert more.exit_code == 0, more.output
    assert json.loads(more.stdout)["answers"] == 12
    assert len(gemini.labelling_requests()) - before == 12  # 2 more per image, none refused
    assert all(vote_count(r["votes"]) == 5 for r in rows().values())


def test_a_crash_between_votes_loses_no_paid_answer(gemini: FakeGemini, tmp_path: Path) -> None:
    folder(tmp_path / "in", ambiguous=0, clear=3)
    gemini.daily_quota_after = 7  # the run stops after 7 of the 9 answers
    stopped = invoke("tag", str(tmp_path / "in"), "--votes", "3")
    assert stopped.exit_code == 2 and "daily request quota" in stopped.stderr
    assert len(read_csv(ANSWERS)) == 7
    gemini.daily_quota_after = None
    before = len(gemini.labelling_requests())
    resumed = invoke("tag", str(tmp_path / "in"), "--votes", "3", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["answers"] == 2
    assert len(gemini.labelling_requests()) - before == 2
    assert all(vote_count(r["votes"]) == 3 for r in rows().values())


def test_dry_run_estimates_k_times_the_requests(fake: FakeGemini, tmp_path: Path) -> None:
    folder(tmp_path / "in", ambiguous=2, clear=2)
    gemini = ("--provider", "gemini")  # with no key the offline model would answer once
    one = json.loads(invoke("tag", str(tmp_path / "in"), "--dry-run", "--json", *gemini).stdout)
    five = json.loads(
        invoke("tag", str(tmp_path / "in"), "--dry-run", "--json", "--votes", "5", *gemini).stdout
    )
    assert five["to_send"] == 5 * one["to_send"] == 20
    assert five["input_tokens"] == 5 * one["input_tokens"]


def test_batch_votes_give_the_same_columns_as_live(gemini: FakeGemini, tmp_path: Path) -> None:
    folder(tmp_path / "in", ambiguous=2, clear=4)
    assert invoke("tag", str(tmp_path / "in"), "--votes", "3", "-o", "live.csv").exit_code == 0
    submitted = invoke("tag", str(tmp_path / "in"), "--votes", "3", "--batch", "--json")
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.stdout)["requests"] == 18
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert invoke("batch", "fetch").exit_code == 0
    live = {Path(r["path"]).name: r for r in read_csv(Path("live.csv"))}
    batched = rows()
    assert set(live) == set(batched)
    for name, row in batched.items():
        assert vote_count(row["votes"]) == 3 and row["confidence_source"] == "votes"
        if name.startswith("clear"):
            for column in ("emotion", "confidence", "votes", "faces"):
                assert row[column] == live[name][column]


def test_eval_and_report_show_accuracy_against_coverage(gemini: FakeGemini, tmp_path: Path) -> None:
    root = tmp_path / "in"
    # File names carry the truth: the clear faces are right, the ambiguous ones are "fear".
    for i in range(4):
        make_image(root / f"m_y_w_{i}_fear.png", "ambiguous", size=(40 + i, 40))
    for i, emotion in enumerate(["happy", "sad", "angry", "neutral"]):
        make_image(root / f"f_o_b_{i}_{emotion}.png", emotion, size=(40 + i, 60))
    assert invoke("tag", str(root), "--votes", "3").exit_code == 0
    result = invoke("eval", str(LABELS), "--truth", "filenames", "--min-confidence", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    coverage = {p["threshold"]: p for p in report["coverage"]}
    assert coverage[0.0]["share"] == 1.0 and coverage[0.0]["accuracy"] == 0.5
    # Unanimous labels: the four clear faces, plus any ambiguous one that drew 3 alike.
    assert report["min_confidence"]["kept"] >= 4
    assert coverage[1.0]["accuracy"] == pytest.approx(
        4 / report["min_confidence"]["kept"], abs=1e-4
    )
    made = invoke("report", "-l", str(LABELS), "-o", "r.html", "--truth", "filenames")
    assert made.exit_code == 0, made.output
    page = Path("r.html").read_text()
    assert 'id="coverage"' in page and 'data-accuracy="1"' in page and "<svg" in page


# --- the rules of the votes column, stated over many inputs --------------------------------


SOME_ANSWERS = st.lists(
    st.tuples(st.sampled_from(EMOTIONS), st.sampled_from(["1", "2+"])), min_size=1, max_size=9
)


@given(SOME_ANSWERS)
def test_a_tally_written_and_read_back_holds_every_answer(answers: list[tuple[str, str]]) -> None:
    result = tally(answers)
    assert vote_count(result.votes) == len(answers)
    back = sorted(e for e, _ in answers_in(result.votes, "1"))
    assert back == sorted(e for e, _ in answers)
    assert is_split(result.votes) == (len({e for e, _ in answers}) > 1)
    counts = [n for _, n in counted(result.votes) or ()]
    assert counts == sorted(counts, reverse=True)  # most votes first
    assert is_tie(result.votes) == (len(counts) > 1 and counts[0] == counts[1])


def test_a_split_that_is_no_tie_and_one_that_is() -> None:
    assert not is_tie("happy:3 surprise:2") and is_split("happy:3 surprise:2")
    assert is_tie("happy:2 sad:2") and not is_tie("happy:3") and not is_split("happy:3")


def test_a_face_tie_is_read_as_a_face_one_before_several_before_none() -> None:
    assert tally([("happy", "0"), ("happy", "1")]).faces == "1"
    assert tally([("happy", "0"), ("happy", "2+")]).faces == "2+"
    assert tally([("happy", ""), ("happy", "0")]).faces == "0"
    assert tally([("happy", "2+"), ("happy", "2+"), ("happy", "1")]).faces == "2+"  # majority


@pytest.mark.parametrize(
    ("cell", "pairs"),
    [
        ("happy:3", [("happy", 3)]),
        ("happy:3 sad:2", [("happy", 3), ("sad", 2)]),
        ("happy:99", [("happy", 99)]),
        ("", []),
        ("happy:100", None),
        ("happy:0", None),
        ("happy:x", None),
        ("happy", None),
        ("joy:3", None),
        ("happy:3 sad", None),
        ("happy:-1", None),
    ],
)
def test_a_votes_cell_is_label_count_pairs_or_nothing(cell: str, pairs: object) -> None:
    assert counted(cell) == pairs
    if pairs is None:
        assert vote_count(cell) == 0 and answers_in(cell, "1") == []


def test_the_answers_a_votes_cell_stands_for() -> None:
    assert answers_in("happy:2 sad:1", "2+") == [("happy", "2+"), ("happy", "2+"), ("sad", "2+")]
