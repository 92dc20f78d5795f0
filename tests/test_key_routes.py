"""Where the key may go: only with the base URL of its own source, never in cleartext to
another machine without an explicit opt-in, and a non-default endpoint is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.files.settings import ApiKey
from emotag.providers.keys import cleartext_refusal
from fakes.gemini_api import TEST_KEY, FakeGemini
from helpers import make_image

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(3):
        make_image(tmp_path / "in" / f"{i}.png", size=(40 + i, 30))
    return tmp_path / "in"


def test_a_dotenv_cannot_send_the_environments_key_to_another_endpoint(
    fake: FakeGemini, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_STUDIO_API_KEY", TEST_KEY)
    Path(".env").write_text(f"GOOGLE_GEMINI_BASE_URL={fake.url}\n", encoding="utf-8")
    result = runner.invoke(app, ["tag", str(folder), "--provider", "gemini"])
    assert result.exit_code == 2, result.output
    assert "No key for 127.0.0.1" in result.stderr
    assert fake.count == 0 and fake.key_refusals == 0  # the key went nowhere


def test_a_key_and_base_url_from_the_same_place_still_pair(
    fake: FakeGemini, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(".env").write_text(
        f"AI_STUDIO_API_KEY={TEST_KEY}\nGOOGLE_GEMINI_BASE_URL={fake.url}\n", encoding="utf-8"
    )
    assert runner.invoke(app, ["tag", str(folder)]).exit_code == 0
    assert fake.count == 3


def test_no_key_goes_in_cleartext_to_another_machine(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_STUDIO_API_KEY", TEST_KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://gateway.example")
    result = runner.invoke(app, ["tag", str(folder)])
    assert result.exit_code == 2
    words = " ".join(result.stderr.split())
    assert "Refusing to send the key from the environment in cleartext" in words
    assert "EMOTAG_ALLOW_HTTP=1" in words and TEST_KEY not in result.output
    assert "requests go to gateway.example (from GOOGLE_GEMINI_BASE_URL)" in words


@pytest.mark.parametrize(
    ("base_url", "allowed", "refused"),
    [
        ("http://gateway.example/v1", "", True),
        ("http://gateway.example/v1", "1", False),
        ("https://gateway.example/v1", "", False),
        ("http://127.0.0.1:8080/v1", "", False),
        ("http://localhost:11434/v1", "", False),
        (None, "", False),
    ],
)
def test_the_cleartext_rule(
    monkeypatch: pytest.MonkeyPatch, base_url: str | None, allowed: str, refused: bool
) -> None:
    monkeypatch.setenv("EMOTAG_ALLOW_HTTP", allowed)
    assert (cleartext_refusal(base_url, ApiKey("k" * 30, "environment")) is not None) is refused
