from __future__ import annotations

import math

import pytest

from emotag.errors import AnswerError
from emotag.providers.answers import (
    Answer,
    Token,
    label_confidence,
    parse_answer,
    read_text,
    reported_name,
    usable,
)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"faces": "one", "emotion": "happy"}', ("happy", "1")),
        ('{"faces": "several", "emotion": " Sad "}', ("sad", "2+")),
        ('{"faces": "none", "emotion": "fear"}', ("fear", "0")),
        ('{"emotion": "happy"}', ("happy", "")),
        ('{"faces": "One", "emotion": "Happy"}', ("happy", "1")),
        ('```json\n{"faces": "none", "emotion": "sad"}\n```', ("sad", "0")),
        ('Here is the answer: {"faces": "none", "emotion": "fear"}', ("fear", "0")),
        ("neutral", ("neutral", "")),
        ("  FEAR\n", ("fear", "")),
        ("Happy", ("happy", "")),
        ("Angry!", ("angry", "")),
        ("**Sad.**", ("sad", "")),
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
        ('```json\n{"faces": "none", "emotion": \n```', "answer is not valid JSON"),
        ('{"label": "happy"}', "off-list answer: None"),
        ('{"faces": "two", "emotion": "happy"}', "off-list face count: two"),
        ("unhappy", "off-list answer"),  # a label inside a longer word is not a label
        # A sentence is not a label, even one naming a single label (issue 36).
        ("The person does not look happy.", "a sentence, not a label"),
        ("The expression is: surprise.", "a sentence, not a label"),
        (" " * 200_000, "too long to be a label"),
    ],
)
def test_parse_answer_rejects(answer: str, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        parse_answer(answer)


def tokens(
    *pieces: tuple[str, float], alternatives: dict[int, list[tuple[str, float]]] | None = None
) -> list[Token]:
    alternatives = alternatives or {}
    return [Token(t, p, tuple(alternatives.get(i, []))) for i, (t, p) in enumerate(pieces)]


JSON = '{"faces": "one", "emotion": "surprise"}'


def test_label_confidence_sums_the_label_tokens_split_over_several_tokens() -> None:
    stream = tokens(
        ('{"faces": "one", "emotion": "', 0.0), ("sur", -0.2), ("prise", -0.1), ('"}', 0.0)
    )
    assert label_confidence(stream, JSON, "surprise") == pytest.approx(math.exp(-0.3))


def test_label_confidence_ignores_tokens_outside_the_label() -> None:
    stream = tokens(
        ('{"faces": "', -3.0), ('one", "emotion": "', -2.0), ("surprise", -0.05), ('"}', -1.0)
    )
    assert label_confidence(stream, JSON, "surprise") == pytest.approx(math.exp(-0.05))


def test_label_confidence_counts_a_token_that_also_carries_the_quote() -> None:
    stream = tokens(('{"faces": "one", "emotion":', 0.0), (' "surprise', -0.1), ('"}', 0.0))
    assert label_confidence(stream, JSON, "surprise") == pytest.approx(math.exp(-0.1))


@pytest.mark.parametrize(
    "stream",
    [
        tokens(('{"faces": "one", "emotion": "', 0.0), ("surprise", -0.1)),  # text longer
        tokens(('{"faces": "one", "emotion": "', 0.0), ("surprise", -0.1), ('"}  ', 0.0)),
        tokens(('{"faces":"one","emotion":"', 0.0), ("surprise", -0.1), ('"}', 0.0)),
        tokens(('{"faces": "one", "emotion": "', 0.0), ("surprise", None), ('"}', 0.0)),  # type: ignore[arg-type]
        [],
    ],
    ids=["short-stream", "extra-text", "other-spacing", "no-logprob", "empty"],
)
def test_label_confidence_is_none_when_tokens_do_not_join_up(stream: list[Token]) -> None:
    assert label_confidence(stream, JSON, "surprise") is None


def test_label_confidence_normalises_over_the_seven_labels() -> None:
    # First label token: "sur" p=0.5; alternatives "happy" p=0.25, "hap" (also happy) p=0.05,
    # a non-label token p=0.2. Over the labels: 0.5 / (0.5 + 0.25 + 0.05).
    stream = tokens(
        ('{"faces": "one", "emotion": "', 0.0),
        ("sur", math.log(0.5)),
        ("prise", math.log(0.9)),
        ('"}', 0.0),
        alternatives={
            1: [
                ("sur", math.log(0.5)),
                ("happy", math.log(0.25)),
                ("hap", math.log(0.05)),
                ("xyz", math.log(0.2)),
            ]
        },
    )
    expected = 0.5 / (0.5 + 0.25 + 0.05) * 0.9
    assert label_confidence(stream, JSON, "surprise") == pytest.approx(expected)


def test_label_confidence_for_a_bare_label() -> None:
    stream = tokens(("Hap", -0.1), ("py", -0.05))
    assert label_confidence(stream, "Happy", "happy") == pytest.approx(math.exp(-0.15))


def test_a_long_hostile_answer_is_refused_in_linear_time() -> None:
    """200k spaces took 85 s to parse (a quadratic regular expression); capped and linear
    now. Each shape at the cap must parse in well under a second on any machine."""
    import time

    for shape in ("{" * 4096, " " * 4095 + "x", "```" + " " * 4090, "happy " * 682):
        started = time.process_time()
        with pytest.raises(AnswerError):
            parse_answer(shape)
        assert time.process_time() - started < 0.5, shape[:10]


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.5])
def test_a_logprob_that_is_no_log_probability_gives_no_confidence(bad: float) -> None:
    """NaN, +inf or a positive value once gave 1.0: a log probability is finite and <= 0."""
    assert label_confidence(tokens(("happy", bad)), "happy", "happy") is None
    alternatives = {0: [("sad", bad)]}
    assert (
        label_confidence(tokens(("happy", -0.1), alternatives=alternatives), "happy", "happy")
        is None
    )
    assert label_confidence(tokens(("happy", -0.1)), "happy", "happy") == pytest.approx(
        math.exp(-0.1)
    )


