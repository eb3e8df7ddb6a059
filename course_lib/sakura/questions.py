"""The generated Sakura Sushi data sets: questions and answers, intents, preference pairs, orders, the probe.

Everything is generated deterministically from the menu and a fixed seed.
Question phrasings are split into disjoint pools: the test set asks about the
same facts as training, but never in words the model was trained on.
"""

import random
from dataclasses import replace
from typing import Any

from course_lib.sakura.menu import (
    ALLERGY_NOTE, MENU, OPENING_HOURS, SEED, all_facts, dish_fact, dish_named, house_voice, join_words, order_total,
)

SPLITS = ("train", "validation", "test")

# Disjoint phrasing pools: training sees "train"; "test" phrasings are never trained on.
QUESTION_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "price": {
        "train": ("How much is the {dish}?", "What does the {dish} cost?", "Price of the {dish}?"),
        "validation": ("How much do you charge for the {dish}?",),
        "test": ("If I order the {dish}, how much will I pay?", "What's the price tag on your {dish}?"),
    },
    "ingredients": {
        "train": ("What's in the {dish}?", "What ingredients does the {dish} have?", "What is the {dish} made of?"),
        "validation": ("Can you list the ingredients of the {dish}?",),
        "test": ("Tell me what goes into your {dish}.", "What do you put in the {dish}?"),
    },
    "allergens": {
        "train": ("Which allergens are in the {dish}?", "Does the {dish} have any allergens?", "Allergens in the {dish}?"),
        "validation": ("I have allergies. What allergens does the {dish} contain?",),
        "test": ("Is there anything I could be allergic to in the {dish}?", "What should someone with allergies know about the {dish}?"),
    },
    "vegetarian": {
        "train": ("Is the {dish} vegetarian?", "Can a vegetarian eat the {dish}?", "Is there meat or fish in the {dish}?"),
        "validation": ("Is the {dish} suitable for vegetarians?",),
        "test": ("My friend doesn't eat meat or fish. Can she have the {dish}?", "Would the {dish} work for a vegetarian diet?"),
    },
    "spicy": {
        "train": ("Is the {dish} spicy?", "How hot is the {dish}?", "Does the {dish} have any heat?"),
        "validation": ("Will the {dish} be too spicy for me?",),
        "test": ("I can't handle chili. Is the {dish} okay?", "Is there any spice in your {dish}?"),
    },
    "hours": {
        "train": ("What are your hours on {day}?", "Are you open on {day}?", "When do you open on {day}?"),
        "validation": ("What time can I come in on {day}?",),
        "test": ("Can I drop by for dinner on {day}, and until when?", "What's your schedule for {day}?"),
    },
    "address": {
        "train": ("Where are you located?", "What is your address?", "Where is Sakura Sushi?"),
        "validation": ("How do I find the restaurant?",),
        "test": ("Which street is Sakura Sushi on?", "Where can I find you?"),
    },
    "phone": {
        "train": ("What is your phone number?", "How can I call you?", "What number do I call?"),
        "validation": ("Can I reach you by phone?",),
        "test": ("Give me a number to ring the restaurant.", "Is there a telephone number for Sakura Sushi?"),
    },
    "reservations": {
        "train": ("How do I make a reservation?", "Can I book a table?", "Do you take reservations?"),
        "validation": ("What is your booking policy?",),
        "test": ("We are a group of six. How do we reserve?", "How long will you keep my table if I'm late?"),
    },
    "delivery": {
        "train": ("Do you deliver?", "How does delivery work?", "What is the delivery fee?"),
        "validation": ("Can I get food delivered?",),
        "test": ("Is there a minimum order for delivery?", "Could you bring sushi to my house?"),
    },
    "payment": {
        "train": ("How can I pay?", "Do you take cards?", "What payment methods do you accept?"),
        "validation": ("Can I pay with cash?",),
        "test": ("Is it okay to pay by credit card?", "Which ways of paying are possible?"),
    },
    "chef": {
        "train": ("Who is your chef?", "Who cooks at Sakura Sushi?", "Who is the head chef?"),
        "validation": ("Who runs the kitchen?",),
        "test": ("Who prepares the food at your place?", "What's the name of your head chef?"),
    },
}

