"""Sakura Sushi's facts: the menu, opening hours, policies and the house voice.

The restaurant is fictional, so none of this exists in any pretrained model:
fine-tuning on it visibly teaches new knowledge, tone and format. Every data
set of the course is generated from these facts (:mod:`course_lib.sakura.questions`,
:mod:`course_lib.sakura.logs`, written out by :mod:`course_lib.sakura.generate`).
"""

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

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

def dish_named(name: str) -> Dish:
    """The menu's dish called ``name``."""
    return next(dish for dish in MENU if dish.name == name)


def order_total(items: list[dict[str, Any]]) -> Decimal:
    """What an order costs: Σ price × quantity over its items (``{"dish": name, "quantity": n}``), exactly."""
    return sum((Decimal(dish_named(item["dish"]).price) * item["quantity"] for item in items), Decimal("0"))


def join_words(items: tuple[str, ...] | list[str]) -> str:
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
        return f"The {dish.name} is made with {join_words(dish.ingredients)}.", dish.ingredients
    if topic == "allergens":
        if not dish.allergens:
            return f"The {dish.name} contains none of the listed allergens. {ALLERGY_NOTE}", ("none",)
        return f"The {dish.name} contains {join_words(dish.allergens)}. {ALLERGY_NOTE}", dish.allergens
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


def menu_document() -> dict[str, Any]:
    """The whole restaurant as one JSON document: menu, hours, policies and house voice."""
    return {
        "name": "Sakura Sushi",
        "house_voice": {"greeting": GREETING, "sign_off": SIGN_OFF, "allergy_note": ALLERGY_NOTE},
        "opening_hours": {day: (list(hours) if hours else None) for day, hours in OPENING_HOURS.items()},
        "policies": {topic: body for topic, (body, _) in POLICIES.items()},
        "dishes": [asdict(dish) for dish in MENU],
    }
