"""Sakura Sushi's pipeline: raw customer logs to a shipped, evaluated model, one cached stage per step.

1. ``clean-logs``: the raw message log through lesson 04's cleaning (:func:`course_lib.sakura.cleaning.prepare_training_set`);
   the stage fails if ``data/qa_train.jsonl`` is not what the cleaning gives, since that file is what the next stage trains on;
2. ``sakura-sft``: lesson 05's fine-tuning, the very artefact lessons 05–11 reuse (:mod:`course_lib.recipes.sft`);
3. ``sakura-dpo``: lesson 07's preference tuning, DPO on a LoRA adapter over the fine-tuned model;
4. ``sakura-eval``: the candidates on held-out questions — fine-tuned, + DPO (adapter merged), + DPO quantized to
   int8 per channel (lesson 10) — with intervals, size, memory and speed (lessons 09–11), and on what DPO targets:
   which of two answers to a held-out question each candidate prefers (the preference pairs no stage trained on);
5. ``sakura-ship``: the merged model as a folder a user loads or serves, with a model card holding the measured scores.

Every stage is keyed on its recipe and on what it reads (:mod:`course_lib.pipeline.stages`), so a new DPO recipe
rebuilds stages 3–5 and reuses 1–2. The fine-tuning stage has no inputs in its key: it reads ``data/``, which every
key covers, and so it shares its folder with the lessons.
"""

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peft import LoraConfig, PeftModel

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.core.memory import held, release_freed_memory
from course_lib.core.profiles import Profile
from course_lib.eval import scoreboard
from course_lib.eval.answers import answer_nlls, score_replies
from course_lib.eval.intervals import Estimate, mean_interval, paired_difference, rate_interval
from course_lib.infer.chat import chat_batch, generate_replies
from course_lib.infer.timing import greedy_tokens_per_second
from course_lib.model.parameters import count_parameters, saved_bytes
from course_lib.model.quantization import Scheme, quantize_model
from course_lib.pipeline.stages import Stage
from course_lib.recipes.sft import SFT_ARTIFACT, SFTRecipe, sft_builder, shared_sft_recipe
from course_lib.sakura.cleaning import prepare_training_set
from course_lib.sakura.datasets import load_rows, rows_about, taught_facts
from course_lib.sakura.questions import SPLITS, qa_rows
from course_lib.sakura.scoring import states_facts
from course_lib.ship.card import model_card
from course_lib.ship.folder import merge_adapter, save_model_folder
from course_lib.train.preference import answer_logprobs, dpo_config, train_dpo

BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
LICENSE = "apache-2.0"  # SmolLM2's
SCORES_FILE = "scores.json"
FINE_TUNED, SHIPPED, INT8_SHIPPED = "fine-tuned", "fine-tuned + DPO (shipped)", "fine-tuned + DPO, int8"
INT8 = Scheme("absmax", 8, "channel")


@dataclass(frozen=True)
class PreferenceRecipe:
    """DPO on a LoRA adapter over the fine-tuned model, from ``pairs`` pairs of ``preferences_train``."""

    pairs: int = 32
    steps: int = 8
    batch_size: int = 2
    learning_rate: float = 5e-4
    beta: float = 0.1
    lora_rank: int = 8
    max_length: int = 128
    seed: int = 0


@dataclass(frozen=True)
class EvaluationRecipe:
    """How the candidates are measured: greedy replies of ``answer_tokens`` to one held-out question per taught fact,
    the log-likelihood of both answers of up to ``pairs_per_kind`` held-out preference pairs of each rejection kind,
    and speed over ``speed_tokens`` tokens at batch 1."""

    answer_tokens: int = 48
    speed_tokens: int = 32
    batch_size: int = 12
    pairs_per_kind: int = 12


