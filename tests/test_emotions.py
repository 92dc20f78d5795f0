from __future__ import annotations

import pytest

from emotag.emotions import EMOTIONS, emotion_from_filename, normalise, parse_answer
from emotag.errors import AnswerError


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"faces": "one", "emotion": "happy"}', ("happy", "1")),
        ('{"faces": "several", "emotion": " Sad "}', ("sad", "2+")),
        ('{"faces": "none", "emotion": "fear"}', ("fear", "0")),
        ('{"emotion": "happy"}', ("happy", "")),
        ("neutral", ("neutral", "")),
        ("  FEAR\n", ("fear", "")),
        ("The expression is: surprise.", ("surprise", "")),
        ("Angry!", ("angry", "")),
    ],
)
def test_parse_answer_accepts(answer: str, expected: tuple[str, str]) -> None:
    assert parse_answer(answer) == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ('{"emotion": "serious"}', "off-list answer: serious"),
        ("surprised", "off-list answer: surprised"),  # aliases never apply to answers
        ("contempt", "off-list answer"),
        ("", "off-list answer"),
        ("happy, but also a bit sad", "ambiguous answer names 2 labels"),
        ('{"emotion": ', "answer is not valid JSON"),
        ('{"label": "happy"}', "off-list answer: None"),
        ('{"faces": "two", "emotion": "happy"}', "off-list face count: two"),
        ("unhappy", "off-list answer"),  # a label inside a longer word is not a label
    ],
)
def test_parse_answer_rejects(answer: str, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        parse_answer(answer)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("male_young_asian_happy.png", "happy"),
        ("female_old_white_serious.jpg", "neutral"),
        ("x_y_z_Surprised.PNG", "surprise"),
        ("/data/a/male_young_asian_sad.png", "sad"),
        (r"C:\data\male_young_asian_fear.png", "fear"),
        ("male_young_asian.png", None),
        ("holiday.jpg", None),
    ],
)
def test_emotion_from_filename(name: str, expected: str | None) -> None:
    assert emotion_from_filename(name) == expected


def test_emotion_from_filename_without_aliases() -> None:
    assert emotion_from_filename("a_b_c_serious.png", aliases=False) is None


def test_every_emotion_normalises_to_itself() -> None:
    assert [normalise(e.upper()) for e in EMOTIONS] == list(EMOTIONS)
