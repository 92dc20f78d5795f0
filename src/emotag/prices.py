"""What a run costs in US dollars: a price table per model, checked against the providers'
pages on the date each row gives, which the user can override (`EMOTAG_PRICES`).

A model the table lacks has no price: emotag says "price unknown" and never guesses.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from emotag.errors import ConfigError

# A dry run cannot see the answers: about this many output tokens each (the JSON answer
# `{"faces": "one", "emotion": "happy"}` and a few of minimal thinking).
OUTPUT_TOKENS_PER_ANSWER: Final = 20
GEMINI_PRICING: Final = "https://ai.google.dev/gemini-api/docs/pricing"
OPENAI_PRICING: Final = "https://developers.openai.com/api/docs/pricing"


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens for one model, and where that figure comes from."""

    model: str
    input_per_million: float
    output_per_million: float
    batch_discount: float  # the share batch mode takes off: 0.5 is half price
    checked: str  # the day the source was read
    source: str
    until: str = ""  # the last day this price holds (a later row takes over)

    def cost(self, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float:
        dollars = (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000
        return dollars * (1 - self.batch_discount) if batch else dollars

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gemini(model: str, inp: float, out: float, until: str = "") -> Price:
    # Read from Google's page through a transcription of it made that day.
    return Price(model, inp, out, 0.5, "2026-10-07", GEMINI_PRICING, until)


def _openai(model: str, inp: float, out: float) -> Price:
    return Price(model, inp, out, 0.5, "2026-06-21", OPENAI_PRICING)


TABLE: Final[tuple[Price, ...]] = (
    _gemini("gemini-3.8-flash", 0.75, 3.75, until="2026-12-31"),
    _gemini("gemini-3.8-flash", 1.50, 7.50),
    _gemini("gemini-3.5-flash", 1.50, 9.00),
    _gemini("gemini-3.5-flash-lite", 0.30, 2.50),
    _gemini("gemini-3.1-pro-preview", 2.00, 12.00),  # prompts up to 200k tokens
    _openai("gpt-4.1", 2.00, 8.00),
    _openai("gpt-4.1-mini", 0.40, 1.60),
    _openai("gpt-4.1-nano", 0.10, 0.40),
    _openai("gpt-4o-mini", 0.15, 0.60),
)


def price_for(model: str, on: date | None = None) -> Price | None:
    """The price of `model` on the day `on` (today): the user's file first, then the table."""
    name = model.removeprefix("models/")
    if (override := _user_prices().get(name)) is not None:
        return override
    day = (on or date.today()).isoformat()
    rows = [row for row in TABLE if row.model == name and (not row.until or day <= row.until)]
    return min(rows, key=lambda row: row.until or "9999") if rows else None


def _user_prices() -> dict[str, Price]:
    """`EMOTAG_PRICES`: a JSON file `{model: {input_per_million, output_per_million,
    batch_discount?}}` for models the table lacks or prices that changed."""
    path = os.environ.get("EMOTAG_PRICES")
    if not path:
        return {}
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
        return {
            model: Price(
                model,
                float(entry["input_per_million"]),
                float(entry["output_per_million"]),
                float(entry.get("batch_discount", 0.5)),
                entry.get("checked", "your file"),
                path,
            )
            for model, entry in entries.items()
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(
            f"EMOTAG_PRICES={path} is not a price file ({exc}); see docs/usage.md, Costs."
        ) from exc


def priced(model: str, input_tokens: int, output_tokens: int, *, batch: bool) -> dict[str, Any]:
    """The `--json` cost keys: `cost_usd` (None: "price unknown") and the `price` used."""
    price = price_for(model)
    if price is None:
        return {"cost_usd": None, "price": None}
    return {
        "cost_usd": round(price.cost(input_tokens, output_tokens, batch=batch), 10),
        "price": price.as_dict(),
    }


def dollars(cost: float | None, model: str) -> str:
    """ "$1.23" for the tables, or what is missing."""
    if cost is None:
        return f"price unknown for {model} (set EMOTAG_PRICES)"
    return f"${cost:,.2f}" if cost >= 0.01 else f"${cost:.4f}"
