"""A task-based evaluation harness: the questions the business gets, the whole system, the criteria it must meet.

A leaderboard number says how a model does on someone else's task. Before a
model ships, it is tested on an evaluation set drawn like the real traffic
(a versioned file, so two reports compare only when they name the same
version), run end to end as the guest would meet it (retrieval, the model,
post-processing), scored with metrics the business defines (is the fact
right, is the allergy answer safe, does it sound like the house, how long
does the guest wait), and judged against dataset-level criteria
("fact accuracy at least 90%") with a confidence interval on every score.
"""

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from course_lib.eval.intervals import Estimate, clustered_rate_interval, mean_interval
from course_lib.infer.chat import generate_chat
from course_lib.infer.retrieval import Retriever, grounded_prompts
from course_lib.sakura.scoring import follows_house_voice, is_allergen_safe, states_facts


@dataclass(frozen=True)
class EvalCase:
    """One evaluation question: what the guest asks, the reference answer and the facts a right answer states."""

    id: str
    topic: str
    prompt: str
    reference: str
    facts: tuple[str, ...]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "EvalCase":
        """A case from a plain row with the fields of :data:`CASE_FIELDS` (as the JSON-lines file stores it)."""
        return cls(row["id"], row["topic"], row["prompt"], row["reference"], tuple(row["facts"]))


@dataclass(frozen=True)
class EvalSet:
    """A named, versioned list of cases; the version is a hash of the content, so any edit changes it."""

    name: str
    cases: tuple[EvalCase, ...]

    @property
    def version(self) -> str:
        content = json.dumps([asdict(case) for case in self.cases], sort_keys=True).encode()
        return f"{self.name}@{hashlib.sha256(content).hexdigest()[:10]}"

    def topic_mix(self) -> dict[str, float]:
        """The share of cases per topic."""
        return traffic_mix([case.topic for case in self.cases])

    def write(self, path: Path) -> None:
        """One JSON line per case (the format :func:`read_eval_set` reads)."""
        path.write_text("".join(json.dumps(asdict(case)) + "\n" for case in self.cases), encoding="utf-8")


CASE_FIELDS = ("id", "topic", "prompt", "reference", "facts")


def checked_eval_set(name: str, rows: Sequence[dict[str, Any]], source: str = "rows") -> EvalSet:
    """An evaluation set from plain rows, refusing what would make its scores meaningless.

    Every row needs a non-empty id, topic, prompt, reference and facts; ids
    must be unique (two cases with one id make per-case comparisons between
    models pair the wrong answers). Errors name the source, the line and the field.
    """
    seen: dict[str, int] = {}
    cases = []
    for line, row in enumerate(rows, start=1):
        where = f"{source}, line {line}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: a case must be an object with the fields {', '.join(CASE_FIELDS)}.")
        for name_of_field in CASE_FIELDS:
            if not row.get(name_of_field):
                raise ValueError(f"{where}: field '{name_of_field}' is missing or empty; every case needs "
                                 f"{', '.join(CASE_FIELDS)} (the reference is what the answer is scored against).")
        if not isinstance(row["facts"], list) or not all(isinstance(f, str) and f for f in row["facts"]):
            raise ValueError(f"{where}: field 'facts' must be a list of non-empty strings, got {row['facts']!r}.")
        if row["id"] in seen:
            raise ValueError(f"{where}: id '{row['id']}' is already used on line {seen[row['id']]}; give every case "
                             "its own id.")
        seen[row["id"]] = line
        cases.append(EvalCase.from_row(row))
    if not cases:
        raise ValueError(f"{source}: no cases: an evaluation set needs at least one.")
    return EvalSet(name, tuple(cases))


def read_eval_set(path: Path) -> EvalSet:
    """An evaluation set from a JSON-lines file written by :meth:`EvalSet.write` (named after the file)."""
    rows = []
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(text))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {line}: not valid JSON ({error.msg}).") from error
    return checked_eval_set(path.stem, rows, str(path))


def traffic_mix(topics: Sequence[str]) -> dict[str, float]:
    """The share of each topic in a list of topics (e.g. one per customer message), largest first."""
    counts = Counter(topics)
    return {topic: count / len(topics) for topic, count in counts.most_common()}


