"""What a model said, provider-independent: the answer record, strict parsing of the text,
and the label's probability from token log probabilities."""

from __future__ import annotations

import itertools
import json
import math
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final, TypeVar

from emotag.emotions import EMOTIONS, FACE_COUNTS
from emotag.errors import AnswerError

T = TypeVar("T")
_WORD = re.compile(r"[a-z]+")
_EMOTION_VALUE = re.compile(r'"emotion"\s*:\s*"([^"]*)"')
_MODEL_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")
# An answer longer than this is no label: a runaway model, or a hostile server.
LONGEST_ANSWER: Final = 4096
_TRIMMED: Final = string.whitespace + string.punctuation


@dataclass(frozen=True, slots=True)
class Answer:
    """One usable answer: the label, the face count and what it cost."""

    emotion: str
    confidence: float | None
    confidence_source: str
    input_tokens: int
    output_tokens: int
    faces: str = ""  # "0", "1", "2+", or "" when the answer did not say
    model_version: str = ""


@dataclass(frozen=True, slots=True)
class Token:
    """One generated token, its log probability, and the alternatives the API reported."""

    text: str
    logprob: float | None
    alternatives: tuple[tuple[str, float], ...] = ()


def reported_name(name: str) -> str:
    """The model name a server reports, if it is one: a short run of name characters. A
    hostile server's `=HYPERLINK(...)` or a 2,000-character name is dropped (the run's
    own model name is written instead), so it never reaches a CSV or the settings cache."""
    return name if _MODEL_NAME.fullmatch(name) else ""


def read_text(text: str, tokens: Sequence[Token], model_version: str = "") -> Answer:
    """An answer text (and its tokens, if the API gave them) as an Answer; usage is added
    by `usable`."""
    emotion, faces = parse_answer(text)
    confidence = label_confidence(tokens, text, emotion)
    return Answer(
        emotion=emotion,
        confidence=confidence,
        confidence_source="logprobs" if confidence is not None else "",
        input_tokens=0,
        output_tokens=0,
        faces=faces,
        model_version=reported_name(model_version),
    )


def usable(
    candidates: Iterable[T],
    read: Callable[[T], Answer],
    input_tokens: int,
    output_tokens: int,
    limit: int = 0,
) -> list[Answer]:
    """Every usable answer among a reply's first `limit` candidates (all with 0; several
    with --votes): a server that answers more than was asked gets no extra say. The
    reply's token usage goes on the first. AnswerError, the first problem, when none is
    usable."""
    answers: list[Answer] = []
    problems: list[AnswerError] = []
    for candidate in itertools.islice(candidates, limit or None):
        try:
            answer = read(candidate)
        except AnswerError as exc:
            problems.append(exc)
            continue
        if not answers:
            answer = replace(answer, input_tokens=input_tokens, output_tokens=output_tokens)
        answers.append(answer)
    if not answers:
        raise problems[0] if problems else AnswerError("no answer")
    return answers


def parse_answer(text: str) -> tuple[str, str]:
    """Return (emotion, faces) from a model answer, or raise AnswerError.

    Accepted: the JSON object the schema asks for (also inside a ```json fence or after a
    prefix), or an answer that is exactly one of the seven labels once case, white space
    and punctuation are trimmed. A sentence is not a label ("does not look happy"), and
    aliases are never applied here. `faces` is "0", "1" or "2+" from the schema's face
    count, or "" when the answer has none. Every step is linear in the text, which is
    capped at `LONGEST_ANSWER` characters.
    """
    if len(text) > LONGEST_ANSWER:
        raise AnswerError(f"answer of {len(text):,} characters, too long to be a label")
    stripped = _unfenced(text.strip())
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        try:
            answer = json.loads(stripped[start : end + 1])
            value, count = answer.get("emotion"), answer.get("faces")
        except (ValueError, AttributeError) as exc:
            raise AnswerError(f"answer is not valid JSON: {_clip(stripped)}") from exc
        faces = FACE_COUNTS.get(count.strip().lower(), "") if isinstance(count, str) else ""
        if count is not None and not faces:
            raise AnswerError(f"off-list face count: {_clip(str(count))}")
        word = value.strip().lower() if isinstance(value, str) else ""
        if word in EMOTIONS:
            return word, faces
        raise AnswerError(f"off-list answer: {_clip(str(value))}")
    if stripped.startswith("{"):
        raise AnswerError(f"answer is not valid JSON: {_clip(stripped)}")
    word = stripped.strip(_TRIMMED).lower()
    if word in EMOTIONS:
        return word, ""
    named = {w for w in _WORD.findall(stripped.lower()) if w in EMOTIONS}
    if len(named) > 1:
        raise AnswerError(f"ambiguous answer names {len(named)} labels: {_clip(stripped)}")
    if named:
        raise AnswerError(f"a sentence, not a label: {_clip(stripped)}")
    raise AnswerError(f"off-list answer: {_clip(stripped)}")


