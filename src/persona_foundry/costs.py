"""Money: a price table per model, the cost of calls, and the run's budget guard.

Prices are US dollars per million tokens (input, cached input, output). The defaults are list
prices of a few well-known models as published by their providers; override or extend them with
PRICES='{"my-model": {"input": 0.2, "cached_input": 0.1, "output": 0.8}}'. Local models cost 0.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .errors import BudgetExceededError

TOKENS_PER_PRICE_UNIT = 1_000_000
# Rough prompt size before a call is made: about four characters a token.
CHARS_PER_TOKEN_ESTIMATE = 4


class ModelPrice(BaseModel):
    """Dollars per million tokens."""

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.60),
    "gpt-4o": ModelPrice(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4.1-mini": ModelPrice(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1-nano": ModelPrice(input=0.10, cached_input=0.025, output=0.40),
    "gpt-4.1": ModelPrice(input=2.00, cached_input=0.50, output=8.00),
    "deepseek-chat": ModelPrice(input=0.27, cached_input=0.07, output=1.10),
}
FREE = ModelPrice(input=0, cached_input=0, output=0)


def price_for(model: str, prices: dict[str, ModelPrice]) -> ModelPrice | None:
    """The price of a model: exact name, without a provider prefix (`openai/…`), or the longest
    known prefix (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`); local models are free."""
    if model.startswith("local:"):
        return FREE
    bare = model.rsplit("/", 1)[-1]
    for name in (model, bare):
        if name in prices:
            return prices[name]
    matches = [name for name in prices if bare.startswith(name)]
    return prices[max(matches, key=len)] if matches else None


def call_cost(price: ModelPrice | None, prompt_tokens: float, cached_tokens: float,
              completion_tokens: float) -> float:
    """Dollars for one call (0 when the model's price is unknown)."""
    if price is None:
        return 0.0
    fresh = max(0.0, prompt_tokens - cached_tokens)
    dollars = (fresh * price.input + cached_tokens * price.cached_input
               + completion_tokens * price.output)
    return dollars / TOKENS_PER_PRICE_UNIT


class BudgetGuard:
    """Stops new calls once one more could take the run past its budget."""

    def __init__(self, budget_usd: float | None, prices: dict[str, ModelPrice]) -> None:
        self.budget_usd = budget_usd
        self.prices = prices
        self.spent_usd = 0.0
        self.reserved_usd = 0.0

    def reserve(self, model: str, prompt_chars: int, max_tokens: int) -> float:
        """Reserve the worst case of a call (its prompt plus max_tokens of output), or refuse."""
        worst = call_cost(price_for(model, self.prices),
                          prompt_chars / CHARS_PER_TOKEN_ESTIMATE, 0, max_tokens)
        if self.budget_usd is not None and (
            self.spent_usd + self.reserved_usd + worst > self.budget_usd
        ):
            raise BudgetExceededError(
                f"budget ${self.budget_usd:.4f} reached (spent ${self.spent_usd:.4f}); no new "
                "calls started — rerun with a higher --budget to continue where this stopped"
            )
        self.reserved_usd += worst
        return worst

    def settle(self, reserved: float, model: str, prompt_tokens: int, cached_tokens: int,
               completion_tokens: int) -> float:
        """Swap a reservation for what the call really cost; return that cost."""
        self.reserved_usd -= reserved
        cost = call_cost(price_for(model, self.prices), prompt_tokens, cached_tokens,
                         completion_tokens)
        self.spent_usd += cost
        return cost
