"""No API request follows a redirect: a 3xx stops the run with one line, no image is
blamed, and nothing (no key, no image) reaches where the redirect points."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from fakes.gemini_api import TEST_KEY, FakeGemini, Reply
from fakes.openai_api import OPENAI_TEST_KEY, FakeOpenAI
from fakes.openai_api import Reply as OpenAIReply
from helpers import make_image, read_csv, running_fake

runner = CliRunner()


@pytest.fixture
def elsewhere() -> Iterator[FakeGemini]:
    """Another server, where the redirects point: it must see nothing."""
    yield from running_fake()


def faces(root: Path) -> Path:
    for i, emotion in enumerate(EMOTIONS * 4):
        make_image(root / f"{i}.png", emotion, size=(40 + i, 30))
    return root


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_gemini_redirect_stops_the_run_and_nothing_reaches_its_target(
    gemini: FakeGemini, elsewhere: FakeGemini, tmp_path: Path, status: int
) -> None:
    target = f"{elsewhere.url}/v1beta/models/gemini-3.5-flash-lite:generateContent"
    gemini.queue[:] = [Reply.redirect(target, status)] * 100
    result = runner.invoke(app, ["tag", str(faces(tmp_path / "in"))])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"answered with a redirect ({status})" in line and "follows none" in line
    assert elsewhere.count == 0 and not elsewhere.seen
    assert not read_csv(Path("dataset/llm_labels.errors.csv"))  # no image blamed
    assert TEST_KEY not in result.output


@pytest.mark.parametrize("status", [302, 307])
def test_an_openai_compatible_redirect_stops_the_run_and_nothing_reaches_its_target(
    server: FakeOpenAI, elsewhere: FakeGemini, tmp_path: Path, status: int
) -> None:
    for colour in EMOTIONS:
        server.by_colour[colour] = [
            OpenAIReply(status, {}, {"location": f"{elsewhere.url}/v1/chat/completions"})
        ] * 10
    result = runner.invoke(
        app, ["tag", str(faces(tmp_path / "in")), "--provider", "openai", "-m", "gpt-4.1-mini"]
    )
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"answered with a redirect ({status})" in line
    assert elsewhere.count == 0 and not elsewhere.seen
    assert not read_csv(Path("dataset/llm_labels.errors.csv"))
    assert OPENAI_TEST_KEY not in result.output
