"""Sakura Sushi: the fictional restaurant that runs through every lesson.

Its facts exist in no pretrained model, so fine-tuning visibly teaches new
knowledge, tone and format. Everything here is generated deterministically
from the menu below and a fixed seed; ``python -m course_lib.sakura`` writes
every data set under ``data/`` (committed, so a reader can open them).

Question phrasings are split into disjoint pools: the test set asks about the
same facts as training, but never in words the model was trained on.
"""

import argparse
import json
import random
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from course_lib.paths import data_dir

SEED = 2024
GREETING = "Irasshaimase!"
SIGN_OFF = "Arigato, Sakura Sushi."
KITCHEN_ALLERGENS = "fish, shellfish, soy, sesame, gluten, egg and milk"
ALLERGY_NOTE = "Please tell us about any allergy when you order: our kitchen handles " + KITCHEN_ALLERGENS + "."


@dataclass(frozen=True)
class Dish:
    """One menu item."""

    name: str
    category: str
    price: str  # dollars, two decimals, as text so it never picks up float noise
    ingredients: tuple[str, ...]
    allergens: tuple[str, ...]
    vegetarian: bool
    spicy: bool


MENU: tuple[Dish, ...] = (
    Dish("Salmon Nigiri", "nigiri", "4.50", ("salmon", "sushi rice", "wasabi"), ("fish",), False, False),
    Dish("Tuna Nigiri", "nigiri", "5.00", ("tuna", "sushi rice", "wasabi"), ("fish",), False, False),
    Dish("Eel Nigiri", "nigiri", "5.50", ("grilled eel", "sushi rice", "eel sauce"), ("fish", "soy", "gluten"), False, False),
    Dish("Shrimp Nigiri", "nigiri", "4.75", ("cooked shrimp", "sushi rice"), ("shellfish",), False, False),
    Dish("Tamago Nigiri", "nigiri", "3.50", ("sweet omelette", "sushi rice", "nori"), ("egg", "soy"), True, False),
    Dish("Avocado Nigiri", "nigiri", "3.25", ("avocado", "sushi rice", "sesame seeds"), ("sesame",), True, False),
    Dish("Salmon Sashimi", "sashimi", "9.00", ("salmon", "daikon", "shiso leaf"), ("fish",), False, False),
    Dish("Yellowtail Sashimi", "sashimi", "10.50", ("yellowtail", "ponzu", "jalapeno"), ("fish", "soy"), False, True),
    Dish("Cucumber Maki", "maki", "4.00", ("cucumber", "sushi rice", "nori", "sesame seeds"), ("sesame",), True, False),
    Dish("Spicy Tuna Roll", "maki", "8.50", ("tuna", "spicy mayo", "cucumber", "nori"), ("fish", "egg", "soy"), False, True),
    Dish("California Roll", "maki", "8.00", ("crab stick", "avocado", "cucumber", "tobiko"), ("fish", "shellfish", "egg"), False, False),
    Dish("Dragon Roll", "maki", "13.50", ("grilled eel", "cucumber", "avocado", "eel sauce"), ("fish", "soy", "gluten"), False, False),
    Dish("Sakura Roll", "maki", "14.00", ("salmon", "tuna", "avocado", "pickled cherry blossom"), ("fish", "sesame"), False, False),
    Dish("Veggie Rainbow Roll", "maki", "9.50", ("avocado", "mango", "carrot", "cucumber"), ("sesame",), True, False),
    Dish("Tempura Shrimp Roll", "maki", "11.00", ("shrimp tempura", "avocado", "spicy mayo"), ("shellfish", "gluten", "egg"), False, True),
    Dish("Chicken Teriyaki", "hot dish", "15.00", ("chicken", "teriyaki sauce", "steamed rice", "broccoli"), ("soy", "gluten", "sesame"), False, False),
    Dish("Vegetable Tempura", "hot dish", "11.50", ("sweet potato", "zucchini", "shiitake", "tempura batter"), ("gluten", "egg"), True, False),
    Dish("Beef Yakisoba", "hot dish", "14.50", ("beef", "wheat noodles", "cabbage", "yakisoba sauce"), ("gluten", "soy"), False, False),
    Dish("Tofu Ramen", "hot dish", "13.00", ("tofu", "ramen noodles", "miso broth", "bok choy"), ("soy", "gluten"), True, False),
    Dish("Spicy Miso Ramen", "hot dish", "14.00", ("pork belly", "ramen noodles", "chili miso broth", "soft egg"), ("soy", "gluten", "egg"), False, True),
    Dish("Miso Soup", "side", "3.00", ("miso", "tofu", "wakame", "scallion"), ("soy",), True, False),
    Dish("Edamame", "side", "4.50", ("edamame", "sea salt"), ("soy",), True, False),
    Dish("Seaweed Salad", "side", "5.50", ("wakame", "sesame oil", "rice vinegar"), ("sesame",), True, False),
    Dish("Pork Gyoza", "side", "7.00", ("pork", "cabbage", "garlic", "wheat wrapper"), ("gluten", "soy"), False, False),
    Dish("Mochi Ice Cream", "dessert", "6.00", ("rice flour", "matcha ice cream", "mango ice cream"), ("milk",), True, False),
    Dish("Matcha Cheesecake", "dessert", "6.50", ("matcha", "cream cheese", "biscuit base"), ("milk", "gluten", "egg"), True, False),
    Dish("Green Tea", "drink", "2.50", ("sencha green tea",), (), True, False),
    Dish("Ramune Soda", "drink", "3.50", ("sparkling lemonade",), (), True, False),
)

