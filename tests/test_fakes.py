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

from conftest import make_image
from emotag.cli import app
from fake_gemini import TEST_KEY, FakeGemini

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
