"""Estimated cost of a case from the token usage the Responses API reported.

USD per million tokens (input, output), list prices of the OpenAI API as published in 2025; edit the
table when prices change or a model is added. Cached input and reasoning tokens are not discounted
separately, so the estimate errs high. A model the table does not know has no estimate.
"""

from __future__ import annotations

from typing import Any

PRICE_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}
WEB_SEARCH_CALL_USD = 0.01  # the web_search tool is billed per call on top of the tokens


def prices_for(model: str) -> tuple[float, float] | None:
    """The longest table key the (possibly dated) model name starts with: gpt-4.1-mini-2025-04-14 -> gpt-4.1-mini."""
    matches = [key for key in PRICE_PER_MILLION if model == key or model.startswith(key + "-")]
    return PRICE_PER_MILLION[max(matches, key=len)] if matches else None


class Spend:
    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd: float | None = 0.0
        self.models: set[str] = set()

    def add_response(self, body: dict[str, Any]) -> None:
        usage = body.get("usage") or {}
        model = str(body.get("model") or "")
        tokens_in, tokens_out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        self.input_tokens += tokens_in
        self.output_tokens += tokens_out
        if model:
            self.models.add(model)
        prices = prices_for(model)
        if prices is None or self.cost_usd is None:
            self.cost_usd = None
            return
        searches = sum(1 for item in body.get("output") or [] if item.get("type") == "web_search_call")
        self.cost_usd += (tokens_in * prices[0] + tokens_out * prices[1]) / 1_000_000 + searches * WEB_SEARCH_CALL_USD
