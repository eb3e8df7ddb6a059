"""The model card: what the model is, how it was trained, how well it does (with intervals) and where it fails.

Built from facts, not typed in: the recipe is the dictionary training used
and every score is an :class:`~course_lib.eval.intervals.Estimate` measured
on held-out data, printed as "value [low, high] (n=…)". A score that was
not measured (a missing value, a bare number with no interval, NaN, zero
examples) is refused rather than written down: a card is a claim other
people rely on. The card is huggingface_hub's ``ModelCard``, so its YAML
header (license, base model, library, pipeline tag) is what the Hub reads.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from course_lib.eval.intervals import CONFIDENCE, Estimate

TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

Fine-tuned from [{{ base_model }}](https://huggingface.co/{{ base_model }}). The folder holds complete weights
(any adapter merged in), so it loads as a plain transformers model. License: {{ license }}.

## Training data

{{ data }}

## Training recipe

{% for name, value in recipe.items() %}- **{{ name }}**: {{ value }}
{% endfor %}
## Evaluation

Each score with its {{ confidence }} confidence interval and the number of examples behind it. Only measured
scores are listed.

| Score | Value [{{ confidence }} interval] (n) |
|---|---|
{% for name, estimate in scores.items() %}| {{ name }} | {{ estimate }} |
{% endfor %}
Replies are greedy (`generation_config.json`: `do_sample=false`), the settings these scores were measured with.

## Limitations

{% for limitation in limitations %}- {{ limitation }}
{% endfor %}
## How to use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
messages = [{"role": "user", "content": "..."}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
reply = model.generate(**inputs)[0, inputs["input_ids"].shape[1]:]
print(tokenizer.decode(reply, skip_special_tokens=True))
```

Or serve it with an OpenAI-compatible API: `transformers serve path/to/this/folder`.
"""


def unmeasured_reason(score: Any) -> str | None:
    """Why ``score`` is not a measured score (not an Estimate, a non-finite or inconsistent interval, no examples).

    None when it is one.
    """
    if not isinstance(score, Estimate):
        return f"it is {score!r}, not an Estimate with an interval and n"
    if not all(math.isfinite(x) for x in (score.value, score.low, score.high)):
        return f"its value or interval is not a finite number ({score.value}, [{score.low}, {score.high}])"
    if not score.low <= score.value <= score.high:
        return f"its value {score.value} lies outside its interval [{score.low}, {score.high}]"
    if not isinstance(score.n, int) or score.n <= 0:
        return f"it rests on n={score.n!r} examples"
    return None


def check_scores(scores: Mapping[str, Any]) -> dict[str, Estimate]:
    """The scores, after refusing an empty set or any one that was not measured (ValueError naming it)."""
    if not scores:
        raise ValueError("No scores: a model card claims how well the model does. Evaluate it on held-out data "
                         "(course_lib.eval) and pass the Estimates.")
    for name, score in scores.items():
        reason = unmeasured_reason(score)
        if reason is not None:
            raise ValueError(f"Score {name!r} was not measured: {reason}. Pass an Estimate from "
                             "course_lib.eval.intervals (e.g. rate_interval) or leave the score out.")
    return dict(scores)


def model_card(*, model_name: str, base_model: str, license: str, data: str, recipe: Mapping[str, Any],
               scores: Mapping[str, Estimate], limitations: Sequence[str]) -> ModelCard:
    """The model card of a fine-tuned model (huggingface_hub ``ModelCard``; ``card.save(path)`` writes README.md).

    ``base_model`` is the hub id of the base (the Hub links the two),
    ``license`` an SPDX-style id (SmolLM2: ``apache-2.0``), ``data`` a
    description of the training data, ``recipe`` the training settings,
    ``scores`` measured Estimates (:func:`check_scores`) and ``limitations``
    at least one known failure.
    """
    fields = {"model_name": model_name, "base_model": base_model, "license": license, "data": data}
    for name, value in fields.items():
        if not value.strip():
            raise ValueError(f"The model card's {name} is empty: say what it is.")
    if not recipe:
        raise ValueError("The training recipe is empty: pass the settings the model was trained with.")
    if not limitations:
        raise ValueError("No limitations: name at least one way the model fails (from its evaluation).")
    card_data = ModelCardData(model_name=model_name, base_model=base_model, license=license,
                              library_name="transformers", pipeline_tag="text-generation")
    return ModelCard.from_template(card_data, template_str=TEMPLATE, data=data, recipe=dict(recipe),
                                   scores=check_scores(scores), limitations=list(limitations),
                                   confidence=f"{CONFIDENCE:.0%}")
