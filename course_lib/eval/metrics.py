"""The course's metrics through the ``evaluate`` API, offline.

``evaluate.load("rouge")`` downloads its script from the hub and fails
offline. The course ships the same metrics as local modules
(``course_lib/eval/metric_modules/<name>.py``) that ``evaluate.load`` accepts by
path, backed by the reference packages: rouge_score, sacrebleu and
scikit-learn. ``load_metric("rouge")`` returns the usual evaluate module, so
``.compute(predictions=..., references=...)`` works as in every HF tutorial.
"""

import math
from pathlib import Path
from typing import Any

import datasets
import evaluate
import numpy as np
import torch

from course_lib.assets.models import load_model, load_tokenizer

METRIC_MODULES = Path(__file__).parent / "metric_modules"


def available_metrics() -> list[str]:
    """Names of the metrics that :func:`load_metric` can load."""
    return sorted(path.stem for path in METRIC_MODULES.glob("*.py") if not path.stem.startswith("_"))


def load_metric(name: str) -> evaluate.EvaluationModule:
    """An ``evaluate`` metric by name, loaded from the course's local module (never the hub)."""
    if name not in available_metrics():
        raise ValueError(f"Unknown metric '{name}'. Available offline: {', '.join(available_metrics())}.")
    return evaluate.load(str(METRIC_MODULES / f"{name}.py"))


def _info(description: str, features: dict[str, Any]) -> evaluate.MetricInfo:
    return evaluate.MetricInfo(
        description=description, citation="", inputs_description=description, features=datasets.Features(features)
    )


_LABELS = {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}


class Accuracy(evaluate.Metric):
    """Fraction of predictions equal to the reference label (scikit-learn's accuracy_score)."""

    def _info(self) -> evaluate.MetricInfo:
        return _info("Accuracy: the fraction of correct predictions.", _LABELS)

    def _compute(self, predictions: list[int], references: list[int], normalize: bool = True,
                 sample_weight: list[float] | None = None) -> dict[str, float]:
        from sklearn.metrics import accuracy_score

        return {"accuracy": float(accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight))}


class _ClassificationScore(evaluate.Metric):
    """Precision, recall or F1 with scikit-learn's arguments (average, labels, pos_label)."""

    score_name = ""

    def _info(self) -> evaluate.MetricInfo:
        return _info(f"{self.score_name.capitalize()} of a classifier, as scikit-learn computes it.", _LABELS)

    def _compute(self, predictions: list[int], references: list[int], labels: list[int] | None = None,
                 pos_label: int = 1, average: str | None = "binary", sample_weight: list[float] | None = None,
                 zero_division: str | float = "warn") -> dict[str, Any]:
        import sklearn.metrics

        function = getattr(sklearn.metrics, f"{self.score_name}_score")
        score = function(references, predictions, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight, zero_division=zero_division)
        return {self.score_name: float(score) if np.ndim(score) == 0 else np.asarray(score).tolist()}


class Precision(_ClassificationScore):
    score_name = "precision"


class Recall(_ClassificationScore):
    score_name = "recall"


class F1(_ClassificationScore):
    score_name = "f1"


class Rouge(evaluate.Metric):
    """ROUGE-1/2/L/Lsum F-measures with Google's rouge_score, aggregated like HF's 'rouge' metric."""

    def _info(self) -> evaluate.MetricInfo:
        return _info("ROUGE: n-gram and longest-common-subsequence overlap with a reference.",
                     {"predictions": datasets.Value("string"), "references": datasets.Value("string")})

    def _compute(self, predictions: list[str], references: list[str], rouge_types: list[str] | None = None,
                 use_aggregator: bool = True, use_stemmer: bool = False) -> dict[str, Any]:
        from rouge_score import rouge_scorer, scoring

        rouge_types = rouge_types or ["rouge1", "rouge2", "rougeL", "rougeLsum"]
        scorer = rouge_scorer.RougeScorer(rouge_types=rouge_types, use_stemmer=use_stemmer)
        scores = [scorer.score(reference, prediction) for reference, prediction in zip(references, predictions)]
        if not use_aggregator:
            return {key: [score[key].fmeasure for score in scores] for key in rouge_types}
        aggregator = scoring.BootstrapAggregator()
        for score in scores:
            aggregator.add_scores(score)
        result = aggregator.aggregate()
        return {key: float(result[key].mid.fmeasure) for key in rouge_types}


class Bleu(evaluate.Metric):
    """Corpus BLEU (0-100) with sacrebleu, as HF's 'sacrebleu' metric reports it."""

    def _info(self) -> evaluate.MetricInfo:
        return _info("BLEU: modified n-gram precision with a brevity penalty (sacrebleu).",
                     {"predictions": datasets.Value("string"),
                      "references": datasets.Sequence(datasets.Value("string"))})

    def _compute(self, predictions: list[str], references: list[list[str]], tokenize: str = "13a",
                 lowercase: bool = False) -> dict[str, Any]:
        import sacrebleu

        if len({len(refs) for refs in references}) != 1:
            raise ValueError("Bleu: every prediction needs the same number of references.")
        transposed = [list(refs) for refs in zip(*references)]
        result = sacrebleu.corpus_bleu(predictions, transposed, tokenize=tokenize, lowercase=lowercase)
        return {"score": result.score, "counts": result.counts, "totals": result.totals,
                "precisions": result.precisions, "bp": result.bp, "sys_len": result.sys_len, "ref_len": result.ref_len}


class Perplexity(evaluate.Metric):
    """Perplexity of each text under a course model: exp of the mean next-token negative log-likelihood."""

    def _info(self) -> evaluate.MetricInfo:
        return _info("Perplexity: how surprised a language model is by a text (lower is better).",
                     {"predictions": datasets.Value("string")})

    def _compute(self, predictions: list[str], model_id: str, batch_size: int = 8,
                 max_length: int | None = None) -> dict[str, Any]:
        model, tokenizer = load_model(model_id), load_tokenizer(model_id)
        perplexities = batched_perplexities(model, tokenizer, predictions, batch_size, max_length)
        return {"perplexities": perplexities, "mean_perplexity": sum(perplexities) / len(perplexities)}


def batched_perplexities(model: Any, tokenizer: Any, texts: list[str], batch_size: int = 8,
                         max_length: int | None = None) -> list[float]:
    """:func:`text_perplexities` over any number of texts, ``batch_size`` at a time."""
    return [value for start in range(0, len(texts), batch_size)
            for value in text_perplexities(model, tokenizer, texts[start : start + batch_size], max_length)]


@torch.no_grad()
def text_perplexities(model: Any, tokenizer: Any, texts: list[str], max_length: int | None = None) -> list[float]:
    """Per-text perplexity, padding ignored: each token is predicted from the ones before it."""
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=max_length is not None,
                          max_length=max_length).to(model.device)
    finally:
        tokenizer.padding_side = padding_side
    logits = model(**batch).logits[:, :-1].float()
    targets, mask = batch["input_ids"][:, 1:], batch["attention_mask"][:, 1:].float()
    # Flattened (tokens, vocab) layout, as transformers computes its loss: with a 49k vocabulary the
    # (batch, vocab, tokens) layout is measurably less accurate in float32 (1e-4 in the mean NLL).
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    ).view_as(targets)
    mean_nll = (nll * mask).sum(dim=1) / mask.sum(dim=1)
    return [math.exp(value) for value in mean_nll.tolist()]
