from __future__ import annotations

import pytest

from emotag.emotions import EMOTIONS, emotion_from_filename, is_emotion, normalise


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


# The words people and older datasets use, and the label each stands for (README, rename).
DOCUMENTED_ALIASES = {
    "happiness": "happy", "joy": "happy", "smile": "happy", "smiling": "happy",
    "surprised": "surprise", "shock": "surprise", "shocked": "surprise",
    "anger": "angry", "mad": "angry", "disgusted": "disgust", "contempt": "disgust",
    "fearful": "fear", "afraid": "fear", "scared": "fear",
    "serious": "neutral", "calm": "neutral", "sadness": "sad", "unhappy": "sad",
}  # fmt: skip


@pytest.mark.parametrize(("alias", "label"), sorted(DOCUMENTED_ALIASES.items()))
def test_each_documented_alias_names_its_label_in_a_file_name_and_nowhere_else(
    alias: str, label: str
) -> None:
    assert normalise(alias.title()) == label
    assert emotion_from_filename(f"female_old_white_{alias}.png") == label
    assert emotion_from_filename(f"female_old_white_{alias}.png", aliases=False) is None


def test_the_emotion_comes_from_the_file_name_not_a_folder_on_any_system() -> None:
    """A Windows path is split at its backslashes too: a folder's last `_` token is no
    label, whatever the file's own name is."""
    assert emotion_from_filename(r"C:\data_in\happy.png") == "happy"
    assert emotion_from_filename(r"C:\sad_faces\portrait.png") is None
    assert emotion_from_filename("/data/sad_faces/portrait.png") is None
    assert emotion_from_filename(r"D:\a_b\x_y_z_fear.tiff") == "fear"


def test_only_the_seven_are_emotions_not_their_aliases() -> None:
    assert all(is_emotion(e) for e in EMOTIONS)
    assert not any(is_emotion(word) for word in (*DOCUMENTED_ALIASES, "Happy", "", "neutral "))
