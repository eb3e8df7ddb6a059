"""Sakura Sushi's raw customer-message logs: the messy material lesson 04 cleans.

Real fine-tuning data starts as logs, not as tidy question/answer pairs. This
module writes such a log, deterministically (fixed seed), from the training
phrasings of :func:`course_lib.sakura.menu.qa_rows` — each customer question
answered by staff in the house voice — and then spoils it the way real logs
are spoiled: rows logged twice, the same question retyped with typos, stray
spaces and look-alike characters, personal data, junk (empty rows, ads,
keyboard mashing, emoji, other languages), replies that are off-voice or
state a wrong fact, and a few copies of validation and test questions
(contamination). Every row also carries, outside the log itself, the kind of
mess it was built with, so a lesson can check where each kind ended up.

All personal data is fictional by construction: made-up names, e-mail
domains reserved for examples (``example.com``, RFC 2606) and phone numbers
in the 555-01XX range reserved for fiction. The restaurant's own phone
number and address are public facts, not personal data.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from course_lib.data.cleaning import LOOKALIKE_LETTERS
from course_lib.sakura.menu import GREETING, SEED, SIGN_OFF, house_voice
from course_lib.sakura.questions import preference_rows, qa_rows

RAW_FIELDS = ("id", "received_at", "channel", "customer", "message", "staff_reply")
CHANNELS = ("web_chat", "email", "instagram", "whatsapp")
LOG_START = datetime(2024, 3, 1, 11, 0)
LOG_DAYS = 90

CUSTOMERS = (
    "Maria Lopez", "John Carter", "Aiko Tanaka", "Liam Walsh", "Priya Nair", "Lucas Silva", "Emma Becker",
    "Omar Haddad", "Sofia Rossi", "Kwame Mensah", "Yuki Sato", "Chloe Martin", "Diego Ramos", "Nina Petrova",
    "Tom Baker", "Ana Costa", "Ben Cohen", "Fatima Khan", "Leo Dubois", "Grace Kim",
)
HANDLES = ("sushi_lover_88", "tunafan", "ramen.queen", "hungry_dev", "foodie_pdx")
STREETS = ("Elm Road", "Maple Avenue", "Oak Lane", "Cedar Drive", "Birch Street", "Willow Way")

# Look-alike letters (Cyrillic) that render like Latin ones: a classic copy-paste artefact.
CYRILLIC_TWINS = {latin: twin for twin, latin in LOOKALIKE_LETTERS.items() if latin in "aeocp" and "\u0400" <= twin <= "\u04ff"}

# Junk messages, by the kind of junk they are.
JUNK_MESSAGES: dict[str, tuple[str, ...]] = {
    "empty": ("", "   ", "\n"),
    "emoji_or_symbols": ("\U0001f363\U0001f363\U0001f363", "\U0001f44d", "???", "!!!", "\U0001f64f\U0001f64f", "...", "\U0001f60b\U0001f371"),
    "spam": (
        "Buy 1000 Instagram followers now at www.fastlikes.example!",
        "Congratulations, you won a $500 gift card! Click http://prize.example/claim",
        "We offer SEO services for restaurants, reply YES for a free audit.",
        "Earn crypto from home in 5 minutes a day: https://coins.example",
    ),
    "keyboard_mash": ("asdfgh", "asdfghjkl", "qwerty", "jjjjjjjj", "sdfsdfsdf", "zxcvbnm"),
    "other_language": (
        "\u00bfTienen opciones vegetarianas?", "Voc\u00eas abrem no domingo?", "Haben Sie heute ge\u00f6ffnet?",
        "Vous livrez \u00e0 domicile ?", "\u55b6\u696d\u6642\u9593\u306f\u4f55\u6642\u307e\u3067\u3067\u3059\u304b\uff1f",
        "\u0421\u043a\u043e\u043b\u044c\u043a\u043e \u0441\u0442\u043e\u0438\u0442 \u0440\u043e\u043b\u043b?",
    ),
}
JUNK_REPLY = house_voice("How can we help you?")
OFF_VOICE_REPLIES = ("ok", "idk, ask the kitchen", "We're open 12-10 I think", "sure thing!", "see website")


@dataclass(frozen=True)
class PlantedPII:
    """One piece of personal data written into the log: the ground truth an anonymizer is measured on."""

    row_id: str
    field: str  # "message" or "staff_reply"
    kind: str  # "name", "email", "phone" or "address"
    text: str


@dataclass(frozen=True)
class LogBook:
    """The raw log rows, the kind of mess each row was built with, and the personal data planted in them."""

    rows: list[dict[str, Any]]
    mess: dict[str, str]  # row id -> kind of mess ("clean", "near_duplicate", "spam", ...)
    pii: list[PlantedPII]


def _entry(message: str, reply: str, mess: str, rng: random.Random, **extra: Any) -> dict[str, Any]:
    """A log entry before ids are assigned: a random time, channel and customer unless given."""
    entry = {
        "received_at": LOG_START + timedelta(minutes=rng.randrange(LOG_DAYS * 24 * 60)),
        "channel": rng.choice(CHANNELS),
        "customer": rng.choice(CUSTOMERS + HANDLES + ("",) * 5),
        "message": message,
        "staff_reply": reply,
        "mess": mess,
        "pii": [],
    }
    return entry | extra


def _later(entry: dict[str, Any], rng: random.Random) -> datetime:
    """A time after an entry's: duplicates and retyped questions come after the original."""
    return entry["received_at"] + timedelta(minutes=rng.randint(5, 20 * 24 * 60))


