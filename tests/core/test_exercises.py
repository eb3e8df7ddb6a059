"""Cell-checked exercises."""

import pytest

from course_lib.core.exercises import ANSWER_HASHES, canonical, check_answer, fingerprint


def test_right_answer_passes_and_wrong_answer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ANSWER_HASHES, "xx-demo", fingerprint(13))
    check_answer("xx-demo", 13)
    with pytest.raises(AssertionError, match="Exercise xx-demo: 12 is not the expected answer"):
        check_answer("xx-demo", 12)


def test_canonical_forms_forgive_case_spaces_and_float_noise() -> None:
    assert canonical(" Green Tea ") == canonical("green tea")
    assert canonical(0.1 + 0.2) == canonical(0.3)
    assert canonical([1.00001, "A"]) == canonical([1.0, "a"])
    assert canonical(1) != canonical("1")


def test_unknown_exercise_is_named() -> None:
    with pytest.raises(KeyError, match="Unknown exercise 'zz-nothing'"):
        check_answer("zz-nothing", 1)


def test_every_stored_answer_is_a_sha256() -> None:
    assert all(len(value) == 64 and int(value, 16) >= 0 for value in ANSWER_HASHES.values())
