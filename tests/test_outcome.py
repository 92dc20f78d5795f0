"""What the answers earn one image, live and batch alike: a label as answered, a
majority of votes, or a failure for no face and for several faces under
`--multi-face skip`."""

from __future__ import annotations

import pytest

from emotag.providers import Answer
from emotag.records import NO_FACE, Failure, Label
from emotag.run.outcome import SEVERAL_FACES_SKIPPED, decide


def answer(emotion: str = "sad", faces: str = "1", confidence: float | None = 0.83) -> Answer:
    return Answer(emotion, confidence, "logprobs", 300, 12, faces)


def test_one_answer_is_written_as_it_came() -> None:
    row = decide([answer()], "/a.png", "d1", "m", skip_multi_face=False)
    assert isinstance(row, Label)
    assert (row.path, row.sha256, row.model) == ("/a.png", "d1", "m")
    assert (row.emotion, row.confidence, row.confidence_source) == ("sad", 0.83, "logprobs")
    assert (row.faces, row.votes) == ("1", "")


def test_an_answer_without_a_confidence_keeps_none_never_a_made_up_one() -> None:
    row = decide([answer(confidence=None)], "/a.png", "d", "m", skip_multi_face=False)
    assert isinstance(row, Label) and row.confidence is None


def test_no_face_is_a_failure_that_names_it() -> None:
    row = decide([answer(faces="0")], "/a.png", "d", "m", skip_multi_face=False)
    assert row == Failure("/a.png", NO_FACE, "m", "d")


@pytest.mark.parametrize("skip", [True, False])
def test_several_faces_fail_only_when_asked_to_skip_them(skip: bool) -> None:
    row = decide([answer(faces="2+")], "/a.png", "d", "m", skip_multi_face=skip)
    if skip:
        assert row == Failure("/a.png", SEVERAL_FACES_SKIPPED, "m", "d")
    else:
        assert isinstance(row, Label) and row.faces == "2+"


def test_votes_give_the_majority_its_share_and_the_count() -> None:
    answers = [answer("happy"), answer("sad"), answer("happy")]
    row = decide(answers, "/a.png", "d", "m", skip_multi_face=False, votes=3)
    assert isinstance(row, Label)
    assert (row.emotion, row.confidence_source, row.votes) == ("happy", "votes", "happy:2 sad:1")
    assert row.confidence == pytest.approx(2 / 3)


def test_votes_paid_earlier_count_as_pairs_beside_new_answers() -> None:
    """A top-up: the ledger's (emotion, faces) pairs, then what was just paid for."""
    pairs = [("surprise", "1"), ("surprise", "1")]
    row = decide(pairs, "/a.png", "d", "m", skip_multi_face=False, votes=3)
    assert isinstance(row, Label)
    assert (row.emotion, row.votes, row.confidence) == ("surprise", "surprise:2", 1.0)


def test_a_majority_of_no_face_votes_fails_the_image() -> None:
    answers = [answer(faces="0"), answer(faces="0"), answer("happy")]
    row = decide(answers, "/a.png", "d", "m", skip_multi_face=False, votes=3)
    assert isinstance(row, Failure) and row.reason == NO_FACE


def test_a_majority_of_several_faces_votes_is_skipped_when_asked() -> None:
    answers = [answer(faces="2+"), answer(faces="2+"), answer()]
    row = decide(answers, "/a.png", "d", "m", skip_multi_face=True, votes=3)
    assert isinstance(row, Failure) and row.reason == SEVERAL_FACES_SKIPPED


def test_several_answers_to_one_vote_are_still_counted() -> None:
    """An endpoint that sends back more answers than asked: the majority, not the first."""
    answers = [answer("fear"), answer("angry"), answer("angry")]
    row = decide(answers, "/a.png", "d", "m", skip_multi_face=False)
    assert isinstance(row, Label)
    assert (row.emotion, row.confidence_source) == ("angry", "votes")