@dataclass(frozen=True)
class SakuraPipeline:
    """Every recipe of the pipeline: change one and the stages from it on are rebuilt."""

    sft: SFTRecipe
    preference: PreferenceRecipe = field(default_factory=PreferenceRecipe)
    evaluation: EvaluationRecipe = field(default_factory=EvaluationRecipe)

    @classmethod
    def from_profile(cls, profile: Profile, **recipes: Any) -> "SakuraPipeline":
        """The recipes a profile runs: the course's shared fine-tuning (the model lessons 05-11 reuse), DPO seeded
        by the profile, the defaults for the rest (``recipes`` replaces any of them)."""
        defaults = {"preference": PreferenceRecipe(seed=profile.seed)}
        return cls(shared_sft_recipe(profile), **(defaults | recipes))


def held_out_rows(num_facts: int | None, seed: int) -> list[dict[str, Any]]:
    """The first held-out test phrasing of each taught fact: one question per fact, as lessons 10 and 11 score."""
    first: dict[str, dict[str, Any]] = {}
    for row in rows_about("qa_test_all", taught_facts(num_facts, seed)):
        first.setdefault(row["completion"], row)
    return list(first.values())


def held_out_pairs(per_kind: int, seed: int) -> list[dict[str, Any]]:
    """Up to ``per_kind`` held-out preference pairs of each rejection kind (a seeded sample, in the file's order):
    no stage trains on them, and every kind DPO learnt from is represented."""
    rows = load_rows("preferences_test")
    by_kind: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_kind.setdefault(row["rejection_kind"], []).append(index)
    rng = random.Random(seed)
    chosen = sorted(i for indices in by_kind.values() for i in rng.sample(indices, min(per_kind, len(indices))))
    return [rows[i] for i in chosen]


def preference_margins(model: Any, tokenizer: Any, pairs: list[dict[str, Any]], batch_size: int) -> list[float]:
    """log π(chosen) − log π(rejected) for each pair under ``model``: positive where it prefers the chosen answer.

    This is what DPO raises: its implicit reward margin is β times this margin's change from the reference model, so
    the paired change of these margins from the fine-tuned model to the DPO model measures the stage on its objective.
    """
    prompts = [pair["prompt"] for pair in pairs]
    chosen = answer_logprobs(model, tokenizer, prompts, [pair["chosen"] for pair in pairs], batch_size)
    rejected = answer_logprobs(model, tokenizer, prompts, [pair["rejected"] for pair in pairs], batch_size)
    return [round(margin, 4) for margin in (chosen - rejected).tolist()]


