"""The dry run's count, from a folder and a resume index alone: what would be sent, what
is done, copied, unreadable or remembered as faceless, its tokens and its cost, and
that it writes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from emotag.records import Label
from emotag.run.estimate import Estimate, estimate
from emotag.run.prices import OUTPUT_TOKENS_PER_ANSWER, price_for
from emotag.run.recorder import Recorder
from emotag.run.resume import ResumeIndex
from helpers import Judged, make_image, offline_label

PRICED = "gemini-3.5-flash-lite"  # a model the price table knows


def tokens(width: int, height: int) -> int:
    return width + height  # any rule that depends on the size sent


def paths(folder: Path) -> Callable[[Callable[[Path, str], None]], Iterable[Path]]:
    return lambda skip: sorted(folder.iterdir())


def counted(
    folder: Path, index: ResumeIndex, model: str = PRICED, cascade: Judged | None = None
) -> Estimate:
    recorder = Recorder(folder / "labels.csv", folder / "errors.csv", model, write=False)
    source = paths(folder / "in")
    return estimate(source, index, recorder, max_side=100, tokens=tokens, cascade=cascade)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Six files: two new images, a copy of one, one labelled, one faceless, one junk."""
    inside = tmp_path / "in"
    make_image(inside / "a.png", "happy", size=(200, 100))
    make_image(inside / "b.png", "sad", size=(50, 40))
    (inside / "c.png").write_bytes((inside / "a.png").read_bytes())
    make_image(inside / "d.png", "angry")
    make_image(inside / "e.png", "neutral")
    (inside / "f.jpg").write_bytes(b"junk")
    return tmp_path


def test_every_kind_of_image_is_counted_once(folder: Path) -> None:
    inside = folder / "in"
    index = ResumeIndex(done_paths={str(inside / "d.png")}, no_face={digest(inside / "e.png")})
    result = counted(folder, index)
    assert result.found == 6
    assert (result.to_send, result.duplicates, result.already_done) == (2, 1, 1)
    assert result.remembered_no_face == 1
    assert [path for path, _ in result.unreadable] == [str(inside / "f.jpg")]
    # Sent shrunk to the long side: 100x50 and 50x40, tokens by the size sent.
    assert result.input_tokens == (100 + 50) + (50 + 40)
    assert result.output_tokens == 2 * OUTPUT_TOKENS_PER_ANSWER


def test_it_writes_nothing(folder: Path) -> None:
    before = sorted(path.name for path in folder.iterdir())
    counted(folder, ResumeIndex())
    assert sorted(path.name for path in folder.iterdir()) == before


def test_votes_count_only_the_answers_still_missing(folder: Path) -> None:
    """With --votes 3, bytes with one answer already paid for need two more."""
    a, d, e = (folder / "in" / name for name in ("a.png", "d.png", "e.png"))
    index = ResumeIndex(
        votes=3, paid={digest(a): [("happy", "1")]}, done_paths={str(d)}, no_face={digest(e)}
    )
    result = counted(folder, index)
    assert result.to_send == 2 + 3  # a.png: 2 more; b.png: all 3 (c.png follows a.png)
    assert result.input_tokens == 2 * (100 + 50) + 3 * (50 + 40)


def test_a_copy_of_a_labelled_image_is_done_not_sent(folder: Path) -> None:
    a = folder / "in" / "a.png"
    earlier = Label("/elsewhere/a.png", "happy", 0.9, "logprobs", PRICED, "1", digest(a))
    result = counted(folder, ResumeIndex(by_hash={digest(a): earlier}))
    assert result.to_send == 3  # b.png, d.png, e.png; a.png and c.png copy the label
    assert result.duplicates == 2


def test_its_cost_is_the_price_of_its_tokens_and_batch_halves_it(folder: Path) -> None:
    result = counted(folder, ResumeIndex())
    price = price_for(PRICED)
    assert price is not None
    live = result.as_dict()
    assert live["estimated_cost_usd"] == pytest.approx(
        price.cost(result.input_tokens, result.output_tokens)
    )
    batch = result.as_dict(batch_size=1)
    assert batch["batch_jobs"] == result.to_send
    assert batch["batch_billed_input_tokens"] == result.input_tokens // 2
    assert batch["estimated_cost_usd"] == pytest.approx(live["estimated_cost_usd"] / 2)
    assert "settled_locally" not in live  # only a cascade's dry run says what it settles


def test_a_model_without_a_price_says_so_and_never_guesses(folder: Path) -> None:
    data = counted(folder, ResumeIndex(), model="no-such-model").as_dict()
    assert (data["estimated_cost_usd"], data["price"]) == (None, None)
    assert data["to_send"] == 4


def test_batch_jobs_round_up() -> None:
    assert Estimate(to_send=10).batch_jobs(4) == 3
    assert Estimate(to_send=8).batch_jobs(4) == 2
    assert Estimate(to_send=0).batch_jobs(4) == 0


def test_the_json_keys_are_the_documented_ones_with_their_counts(folder: Path) -> None:
    inside = folder / "in"
    index = ResumeIndex(done_paths={str(inside / "d.png")}, no_face={digest(inside / "e.png")})
    data = counted(folder, index).as_dict()
    cost = data.pop("estimated_cost_usd")
    assert cost is not None and cost > 0
    assert data.pop("price")["model"] == PRICED
    assert data == {
        "found": 6,
        "already_done": 1,
        "duplicates": 1,
        "to_send": 2,
        "unreadable": 1,
        "remembered_no_face": 1,
        "input_tokens": 240,
        "output_tokens": 2 * OUTPUT_TOKENS_PER_ANSWER,
        "warnings": [],
    }
    again = ResumeIndex(done_paths=set(index.done_paths), no_face=set(index.no_face))
    billed = counted(folder, again).as_dict(batch_size=1)["batch_billed_input_tokens"]
    assert (billed, type(billed)) == (120, int)


def test_a_cascade_dry_run_counts_what_the_offline_model_settles(folder: Path) -> None:
    """Every readable image is settled here, a copy too (judging it again costs nothing):
    nothing to send, and what paying for them all would have cost, at the votes asked
    for, live or in batch."""
    price = price_for(PRICED)
    assert price is not None
    index = ResumeIndex(votes=3)
    result = counted(folder, index, cascade=Judged(0.5, offline_label(0.9)))
    assert (result.to_send, result.settled_locally, result.duplicates) == (0, 5, 0)
    # The cascade's own token rule (Judged: pixels / 100) for the sizes sent.
    assert result.saved_input_tokens == 2 * 50 + 20 + 2 * 30
    data = result.as_dict()
    assert data["settled_locally"] == 5
    paid = price.cost(3 * result.saved_input_tokens, 3 * 5 * OUTPUT_TOKENS_PER_ANSWER)
    assert data["estimated_cost_all_paid_usd"] == pytest.approx(paid)
    batch = result.as_dict(batch_size=10)
    assert batch["estimated_cost_all_paid_usd"] == pytest.approx(paid / 2)


def test_copies_in_one_run_are_sent_once_and_a_faceless_image_not_at_all(
    tmp_path: Path,
) -> None:
    first = make_image(tmp_path / "in" / "x.png", "happy")
    for name in ("y.png", "z.png"):
        (tmp_path / "in" / name).write_bytes(first.read_bytes())
    faceless = make_image(tmp_path / "in" / "w.png", "sad")
    result = counted(tmp_path, ResumeIndex(no_face={digest(faceless)}))
    assert (result.found, result.to_send, result.duplicates) == (4, 1, 2)
    assert (result.remembered_no_face, result.unreadable) == (1, [])
