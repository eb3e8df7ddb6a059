"""The harness's evaluation set as a custom task of EleutherAI's lm-evaluation-harness, run offline.

lm-eval is the harness most published benchmark numbers come from. A task is
a config (data, prompt, generation settings, a metric per document, an
aggregation); ours points at the versioned JSON-lines file the task-based
harness writes, asks the same question through the model's chat template,
and scores each reply with the same metric functions, so the two harnesses
can be checked against each other.
"""

from pathlib import Path
from typing import Any

from course_lib.eval.harness import EvalCase, fact_accuracy, house_voice

LM_EVAL_METRICS = {"fact_accuracy": fact_accuracy, "house_voice": house_voice}


def _process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """lm-eval's per-document hook: our metrics on the one generated reply."""
    return {name: float(metric(EvalCase.from_row(doc), results[0])) for name, metric in LM_EVAL_METRICS.items()}


def task_config(eval_set_path: Path, max_new_tokens: int, end_of_turn: str) -> dict[str, Any]:
    """An lm-eval task config (as a dict: no YAML file, no hub download) for an evaluation-set file.

    Greedy generation of at most ``max_new_tokens`` tokens, stopped at the chat
    template's ``end_of_turn`` token; every metric is averaged over the cases.
    """
    if not eval_set_path.exists():
        raise FileNotFoundError(f"{eval_set_path} not found: write the evaluation set first (EvalSet.write).")
    return {
        "task": eval_set_path.stem.replace("-", "_"),
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(eval_set_path)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{reference}}",
        "generation_kwargs": {"until": [end_of_turn], "max_gen_toks": max_new_tokens, "do_sample": False},
        "process_results": _process_results,
        "metric_list": [{"metric": name, "aggregation": "mean", "higher_is_better": True} for name in LM_EVAL_METRICS],
    }


def run_lm_eval(model: Any, tokenizer: Any, eval_set_path: Path, *, max_new_tokens: int,
                batch_size: int) -> tuple[dict[str, float], dict[str, str]]:
    """Evaluate a loaded chat model with lm-eval on the evaluation set: the mean of each metric, and the reply
    lm-eval generated for each case id (to compare with another harness reply by reply)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    config = task_config(eval_set_path, max_new_tokens, tokenizer.eos_token)
    wrapped = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    results = lm_eval.simple_evaluate(model=wrapped, tasks=[config], apply_chat_template=True, log_samples=True,
                                      bootstrap_iters=0)
    task = config["task"]
    scores = {name: results["results"][task][f"{name},none"] for name in LM_EVAL_METRICS}
    replies = {sample["doc"]["id"]: sample["filtered_resps"][0] for sample in results["samples"][task]}
    return scores, replies
