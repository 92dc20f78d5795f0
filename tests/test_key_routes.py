"""Where the key may go: only with the base URL of its own source, never in cleartext to
another machine without an explicit opt-in, and a non-default endpoint is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.errors import ConfigError
from emotag.files.settings import ApiKey
from emotag.providers import spec
from emotag.providers.keys import (
    cleartext_refusal,
    key_for,
    key_routes,
    no_key_message,
    sendable_key,
)
from emotag.providers.openai_compat import SPEC as OPENAI
from fakes.gemini_api import TEST_KEY, FakeGemini
from helpers import MemoryKeyring, make_image

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


# The rules themselves, one at a time: which key `key_for` would send to which endpoint.

OWN = OPENAI.default_endpoint
GATEWAY = "gateway.example"


def keys(memory: MemoryKeyring, **entries: str) -> None:
    """Keyring entries: `plain` is the provider's own, any other the key for that host."""
    for host, value in entries.items():
        entry = "OPENAI_API_KEY" if host == "plain" else f"OPENAI_API_KEY@{host}"
        memory.store[("emotag", entry)] = value


def test_the_own_host_gets_the_first_key_found(
    monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    keys(memory_keyring, plain="k-ring", **{GATEWAY: "k-gate"})
    assert key_for(OPENAI, OWN) == ApiKey("k-ring", "system keyring")
    Path(".env").write_text("OPENAI_API_KEY=k-dotenv\n", encoding="utf-8")
    assert key_for(OPENAI, OWN) == ApiKey("k-dotenv", ".env file")
    monkeypatch.setenv("OPENAI_API_KEY", "k-env")
    assert key_for(OPENAI, OWN) == ApiKey("k-env", "environment")


@pytest.mark.parametrize(
    ("key_in", "url_in", "sent"),
    [
        ("environment", "environment", "k-var"),
        (".env", ".env", "k-var"),
        ("environment", ".env", None),  # a .env here cannot redirect the environment's key
        (".env", "environment", None),
        ("environment", "nowhere", None),
    ],
)
def test_the_providers_variable_goes_only_where_its_own_source_points(
    monkeypatch: pytest.MonkeyPatch,
    memory_keyring: MemoryKeyring,
    key_in: str,
    url_in: str,
    sent: str | None,
) -> None:
    keys(memory_keyring, plain="k-ring")  # the plain entry is the provider's own host's
    dotenv = []
    for source, line in (
        (key_in, "OPENAI_API_KEY=k-var"),
        (url_in, f"OPENAI_BASE_URL=https://{GATEWAY}/v1"),
    ):
        if source == "environment":
            monkeypatch.setenv(*line.split("=", 1))
        elif source == ".env":
            dotenv.append(line)
    Path(".env").write_text("\n".join(dotenv) + "\n", encoding="utf-8")
    found = key_for(OPENAI, GATEWAY)
    assert (found.value if found else None) == sent


def test_any_other_endpoint_gets_only_a_key_stored_for_it(
    monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k-env")
    keys(memory_keyring, plain="k-ring", **{"other.example": "k-other"})
    assert key_for(OPENAI, GATEWAY) is None
    keys(memory_keyring, **{GATEWAY: "k-gate"})
    assert key_for(OPENAI, GATEWAY) == ApiKey("k-gate", f"system keyring, for {GATEWAY}")


def test_key_status_lists_each_place_a_key_could_go_once(
    monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k-env")
    monkeypatch.setenv("OPENAI_BASE_URL", f"https://{GATEWAY}/v1")
    keys(memory_keyring, **{"lab.example:8000": "k-lab"})
    routes = key_routes(OPENAI, "https://lab.example:8000/v1")
    assert [(r.endpoint, r.key.value if r.key else None) for r in routes] == [
        (OWN, "k-env"),
        (GATEWAY, "k-env"),
        ("lab.example:8000", "k-lab"),
    ]
    assert routes[2].why == "--base-url https://lab.example:8000/v1"
    assert len(key_routes(OPENAI, f"https://{GATEWAY}/v2")) == 2  # the same endpoint once


def test_sendable_key_sends_a_found_key_a_placeholder_or_refuses(
    monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    local = "http://127.0.0.1:11434/v1"  # takes any key: a server on this machine
    assert sendable_key(OPENAI, local) == "not-needed"
    keys(memory_keyring, **{"127.0.0.1:11434": "k-local"})
    assert sendable_key(OPENAI, local) == "k-local"
    with pytest.raises(ConfigError, match=f"No key for {GATEWAY}"):
        sendable_key(OPENAI, f"https://{GATEWAY}/v1")
    keys(memory_keyring, **{GATEWAY: "k-gate"})
    assert sendable_key(OPENAI, f"https://{GATEWAY}/v1") == "k-gate"
    with pytest.raises(ConfigError, match="in cleartext"):
        sendable_key(OPENAI, f"http://{GATEWAY}/v1")
    assert sendable_key(spec("local"), None) == ""  # the offline model takes no key


def test_the_no_key_message_says_where_the_variable_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = no_key_message(OPENAI, OWN)
    assert plain.startswith("No API key found.") and "emotag key set --provider openai'" in plain
    scoped = no_key_message(OPENAI, GATEWAY)
    assert scoped.startswith(f"No key for {GATEWAY}: OPENAI_API_KEY is sent only to {OWN}")
    assert "'emotag key set --provider openai --base-url URL'" in scoped
    Path(".env").write_text(f"OPENAI_BASE_URL=https://{GATEWAY}/v1\n", encoding="utf-8")
    assert no_key_message(OPENAI, GATEWAY).startswith("No API key found.")
    monkeypatch.setenv("OPENAI_API_KEY", "k-env")  # a key, but the .env cannot send it there
    assert no_key_message(OPENAI, GATEWAY).startswith(f"No key for {GATEWAY}")
