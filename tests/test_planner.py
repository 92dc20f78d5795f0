"""The planner, one path at a time: each of its six answers from the file and the resume
index alone (no server, no CSV), the claim that turns a second copy into a follower, and
the walk that keeps the order across slices."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from emotag.files import images
from emotag.records import NO_FACE, Label
from emotag.run.planner import claimed, plan, walk
from emotag.run.resume import ResumeIndex
from helpers import Judged, make_image, offline_label


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def label(path: str, sha256: str = "", emotion: str = "happy") -> Label:
    return Label(path, emotion, 0.9, "logprobs", "m", "1", sha256)


def test_a_labelled_path_is_skipped_without_reading_it(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone.png")  # never read: it does not even exist
    step = plan(gone, ResumeIndex(done_paths={gone}), 384)
    assert (step.kind, step.path, step.digest) == ("skip", gone, "")


def test_a_file_that_cannot_be_read_fails_with_the_reason(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.png")
    step = plan(missing, ResumeIndex(), 384)
    assert (step.kind, step.path, step.digest) == ("fail", missing, "")
    assert step.reason.startswith("cannot read file: ")
    assert "Errno" not in step.reason and missing not in step.reason  # the OS's words only


def test_bytes_labelled_under_another_path_are_a_copy_of_that_label(tmp_path: Path) -> None:
    image = make_image(tmp_path / "b.png", "happy")
    original = label(str(tmp_path / "a.png"), digest(image))
    step = plan(str(image), ResumeIndex(by_hash={digest(image): original}), 384)
    assert (step.kind, step.path, step.digest) == ("copy", str(image), digest(image))
    assert step.original is original
    assert step.image is None  # nothing prepared: nothing is sent


def test_bytes_this_model_saw_no_face_in_fail_again_unpaid(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.png", "neutral")
    step = plan(str(image), ResumeIndex(no_face={digest(image)}), 384)
    assert (step.kind, step.path, step.digest) == ("fail", str(image), digest(image))
    assert (step.reason, step.image) == (NO_FACE, None)


def test_bytes_already_claimed_in_this_run_follow_the_first_path(tmp_path: Path) -> None:
    image = make_image(tmp_path / "copy.png", "sad")
    index = ResumeIndex(claimed={digest(image): "/first.png"})
    step = plan(str(image), index, 384)
    assert (step.kind, step.path, step.digest) == ("pending", str(image), digest(image))
    assert (step.first, step.image) == ("/first.png", None)


def test_bytes_that_are_not_an_image_fail_as_unreadable(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_bytes(b"not an image at all")
    step = plan(str(bogus), ResumeIndex(), 384)
    assert (step.kind, step.path) == ("fail", str(bogus))
    assert step.reason.startswith("unreadable image: ")
    assert step.digest == digest(bogus)  # hashed first: the same junk is known by its bytes


def test_a_new_image_is_sent_prepared_to_the_long_side(tmp_path: Path) -> None:
    image = make_image(tmp_path / "big.png", "happy", size=(900, 600))
    step = plan(str(image), ResumeIndex(), 300)
    assert (step.kind, step.path, step.digest) == ("send", str(image), digest(image))
    assert step.local is None
    assert step.image is not None
    assert (step.image.width, step.image.height) == (300, 200)
    assert step.image.data[:2] == b"\xff\xd8"  # JPEG


def test_the_done_path_rule_comes_before_every_other(tmp_path: Path) -> None:
    """A labelled path is skipped even where its bytes are also known otherwise."""
    image = make_image(tmp_path / "a.png", "happy")
    index = ResumeIndex(
        done_paths={str(image)}, no_face={digest(image)}, claimed={digest(image): "/x"}
    )
    assert plan(str(image), index, 384).kind == "skip"


def test_a_sure_offline_opinion_settles_the_image_and_saves_its_tokens(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.png", "sad", size=(200, 100))
    step = plan(str(image), ResumeIndex(), 384, Judged(0.8, offline_label(0.9)))
    assert (step.kind, step.path, step.digest) == ("settle", str(image), digest(image))
    assert step.original is not None
    assert (step.original.emotion, step.original.path) == ("sad", str(image))
    assert step.saved_tokens == 200 * 100 // 100
    assert step.image is None


def test_a_doubtful_opinion_is_sent_and_carried_along(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.png", "sad")
    step = plan(str(image), ResumeIndex(), 384, Judged(0.8, offline_label(0.7)))
    assert (step.kind, step.path, step.digest) == ("send", str(image), digest(image))
    assert step.local is not None and step.local.confidence == 0.7
    assert step.local.sha256 == digest(image)  # judged on these bytes
    assert step.image is not None


def test_several_faces_or_none_found_offline_are_sent(tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.png", "sad")
    several = plan(str(image), ResumeIndex(), 384, Judged(0.5, offline_label(0.99, "2+")))
    assert several.kind == "send"
    assert plan(str(image), ResumeIndex(), 384, Judged(0.5, None)).kind == "send"


def test_claiming_turns_only_a_later_copy_into_a_follower(tmp_path: Path) -> None:
    first = make_image(tmp_path / "a.png", "happy")
    second = tmp_path / "b.png"
    second.write_bytes(first.read_bytes())
    index = ResumeIndex()
    # Planned side by side, as the walk's threads do, before either is claimed.
    planned = [plan(str(first), index, 384), plan(str(second), index, 384)]
    assert [step.kind for step in planned] == ["send", "send"]
    one, two = (claimed(step, index) for step in planned)
    assert one.kind == "send"
    assert (two.kind, two.path, two.digest) == ("pending", str(second), digest(first))
    assert two.first == str(first)
    skip = plan(str(first), ResumeIndex(done_paths={str(first)}), 384)
    assert claimed(skip, index) is skip  # only a send claims


def test_the_walk_keeps_the_order_and_claims_across_slices(tmp_path: Path) -> None:
    paths = []
    for i, colour in enumerate(["happy", "sad", "angry"]):
        paths.append(make_image(tmp_path / f"{i}.png", colour))
    copy = tmp_path / "3.png"
    copy.write_bytes(paths[0].read_bytes())  # in the second slice of two
    paths += [copy, tmp_path / "missing.png"]
    steps = list(walk(paths, ResumeIndex(), 384, slice_size=2))
    assert [step.path for step in steps] == [str(path) for path in paths]
    assert [step.kind for step in steps] == ["send", "send", "send", "pending", "fail"]
    assert steps[3].first == str(paths[0])


def test_a_picture_that_needs_an_extra_says_which_and_by_its_suffix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone photo without pillow-heif: one reason per extension, so the summary can
    count them ("needs emotag[heif] (.heic)"), however the suffix is written."""

    def needs_heif(raw: bytes, max_side: int) -> images.Prepared:
        raise images.NeedsExtra("emotag[heif]")

    monkeypatch.setattr(images, "prepare", needs_heif)
    photo = tmp_path / "IMG_0001.HEIC"
    photo.write_bytes(b"ftypheic")
    step = plan(str(photo), ResumeIndex(), 384)
    assert (step.kind, step.path, step.digest) == ("fail", str(photo), digest(photo))
    assert step.reason == "needs emotag[heif] (.heic): install it, then re-run"


def test_the_walk_asks_the_cascade_too(tmp_path: Path) -> None:
    """In a full slice and in the last, short one."""
    colours = ["sad", "fear", "angry"]
    paths = [make_image(tmp_path / f"{i}.png", colour) for i, colour in enumerate(colours)]
    cascade = Judged(0.5, offline_label(0.9))
    steps = list(walk(paths, ResumeIndex(), 384, cascade=cascade, slice_size=2))
    assert [step.kind for step in steps] == ["settle", "settle", "settle"]
