from __future__ import annotations

import pytest

from emotag.emotions import EMOTIONS, emotion_from_filename, normalise


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
