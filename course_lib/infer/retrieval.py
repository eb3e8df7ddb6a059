"""Retrieval: find the menu entries relevant to a question with a sentence encoder.

The alternative to fine-tuning that lesson 05 measures: instead of writing
the facts into the weights, put the few relevant ones into the prompt.
Documents and questions are embedded with all-MiniLM-L6-v2 (mean pooling over
real tokens, L2-normalized, as sentence-transformers does for this model), and
the nearest documents by cosine similarity are returned.
"""

from typing import Any

import torch

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.data.chat_format import Messages
from course_lib.sakura.menu import GREETING, SIGN_OFF

ENCODER = "minilm-l6-v2"
GROUNDING_INSTRUCTION = ("You are the assistant of Sakura Sushi. Answer in one sentence using only these facts, "
                         f"starting with '{GREETING}' and ending with '{SIGN_OFF}'\n")
"""The system prompt above the retrieved cards: answer from them, in the house voice."""
HOURS_CARD_LABEL = "Opening hours"
"""How the hours card starts: written by ``menu_documents``, found by ``relevant_card``."""


def menu_documents(menu: dict[str, Any]) -> list[str]:
    """The restaurant as short text cards: one per dish, one for the hours, one per policy."""
    cards = []
    for dish in menu["dishes"]:
        allergens = ", ".join(dish["allergens"]) or "none of the listed allergens"
        cards.append(
            f"{dish['name']} ({dish['category']}), ${dish['price']}. Ingredients: {', '.join(dish['ingredients'])}. "
            f"Allergens: {allergens}. {'Vegetarian' if dish['vegetarian'] else 'Not vegetarian'}. "
            f"{'Spicy' if dish['spicy'] else 'Not spicy'}."
        )
    hours = "; ".join(
        f"{day} {'closed' if span is None else span[0] + '-' + span[1]}" for day, span in menu["opening_hours"].items()
    )
    cards.append(f"{HOURS_CARD_LABEL}: {hours}.")
    cards += list(menu["policies"].values())
    return cards


@torch.no_grad()
def embed(texts: list[str], model: Any, tokenizer: Any, batch_size: int = 32) -> torch.Tensor:
    """Unit-length sentence embeddings: the mean of the token vectors, padding excluded."""
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        chunks.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(chunks)


class Retriever:
    """Nearest documents to a query by cosine similarity of MiniLM embeddings."""

    def __init__(self, documents: list[str]) -> None:
        self.documents = documents
        self.model, self.tokenizer = load_model(ENCODER), load_tokenizer(ENCODER)
        self.vectors = embed(documents, self.model, self.tokenizer)

    def search(self, queries: list[str], k: int = 2) -> list[list[str]]:
        """The ``k`` most similar documents to each query, best first."""
        scores = embed(queries, self.model, self.tokenizer) @ self.vectors.T
        return [[self.documents[i] for i in row] for row in scores.topk(k, dim=1).indices.tolist()]


def grounded_prompts(questions: list[str], retrieved: list[list[str]]) -> list[Messages]:
    """Retrieval-augmented prompts: each question under a system prompt that holds its retrieved cards."""
    if len(questions) != len(retrieved):
        raise ValueError(f"one list of retrieved cards per question: {len(questions)} questions, {len(retrieved)} lists")
    return [[{"role": "system", "content": GROUNDING_INSTRUCTION + "\n".join(cards)}, {"role": "user", "content": question}]
            for question, cards in zip(questions, retrieved)]


def relevant_card(answer: str, topic: str, cards: list[str]) -> str:
    """The menu card that holds the fact a reference answer states: the hours card, the policy card the answer
    quotes, or the card of the dish the answer names (the longest name that fits: "Spicy Tuna Roll" over "Tuna Roll")."""
    if topic == "hours":
        return next(card for card in cards if card.startswith(HOURS_CARD_LABEL))
    quoted = [card for card in cards if card in answer]
    if quoted:
        return quoted[0]
    named = [card for card in cards if " (" in card and card.split(" (")[0] in answer]
    if not named:
        raise ValueError(f"no menu card holds the fact of {answer!r} (topic '{topic}')")
    return max(named, key=lambda card: len(card.split(" (")[0]))


def hit_rate(retrieved: list[list[str]], relevant: list[str]) -> float:
    """The share of queries whose relevant document is among the retrieved ones (recall at k)."""
    if len(retrieved) != len(relevant) or not relevant:
        raise ValueError(f"one relevant document per query: {len(retrieved)} queries, {len(relevant)} documents")
    return sum(doc in found for found, doc in zip(retrieved, relevant)) / len(relevant)
