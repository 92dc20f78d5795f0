"""The fakes are as strict as the real services: each refusal here is one the real API
gives, so a lenient fake cannot make a wrong request look right."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from emotag.cli import app
from fakes.gemini_api import TEST_KEY, FakeGemini
from helpers import make_image

runner = CliRunner()


def call(fake: FakeGemini, method: str, path: str, body: Any = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{fake.url}{path}",
        data=data,
        method=method,
        headers={"x-goog-api-key": TEST_KEY, "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (250, 200, 0)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def generate(fake: FakeGemini, model: str, config: dict, mime: str = "image/png") -> tuple:
    part = {"inline_data": {"mime_type": mime, "data": png()}}
    body = {"contents": [{"parts": [part, {"text": "?"}]}], "generationConfig": config}
    return call(fake, "POST", f"/v1/models/{model}:generateContent", body)


@pytest.mark.parametrize(
    ("model", "thinking", "refusal"),
    [
        ("gemini-3.5-flash-lite", {"thinkingLevel": "MINIMAL", "thinkingBudget": 0}, "only one"),
        ("gemini-3.1-pro", {"thinking_level": "MINIMAL"}, "MINIMAL is not supported"),
        ("gemini-2.5-pro", {"thinkingBudget": 0}, "Budget 0 is invalid"),
        ("gemini-2.5-flash", {"thinkingLevel": "LOW"}, "level is not supported"),
        ("gemini-2.0-flash", {"thinkingBudget": 0}, "not supported"),
        ("gemini-3.8-flash", {"thinkingLevels": "LOW"}, 'Unknown name "thinkingLevels"'),
    ],
)
def test_thinking_config_is_checked_per_model_family(
    fake: FakeGemini, model: str, thinking: dict, refusal: str
) -> None:
    status, body = generate(fake, model, {"thinkingConfig": thinking})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert refusal in body["error"]["message"]


def test_the_declared_mime_type_must_match_the_bytes(fake: FakeGemini) -> None:
    status, body = generate(fake, "gemini-3.5-flash-lite", {}, mime="image/jpeg")
    assert status == 400 and "Unable to process input image" in body["error"]["message"]
    assert generate(fake, "gemini-3.5-flash-lite", {})[0] == 200


@pytest.mark.parametrize(
    "model", ["gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro", "gemini-3.1-pro"]
)
def test_emotag_sends_each_family_a_config_it_accepts(
    gemini: FakeGemini, tmp_path: Path, model: str
) -> None:
    make_image(tmp_path / "in" / "a.png", "sad")
    make_image(tmp_path / "in" / "b.jpg", "fear", format="JPEG")
    result = runner.invoke(app, ["tag", str(tmp_path / "in"), "-m", model, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["refused_settings"] == 0
    assert len(gemini.labelling_requests()) == 2


def test_batch_calls_answer_as_the_real_api(fake: FakeGemini) -> None:
    status, body = call(fake, "POST", "/v1/models/m:batchGenerateContent", {"batch": {}})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    fake.files["files/in"] = b""
    batch = {"batch": {"displayName": "d", "inputConfig": {"fileName": "files/in"}}}
    status, job = call(fake, "POST", "/v1/models/m:batchGenerateContent", batch)
    assert status == 200
    listed = json.dumps(call(fake, "GET", "/v1/batches")[1])
    assert TEST_KEY not in listed and "headers" not in listed
    job_id = job["name"].split("/")[1]
    assert call(fake, "GET", f"/v1/batches/{job_id}")[1]["metadata"]["state"] == (
        "BATCH_STATE_SUCCEEDED"
    )
    assert call(fake, "POST", f"/v1/batches/{job_id}:cancel", {})[0] == 200
    after = call(fake, "GET", f"/v1/batches/{job_id}")[1]
    assert after["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"  # finished stays finished


def body_with(**changes: object) -> dict:
    """A generateContent body as emotag sends it, with `changes` applied (`part_extra`,
    `blob_extra`, `content_extra`: an unknown key inside a Part, a Blob, a Content)."""
    part = {"inlineData": {"mimeType": "image/png", "data": png()}}
    body: dict = {
        "contents": [{"role": "user", "parts": [part, {"text": "?"}]}],
        "generationConfig": {"responseMimeType": "application/json", "maxOutputTokens": 64},
    }
    config = body["generationConfig"]
    for name, value in changes.items():
        if name == "part_extra":
            body["contents"][0]["parts"][1]["colour"] = value
        elif name == "blob_extra":
            part["inlineData"]["colour"] = value
        elif name == "content_extra":
            body["contents"][0]["colour"] = value
        elif name in ("snake_case", "model"):
            body = {"generation_config": body.pop("generationConfig"), **body}
            if name == "model":
                body["model"] = "models/gemini-3.5-flash-lite"
        else:
            config[name] = value
    return body


@pytest.mark.parametrize(
    ("changes", "google"),
    [
        ({"mediaResolution": "MEDIA_RESOLUTION_LOW"}, "accepts"),
        ({"mediaResolution": "LOW"}, "refuses"),
        ({"temperature": 0.5}, "accepts"),
        ({"temperature": "hot"}, "refuses"),
        ({"maxOutputTokens": "64"}, "accepts"),  # proto JSON takes an int64 as a string
        ({"maxOutputTokens": "64x"}, "refuses"),
        ({"part_extra": "red"}, "refuses"),
        ({"blob_extra": "red"}, "refuses"),
        ({"content_extra": "red"}, "refuses"),
        ({"snake_case": True}, "accepts"),
        ({"model": True}, "accepts"),
    ],
    ids=lambda v: "-".join(f"{k}={w}" for k, w in v.items()) if isinstance(v, dict) else v,
)
def test_the_fake_parses_bodies_as_google_does(
    fake: FakeGemini, changes: dict, google: str
) -> None:
    """Checked against Google's published protos (issue 36): the fake took "LOW", "hot",
    "64x" and unknown keys inside a Part, a Blob or a Content, and refused snake_case
    top-level names and `model` in the body, all of which Google does the other way."""
    status, body = call(
        fake, "POST", "/v1/models/gemini-3.5-flash-lite:generateContent", body_with(**changes)
    )
    assert (status == 200) == (google == "accepts"), body
    if google == "refuses":
        assert body["error"]["status"] == "INVALID_ARGUMENT"


def test_the_batch_body_is_taken_as_googles_rest_docs_spell_it(fake: FakeGemini) -> None:
    line = {"key": "k", "request": body_with()}
    fake.files["files/input-1"] = (json.dumps(line) + "\n").encode()
    rest = {"batch": {"display_name": "emotag", "input_config": {"file_name": "files/input-1"}}}
    status, body = call(fake, "POST", "/v1/models/gemini-3.5-flash-lite:batchGenerateContent", rest)
    assert status == 200, body
    assert body["metadata"]["displayName"] == "emotag"


def test_both_fakes_script_replies_one_way() -> None:
    """A reply per colour, the same every time, or a list taken in turn and then the
    fake's own answer; each fake's Reply adds only its answer's fields to the wire's."""
    from fakes import gemini_api, openai_api, server

    assert issubclass(gemini_api.Reply, server.Reply)
    assert issubclass(openai_api.Reply, server.Reply)
    fixed, first, second = server.Reply(status=500), server.Reply(hang=1.0), server.Reply()
    script: dict[str, server.Reply | list[server.Reply]] = {"sad": fixed, "happy": [first, second]}
    assert [server.scripted(script, "sad") for _ in range(3)] == [fixed] * 3
    taken = [server.scripted(script, "happy") for _ in range(3)]
    assert taken[0] is first and taken[1] is second and taken[2] is None
    assert server.scripted(script, None) is None