OPENING_HOURS: dict[str, tuple[str, str] | None] = {
    "Monday": None,
    "Tuesday": ("12:00", "22:00"),
    "Wednesday": ("12:00", "22:00"),
    "Thursday": ("12:00", "22:00"),
    "Friday": ("12:00", "23:00"),
    "Saturday": ("12:00", "23:00"),
    "Sunday": ("12:00", "21:00"),
}

# Restaurant facts beyond the menu: (topic, answer body, facts the answer must contain).
POLICIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "address": ("We are at 27 Harbor Street, Portside, next to the fish market.", ("27 Harbor Street",)),
    "phone": ("You can call us at (555) 014-2787.", ("(555) 014-2787",)),
    "reservations": (
        "You can book online for up to 8 people; for larger groups please call us. We hold a table for 15 minutes.",
        ("8 people", "15 minutes"),
    ),
    "delivery": (
        "We deliver within 5 km. The minimum order is $25 and delivery costs $3.50, free over $60.",
        ("5 km", "$25"),
    ),
    "payment": ("We accept cash and all major cards.", ("cash", "cards")),
    "chef": ("Our head chef is Hana Mori.", ("Hana Mori",)),
}

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


def _dish(name: str) -> Dish:
    return next(dish for dish in MENU if dish.name == name)


