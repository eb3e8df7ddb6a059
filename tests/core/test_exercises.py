"""Cell-checked exercises: fingerprinted answers and functions checked against a reference."""

import math
import random

import numpy as np
import pytest
import torch

from course_lib.core.exercises import ANSWER_HASHES, canonical, check_answer, check_function, fingerprint, same_result


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


@pytest.mark.parametrize("value", [6950.0, np.int64(6950), np.float32(6950.0), torch.tensor(6950),
                                   torch.tensor(6950.0), np.array(6950), 6949.999999999])
def test_integral_floats_and_numpy_torch_scalars_answer_an_integer(monkeypatch: pytest.MonkeyPatch, value) -> None:
    monkeypatch.setitem(ANSWER_HASHES, "xx-int", fingerprint(6950))
    check_answer("xx-int", value)


def test_reals_are_accepted_within_one_unit_of_the_fourth_significant_digit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ANSWER_HASHES, "xx-real", fingerprint(math.exp(2.0)))
    for value in (math.exp(2.0), 7.389, 7.3895, np.float32(math.exp(2.0)), torch.tensor(math.exp(2.0)), 7.390):
        check_answer("xx-real", value)
    for wrong in (7.392, 7.386, 7, 73.89):
        with pytest.raises(AssertionError):
            check_answer("xx-real", wrong)


def test_tiny_reals_keep_their_significant_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ANSWER_HASHES, "xx-rate", fingerprint(3e-6))
    check_answer("xx-rate", 3e-6)
    for wrong in (3e-7, 0.0, 3e-4):
        with pytest.raises(AssertionError):
            check_answer("xx-rate", wrong)


def test_unknown_exercise_is_named() -> None:
    with pytest.raises(KeyError, match="Unknown exercise 'zz-nothing'"):
        check_answer("zz-nothing", 1)


def test_every_stored_answer_is_a_sha256() -> None:
    assert all(len(value) == 64 and int(value, 16) >= 0 for value in ANSWER_HASHES.values())


def test_same_result_compares_tensors_in_shape_dtype_and_values_with_infinities() -> None:
    masked = torch.tensor([0.5, float("-inf")])
    assert same_result(masked, masked.clone() + 1e-7)
    assert not same_result(masked, torch.tensor([0.5, 0.0]))
    assert not same_result(torch.tensor([True, False]), torch.tensor([1.0, 0.0]))
    assert not same_result(torch.zeros(2, 3), torch.zeros(3, 2))
    assert same_result((torch.ones(2), 1.0), [torch.ones(2), np.float64(1.0)])
    assert not same_result(True, 1) and same_result(True, np.bool_(True))
    assert same_result({"a": [1, 2]}, {"a": [1, 2]}) and not same_result({"a": 1}, {"b": 1})


def _square_inputs(rng: random.Random) -> dict:
    return {"x": torch.randn(rng.randint(1, 4))}


def _square(x: torch.Tensor) -> torch.Tensor:
    return x * x


def test_check_function_passes_a_correct_function(capsys: pytest.CaptureFixture) -> None:
    def my_square(x: torch.Tensor) -> torch.Tensor:
        return x ** 2

    check_function("xx-square", my_square, _square, _square_inputs, trials=5)
    assert "Exercise xx-square: correct on 5 random inputs." in capsys.readouterr().out


def test_check_function_names_the_input_the_expected_and_the_result() -> None:
    def my_square(x: torch.Tensor) -> torch.Tensor:
        return x.abs() if x.numel() > 2 else x * x

    with pytest.raises(AssertionError) as failure:
        check_function("xx-square", my_square, _square, _square_inputs, trials=20)
    message = str(failure.value)
    assert "Exercise xx-square: wrong result on random input" in message
    assert "call:     my_square(x=tensor(" in message and "expected: tensor(" in message and "got:      tensor(" in message


def test_check_function_says_when_the_function_is_not_written_yet() -> None:
    def my_square(x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="my_square is not written yet"):
        check_function("xx-square", my_square, _square, _square_inputs)


def test_check_function_reports_an_exception_with_its_input() -> None:
    def my_square(x: torch.Tensor) -> torch.Tensor:
        return x[x.numel()]  # one past the end

    with pytest.raises(AssertionError, match=r"my_square\(x=tensor\(.*\) raised IndexError"):
        check_function("xx-square", my_square, _square, _square_inputs)


def test_check_function_inputs_are_seeded_and_copied() -> None:
    seen = []

    def recording(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        x.zero_()  # mutating its copy must not change what the reference sees
        return _square(seen[-1])

    check_function("xx-square", recording, _square, _square_inputs, trials=3)
    first = list(seen)
    check_function("xx-square", recording, _square, _square_inputs, trials=3)
    assert all(torch.equal(a, b) for a, b in zip(first, seen[3:]))
