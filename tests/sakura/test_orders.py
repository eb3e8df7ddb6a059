"""The order-total task: prompts that carry the prices, worked answers that add up, and the verifiable reward."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from course_lib.data.jsonl import DataValidationError, read_jsonl
from course_lib.sakura.datasets import ROW_RULES, SCHEMAS, load_rows
from course_lib.sakura.orders import (
    FORMAT_REWARD, order_is_correct, order_messages, order_prompt, order_reward, order_rewards, order_working, stated_total,
)

ROW = {"id": "o1", "question": "How much for 2 Salmon Nigiri and 1 Miso Soup?",
       "items": [{"dish": "Salmon Nigiri", "quantity": 2}, {"dish": "Miso Soup", "quantity": 1}], "total": "12.00"}


def test_the_prompt_lists_each_dish_price_and_asks_for_the_format() -> None:
    prompt = order_prompt(ROW)
    assert prompt.startswith("Prices: Salmon Nigiri $4.50; Miso Soup $3.00.\nHow much for")
    assert prompt.endswith("'Total: $X.XX'.")
    assert "one line per dish" in order_prompt(ROW, working=True)


def test_the_worked_answer_adds_up_and_is_rewarded() -> None:
    working = order_working(ROW)
    assert working == "2 × $4.50 = $9.00\n1 × $3.00 = $3.00\nTotal: $12.00"
    assert order_is_correct(working, ROW["total"])
    for row in load_rows("orders_test"):
        assert order_reward(order_working(row), row["total"]) == 1.0


@pytest.mark.parametrize(("reply", "reward"), [
    ("Total: $12.00", 1.0),
    ("Total: $12", 1.0),  # the same amount
    ("Irasshaimase! Total: $ 12.00.", 1.0),
    ("Subtotal first. Total: $9.00\nSorry, Total: $12.00", 1.0),  # the last stated total counts
    ("Total: $13.50", FORMAT_REWARD),
    ("Total: $12.00\nActually Total: $11.00", FORMAT_REWARD),
    ("That will be $12.00.", 0.0),  # the right number without the format
    ("", 0.0),
    ("Total: twelve dollars", 0.0),
])
def test_order_reward_checks_the_number_and_the_format(reply: str, reward: float) -> None:
    assert order_reward(reply, ROW["total"]) == reward


def test_stated_total_reads_the_amount() -> None:
    assert stated_total("Total: $1.5") == Decimal("1.5")
    assert stated_total("no total here") is None


def test_an_order_whose_total_does_not_add_up_names_the_file_line_and_both_numbers(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + json.dumps(ROW | {"id": "o2", "total": "13.00"}) + "\n")
    with pytest.raises(DataValidationError, match=r"orders\.jsonl, line 2: field 'total': expected '12\.00' .*got '13\.00'"):
        read_jsonl(path, SCHEMAS["orders"], ROW_RULES["orders"])


def test_order_messages_put_the_solved_example_before_the_order() -> None:
    example = load_rows("orders_train")[0]
    messages = order_messages(ROW, working=True, example=example)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == order_working(example) and messages[3]["content"] == order_prompt(ROW, working=True)
    assert [m["role"] for m in order_messages(ROW)] == ["system", "user"]


def test_order_rewards_score_texts_and_chats_as_trl_passes_them() -> None:
    chats = [[{"role": "assistant", "content": "Total: $12.00"}], [{"role": "assistant", "content": "twelve"}]]
    assert order_rewards(chats, total=["12.00", "12.00"], prompts=["p", "p"]) == [1.0, 0.0]
    assert order_rewards(["Total: $1.00"], total=["12.00"]) == [FORMAT_REWARD]
    with pytest.raises(ValueError):
        order_rewards(["Total: $1.00"], total=["12.00", "3.00"])