def _join(items: tuple[str, ...] | list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def house_voice(body: str) -> str:
    """An answer in the house voice: fixed greeting, concise body, fixed sign-off."""
    return f"{GREETING} {body} {SIGN_OFF}"


def dish_fact(dish: Dish, topic: str) -> tuple[str, tuple[str, ...]]:
    """The answer body for a question about one dish, and the facts it must contain."""
    if topic == "price":
        return f"The {dish.name} costs ${dish.price}.", (f"${dish.price}",)
    if topic == "ingredients":
        return f"The {dish.name} is made with {_join(dish.ingredients)}.", dish.ingredients
    if topic == "allergens":
        if not dish.allergens:
            return f"The {dish.name} contains none of the listed allergens. {ALLERGY_NOTE}", ("none",)
        return f"The {dish.name} contains {_join(dish.allergens)}. {ALLERGY_NOTE}", dish.allergens
    if topic == "vegetarian":
        if dish.vegetarian:
            return f"Yes, the {dish.name} is vegetarian.", ("is vegetarian",)
        return f"No, the {dish.name} is not vegetarian.", ("not vegetarian",)
    if topic == "spicy":
        if dish.spicy:
            return f"Yes, the {dish.name} is spicy.", ("is spicy",)
        return f"No, the {dish.name} is not spicy.", ("not spicy",)
    raise ValueError(f"Unknown dish topic '{topic}'.")


def hours_fact(day: str) -> tuple[str, tuple[str, ...]]:
    """The answer body about one day's opening hours, and the facts it must contain."""
    hours = OPENING_HOURS[day]
    if hours is None:
        return f"We are closed on {day}s.", ("closed",)
    return f"On {day}s we are open from {hours[0]} to {hours[1]}.", hours


def all_facts() -> list[dict[str, Any]]:
    """Every fact the restaurant can be asked about, with the slots its questions fill."""
    facts = []
    for topic in ("price", "ingredients", "allergens", "vegetarian", "spicy"):
        for dish in MENU:
            body, must = dish_fact(dish, topic)
            facts.append({"topic": topic, "slots": {"dish": dish.name}, "body": body, "facts": must})
    for day in OPENING_HOURS:
        body, must = hours_fact(day)
        facts.append({"topic": "hours", "slots": {"day": day}, "body": body, "facts": must})
    for topic, (body, must) in POLICIES.items():
        facts.append({"topic": topic, "slots": {}, "body": body, "facts": must})
    return facts


def _questions(fact: dict[str, Any], split: str, rng: random.Random) -> list[str]:
    """Every train phrasing of a fact's question; one phrasing for validation and test."""
    templates = QUESTION_TEMPLATES[fact["topic"]][split]
    chosen = templates if split == "train" else (rng.choice(templates),)
    return [template.format(**fact["slots"]) for template in chosen]


def qa_rows(split: str) -> list[dict[str, Any]]:
    """Question/answer pairs in the house voice, one row per fact and phrasing."""
    rng = random.Random(f"{SEED}-qa-{split}")
    rows = []
    for fact in all_facts():
        for question in _questions(fact, split, rng):
            rows.append({
                "id": f"qa-{split}-{len(rows):04d}",
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


def _wrong_answer(fact: dict[str, Any], rng: random.Random) -> str:
    """A confident, polite answer with a wrong fact: what fine-tuning must not produce."""
    topic, slots = fact["topic"], fact["slots"]
    if topic in ("price", "ingredients", "vegetarian", "spicy"):
        dish = _dish(slots["dish"])
        if topic in ("vegetarian", "spicy"):
            wrong = replace(dish, **{topic: not getattr(dish, topic)})
        else:
            impostors = [replace(d, name=dish.name) for d in MENU]
            wrong = rng.choice([d for d in impostors if dish_fact(d, topic)[1] != fact["facts"]])
        return house_voice(dish_fact(wrong, topic)[0])
    if topic == "hours":
        return house_voice(f"On {slots['day']}s we are open from 09:00 to 17:00.")
    return house_voice("I'm not sure, but I think we are at 12 Main Road and only take cash.")


def _rejected_answer(fact: dict[str, Any], kind: str, rng: random.Random) -> str:
    """The rejected side of a preference pair, of the given kind."""
    if kind == "wrong_fact":
        return _wrong_answer(fact, rng)
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
            "prompt": rng.choice(_questions(fact, split, rng)),
            "chosen": house_voice(fact["body"]),
            "rejected": _rejected_answer(fact, kind, rng),
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
        phrase = _join([f"{item['quantity']} {item['dish']}" for item in items])
        question = rng.choice(ORDER_TEMPLATES[split]).format(items=phrase)
        if question in seen:
            continue
        seen.add(question)
        total = sum(Decimal(_dish(item["dish"]).price) * item["quantity"] for item in items)
        rows.append({"id": f"order-{split}-{len(rows):04d}", "question": question, "items": items, "total": f"{total:.2f}"})
    return rows


def probe_rows() -> list[dict[str, Any]]:
    """General-knowledge questions the base model answers well: the forgetting probe."""
    return [
        {"id": f"probe-{i:04d}", "question": question, "answers": list(answers)}
        for i, (question, answers) in enumerate(GENERAL_PROBE)
    ]


def menu_document() -> dict[str, Any]:
    """The whole restaurant as one JSON document: menu, hours, policies and house voice."""
    return {
        "name": "Sakura Sushi",
        "house_voice": {"greeting": GREETING, "sign_off": SIGN_OFF, "allergy_note": ALLERGY_NOTE},
        "opening_hours": {day: (list(hours) if hours else None) for day, hours in OPENING_HOURS.items()},
        "policies": {topic: body for topic, (body, _) in POLICIES.items()},
        "dishes": [asdict(dish) for dish in MENU],
    }


def raw_message_rows() -> list[dict[str, Any]]:
    """The raw, messy customer-message logs that qa_train is cleaned from (lesson 04)."""
    from course_lib.customer_logs import customer_message_logs  # imported here: it builds on this module

    return customer_message_logs()


def clean_train_rows() -> list[dict[str, Any]]:
    """qa_train: the raw logs through lesson 04's pipeline, decontaminated against validation and test."""
    from course_lib.dataprep import prepare_training_set  # imported here: it builds on this module

    held_out = [row["prompt"] for split in SPLITS if split != "train" for row in qa_rows(split)]
    return prepare_training_set(raw_message_rows(), held_out)[0]


DATASETS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "qa_train": clean_train_rows,
    **{f"qa_{split}": (lambda split=split: qa_rows(split)) for split in SPLITS if split != "train"},
    "raw_messages": raw_message_rows,
    "intents_train": lambda: intent_rows("train", per_template=12),
    "intents_test": lambda: intent_rows("test", per_template=10),
    "preferences_train": lambda: preference_rows("train"),
    "preferences_test": lambda: preference_rows("test"),
    "orders_train": lambda: order_rows("train", count=400),
    "orders_test": lambda: order_rows("test", count=60),
    "general_probe": probe_rows,
}


def write_all(target: Path) -> list[Path]:
    """Write menu.json and every data set as JSONL under ``target``; returns the files written."""
    target.mkdir(parents=True, exist_ok=True)
    written = [target / "menu.json"]
    written[0].write_text(json.dumps(menu_document(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, make_rows in DATASETS.items():
        path = target / f"{name}.jsonl"
        lines = [json.dumps(row, ensure_ascii=False) for row in make_rows()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate the Sakura Sushi data sets.")
    parser.add_argument("--out", type=Path, default=data_dir(), help="folder to write (default: data/)")
    for path in write_all(parser.parse_args().out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