def sample_like_traffic(rows: Sequence[dict[str, Any]], mix: dict[str, float], size: int,
                        seed: int) -> list[dict[str, Any]]:
    """``size`` rows whose topics follow ``mix``: largest-remainder counts per topic, a seeded sample within each.

    A topic the mix asks for more rows of than ``rows`` holds is an error (the
    set would silently under-represent it); topics too rare to get one row at
    this size get none, and the set's own mix says so.
    """
    if size <= 0 or abs(sum(mix.values()) - 1) > 1e-9:
        raise ValueError(f"need a size above 0 and a mix whose shares add up to 1, got size={size} and shares "
                         f"adding up to {sum(mix.values()):g}")
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_topic.setdefault(row["topic"], []).append(row)
    quotas = {topic: share * size for topic, share in mix.items()}
    counts = {topic: int(quota) for topic, quota in quotas.items()}
    for topic in sorted(quotas, key=lambda t: (-(quotas[t] - counts[t]), t))[: size - sum(counts.values())]:
        counts[topic] += 1
    rng = np.random.default_rng(seed)
    chosen = []
    for topic, count in counts.items():
        available = by_topic.get(topic, [])
        if count > len(available):
            raise ValueError(f"the traffic mix asks for {count} '{topic}' cases but the candidates hold "
                             f"{len(available)}: lower the size or add candidates.")
        chosen += [available[i] for i in sorted(rng.choice(len(available), size=count, replace=False))]
    return chosen


@dataclass(frozen=True)
class SystemRun:
    """What one system answered to every case, and what it cost."""

    system: str
    replies: tuple[str, ...]
    prompt_tokens: tuple[int, ...]
    seconds_per_answer: float


@dataclass
class ChatSystem:
    """A system as the guest meets it: optional retrieval, a chat model, optional post-processing of the reply."""

    name: str
    model: Any
    tokenizer: Any
    retriever: Retriever | None = None
    cards: int = 2
    postprocess: Callable[[str], str] | None = None

    def generate(self, eval_set: EvalSet, max_new_tokens: int, batch_size: int) -> SystemRun:
        """Retrieval and the model on every case (greedy), before post-processing, timed."""
        questions = [case.prompt for case in eval_set.cases]
        started = time.perf_counter()
        prompts = (grounded_prompts(questions, self.retriever.search(questions, k=self.cards))
                   if self.retriever else questions)
        generation = generate_chat(self.model, self.tokenizer, prompts, max_new_tokens=max_new_tokens,
                                   batch_size=batch_size, progress=True)
        seconds = (time.perf_counter() - started) / len(questions)
        return SystemRun(self.name, tuple(generation.replies), tuple(generation.prompt_tokens), seconds)

    def finish(self, generated: SystemRun) -> SystemRun:
        """The post-processing step on generated replies (timed and added to the latency)."""
        if self.postprocess is None:
            return replace(generated, system=self.name)
        started = time.perf_counter()
        replies = tuple(self.postprocess(reply) for reply in generated.replies)
        seconds = (time.perf_counter() - started) / len(replies)
        return SystemRun(self.name, replies, generated.prompt_tokens, generated.seconds_per_answer + seconds)

    def run(self, eval_set: EvalSet, max_new_tokens: int, batch_size: int) -> SystemRun:
        """Answer every case end to end: retrieval, the model, post-processing."""
        return self.finish(self.generate(eval_set, max_new_tokens, batch_size))


CaseMetric = Callable[[EvalCase, str], bool | None]
"""A per-case metric: True/False, or None where it does not apply (safety on a question about prices)."""


def fact_accuracy(case: EvalCase, reply: str) -> bool:
    """The reply states every fact of the case in whole words, the allergy note's list of kitchen allergens
    not counting."""
    return states_facts(reply, list(case.facts))


def allergen_safety(case: EvalCase, reply: str) -> bool | None:
    """On allergen questions: the reply neither hides an allergen nor assures the guest there is none."""
    return is_allergen_safe(reply, list(case.facts)) if case.topic == "allergens" else None


def house_voice(case: EvalCase, reply: str) -> bool:
    """The reply opens with the house greeting and ends with the sign-off."""
    return follows_house_voice(reply)


SAKURA_METRICS: dict[str, CaseMetric] = {
    "fact accuracy": fact_accuracy, "allergen safety": allergen_safety, "house voice": house_voice,
}


@dataclass(frozen=True)
class Criterion:
    """A dataset-level requirement on one score, e.g. fact accuracy at least 0.9.

    The verdict reads the interval, not only the point: "pass" when the whole
    interval meets the bar, "fail" when none of it does, "unclear" when the
    evaluation set is too small to tell.
    """

    metric: str
    at_least: float | None = None
    at_most: float | None = None

    def __post_init__(self) -> None:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError(f"criterion on '{self.metric}': give exactly one of at_least or at_most")

    def verdict(self, estimate: Estimate) -> str:
        if self.at_least is not None:
            good, bad = estimate.low >= self.at_least, estimate.high < self.at_least
        else:
            good, bad = estimate.high <= self.at_most, estimate.low > self.at_most
        return "pass" if good else "fail" if bad else "unclear"

    def __str__(self) -> str:
        return f"{self.metric} ≥ {self.at_least:g}" if self.at_least is not None else f"{self.metric} ≤ {self.at_most:g}"


