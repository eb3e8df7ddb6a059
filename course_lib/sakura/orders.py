"""The order-total task: a question with the prices it needs, an answer format, and a reward that checks the number.

A verifiable task gives RL a reward nobody has to learn: the total of an order
is right or wrong. The prompt lists the price of every dish in the order, so
the task is arithmetic, not recall. Answers end with ``Total: $X.XX``; with
``working=True`` the model is asked to write one line per dish first (a short
chain of thought).
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from course_lib.sakura.menu import dish_named

ORDER_SYSTEM = "You are the order desk of Sakura Sushi. Add up orders exactly."
"""A one-line system prompt: SmolLM2's default one would add ~30 tokens to every rollout."""

FORMAT_REWARD = 0.1
"""The reward of a well-formed answer with the wrong number: a small step towards the format, far below a right total."""

_TOTAL = re.compile(r"Total:\s*\$\s*(\d+(?:\.\d+)?)")


def order_prompt(row: dict[str, Any], working: bool = False) -> str:
    """The user message for one order: the prices of its dishes, the customer's question, the answer format."""
    prices = "; ".join(f"{item['dish']} ${dish_named(item['dish']).price}" for item in row["items"])
    form = ("Write one line per dish (quantity × price = amount), then 'Total: $X.XX'." if working
            else "Reply with the total only, as 'Total: $X.XX'.")
    return f"Prices: {prices}.\n{row['question']}\n{form}"


def order_working(row: dict[str, Any]) -> str:
    """The worked answer to an order, one line per dish and the total: the format ``working=True`` asks for."""
    prices = [dish_named(item["dish"]).price for item in row["items"]]
    lines = [f"{item['quantity']} × ${price} = ${Decimal(price) * item['quantity']:.2f}"
             for item, price in zip(row["items"], prices)]
    return "\n".join(lines + [f"Total: ${row['total']}"])


def stated_total(reply: str) -> Decimal | None:
    """The amount after the last 'Total: $' in a reply, or None when the reply has no such line."""
    found = _TOTAL.findall(reply)
    if not found:
        return None
    try:
        return Decimal(found[-1])
    except InvalidOperation:
        return None


def order_reward(reply: str, total: str) -> float:
    """1 for the right total, :data:`FORMAT_REWARD` for a well-formed wrong one, 0 for a reply with no total."""
    stated = stated_total(reply)
    if stated is None:
        return 0.0
    return 1.0 if stated == Decimal(total) else FORMAT_REWARD


def order_is_correct(reply: str, total: str) -> bool:
    """True when the reply states the order's exact total."""
    return order_reward(reply, total) == 1.0


def order_messages(row: dict[str, Any], working: bool = False, example: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """The chat for one order: the short system prompt, optionally one solved ``example`` order (a one-shot
    demonstration of the answer format), then the order itself."""
    messages = [{"role": "system", "content": ORDER_SYSTEM}]
    if example is not None:
        answer = order_working(example) if working else f"Total: ${example['total']}"
        messages += [{"role": "user", "content": order_prompt(example, working)}, {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": order_prompt(row, working)}]


def order_rewards(completions: list[Any], total: list[str], **columns: Any) -> list[float]:
    """:func:`order_reward` for a batch, as TRL's GRPOTrainer calls a reward function: ``completions`` are texts or
    chats (a list holding the assistant's message), ``total`` is the data set's column of right answers."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [order_reward(text, right) for text, right in zip(texts, total, strict=True)]