def _unfenced(text: str) -> str:
    """The text inside a ```json fence (or the text itself), in linear time."""
    if text.startswith("```"):
        text = text[3:].lstrip(string.ascii_letters)
        if text.rstrip().endswith("```"):
            text = text.rstrip()[:-3]
    return text.strip()


def label_confidence(tokens: Sequence[Token], text: str, emotion: str) -> float | None:
    """P(label) from the tokens that spell it, normalised over the seven labels where the
    API gave alternatives; None when the tokens do not join up to `text` exactly.

    With p_rest the probability of the label's tokens after the first, p_first(e) the
    probability that the label's first token starts label e (the chosen token, or an
    alternative at that position), confidence = p_first(chosen) * p_rest / sum_e p_first(e).
    Without alternatives there is nothing to normalise over: exp(sum of the logprobs).
    """
    if not tokens or "".join(t.text for t in tokens) != text:
        return None
    if not all(_probable(t.logprob) for t in tokens) or not all(
        _probable(logprob) for t in tokens for _, logprob in t.alternatives
    ):
        return None  # a log probability must be finite and at most 0: no made-up 1.0
    span = _label_span(text, emotion)
    if span is None:
        return None
    start, end = span
    offset, covering = 0, []
    for token in tokens:
        if offset < end and offset + len(token.text) > start:
            if token.logprob is None:
                return None
            covering.append((offset, token))
        offset += len(token.text)
    first_offset, first = covering[0]
    assert first.logprob is not None  # checked above
    rest = sum(t.logprob for _, t in covering[1:] if t.logprob is not None)
    lead = text[first_offset:start]  # e.g. the opening quote the first token also carries
    others = 0.0
    for alternative, logprob in first.alternatives:
        if alternative == first.text or not alternative.startswith(lead):
            continue
        starts = _label_started_by(alternative[len(lead) :])
        if starts is not None and starts != emotion:
            others += math.exp(logprob)
    p_first = math.exp(first.logprob)
    share = p_first / (p_first + others) if first.alternatives else p_first
    return min(1.0, share * math.exp(rest))


def _probable(logprob: float | None) -> bool:
    return logprob is None or (math.isfinite(logprob) and logprob <= 0.0)


def _label_span(text: str, emotion: str) -> tuple[int, int] | None:
    """Where the label is spelt in the answer: the JSON `emotion` value, else the word."""
    if found := _EMOTION_VALUE.search(text):
        return found.span(1) if found.group(1).strip().lower() == emotion else None
    for word in re.finditer(r"[A-Za-z]+", text):
        if word.group(0).lower() == emotion:
            return word.span()
    return None


def _label_started_by(piece: str) -> str | None:
    """The one emotion a token piece begins (or spells), None if none or several."""
    word = piece.strip().lower()
    if not word:
        return None
    matches = [e for e in EMOTIONS if e.startswith(word) or word.startswith(e)]
    return matches[0] if len(matches) == 1 else None


def _clip(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