@dataclass
class HarnessReport:
    """Every system's scores with intervals, per-case outcomes, and the verdict on every criterion."""

    eval_set: EvalSet
    criteria: tuple[Criterion, ...]
    scores: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, list[bool | None]]] = field(default_factory=dict)
    runs: dict[str, SystemRun] = field(default_factory=dict)

    def verdicts(self, system: str) -> dict[str, str]:
        return {str(criterion): criterion.verdict(self.scores[system][criterion.metric]) for criterion in self.criteria}

    def ships(self, system: str) -> bool:
        """True when the system passes every criterion."""
        return all(verdict == "pass" for verdict in self.verdicts(system).values())

    def frame(self) -> pd.DataFrame:
        """One row per system: each score as 'value [low, high]' (a single timing as its value), each criterion's
        verdict, and whether the system ships."""
        rows = {}
        for system, scores in self.scores.items():
            row = {metric: f"{e.value:.2f}" if e.low == e.high == e.value else f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"
                   for metric, e in scores.items()}
            rows[system] = row | self.verdicts(system) | {"ships": self.ships(system)}
        return pd.DataFrame(rows).T

    def write(self, folder: Path) -> Path:
        """report.md (the table, the set's version and mix, the criteria) and report.json (every number)."""
        folder.mkdir(parents=True, exist_ok=True)
        mix = ", ".join(f"{topic} {share:.0%}" for topic, share in self.eval_set.topic_mix().items())
        lines = [f"# Evaluation report: {self.eval_set.version}", "",
                 f"{len(self.eval_set.cases)} cases; topic mix: {mix}.", "",
                 "Criteria: " + "; ".join(str(c) for c in self.criteria) + ". Intervals: 95%.", "",
                 self.frame().to_markdown(), ""]
        (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
        numbers = {"eval_set": self.eval_set.version, "criteria": [str(c) for c in self.criteria],
                   "systems": {system: {"scores": {m: asdict(e) for m, e in scores.items()},
                                        "verdicts": self.verdicts(system), "replies": list(self.runs[system].replies)}
                               for system, scores in self.scores.items()}}
        (folder / "report.json").write_text(json.dumps(numbers, indent=2), encoding="utf-8")
        return folder / "report.md"


def score_run(eval_set: EvalSet, run: SystemRun,
              metrics: dict[str, CaseMetric]) -> tuple[dict[str, Estimate], dict[str, list[bool | None]]]:
    """Each metric's rate over the cases it applies to, plus the cost measures.

    Several phrasings of one fact stand or fall together, so the interval
    resamples facts (cases with the same reference), not cases.
    """
    if len(run.replies) != len(eval_set.cases):
        raise ValueError(f"system '{run.system}' gave {len(run.replies)} replies for {len(eval_set.cases)} cases of "
                         f"{eval_set.version}: a metric needs one reply per case")
    outcomes = {name: [metric(case, reply) for case, reply in zip(eval_set.cases, run.replies)]
                for name, metric in metrics.items()}
    scores = {}
    for name, values in outcomes.items():
        applicable = [(value, case.reference) for value, case in zip(values, eval_set.cases) if value is not None]
        if not applicable:
            raise ValueError(f"metric '{name}' applies to none of the {len(values)} cases of {eval_set.version}")
        scores[name] = clustered_rate_interval([value for value, _ in applicable], [fact for _, fact in applicable])
    scores["prompt tokens"] = mean_interval(run.prompt_tokens)
    latency = run.seconds_per_answer  # one timing of the whole batched run: no interval
    scores["seconds per answer"] = Estimate(latency, latency, latency, 1)
    return scores, outcomes


def run_harness(eval_set: EvalSet, systems: Sequence[ChatSystem], criteria: Sequence[Criterion], *,
                max_new_tokens: int, batch_size: int,
                metrics: dict[str, CaseMetric] | None = None) -> HarnessReport:
    """Run every system on the evaluation set, score it, and judge it against the criteria.

    Systems with the same model and retrieval share one (greedy) generation and
    differ only in their post-processing.
    """
    metrics = metrics or SAKURA_METRICS
    known = set(metrics) | {"prompt tokens", "seconds per answer"}
    for criterion in criteria:
        if criterion.metric not in known:
            raise ValueError(f"criterion '{criterion}' names no metric; known: {', '.join(sorted(known))}")
    report = HarnessReport(eval_set, tuple(criteria))
    generated: dict[tuple[int, int, int], SystemRun] = {}
    for system in systems:
        # Systems that differ only in post-processing share one generation (greedy decoding is deterministic).
        key = (id(system.model), id(system.retriever), system.cards)
        if key not in generated:
            generated[key] = system.generate(eval_set, max_new_tokens, batch_size)
        run = system.finish(generated[key])
        report.runs[system.name] = run
        report.scores[system.name], report.outcomes[system.name] = score_run(eval_set, run, metrics)
    return report
