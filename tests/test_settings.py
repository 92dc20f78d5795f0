from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.errors import ConfigError
from emotag.files.settings import ApiKey, find_key, mask, setting
from emotag.providers.gemini import SPEC as GEMINI
from emotag.providers.keys import require_key
from fakes.gemini_api import TEST_KEY, FakeGemini
from helpers import MemoryKeyring, make_image

runner = CliRunner()


def test_key_sources_in_order(monkeypatch, memory_keyring: MemoryKeyring) -> None:
    assert find_key("AI_STUDIO_API_KEY") is None
    memory_keyring.store[("emotag", "AI_STUDIO_API_KEY")] = "from-keyring-123456"
    assert find_key("AI_STUDIO_API_KEY") == ApiKey("from-keyring-123456", "system keyring")
    Path(".env").write_text("AI_STUDIO_API_KEY=from-dotenv-123456\n")
    assert find_key("AI_STUDIO_API_KEY") == ApiKey("from-dotenv-123456", ".env file")
    monkeypatch.setenv("AI_STUDIO_API_KEY", "from-env-123456")
    assert find_key("AI_STUDIO_API_KEY") == ApiKey("from-env-123456", "environment")


def test_no_key_and_no_keyring_backend_is_a_clear_error() -> None:
    # The autouse fixture installs keyring's "fail" backend, as on a headless server.
    with pytest.raises(ConfigError, match="emotag key set"):
        require_key(GEMINI, GEMINI.default_endpoint)


def test_dotenv_settings_do_not_leak_into_the_environment(monkeypatch) -> None:
    Path(".env").write_text("EMOTAG_MODEL=gemini-3.8-flash\n")
    assert setting("EMOTAG_MODEL") == "gemini-3.8-flash"
    import os

    assert "EMOTAG_MODEL" not in os.environ


def test_api_key_repr_is_masked() -> None:
    key = ApiKey(TEST_KEY, "environment")
    assert TEST_KEY not in repr(key) and TEST_KEY not in str(key)
    assert mask(TEST_KEY).startswith("****") and TEST_KEY[-4:] in mask(TEST_KEY)
    assert mask("short") == "****"


def test_key_cli_set_status_delete(memory_keyring: MemoryKeyring) -> None:
    result = runner.invoke(app, ["key", "set"], input=TEST_KEY + "\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.store[("emotag", "AI_STUDIO_API_KEY")] == TEST_KEY
    status = runner.invoke(app, ["key", "status"])
    assert status.exit_code == 0
    assert "system keyring" in status.stdout and TEST_KEY not in status.output
    assert runner.invoke(app, ["key", "delete"]).exit_code == 0
    assert memory_keyring.store == {}
    missing = runner.invoke(app, ["key", "status"])
    assert missing.exit_code == 2 and "No key found" in missing.stderr


def test_key_set_without_keyring_says_so() -> None:
    result = runner.invoke(app, ["key", "set"], input=TEST_KEY + "\n")
    assert result.exit_code == 2
    assert "No system keyring is available" in result.stderr
    assert "Traceback" not in result.output and TEST_KEY not in result.output


def test_key_set_refuses_empty(memory_keyring: MemoryKeyring) -> None:
    result = runner.invoke(app, ["key", "set"], input="\n")
    assert result.exit_code == 2 and "empty key" in result.stderr


def test_a_blank_key_is_no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png")
    monkeypatch.setenv("AI_STUDIO_API_KEY", "   ")
    result = CliRunner().invoke(app, ["tag", str(tmp_path / "in"), "--provider", "gemini"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith("Error: No API key found")


def test_base_url_in_dotenv_is_honoured_and_shown(fake: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png", "sad")
    Path(".env").write_text(f"AI_STUDIO_API_KEY={TEST_KEY}\nGOOGLE_GEMINI_BASE_URL={fake.url}\n")
    result = CliRunner().invoke(app, ["tag", str(tmp_path / "in")])
    assert result.exit_code == 0, result.output
    assert fake.count == 1
    status = CliRunner().invoke(app, ["key", "status"])
    host = fake.url.removeprefix("http://")
    assert f"{host} (GOOGLE_GEMINI_BASE_URL={fake.url}): the key from the .env file" in (
        status.stdout
    )
    assert TEST_KEY not in status.stdout