# --- Surface noise: changes that normalization (NFKC, whitespace, quotes, look-alikes) undoes exactly.


def _swap_one(text: str, old: str, new: str, rng: random.Random) -> str:
    """Replace one randomly chosen occurrence of ``old`` (the text itself if there is none)."""
    spots = [i for i in range(len(text)) if text.startswith(old, i)]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + new + text[i + len(old):]


def _lookalike(text: str, rng: random.Random) -> str:
    """One Latin letter inside a longer word swapped for its Cyrillic twin."""
    spots = [i for i, ch in enumerate(text) if ch in CYRILLIC_TWINS and text[max(0, i - 1)].isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + CYRILLIC_TWINS[text[i]] + text[i + 1:]


def _zero_width(text: str, rng: random.Random) -> str:
    """A zero-width space hidden inside a word."""
    spots = [i for i in range(1, len(text)) if text[i - 1].isalpha() and text[i].isalpha()]
    i = rng.choice(spots)
    return text[:i] + "\u200b" + text[i:]


SURFACE_NOISE: tuple[Callable[[str, random.Random], str], ...] = (
    lambda t, rng: _swap_one(t, " ", "  ", rng),
    lambda t, rng: _swap_one(t, " ", "\u00a0", rng),
    lambda t, rng: _swap_one(t, " ", "\t", rng),
    lambda t, rng: " " + t + "  \n",
    lambda t, rng: _swap_one(t, "'", "\u2019", rng),
    lambda t, rng: _swap_one(t, "?", "\uff1f", rng),
    _zero_width,
    _lookalike,
)


def _add_surface_noise(text: str, rng: random.Random) -> str:
    """One or two invisible-to-the-eye changes; the text must really change."""
    noisy = text
    while noisy == text:
        for noise in rng.sample(SURFACE_NOISE, rng.randint(1, 2)):
            noisy = noise(noisy, rng)
    return noisy


# --- Retyping: what a customer does to the same question (a near-duplicate, not the same text).


def _typo(text: str, rng: random.Random) -> str:
    """Two neighbouring letters swapped, a letter dropped or a letter doubled, in a word of 5+ letters."""
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    w, k = words[i], rng.randrange(1, len(words[i]) - 2)
    words[i] = rng.choice((w[:k] + w[k + 1] + w[k] + w[k + 2:], w[:k] + w[k + 1:], w[:k] + w[k] + w[k:]))
    return " ".join(words)


RETYPING: tuple[Callable[[str, random.Random], str], ...] = (
    lambda t, rng: t.lower(),
    lambda t, rng: t.upper(),
    lambda t, rng: t.replace("?", rng.choice(("??", "???", "?!", ""))),
    lambda t, rng: t.rstrip("?") + rng.choice((" pls?", " please?", "? thx", "?? pls")),
    lambda t, rng: rng.choice(("hi ", "hey, ", "Hello! ")) + t,
    lambda t, rng: t.replace(" you ", " u ").replace(" your ", " ur "),
    _typo,
)


def _retype(text: str, rng: random.Random) -> str:
    """One or two retyping changes; the result differs from the original even after normalization."""
    retyped = text
    while retyped.strip() == text.strip():
        retyped = text
        for change in rng.sample(RETYPING, rng.randint(1, 2)):
            retyped = change(retyped, rng)
    return retyped


# --- The kinds of rows in the log.


def _base_entries(rng: random.Random) -> list[dict[str, Any]]:
    """Every training question with its house answer (``question`` and ``answer`` keep them clean);
    about a third with surface noise."""
    entries = []
    for row in qa_rows("train"):
        entry = _entry(row["prompt"], row["completion"], "clean", rng, question=row["prompt"], answer=row["completion"])
        if rng.random() < 0.35:
            entry |= {"message": _add_surface_noise(row["prompt"], rng), "mess": "surface_noise"}
        if rng.random() < 0.12:
            entry |= {"staff_reply": _add_surface_noise(row["completion"], rng), "mess": "surface_noise"}
        entries.append(entry)
    return entries


def _exact_duplicates(base: list[dict[str, Any]], count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Rows logged twice: byte for byte, or equal once spacing is normalized."""
    duplicates = []
    for original in rng.sample(base, count):
        message = original["message"] if rng.random() < 0.6 else original["message"] + "  "
        duplicates.append(original | {"message": message, "received_at": _later(original, rng),
                                      "mess": "exact_duplicate", "pii": []})
    return duplicates


def _near_duplicates(base: list[dict[str, Any]], count: int, rng: random.Random) -> list[dict[str, Any]]:
    """The same question retyped later (case, punctuation, 'pls', a typo), with the same answer."""
    return [
        _entry(_retype(original["message"].strip(), rng), original["staff_reply"], "near_duplicate", rng,
               received_at=_later(original, rng))
        for original in rng.sample(base, count)
    ]


def _contact(name: str, rng: random.Random) -> tuple[str, str]:
    """A fictional e-mail or phone number for a customer, and its kind."""
    first, last = name.lower().split()
    if rng.random() < 0.5:
        return "email", rng.choice((f"{first}.{last}@example.com", f"{first}{rng.randint(1, 99)}@example.net"))
    number = f"555-01{rng.randint(0, 99):02d}"
    return "phone", rng.choice((f"(212) {number}", f"646-{number}", f"+1 917 {number.replace('-', ' ')}"))


def _personal_message(question: str, name: str, rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    """A question wrapped in personal data, and the (kind, text) pieces planted in it."""
    first = name.split()[0]
    other = rng.choice([c for c in CUSTOMERS if c != name]).split()[0]
    kind, contact = _contact(name, rng)
    address = f"{rng.randint(2, 400)} {rng.choice(STREETS)}"
    shapes = (
        (f"Hi, I'm {first}. {question}", [("name", first)]),
        (f"My name is {name}. {question}", [("name", name)]),
        (f"{question} My {'e-mail' if kind == 'email' else 'number'} is {contact}.", [(kind, contact)]),
        (f"{question} You can reach me at {contact}. Thanks, {first}", [(kind, contact), ("name", first)]),
        (f"{question} - {name}", [("name", name)]),
        (f"{question} My friend {other} is coming too.", [("name", other)]),
        (f"{question} Delivery address: {address}.", [("address", address)]),
    )
    return rng.choice(shapes)


# Personal data a pattern-based anonymizer is expected to miss: measured, not hidden.
HARD_CASES: tuple[tuple[str, str, str], ...] = (
    ("{question} {other} recommended you!", "name", "{other}"),
    ("{question} tell my sister {lower} hi", "name", "{lower}"),
    ("{question} Call me back on +44 20 7946 0958.", "phone", "+44 20 7946 0958"),
)


def _personal_entries(base: list[dict[str, Any]], count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Questions that carry a customer's name, e-mail, phone or address, and a few hard cases."""
    entries = []
    for original in rng.sample(base, count):
        name = rng.choice(CUSTOMERS)
        message, planted = _personal_message(original["question"], name, rng)
        customer = name if rng.random() < 0.7 else rng.choice(HANDLES)
        entries.append(_entry(message, original["staff_reply"], "personal_data", rng, received_at=_later(original, rng),
                              customer=customer, pii=[("message", kind, text) for kind, text in planted]))
    for template, kind, text in HARD_CASES:
        original, other = rng.choice(base), rng.choice(CUSTOMERS).split()[0]
        slots = {"question": original["question"], "other": other, "lower": other.lower()}
        entries.append(_entry(template.format(**slots), original["staff_reply"], "personal_data", rng,
                              received_at=_later(original, rng), customer="",
                              pii=[("message", kind, text.format(**slots))]))
    return entries


def _personal_replies(base: list[dict[str, Any]], count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Staff replies with a personal aside: the customer's name or number written into the answer."""
    entries = []
    for original in rng.sample(base, count):
        name = rng.choice(CUSTOMERS)
        first = name.split()[0]
        kind, contact = _contact(name, rng)
        body = original["answer"].removeprefix(GREETING + " ").removesuffix(" " + SIGN_OFF)
        if rng.random() < 0.5:
            reply, planted = house_voice(f"Thanks, {first}! {body}"), [("staff_reply", "name", first)]
        else:
            reply, planted = house_voice(f"{body} We will confirm at {contact}."), [("staff_reply", kind, contact)]
        entries.append(_entry(original["question"], reply, "personal_data", rng, customer=name, pii=planted))
    return entries


def _restaurant_contact_entries(base: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Customers quoting the restaurant's own phone, address or chef: public facts that must survive."""
    shapes = (
        "I called (555) 014-2787 but nobody answered. {question}",
        "Is this still 27 Harbor Street? {question}",
        "Chef Hana Mori cooked for my birthday last year! {question}",
        "Is 555.014.2787 the right number for takeout? {question}",
    )
    return [
        _entry(shape.format(question=original["question"]), original["staff_reply"], "restaurant_contact", rng,
               received_at=_later(original, rng))
        for shape, original in zip(shapes, rng.sample(base, len(shapes)))
    ]


def _junk_entries(base: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Rows nobody should train on: empty, emoji, ads, keyboard mashing, other languages, no reply."""
    entries = [
        _entry(message, "" if kind in ("spam", "empty") else JUNK_REPLY, kind, rng)
        for kind, messages in JUNK_MESSAGES.items()
        for message in messages
    ]
    entries += [_entry(original["question"], "", "no_reply", rng) for original in rng.sample(base, 6)]
    entries += [_entry(original["question"], reply, "off_voice_reply", rng)
                for reply, original in zip(OFF_VOICE_REPLIES, rng.sample(base, len(OFF_VOICE_REPLIES)))]
    return entries


def _bad_answer_entries(rng: random.Random) -> list[dict[str, Any]]:
    """Questions answered badly by staff: a wrong fact, unsafe allergy advice, rudeness or rambling."""
    kinds = {"wrong_fact": "wrong_fact", "unsafe_allergy": "wrong_fact", "rude": "off_voice_reply",
             "rambling": "rambling_reply"}
    return [
        _entry(row["prompt"], row["rejected"], kinds[row["rejection_kind"]], rng)
        for row in rng.sample(preference_rows("train"), 24)
    ]


def _contamination_entries(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Validation and test questions (copied, or lightly retyped) that found their way into the log."""
    held_out = qa_rows("validation") + qa_rows("test")
    entries = []
    for row in rng.sample(held_out, count):
        light = rng.choice((lambda t, r: t, RETYPING[0], RETYPING[2], RETYPING[3], _typo))
        entries.append(_entry(light(row["prompt"], rng), row["completion"], "contamination", rng))
    return entries


def customer_log_book() -> LogBook:
    """The whole raw log (rows in time order, ids msg-0001...), its mess labels and planted personal data."""
    rng = random.Random(f"{SEED}-customer-logs")
    base = _base_entries(rng)
    entries = (
        base
        + _exact_duplicates(base, 45, rng)
        + _near_duplicates(base, 90, rng)
        + _personal_entries(base, 48, rng)
        + _personal_replies(base, 10, rng)
        + _restaurant_contact_entries(base, rng)
        + _junk_entries(base, rng)
        + _bad_answer_entries(rng)
        + _contamination_entries(24, rng)
    )
    entries.sort(key=lambda e: e["received_at"])
    rows, mess, pii = [], {}, []
    for number, entry in enumerate(entries, start=1):
        row_id = f"msg-{number:04d}"
        rows.append({
            "id": row_id,
            "received_at": entry["received_at"].isoformat(timespec="minutes"),
            "channel": entry["channel"],
            "customer": entry["customer"],
            "message": entry["message"],
            "staff_reply": entry["staff_reply"],
        })
        mess[row_id] = entry["mess"]
        pii += [PlantedPII(row_id, field, kind, text) for field, kind, text in entry["pii"]]
    return LogBook(rows=rows, mess=mess, pii=pii)


def customer_message_logs() -> list[dict[str, Any]]:
    """The raw log rows only, as written to data/raw_messages.jsonl."""
    return customer_log_book().rows
