"""Scoring answers: the completion loss that measures drift, and its error on a row with nothing to score."""

import pytest
import torch

from course_lib.data.chat_format import IGNORE_INDEX, completion_only_labels
from course_lib.eval.answers import answer_nll

pytestmark = pytest.mark.real_model  # SmolLM2's tokenizer


def test_answer_nll_is_the_mean_completion_loss(tiny_llama, smollm2_tokenizer) -> None:
    model = tiny_llama().eval()
    rows = [{"prompt": "Do you deliver?", "completion": "Yes."}, {"prompt": "Hi", "completion": "Hello there!"}]
    expected = []
    for row in rows:
        encoded = completion_only_labels(smollm2_tokenizer, row["prompt"], row["completion"])
        logits = model(torch.tensor([encoded["input_ids"]])).logits[0, :-1]
        labels = torch.tensor(encoded["labels"][1:])
        keep = labels != IGNORE_INDEX
        expected.append(torch.nn.functional.cross_entropy(logits[keep], labels[keep]).item())
    assert answer_nll(model, smollm2_tokenizer, rows) == pytest.approx(sum(expected) / 2, rel=1e-5)


def test_a_row_with_nothing_to_score_is_named(tiny_llama, smollm2_tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    import course_lib.eval.answers as answers

    monkeypatch.setattr(answers, "completion_only_labels",
                        lambda tokenizer, prompt, completion: {"input_ids": [1, 2], "labels": [IGNORE_INDEX] * 2})
    with pytest.raises(ValueError, match=r"Row 'qa-7': its completion has no token left"):
        answer_nll(tiny_llama().eval(), smollm2_tokenizer, [{"id": "qa-7", "prompt": "Hi", "completion": "Hello"}])
