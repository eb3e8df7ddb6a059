"""The raw customer logs: deterministic, and messy in every way lesson 04 cleans up."""

from collections import Counter

import pytest

from course_lib.data.cleaning import normalize_text
from course_lib.data.dedup import similarity_key
from course_lib.sakura.logs import CHANNELS, RAW_FIELDS, LogBook, customer_log_book, customer_message_logs
from course_lib.sakura.questions import qa_rows


@pytest.fixture(scope="module")
def book() -> LogBook:
    return customer_log_book()


def _messages(book: LogBook, kind: str) -> list[str]:
    return [row["message"] for row in book.rows if book.mess[row["id"]] == kind]


def test_the_log_is_deterministic(book: LogBook) -> None:
    assert customer_log_book() == book
    assert customer_message_logs() == book.rows


def test_rows_have_the_raw_fields_unique_ids_and_run_in_time_order(book: LogBook) -> None:
    assert all(tuple(row) == RAW_FIELDS for row in book.rows)
    assert [row["id"] for row in book.rows] == [f"msg-{i:04d}" for i in range(1, len(book.rows) + 1)]
    times = [row["received_at"] for row in book.rows]
    assert times == sorted(times)
    assert {row["channel"] for row in book.rows} == set(CHANNELS)
    assert set(book.mess) == {row["id"] for row in book.rows}


def test_every_training_phrasing_is_in_the_log(book: LogBook) -> None:
    logged = {normalize_text(row["message"]) for row in book.rows}
    assert {row["prompt"] for row in qa_rows("train")} <= logged


def test_the_log_holds_every_kind_of_mess(book: LogBook) -> None:
    assert set(book.mess.values()) == {
        "clean", "surface_noise", "exact_duplicate", "near_duplicate", "personal_data", "restaurant_contact",
        "empty", "emoji_or_symbols", "spam", "keyboard_mash", "other_language", "no_reply", "off_voice_reply",
        "wrong_fact", "rambling_reply", "contamination",
    }


def test_surface_noise_hides_in_invisible_and_look_alike_characters(book: LogBook) -> None:
    noisy = "".join(_messages(book, "surface_noise"))
    for character in ("\u00a0", "\u200b", "\uff1f", "\t", "\u2019", "\u0430"):
        assert character in noisy, f"no {character!r} in the surface noise"
    questions, answers = {row["prompt"] for row in qa_rows("train")}, {row["completion"] for row in qa_rows("train")}
    for row in book.rows:
        if book.mess[row["id"]] == "surface_noise":
            assert (row["message"], row["staff_reply"]) != tuple(map(normalize_text, (row["message"], row["staff_reply"])))
            assert normalize_text(row["message"]) in questions and normalize_text(row["staff_reply"]) in answers


def test_exact_duplicates_repeat_a_logged_conversation(book: LogBook) -> None:
    pairs = Counter((row["message"], row["staff_reply"]) for row in book.rows)
    assert sum(n - 1 for n in pairs.values() if n > 1) >= 20
    normalized = {(normalize_text(r["message"]), r["staff_reply"]) for r in book.rows if book.mess[r["id"]] != "exact_duplicate"}
    dupes = [r for r in book.rows if book.mess[r["id"]] == "exact_duplicate"]
    assert all((normalize_text(r["message"]), r["staff_reply"]) in normalized for r in dupes)


def test_near_duplicates_retype_a_training_question(book: LogBook) -> None:
    questions = {similarity_key(row["prompt"]) for row in qa_rows("train")}
    retyped = _messages(book, "near_duplicate")
    assert len(retyped) >= 50
    assert all(normalize_text(m) not in {row["prompt"] for row in qa_rows("train")} for m in retyped)
    assert any(m == m.lower() for m in retyped) and any(m == m.upper() for m in retyped)
    assert any(similarity_key(m) in questions for m in retyped)  # differs only in case, punctuation or 'pls'
    assert any(similarity_key(m) not in questions for m in retyped)  # typos


def test_planted_personal_data_is_in_its_row_and_fictional(book: LogBook) -> None:
    rows = {row["id"]: row for row in book.rows}
    assert {item.kind for item in book.pii} == {"name", "email", "phone", "address"}
    assert {item.field for item in book.pii} == {"message", "staff_reply"}
    for item in book.pii:
        assert item.text in rows[item.row_id][item.field]
        if item.kind == "email":
            assert item.text.endswith(("@example.com", "@example.net"))
        if item.kind == "phone":
            assert "555 01" in item.text or "555-01" in item.text or item.text.startswith("+44 20 7946")


def test_the_restaurants_own_contact_facts_appear_in_messages(book: LogBook) -> None:
    quoted = " ".join(_messages(book, "restaurant_contact"))
    assert "(555) 014-2787" in quoted and "27 Harbor Street" in quoted and "Hana Mori" in quoted


def test_junk_is_junk(book: LogBook) -> None:
    assert all(not m.strip() for m in _messages(book, "empty"))
    assert all(not any(ch.isalpha() for ch in m) for m in _messages(book, "emoji_or_symbols"))
    assert any("http" in m or "www." in m for m in _messages(book, "spam"))
    foreign = _messages(book, "other_language")
    assert len(foreign) >= 5 and any(not any(ch.isascii() and ch.isalpha() for ch in m) for m in foreign)
    assert all(row["staff_reply"] == "" for row in book.rows if book.mess[row["id"]] == "no_reply")


def test_contamination_copies_validation_and_test_questions(book: LogBook) -> None:
    held_out = {similarity_key(row["prompt"]) for split in ("validation", "test") for row in qa_rows(split)}
    copied = _messages(book, "contamination")
    assert len(copied) >= 20
    assert sum(similarity_key(m) in held_out for m in copied) >= len(copied) - 5
