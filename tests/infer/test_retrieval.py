"""Retrieval with MiniLM finds the right menu card."""

import pytest
import torch

from course_lib.infer.retrieval import Retriever, embed, hit_rate, menu_documents, relevant_card
from course_lib.sakura.datasets import load_menu, load_rows
from course_lib.sakura.menu import MENU


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    return Retriever(menu_documents(load_menu()))


def test_one_card_per_dish_plus_hours_and_policies() -> None:
    menu = load_menu()
    cards = menu_documents(menu)
    assert len(cards) == len(menu["dishes"]) + 1 + len(menu["policies"])
    assert cards[0].startswith("Salmon Nigiri (nigiri), $4.50. Ingredients: salmon, sushi rice, wasabi. Allergens: fish.")
    assert "Monday closed" in cards[len(menu["dishes"])]


@pytest.mark.real_model
def test_padding_does_not_change_an_embedding(retriever: Retriever) -> None:
    texts = ["Do you deliver?", "What should someone with allergies know about the Spicy Tuna Roll?"]
    together = embed(texts, retriever.model, retriever.tokenizer)
    alone = torch.cat([embed([t], retriever.model, retriever.tokenizer) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(together.norm(dim=1), torch.ones(2))


@pytest.mark.real_model
def test_dish_questions_retrieve_their_dish_card(retriever: Retriever) -> None:
    rows = [r for r in load_rows("qa_test") if r["topic"] in ("price", "ingredients", "allergens")]
    asked = [next(dish.name for dish in MENU if dish.name in row["prompt"]) for row in rows]
    found = retriever.search([row["prompt"] for row in rows], k=2)
    hits = [any(card.startswith(name + " (") for card in cards) for name, cards in zip(asked, found)]
    assert sum(hits) / len(hits) >= 0.9


def test_every_test_question_has_the_card_that_holds_its_fact() -> None:
    cards = menu_documents(load_menu())
    for row in load_rows("qa_test_all"):
        card = relevant_card(row["completion"], row["topic"], cards)
        if row["topic"] in ("price", "ingredients"):
            assert all(fact.casefold() in card.casefold() for fact in row["facts"]), (row, card)
        if row["topic"] == "hours":
            assert card.startswith("Opening hours")
    spicy_tuna = next(r for r in load_rows("qa_test") if r["completion"].count("Spicy Tuna Roll"))
    assert relevant_card(spicy_tuna["completion"], spicy_tuna["topic"], cards).startswith("Spicy Tuna Roll (")
    with pytest.raises(ValueError, match="no menu card holds"):
        relevant_card("Irasshaimase! We sell bicycles.", "price", cards)


def test_hit_rate_is_recall_at_k() -> None:
    assert hit_rate([["a", "b"], ["c", "d"], ["e", "a"]], ["a", "x", "a"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="one relevant document per query"):
        hit_rate([["a"]], [])


def test_grounded_prompts_put_the_cards_under_the_instruction() -> None:
    from course_lib.infer.retrieval import GROUNDING_INSTRUCTION, grounded_prompts

    prompts = grounded_prompts(["Price of the Eel Nigiri?"], [["card one", "card two"]])
    assert prompts == [[{"role": "system", "content": GROUNDING_INSTRUCTION + "card one\ncard two"},
                        {"role": "user", "content": "Price of the Eel Nigiri?"}]]
    with pytest.raises(ValueError, match="2 questions, 1 lists"):
        grounded_prompts(["a", "b"], [["card"]])