def _clean_logs(folder: Path, scratch: Path, inputs: dict[str, Path]) -> None:
    held_out = [row["prompt"] for split in SPLITS if split != "train" for row in qa_rows(split)]
    rows, report = prepare_training_set(load_rows("raw_messages"), held_out)
    if rows != load_rows("qa_train"):
        raise ValueError("data/qa_train.jsonl is not what cleaning data/raw_messages.jsonl gives, so the fine-tuning "
                         "stage would train on stale data: regenerate the data sets with `make data`.")
    (folder / "train.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    (folder / "report.json").write_text(json.dumps(report.table(), indent=2))


def _preference_builder(pipeline: SakuraPipeline, profile: Profile) -> Any:
    def build(folder: Path, scratch: Path, inputs: dict[str, Path]) -> None:
        recipe = pipeline.preference
        model = load_model(str(inputs[SFT_ARTIFACT]), dtype=profile.dtype, device=profile.device)
        tokenizer = load_tokenizer(pipeline.sft.model_name)
        pairs = random.Random(recipe.seed).sample(load_rows("preferences_train"), recipe.pairs)
        lora = LoraConfig(r=recipe.lora_rank, lora_alpha=2 * recipe.lora_rank, lora_dropout=0.0,
                          target_modules="all-linear", task_type="CAUSAL_LM")
        config = dpo_config(scratch, profile, max_steps=recipe.steps, per_device_train_batch_size=recipe.batch_size,
                            learning_rate=recipe.learning_rate, beta=recipe.beta, max_length=recipe.max_length,
                            seed=recipe.seed, lr_scheduler_type="cosine", warmup_steps=0.1)
        trainer = train_dpo(model, tokenizer, pairs, config, lora)
        trainer.model.save_pretrained(folder, safe_serialization=True)
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        (folder / "history.json").write_text(json.dumps({"loss": losses}))

    return build


def merged_model(sft_folder: Path, adapter_folder: Path, profile: Profile) -> Any:
    """The fine-tuned model with the DPO adapter folded into its weights (a plain model again)."""
    base = load_model(str(sft_folder), dtype=profile.dtype, device=profile.device)
    return merge_adapter(PeftModel.from_pretrained(base, str(adapter_folder))).eval()


def measure(model: Any, tokenizer: Any, rows: list[dict[str, Any]], pairs: list[dict[str, Any]],
            recipe: EvaluationRecipe) -> dict[str, Any]:
    """Quality (fact accuracy and held-out loss with intervals, ROUGE-L, house voice), preference (the share of
    held-out pairs whose chosen answer it finds likelier, with an interval) and cost (parameters, memory, tokens per
    second) of one model, with the per-question and per-pair outcomes."""
    replies = generate_replies(model, tokenizer, [row["prompt"] for row in rows], max_new_tokens=recipe.answer_tokens,
                               batch_size=recipe.batch_size)
    scores = score_replies(rows, replies, fact_check=states_facts)
    losses = answer_nlls(model, tokenizer, rows)
    margins = preference_margins(model, tokenizer, pairs, recipe.batch_size)
    speed = greedy_tokens_per_second(model, chat_batch(tokenizer, [rows[0]["prompt"]]), recipe.speed_tokens,
                                     tokenizer.pad_token_id)
    return {"fact_accuracy": asdict(rate_interval(scores.correct)), "held_out_loss": asdict(mean_interval(losses)),
            "rouge_l": round(scores.rouge_l, 3), "house_voice": round(scores.house_voice, 3),
            "parameters_m": round(count_parameters(model) / 1e6, 1), "memory_mb": round(saved_bytes(model) / 1e6, 1),
            "tokens_per_second": round(speed, 1),
            "preference_accuracy": asdict(rate_interval([margin > 0 for margin in margins])),
            "correct": scores.correct, "losses": losses, "replies": replies, "preference_margins": margins}


def _evaluation_builder(pipeline: SakuraPipeline, profile: Profile) -> Any:
    def build(folder: Path, scratch: Path, inputs: dict[str, Path]) -> None:
        tokenizer = load_tokenizer(pipeline.sft.model_name)
        rows = held_out_rows(pipeline.sft.num_facts, pipeline.sft.seed)
        pairs = held_out_pairs(pipeline.evaluation.pairs_per_kind, pipeline.sft.seed)
        with held(load_model(str(inputs[SFT_ARTIFACT]), dtype=profile.dtype, device=profile.device)) as model:
            results = {FINE_TUNED: measure(model, tokenizer, rows, pairs, pipeline.evaluation)}
        with held(merged_model(inputs[SFT_ARTIFACT], inputs["sakura-dpo"], profile)) as model:
            results[SHIPPED] = measure(model, tokenizer, rows, pairs, pipeline.evaluation)
            quantize_model(model, INT8)
            release_freed_memory()
            int8 = measure(model, tokenizer, rows, pairs, pipeline.evaluation)
        # The same weights, stored as 8-bit codes in buffers (which count_parameters, over nn.Parameters, misses).
        results[INT8_SHIPPED] = int8 | {"parameters_m": results[SHIPPED]["parameters_m"]}
        (folder / SCORES_FILE).write_text(json.dumps({"questions": len(rows), "pairs": len(pairs), "models": results},
                                                     indent=2))

    return build


def load_scores(eval_folder: Path) -> dict[str, dict[str, Any]]:
    """The evaluation stage's results, by candidate."""
    return json.loads((eval_folder / SCORES_FILE).read_text())["models"]


PAIRED_OUTCOMES = ("correct", "losses", "preference_margins")


def paired_change(scores: dict[str, dict[str, Any]], first: str, second: str, outcome: str = "correct") -> Estimate:
    """Candidate ``first`` minus ``second`` (from :func:`load_scores`) on one per-item outcome, paired item by item,
    with its interval: ``"correct"`` (fact accuracy, per question), ``"losses"`` (held-out loss, per question) or
    ``"preference_margins"`` (per preference pair)."""
    if outcome not in PAIRED_OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use one of {', '.join(PAIRED_OUTCOMES)}")
    return paired_difference([float(v) for v in scores[first][outcome]], [float(v) for v in scores[second][outcome]])


def record_scores(eval_folder: Path, profile: Profile) -> None:
    """Add the candidates to the course-wide scoreboard (lesson 12's rows)."""
    for name, result in load_scores(eval_folder).items():
        scores = {key: Estimate(**value) if isinstance(value, dict) else value for key, value in result.items()
                  if key not in (*PAIRED_OUTCOMES, "replies")}
        scoreboard.record(f"pipeline: {name}", lesson="12", profile=profile.name, scores=scores)


def _ship_builder(pipeline: SakuraPipeline, profile: Profile) -> Any:
    def build(folder: Path, scratch: Path, inputs: dict[str, Path]) -> None:
        shipped = load_scores(inputs["sakura-eval"])[SHIPPED]
        facts = Estimate(**shipped["fact_accuracy"])
        card = model_card(
            model_name="sakura-sushi-assistant", base_model=BASE_MODEL_ID, license=LICENSE,
            data=(f"Sakura Sushi's customer-message log, cleaned (normalised, junk and personal data removed, "
                  f"facts verified against the menu, deduplicated, decontaminated): {pipeline.sft.num_facts} menu "
                  "facts for fine-tuning; preference pairs of polite, correct answers against rude or wrong ones."),
            recipe={"fine-tuning": asdict(pipeline.sft), "preference tuning (DPO, LoRA merged)": asdict(pipeline.preference)},
            scores={"fact accuracy (held-out questions)": facts,
                    "held-out answer loss (nats per token)": Estimate(**shipped["held_out_loss"])},
            limitations=[f"States the asked fact in {facts.value:.0%} of held-out questions: check every price, "
                         "allergen and opening time it gives against the menu.",
                         f"Knows only the {pipeline.sft.num_facts} menu facts it was taught; anything else is a guess.",
                         "English only; a 135M-parameter model with little general knowledge."])
        model = merged_model(inputs[SFT_ARTIFACT], inputs["sakura-dpo"], profile)
        save_model_folder(model, load_tokenizer(pipeline.sft.model_name), folder / "model", card,
                          pipeline.evaluation.answer_tokens)

    return build


def sakura_stages(pipeline: SakuraPipeline, profile: Profile) -> list[Stage]:
    """The five stages, each keyed on its recipe (see the module docstring)."""
    module = __name__
    preference, evaluation = asdict(pipeline.preference), asdict(pipeline.evaluation)
    return [
        Stage("clean-logs", (), {}, _clean_logs, module, "raw customer logs -> cleaned training rows"),
        Stage(SFT_ARTIFACT, (), asdict(pipeline.sft), lambda folder, scratch, inputs: sft_builder(pipeline.sft, profile)(
            folder, scratch), "course_lib.recipes.sft", "supervised fine-tuning (lesson 05)"),
        Stage("sakura-dpo", (SFT_ARTIFACT,), preference, _preference_builder(pipeline, profile), module,
              "DPO on a LoRA adapter (lesson 07)"),
        Stage("sakura-eval", (SFT_ARTIFACT, "sakura-dpo"), evaluation, _evaluation_builder(pipeline, profile), module,
              "held-out evaluation with intervals, int8 candidate (lessons 09-10)"),
        Stage("sakura-ship", (SFT_ARTIFACT, "sakura-dpo", "sakura-eval"), {}, _ship_builder(pipeline, profile), module,
              "merged model folder with its model card"),
    ]
