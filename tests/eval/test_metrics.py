"""Offline evaluate metrics give the reference packages' numbers."""

import math

import pytest
import sacrebleu
import torch
from rouge_score import rouge_scorer
from sklearn import metrics as sk

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.eval.metrics import available_metrics, load_metric

PREDICTIONS = ["Irasshaimase! The Salmon Nigiri costs $4.50.", "We are closed on Mondays.", "the cat sat"]
REFERENCES = ["Irasshaimase! The Salmon Nigiri costs $4.50. Arigato.", "On Mondays we are closed.", "a dog ran far"]
LABELS_TRUE = [0, 1, 2, 2, 1, 0, 1, 2]
LABELS_PRED = [0, 2, 2, 2, 1, 0, 0, 1]


def test_all_course_metrics_are_available_offline() -> None:
    assert available_metrics() == ["accuracy", "bleu", "f1", "perplexity", "precision", "recall", "rouge"]


def test_rouge_equals_rouge_score() -> None:
    scores = load_metric("rouge").compute(predictions=PREDICTIONS, references=REFERENCES, use_aggregator=False)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    for i, (prediction, reference) in enumerate(zip(PREDICTIONS, REFERENCES)):
        expected = scorer.score(reference, prediction)
        for key in ("rouge1", "rouge2", "rougeL"):
            assert scores[key][i] == pytest.approx(expected[key].fmeasure)
    aggregated = load_metric("rouge").compute(predictions=PREDICTIONS, references=REFERENCES)
    assert aggregated["rougeL"] == pytest.approx(sum(scores["rougeL"]) / 3, abs=1e-9)


def test_bleu_equals_sacrebleu() -> None:
    result = load_metric("bleu").compute(predictions=PREDICTIONS, references=[[r] for r in REFERENCES])
    assert result["score"] == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score)


def test_bleu_rejects_ragged_references() -> None:
    with pytest.raises(ValueError, match="same number of references"):
        load_metric("bleu").compute(predictions=PREDICTIONS[:2], references=[["a"], ["b", "c"]])


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_classification_metrics_equal_scikit_learn(average: str) -> None:
    for name in ("precision", "recall", "f1"):
        ours = load_metric(name).compute(predictions=LABELS_PRED, references=LABELS_TRUE, average=average)[name]
        reference = getattr(sk, f"{name}_score")(LABELS_TRUE, LABELS_PRED, average=average)
        assert ours == pytest.approx(reference)
    accuracy = load_metric("accuracy").compute(predictions=LABELS_PRED, references=LABELS_TRUE)["accuracy"]
    assert accuracy == pytest.approx(sk.accuracy_score(LABELS_TRUE, LABELS_PRED)) == 0.625


def test_binary_f1_and_per_class_scores() -> None:
    assert load_metric("f1").compute(predictions=[1, 1, 0, 0], references=[1, 0, 0, 0])["f1"] == pytest.approx(2 / 3)
    per_class = load_metric("recall").compute(predictions=LABELS_PRED, references=LABELS_TRUE, average=None)["recall"]
    assert per_class == pytest.approx(list(sk.recall_score(LABELS_TRUE, LABELS_PRED, average=None)))


@pytest.mark.real_model
@pytest.mark.parametrize(("batch_size", "tolerance"), [(1, 1e-5), (2, 1e-3)])
def test_perplexity_equals_the_models_own_loss(batch_size: int, tolerance: float) -> None:
    """Exact without padding; a padded batch runs other attention kernels, so float32 noise (~1e-4) appears."""
    texts = ["Sushi is rice with vinegar.", "The capital of France is Paris, a city on the Seine."]
    result = load_metric("perplexity").compute(predictions=texts, model_id="smollm2-135m-instruct", batch_size=batch_size)
    model, tokenizer = load_model("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")
    for text, ours in zip(texts, result["perplexities"]):
        ids = tokenizer(text, return_tensors="pt").input_ids
        with torch.no_grad():
            expected = math.exp(model(ids, labels=ids).loss.item())
        assert ours == pytest.approx(expected, rel=tolerance)
    assert result["mean_perplexity"] == pytest.approx(sum(result["perplexities"]) / 2)


def test_unknown_metric_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown metric 'meteor'. Available offline: accuracy, bleu"):
        load_metric("meteor")
