"""Costs in dollars: the price table, the user's override, and every place a cost shows."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.errors import ConfigError
from emotag.providers import Price
from emotag.run.prices import OUTPUT_TOKENS_PER_ANSWER, price_for
from emotag.run.prices import dollars as shown_dollars
from fakes.gemini_api import FakeGemini
from helpers import make_image

runner = CliRunner()


def faces(root: Path, count: int = 8) -> Path:
    for i in range(count):
        make_image(root / f"img_{i}.png", EMOTIONS[i % 7], size=(30 + i, 30))
    return root


def dollars(model: str, input_tokens: int, output_tokens: int, share: float = 1.0) -> float:
    price = price_for(model)
    assert price is not None
    return (
        (input_tokens * price.input_per_million + output_tokens * price.output_per_million)
        / (1_000_000)
        * share
    )


def test_the_table_dates_and_sources_each_price() -> None:
    lite = price_for("gemini-3.5-flash-lite")
    assert lite is not None and (lite.input_per_million, lite.output_per_million) == (0.30, 2.50)
    assert lite.batch_discount == 0.5 and lite.checked and lite.source.startswith("https://")
    # Gemini 3.8 Flash's introductory price ends with 2026.
    assert price_for("gemini-3.8-flash", date(2026, 12, 31)).input_per_million == 0.75  # type: ignore[union-attr]
    assert price_for("gemini-3.8-flash", date(2027, 1, 1)).input_per_million == 1.50  # type: ignore[union-attr]
    assert price_for("models/gpt-4.1-mini") == price_for("gpt-4.1-mini")
    assert price_for("gemini-2.0-flash") is None  # not in the table: no guess


def test_the_user_overrides_and_adds_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("prices.json").write_text(
        json.dumps({"my-local-model": {"input_per_million": 0, "output_per_million": 0},
                    "gemini-3.5-flash-lite": {"input_per_million": 0.2, "output_per_million": 1,
                                              "batch_discount": 0.4, "checked": "2026-11-30"}})
    )  # fmt: skip
    monkeypatch.setenv("EMOTAG_PRICES", "prices.json")
    assert price_for("my-local-model").cost(10**6, 10**6) == 0  # type: ignore[union-attr]
    lite = price_for("gemini-3.5-flash-lite")
    assert lite is not None and lite.cost(10**6, 0, batch=True) == pytest.approx(0.12)
    assert (lite.checked, lite.source) == ("2026-11-30", "prices.json")
    mine = price_for("my-local-model")
    assert mine == Price("my-local-model", 0.0, 0.0, 0.5, "your file", "prices.json")
    Path("prices.json").write_text("{not json")
    with pytest.raises(ConfigError, match="EMOTAG_PRICES"):
        price_for("gpt-4.1-mini")


@pytest.mark.parametrize(
    ("cost", "shown"),
    [
        (0.0, "$0.0000"),
        (0.00994, "$0.0099"),
        (0.01, "$0.01"),
        (1.005, "$1.00"),
        (1234.5, "$1,234.50"),
    ],
)
def test_a_cost_shows_cents_or_under_a_cent_four_places(cost: float, shown: str) -> None:
    assert shown_dollars(cost, "m") == shown
    assert shown_dollars(None, "m") == "price unknown for m (set EMOTAG_PRICES)"  # no guess


def test_a_run_reports_what_it_spent_from_the_tokens_the_api_reported(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    root = faces(tmp_path / "in")
    result = runner.invoke(app, ["tag", str(root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input_tokens"] == 8 * 280  # the fake's usageMetadata
    expected = dollars("gemini-3.5-flash-lite", data["input_tokens"], data["output_tokens"])
    assert data["cost_usd"] == pytest.approx(expected) and data["price"]["checked"]
    (root / "more.png").write_bytes((root / "img_0.png").read_bytes()[:-1] + b"\0")
    table = runner.invoke(app, ["tag", str(root), "--force"])
    assert "cost (tokens the API reported)" in table.stdout and "$0." in table.stdout


def test_votes_are_priced_by_every_answer_paid(gemini: FakeGemini, tmp_path: Path) -> None:
    root = faces(tmp_path / "in", 6)
    result = runner.invoke(app, ["tag", str(root), "--votes", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answers"] == 18 and data["input_tokens"] == 18 * 280  # 3 requests an image
    expected = dollars("gemini-3.5-flash-lite", 18 * 280, data["output_tokens"])
    assert data["cost_usd"] == pytest.approx(expected)


def test_the_dry_run_estimates_the_cost_interactive_and_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = faces(tmp_path / "in")
    monkeypatch.setenv("EMOTAG_PROVIDER", "gemini")  # with no key the offline model is priced
    live = json.loads(runner.invoke(app, ["tag", str(root), "--dry-run", "--json"]).stdout)
    assert live["output_tokens"] == 8 * OUTPUT_TOKENS_PER_ANSWER
    expected = dollars("gemini-3.5-flash-lite", live["input_tokens"], live["output_tokens"])
    assert live["estimated_cost_usd"] == pytest.approx(expected)
    batch = runner.invoke(app, ["tag", str(root), "--dry-run", "--batch", "--json"])
    assert json.loads(batch.stdout)["estimated_cost_usd"] == pytest.approx(expected / 2)
    votes = runner.invoke(app, ["tag", str(root), "--dry-run", "--votes", "3", "--json"])
    assert json.loads(votes.stdout)["estimated_cost_usd"] == pytest.approx(3 * expected)
    table = runner.invoke(app, ["tag", str(root), "--dry-run", "-m", "gemini-2.0-flash"])
    assert "price unknown for gemini-2.0-flash" in table.stdout
    unknown = runner.invoke(app, ["tag", str(root), "--dry-run", "-m", "x-model", "--json"])
    assert json.loads(unknown.stdout)["estimated_cost_usd"] is None


def test_batch_fetch_reports_the_batch_price(gemini: FakeGemini, tmp_path: Path) -> None:
    root = faces(tmp_path / "in", 7)
    assert runner.invoke(app, ["tag", str(root), "--batch"]).exit_code == 0
    assert runner.invoke(app, ["batch", "wait", "--poll", "0.01"]).exit_code == 0
    fetched = runner.invoke(app, ["batch", "fetch", "--json"])
    assert fetched.exit_code == 0, fetched.output
    data = json.loads(fetched.stdout)
    assert data["labelled"] == 7 and data["input_tokens"] == 7 * 280
    expected = dollars("gemini-3.5-flash-lite", 7 * 280, data["output_tokens"], share=0.5)
    assert data["cost_usd"] == pytest.approx(expected)