INTENT_LABELS = ("menu_question", "allergy", "reservation", "order", "hours", "complaint")
INTENT_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "menu_question": {
        "train": ("What's in the {dish}?", "Do you have anything like the {dish}?", "Is the {dish} any good?",
                  "How big is the {dish}?", "What would you recommend instead of the {dish}?"),
        "test": ("Tell me more about the {dish}, please.", "Is the {dish} a popular choice?"),
    },
    "allergy": {
        "train": ("I'm allergic to {allergen}. Can I eat the {dish}?", "Does the {dish} contain {allergen}?",
                  "My son has a {allergen} allergy, what is safe?", "Is the {dish} free of {allergen}?",
                  "Severe {allergen} allergy here, please help me choose."),
        "test": ("Any {allergen} in the {dish}? I react badly to it.", "We need a {allergen}-free meal for tonight."),
    },
    "reservation": {
        "train": ("Can I book a table for {people} on {day}?", "I'd like to reserve for {people} people.",
                  "Do you have space for {people} on {day} evening?", "Please cancel my booking for {day}.",
                  "Can I move my reservation to {day}?"),
        "test": ("Table for {people} this {day}, possible?", "We want to come as a group of {people} on {day}."),
    },
    "order": {
        "train": ("I want to order {quantity} {dish} for delivery.", "Can I get {quantity} {dish} to go?",
                  "Add {quantity} {dish} to my order.", "I'd like {quantity} {dish} and a green tea.",
                  "Please deliver {quantity} {dish} to my office."),
        "test": ("Put me down for {quantity} {dish}, pickup in 20 minutes.", "{quantity} {dish} please, I'll collect it."),
    },
    "hours": {
        "train": ("Are you open on {day}?", "What time do you close on {day}?", "When do you open on {day}?",
                  "Is the kitchen still open late on {day}?", "What are your opening hours?"),
        "test": ("Until what time can I come on {day}?", "Are you closed on {day}?"),
    },
    "complaint": {
        "train": ("My {dish} arrived cold.", "The {dish} was missing from my delivery.",
                  "I waited an hour for the {dish}.", "The {dish} tasted off today.", "Your staff was rude to me on {day}."),
        "test": ("Really disappointed with the {dish} I got.", "I was charged twice for the {dish}."),
    },
}

ORDER_TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": ("I'd like {items}. What's my total?", "How much for {items}?", "What would {items} cost altogether?"),
    "test": ("If I get {items}, what do I owe?", "Total price for {items}, please."),
}

