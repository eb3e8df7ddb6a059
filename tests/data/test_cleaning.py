"""Generic cleaning steps: normalization, anonymization with public facts kept, verification."""

from collections import Counter

import pytest
from log_rows import log_row, log_rows

from course_lib.data.cleaning import (
    anonymize,
    anonymize_rows,
    normalize_rows,
    normalize_text,
    verify,
)
from course_lib.sakura.cleaning import PUBLIC_FACTS, answer_key
from course_lib.sakura.menu import house_voice


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  How much is the\u00a0Salmon   Nigiri\uff1f \n", "How much is the Salmon Nigiri?"),  # NBSP, fullwidth ?, spaces
        ("What\u2019s in the Tuna\tNigiri?", "What's in the Tuna Nigiri?"),  # curly quote, tab
        ("Is the Sa\u200blmon Nigiri spicy?", "Is the Salmon Nigiri spicy?"),  # zero-width space
        ("Is the S\u0430lmon Nigiri spicy?", "Is the Salmon Nigiri spicy?"),  # Cyrillic a inside a Latin word
        ("\uff33\uff41\uff4c\uff4d\uff4f\uff4e \ufb01sh", "Salmon fish"),  # fullwidth letters, fi ligature
        ("\u0421\u043a\u043e\u043b\u044c\u043a\u043e \u0441\u0442\u043e\u0438\u0442?", "\u0421\u043a\u043e\u043b\u044c\u043a\u043e \u0441\u0442\u043e\u0438\u0442?"),  # real Cyrillic stays
        ("HOW MUCH??", "HOW MUCH??"),  # case and punctuation are kept
    ],
)
def test_normalize_text(raw: str, clean: str) -> None:
    assert normalize_text(raw) == clean


def test_normalize_counts_the_rows_it_changed() -> None:
    rows, report = normalize_rows(log_rows("Do you deliver?", "Do  you deliver?"))
    assert [r["message"] for r in rows] == ["Do you deliver?"] * 2
    assert (report.rows_in, report.rows_out, report.changed) == (2, 2, 1)


@pytest.mark.parametrize(
    ("text", "anonymized"),
    [
        ("Mail me at maria.lopez@example.com", "Mail me at [EMAIL]"),
        ("write to maria at example dot com", "write to [EMAIL]"),
        ("Call (212) 555-0147 or 646-555-0101 or +1 917 555 0133", "Call [PHONE] or [PHONE] or [PHONE]"),
        ("Deliver to 14 Elm Road please", "Deliver to [ADDRESS] please"),
        ("My name is Maria Lopez. Do you deliver?", "My name is [NAME]. Do you deliver?"),
        ("Hi, I'm Aiko. Do you deliver?", "Hi, I'm [NAME]. Do you deliver?"),
        ("Do you deliver? My friend Kenji is hungry.", "Do you deliver? My friend [NAME] is hungry."),
        ("Hi Maria, we deliver.", "Hi [NAME], we deliver."),
        ("Do you deliver? Thanks, Omar", "Do you deliver? Thanks, [NAME]"),
        ("Do you deliver? - Omar Haddad", "Do you deliver? - [NAME]"),
    ],
)
def test_anonymize_catches(text: str, anonymized: str) -> None:
    assert anonymize(text, PUBLIC_FACTS).text == anonymized


def test_the_senders_own_name_is_caught_in_any_case() -> None:
    result = anonymize("is it open? maria here, LOPEZ family", PUBLIC_FACTS, known_names=["Maria Lopez"])
    assert result.text == "is it open? [NAME] here, [NAME] family"
    assert result.found == (("name", "maria"), ("name", "LOPEZ"))


@pytest.mark.parametrize(
    "text",
    [
        "You can call us at (555) 014-2787.",  # the restaurant's phone ...
        "Is 555.014.2787 the takeout number?",  # ... in any format
        "Call +1 555 014 2787 or 014-2787.",
        "We are at 27 Harbor Street, Portside, next to the fish market.",  # its address
        "Our head chef is Hana Mori.",  # its chef
        "Hi Sakura, do you deliver?", "This is Sakura Sushi, right?",  # its name
        "hey, How hot is the Green Tea?", "Thanks, Dragon Roll was great",  # no cue-word false alarms
        "The Salmon Nigiri costs $4.50.", "On Fridays we are open from 12:00 to 23:00.",  # prices and hours
    ],
)
def test_public_facts_and_plain_text_are_kept(text: str) -> None:
    assert anonymize(text, PUBLIC_FACTS) == anonymize(text, PUBLIC_FACTS, known_names=["Maria Lopez"])
    assert anonymize(text, PUBLIC_FACTS).text == text


@pytest.mark.parametrize(
    "text",
    [
        "Kenji recommended you!",  # a name with no cue and not the sender's
        "tell my sister emma hi",  # a lower-case name after the cue
        "Call me back on +44 20 7946 0958.",  # a non-US phone layout
    ],
)
def test_what_the_patterns_miss(text: str) -> None:
    assert anonymize(text, PUBLIC_FACTS).text == text


def test_anonymize_rows_counts_kinds_and_hides_the_customer() -> None:
    rows, report = anonymize_rows([log_row("Hi, I'm Omar. Mail omar@example.com", customer="Omar Haddad"), log_row("Hello?")], PUBLIC_FACTS)
    assert rows[0]["message"] == "Hi, I'm [NAME]. Mail [EMAIL]" and rows[0]["customer"] == "[NAME]"
    assert report.counts == Counter({"name": 1, "email": 1}) and report.changed == 1


def test_verify_keeps_only_menu_answers() -> None:
    answers = answer_key()
    rows = [log_row("Price of the Salmon Nigiri?", house_voice("The Salmon Nigiri costs $4.50."), "ok"),
            log_row("Price of the Salmon Nigiri?", house_voice("The Salmon Nigiri costs $4.00."), "old price"),
            log_row("Do you take cards?", house_voice("Thanks, [NAME]! We accept cash and all major cards."), "aside")]
    kept, report = verify(rows, answers)
    assert [r["id"] for r in kept] == ["ok"] and report.counts == Counter({"reply not a menu answer": 2})
