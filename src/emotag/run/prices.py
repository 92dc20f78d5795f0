"""What a run costs in US dollars: each provider's price table (`ProviderSpec.prices`),
checked against its pages on the date each row gives, which the user can override
(`EMOTAG_PRICES`).

A model the table lacks has no price: emotag says "price unknown" and never guesses.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any, Final, Protocol

from emotag.errors import ConfigError
from emotag.providers import Price, loaded

# A dry run cannot see the answers: about this many output tokens each (the JSON answer
# `{"faces": "one", "emotion": "happy"}` and a few of minimal thinking).
OUTPUT_TOKENS_PER_ANSWER: Final = 20


def price_for(model: str, on: date | None = None) -> Price | None:
    """The price of `model` on the day `on` (today): the user's file first, then the table."""
    name = model.removeprefix("models/")
    if (override := _user_prices().get(name)) is not None:
        return override
    day = (on or date.today()).isoformat()
    table = (row for provider in loaded() for row in provider.prices)
    rows = [row for row in table if row.model == name and (not row.until or day <= row.until)]
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


class Spent(Protocol):
    """What a run or a dry run counted (`Summary`, `Estimate`)."""

    input_tokens: int
    output_tokens: int
    settled_locally: int
    saved_input_tokens: int


def all_paid(model: str, spent: Spent, *, votes: int, batch: bool) -> float | None:
    """`tag --cascade`: what paying for every image would have cost, the ones the offline
    model settled (their input tokens estimated as a dry run does) at `votes` answers each
    too."""
    cost = priced(
        model,
        spent.input_tokens + votes * spent.saved_input_tokens,
        spent.output_tokens + votes * spent.settled_locally * OUTPUT_TOKENS_PER_ANSWER,
        batch=batch,
    )
    result: float | None = cost["cost_usd"]
    return result


def dollars(cost: float | None, model: str) -> str:
    """ "$1.23" for the tables, or what is missing."""
    if cost is None:
        return f"price unknown for {model} (set EMOTAG_PRICES)"
    return f"${cost:,.2f}" if cost >= 0.01 else f"${cost:.4f}"