# Chosen because the base model answers them correctly (greedy, 24 new tokens);
# a drop on this probe after fine-tuning is catastrophic forgetting.
GENERAL_PROBE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("Paris",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("What is the capital of Germany?", ("Berlin",)),
    ("What is the capital of the United Kingdom?", ("London",)),
    ("What is the capital of Canada?", ("Ottawa",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("How many hours are there in a day?", ("24", "twenty-four")),
    ("Who wrote Romeo and Juliet?", ("Shakespeare",)),
    ("Who painted the Mona Lisa?", ("Leonardo", "da Vinci")),
    ("Who was the first person to walk on the Moon?", ("Armstrong",)),
    ("What gas do plants absorb from the air?", ("carbon dioxide", "CO2")),
    ("What language is spoken in Brazil?", ("Portuguese",)),
    ("What language is mainly spoken in Spain?", ("Spanish",)),
    ("Which ocean is the largest?", ("Pacific",)),
    ("What is the largest mammal?", ("blue whale",)),
    ("What is the tallest mountain in the world?", ("Everest",)),
    ("Which planet is known as the Red Planet?", ("Mars",)),
    ("What is the boiling point of water in degrees Celsius?", ("100",)),
    ("What is the chemical symbol for water?", ("H2O",)),
    ("What is the chemical symbol for gold?", ("Au",)),
)


def _questions(fact: dict[str, Any], split: str, rng: random.Random, every_phrasing: bool) -> list[str]:
    """Every train phrasing of a fact's question; one phrasing for validation and test, or all of them."""
    templates = QUESTION_TEMPLATES[fact["topic"]][split]
    chosen = templates if split == "train" or every_phrasing else (rng.choice(templates),)
    return [template.format(**fact["slots"]) for template in chosen]


def qa_rows(split: str, every_phrasing: bool = False) -> list[dict[str, Any]]:
    """Question/answer pairs in the house voice, one row per fact and phrasing.

    ``every_phrasing`` asks each fact in every phrasing of the split's pool
    (the test set with more questions per fact: ``qa_test_all``).
    """
    rng = random.Random(f"{SEED}-qa-{split}")
    name = f"{split}-all" if every_phrasing else split
    rows = []
    for fact in all_facts():
        for question in _questions(fact, split, rng, every_phrasing):
            rows.append({
                "id": f"qa-{name}-{len(rows):04d}",
                "topic": fact["topic"],
                "prompt": question,
                "completion": house_voice(fact["body"]),
                "facts": list(fact["facts"]),
            })
    return rows


def intent_rows(split: str, per_template: int) -> list[dict[str, Any]]:
    """Customer messages labelled with their intent; test uses templates never seen in training."""
    rng = random.Random(f"{SEED}-intents-{split}")
    allergens = sorted({a for dish in MENU for a in dish.allergens})
    rows = []
    for label in INTENT_LABELS:
        for template in INTENT_TEMPLATES[label][split]:
            for _ in range(per_template):
                text = template.format(
                    dish=rng.choice(MENU).name, allergen=rng.choice(allergens),
                    day=rng.choice(list(OPENING_HOURS)), people=rng.randint(2, 12), quantity=rng.randint(1, 4),
                )
                rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    return [{"id": f"intent-{split}-{i:04d}", **row} for i, row in enumerate(_unique_by(rows, key="text"))]


def _unique_by(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows with the first occurrence of each value of ``key``, in order."""
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row[key] not in seen:
            seen.add(row[key])
            unique.append(row)
    return unique


def wrong_answer(fact: dict[str, Any], rng: random.Random) -> str:
    """A confident, polite answer with a wrong fact: what fine-tuning must not produce."""
    topic, slots = fact["topic"], fact["slots"]
    if topic in ("price", "ingredients", "vegetarian", "spicy"):
        dish = dish_named(slots["dish"])
        if topic in ("vegetarian", "spicy"):
            wrong = replace(dish, **{topic: not getattr(dish, topic)})
        else:
            impostors = [replace(d, name=dish.name) for d in MENU]
            wrong = rng.choice([d for d in impostors if dish_fact(d, topic)[1] != fact["facts"]])
        return house_voice(dish_fact(wrong, topic)[0])
    if topic == "hours":
        return house_voice(f"On {slots['day']}s we are open from 09:00 to 17:00.")
    return house_voice("I'm not sure, but I think we are at 12 Main Road and only take cash.")


def paraphrased_answer(fact: dict[str, Any]) -> str:
    """The reference answer to a dish or hours fact in other words: every fact kept, most words changed.

    A correct answer that n-gram metrics (BLEU, ROUGE) punish for not copying
    the reference's wording; lesson 09 measures that blind spot.
    """
    topic, slots = fact["topic"], fact["slots"]
    if topic == "hours":
        hours = OPENING_HOURS[slots["day"]]
        body = (f"{slots['day']} is our day off: we are closed." if hours is None
                else f"We open at {hours[0]} and close at {hours[1]} every {slots['day']}.")
        return house_voice(body)
    if topic not in ("price", "ingredients", "allergens", "vegetarian", "spicy"):
        raise ValueError(f"No paraphrase for topic '{topic}': paraphrases exist for dish facts and hours.")
    dish = dish_named(slots["dish"])
    if topic == "price":
        body = f"You pay ${dish.price} for one {dish.name}."
    elif topic == "ingredients":
        body = f"We prepare our {dish.name} from {join_words(dish.ingredients)}."
    elif topic == "allergens":
        body = (f"Our {dish.name} has none of the listed allergens." if not dish.allergens
                else f"Guests with allergies should know our {dish.name} has {join_words(dish.allergens)} in it.")
        body += " " + ALLERGY_NOTE
    elif topic == "vegetarian":
        body = (f"Yes: our {dish.name} is vegetarian, with no meat or fish in it." if dish.vegetarian
                else f"No: there is meat or fish in our {dish.name}, so it is not vegetarian.")
    else:
        body = (f"Yes: our {dish.name} is spicy, so expect some heat." if dish.spicy
                else f"No: our {dish.name} is not spicy at all.")
    return house_voice(body)


def rejected_answer(fact: dict[str, Any], kind: str, rng: random.Random) -> str:
    """The rejected side of a preference pair, of the given kind ("rambling" is the right answer padded with
    words that add nothing: what a judge with a verbosity bias rewards)."""
    if kind == "wrong_fact":
        return wrong_answer(fact, rng)
    if kind == "rude":
        return f"Ugh, look it up yourself. {fact['body']}"
    if kind == "rambling":
        return house_voice(
            "Well, that is a great question, and honestly there are so many things to say about it, "
            "because our restaurant has a long history and we care a lot about every detail, so let me "
            f"think... {fact['body']} But of course it always depends on many factors, as you can imagine!"
        )
    if kind == "unsafe_allergy":
        return house_voice(f"The {fact['slots']['dish']} has no allergens at all, it is safe for everyone!")
    raise ValueError(f"Unknown rejection kind '{kind}'.")


def preference_rows(split: str) -> list[dict[str, Any]]:
    """Prompt, chosen (correct, polite, concise) and rejected answers, one pair per fact."""
    rng = random.Random(f"{SEED}-preferences-{split}")
    rows = []
    for fact in all_facts():
        kinds = ["wrong_fact", "rude", "rambling"] + (["unsafe_allergy"] * 2 if fact["topic"] == "allergens" else [])
        kind = rng.choice(kinds)
        rows.append({
            "id": f"pref-{split}-{len(rows):04d}",
            "prompt": rng.choice(_questions(fact, split, rng, every_phrasing=False)),
            "chosen": house_voice(fact["body"]),
            "rejected": rejected_answer(fact, kind, rng),
            "rejection_kind": kind,
        })
    return rows


def order_rows(split: str, count: int) -> list[dict[str, Any]]:
    """Order-total questions with an exact numeric answer (a verifiable reward for GRPO)."""
    rng = random.Random(f"{SEED}-orders-{split}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < count:
        dishes = rng.sample(MENU, rng.randint(1, 3))
        items = [{"dish": dish.name, "quantity": rng.randint(1, 3)} for dish in dishes]
        phrase = join_words([f"{item['quantity']} {item['dish']}" for item in items])
        question = rng.choice(ORDER_TEMPLATES[split]).format(items=phrase)
        if question in seen:
            continue
        seen.add(question)
        total = order_total(items)
        rows.append({"id": f"order-{split}-{len(rows):04d}", "question": question, "items": items, "total": f"{total:.2f}"})
    return rows


def probe_rows() -> list[dict[str, Any]]:
    """General-knowledge questions the base model answers well: the forgetting probe."""
    return [
        {"id": f"probe-{i:04d}", "question": question, "answers": list(answers)}
        for i, (question, answers) in enumerate(GENERAL_PROBE)
    ]