def test_answers_beyond_those_asked_for_have_no_say() -> None:
    def read(text: str) -> Answer:
        return read_text(text, [])

    replies = ["happy", "sad", "sad"]  # one asked, three sent: the first is the answer
    assert [a.emotion for a in usable(replies, read, 10, 1, limit=1)] == ["happy"]
    assert [a.emotion for a in usable(replies, read, 10, 1)] == ["happy", "sad", "sad"]


# --- the rules of reading one reply -------------------------------------------------------


def test_an_answer_read_from_text_and_tokens() -> None:
    stream = tokens(('{"faces": "one", "emotion": "', 0.0), ("surprise", -0.1), ('"}', 0.0))
    assert read_text(JSON, stream, "gemini-3.5-flash-lite-001") == Answer(
        "surprise",
        pytest.approx(math.exp(-0.1)),
        "logprobs",
        0,
        0,
        "1",
        "gemini-3.5-flash-lite-001",
    )
    # No usable tokens: no confidence and no source, never a made-up number.
    assert read_text("Sad", []) == Answer("sad", None, "", 0, 0, "", "")


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("gemini-3.5-flash-lite", True),
        ("gpt-4.1-mini-2025-04-14", True),
        ("qwen2.5vl:7b", True),
        ("models/gemini-3.8-flash", True),
        ("x" * 100, True),
        ("x" * 101, False),
        ('=HYPERLINK("http://evil.example")', False),
        ("-1+2", False),
        ("", False),
        ("a b", False),
    ],
)
def test_a_reported_model_name_is_kept_only_when_it_is_one(name: str, kept: bool) -> None:
    assert reported_name(name) == (name if kept else "")
    assert read_text("happy", [], name).model_version == (name if kept else "")


def test_every_usable_candidate_counts_and_the_usage_goes_on_the_first() -> None:
    def read(text: str) -> Answer:
        return read_text(text, [])

    answers = usable(["contempt", "happy", "sad"], read, 300, 9)  # the first is off-list
    assert [a.emotion for a in answers] == ["happy", "sad"]
    assert [(a.input_tokens, a.output_tokens) for a in answers] == [(300, 9), (0, 0)]
    with pytest.raises(AnswerError, match="off-list answer: contempt"):  # the first problem
        usable(["contempt", "The face is sad."], read, 1, 1)
    with pytest.raises(AnswerError, match="no answer"):
        usable([], read, 1, 1)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{\n  "faces": "one",\n  "emotion": "fear"\n}', ("fear", "1")),  # over lines
        ("```\nangry\n```", ("angry", "")),
        ("```json happy```", ("happy", "")),
        ('```JSON\n{"emotion": "sad"}\n```', ("sad", "")),
    ],
)
def test_a_fenced_or_multi_line_answer_is_read(answer: str, expected: tuple[str, str]) -> None:
    assert parse_answer(answer) == expected


@pytest.mark.parametrize("answer", ["{oops}", '{"emotion": happy}', "Sure: {not json} ok"])
def test_json_that_does_not_parse_is_no_label(answer: str) -> None:
    with pytest.raises(AnswerError, match="answer is not valid JSON"):
        parse_answer(answer)


def test_an_error_quotes_the_answer_short_and_on_one_line() -> None:
    long = "nothing   like\na label " * 10
    with pytest.raises(AnswerError) as error:
        parse_answer(long)
    quoted = str(error.value).removeprefix("off-list answer: ")
    assert len(quoted) == 60 and quoted.endswith("…") and "\n" not in quoted
    assert quoted.startswith("nothing like a label")
    with pytest.raises(AnswerError) as short:
        parse_answer("contempt,   clearly")
    assert str(short.value) == "off-list answer: contempt, clearly"


def test_alternatives_count_only_where_they_spell_the_same_lead() -> None:
    """The first label token carries the opening quote; an alternative without that lead
    is another place in the text, not another label, and does not dilute the answer."""
    stream = tokens(
        ('{"faces": "one", "emotion":', 0.0),
        (' "surprise', math.log(0.6)),
        ('"}', 0.0),
        alternatives={
            1: [(' "surprise', math.log(0.6)), (' "happy', math.log(0.2)), ("happy", math.log(0.2))]
        },
    )
    assert label_confidence(stream, JSON, "surprise") == pytest.approx(0.6 / (0.6 + 0.2))
