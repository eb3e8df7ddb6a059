"""Decoding strategies written out by hand: how a language model's scores become text.

A causal LM only gives, at each step, one logit per vocabulary token. Everything
else -- greedy decoding, temperature, top-k, nucleus (top-p) sampling, repetition
penalty, min-p, stop sequences, beam search, best-of-N -- is a rule for turning those logits into the
next token. This module writes each rule as a small function so a notebook can
show it, and keeps the conventions of the matching ``transformers`` logits
processors so that every result can be checked against ``model.generate``.

Conventions:

* a filter takes logits of shape ``(batch, vocab)`` and returns new logits in
  which the removed tokens are ``-inf`` (their probability after softmax is 0);
* a generation loop takes a Hugging Face causal LM and prompt ids of shape
  ``(batch, prompt_len)`` (same-length prompts, no padding) and feeds the model
  one new token per step, reusing the model's own ``DynamicCache``;
* filters validate their arguments and raise ``ValueError`` naming the bad one.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

TokenChooser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""Picks the next token per row from ``(logits (batch, vocab), ids so far (batch, len))``."""

Scorer = Callable[[torch.Tensor, torch.Tensor], float]
"""Scores a completion: ``(prompt ids (prompt_len,), completion ids (len,)) -> float``, higher is better."""


class SamplingOptions(TypedDict, total=False):
    """Keyword arguments of :func:`generate_sampling` that :func:`best_of_n` passes through."""

    temperature: float
    top_k: int | None
    top_p: float | None
    min_p: float | None
    repetition_penalty: float
    generator: torch.Generator | None


@dataclass(frozen=True, eq=False)
class Candidate:
    """One finished continuation: its generated token ids (prompt excluded) and its score (higher is better)."""

    tokens: torch.Tensor
    score: float


# --------------------------------------------------------------------------- filters


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by ``temperature``: below 1 sharpens the distribution, above 1 flattens it.

    ``temperature == 0`` returns the limit of ``softmax(logits / T)`` as T -> 0: the
    maximal logits are kept and every other token is set to ``-inf`` (ties share the mass).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        is_max = logits == logits.max(dim=-1, keepdim=True).values
        return logits.masked_fill(~is_max, float("-inf"))
    return logits / temperature


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` largest logits per row and set the rest to ``-inf``.

    Tokens tied with the k-th largest logit are all kept (as ``TopKLogitsWarper`` does),
    so a row may keep more than ``top_k`` tokens; ``top_k`` above the vocabulary keeps all.
    """
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k}")
    kth_largest = torch.topk(logits, min(top_k, logits.shape[-1])).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches ``top_p``.

    Same computation as ``TopPLogitsWarper`` (so ties and boundaries agree): sort the
    tokens from least to most likely and drop the tail whose cumulative probability is
    at most ``1 - top_p``; the most likely token is always kept. ``top_p == 1`` drops
    only tokens whose probability is exactly 0.
    """
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    sorted_logits, sorted_indices = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_remove = cumulative <= 1 - top_p
    sorted_remove[..., -1] = False
    remove = sorted_remove.scatter(-1, sorted_indices, sorted_remove)
    return logits.masked_fill(remove, float("-inf"))


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Min-p filter: keep the tokens at least ``min_p`` times as likely as the most likely one.

    Like top-p it adapts to the context (a confident peak raises the bar, a flat
    distribution lowers it), but the cut is relative to the peak instead of a mass to
    reach. Same computation as ``MinPLogitsWarper``; the most likely token is always kept.
    """
    if not 0 <= min_p <= 1:
        raise ValueError(f"min_p must be in [0, 1], got {min_p}")
    probs = logits.softmax(dim=-1)
    remove = probs < min_p * probs.amax(dim=-1, keepdim=True)
    remove.scatter_(-1, probs.argmax(dim=-1, keepdim=True), False)
    return logits.masked_fill(remove, float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make every token already present in ``input_ids`` (prompt included) less likely.

    Convention of CTRL and ``RepetitionPenaltyLogitsProcessor``: a seen token's logit is
    divided by ``penalty`` when positive and multiplied by it when negative, once per
    token however often it occurred. ``penalty > 1`` discourages repeats, ``1`` is a no-op.
    """
    if penalty <= 0:
        raise ValueError(f"repetition_penalty must be > 0, got {penalty}")
    seen = torch.gather(logits, -1, input_ids)
    penalised = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(-1, input_ids, penalised)


# ----------------------------------------------------------------- next-token choice


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token per row, shape ``(batch,)``; on ties the lowest token id wins."""
    return logits.argmax(dim=-1)


def sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row from ``softmax(logits)``, shape ``(batch,)``.

    Pass a seeded ``torch.Generator`` for reproducible draws that do not depend on, or
    disturb, the global random state.
    """
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


def sample_next_token(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Temperature, then top-k, top-p and min-p (the order ``generate`` uses), then one draw per row.

    ``temperature == 0`` is greedy decoding: the filters leave only the maximal logits
    and the lowest-id maximum is taken without drawing, exactly like :func:`greedy`.
    ``None`` switches a filter off.
    """
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    if min_p is not None:
        logits = min_p_filter(logits, min_p)
    return greedy(logits) if temperature == 0 else sample(logits, generator)


# ------------------------------------------------------------------ generation loops


def _eos_ids(model: PreTrainedModel, eos_token_id: int | Sequence[int] | None) -> torch.Tensor:
    """The end-of-sequence ids as a 1-D tensor on the model's device: the given ones, else the generation config's."""
    ids = model.generation_config.eos_token_id if eos_token_id is None else eos_token_id
    return torch.tensor([] if ids is None else ids, dtype=torch.long, device=model.device).reshape(-1)


def _check_max_new_tokens(max_new_tokens: int) -> None:
    """Generation needs at least one step; fail before the model runs."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")


def _next_token_logits(model: PreTrainedModel, new_ids: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
    """One forward pass: feed only the tokens the cache has not seen, return the last position's logits.

    The cache is updated in place, so each step costs one token per row instead of the
    whole sequence; only the last position goes through the LM head (``logits_to_keep=1``).
    """
    output = model(input_ids=new_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return output.logits[:, -1, :].float()


def stop_string_hits(
    tokenizer: PreTrainedTokenizerBase, generated: torch.Tensor, stop_strings: Sequence[str]
) -> torch.Tensor:
    """Which rows' generated text has just written a stop string, shape ``(batch,)``.

    "Just" means the stop string overlaps the last token: it is in the decoded text but
    not in the text without the last token. Called after every step, this fires on the
    step that completes the string, also when it spans several tokens or ends inside
    one -- the rule of ``generate(stop_strings=...)`` (``StopStringCriteria``), written
    with plain string search instead of its precomputed token tables.
    """
    hits = []
    for row in generated.tolist():
        text, before = tokenizer.decode(row), tokenizer.decode(row[:-1])
        hits.append(any(stop in text and stop not in before for stop in stop_strings))
    return torch.tensor(hits, dtype=torch.bool, device=generated.device)


@torch.no_grad()
def _decode(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    choose: TokenChooser,
    eos_token_id: int | Sequence[int] | None,
    stop_strings: Sequence[str] = (),
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> torch.Tensor:
    """The token-by-token loop shared by greedy decoding and sampling.

    Each step: logits of the next token -> ``choose`` -> append. A row that has produced
    an end-of-sequence token, or written one of ``stop_strings`` (decoded with
    ``tokenizer``), is finished and padded with the first EOS id from then on; the loop
    stops when every row is finished or after ``max_new_tokens`` steps.
    Returns prompt and continuation, shape ``(batch, prompt_len + generated)``.
    """
    _check_max_new_tokens(max_new_tokens)
    if stop_strings and tokenizer is None:
        raise ValueError("stop_strings need the tokenizer to read the generated text: pass tokenizer=")
    eos = _eos_ids(model, eos_token_id)
    cache = DynamicCache(config=model.config)
    ids, new_ids = input_ids, input_ids
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        token = choose(_next_token_logits(model, new_ids, cache), ids)
        if len(eos):
            token = token.masked_fill(finished, eos[0])
            finished |= torch.isin(token, eos)
        new_ids = token[:, None]
        ids = torch.cat([ids, new_ids], dim=-1)
        if stop_strings:
            finished |= stop_string_hits(tokenizer, ids[:, input_ids.shape[1] :], stop_strings)
        if finished.all():
            break
    return ids


def generate_greedy(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    eos_token_id: int | Sequence[int] | None = None,
    stop_strings: Sequence[str] = (),
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> torch.Tensor:
    """Greedy decoding: always append the most likely token; equals ``model.generate(do_sample=False)``.

    ``eos_token_id`` defaults to the model's generation config; ``[]`` never stops early (for timing).
    ``stop_strings`` (with the ``tokenizer``) end a row as ``generate(stop_strings=..., tokenizer=...)`` does.
    Returns ``(batch, prompt_len + generated)``.
    """
    return _decode(model, input_ids, max_new_tokens, lambda logits, _ids: greedy(logits), eos_token_id,
                   stop_strings, tokenizer)


def generate_sampling(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float = 1.0,
    generator: torch.Generator | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    stop_strings: Sequence[str] = (),
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> torch.Tensor:
    """Sampling: at each step penalise repeats, then :func:`sample_next_token`.

    Same pipeline as ``model.generate(do_sample=True, ...)``; with a generator seeded like
    ``torch.manual_seed`` it draws the same tokens. Rows are sampled independently, so
    ``input_ids.expand(n, -1)`` gives n samples of one prompt. ``stop_strings`` as in :func:`generate_greedy`.
    Returns ``(batch, prompt_len + generated)``.
    """

    def choose(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        logits = apply_repetition_penalty(logits, ids, repetition_penalty)
        return sample_next_token(logits, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                                 generator=generator)

    return _decode(model, input_ids, max_new_tokens, choose, eos_token_id, stop_strings, tokenizer)


# ------------------------------------------------------------------------ beam search


def _single_prompt(input_ids: torch.Tensor) -> torch.Tensor:
    """The one prompt of a ``(1, prompt_len)`` batch as a 1-D tensor."""
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(f"input_ids must hold one prompt, shape (1, prompt_len), got {tuple(input_ids.shape)}")
    return input_ids[0]


@torch.no_grad()
def beam_search(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    num_beams: int,
    max_new_tokens: int,
    *,
    length_penalty: float = 1.0,
    early_stopping: bool | Literal["never"] = False,
    eos_token_id: int | Sequence[int] | None = None,
) -> list[Candidate]:
    """Beam search for one prompt; the first candidate equals ``model.generate(num_beams=...)``.

    Keeps the ``num_beams`` running continuations with the highest summed log-probability.
    Each step scores every (beam, next token) pair and keeps the best
    ``max(2, 1 + #eos) * num_beams``, so that ``num_beams`` unfinished ones survive even if
    some end here. Of the top ``num_beams`` pairs, those that end (EOS, or the length
    limit) become finished hypotheses scored ``sum_logprob / generated_len ** length_penalty``
    (``length_penalty > 0`` favours longer outputs, 0 ranks by the raw sum); the best
    ``num_beams`` hypotheses are kept. The search stops, as in ``transformers``, when
    ``early_stopping`` is True and ``num_beams`` hypotheses exist, or when the best running
    beam can no longer beat the worst kept hypothesis (``"never"`` with a positive length
    penalty assumes it could still grow to the length limit). Returns the hypotheses,
    best first, with their scores; tokens exclude the prompt and include the final EOS.
    """
    if not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(f"num_beams must be an integer >= 1, got {num_beams}")
    _check_max_new_tokens(max_new_tokens)
    eos = _eos_ids(model, eos_token_id)
    candidates_per_step = max(2, 1 + len(eos)) * num_beams
    cache = DynamicCache(config=model.config)
    # The search starts from the prompt alone: one beam, log-probability 0, nothing generated.
    new_ids = _single_prompt(input_ids)[None]
    beams = new_ids.new_empty(1, 0)
    beam_scores = torch.zeros(1, device=input_ids.device)
    hypotheses: list[Candidate] = []
    for length in range(1, max_new_tokens + 1):
        log_probs = _next_token_logits(model, new_ids, cache).log_softmax(dim=-1)
        vocab_size = log_probs.shape[-1]
        totals = (beam_scores[:, None] + log_probs).flatten()
        top_scores, top_flat = totals.topk(min(candidates_per_step, totals.numel()))
        parents, tokens = top_flat // vocab_size, top_flat % vocab_size
        ends = torch.isin(tokens, eos) | (length == max_new_tokens)
        for rank in range(min(num_beams, len(tokens))):
            if ends[rank]:
                sequence = torch.cat([beams[parents[rank]], tokens[rank : rank + 1]])
                hypotheses.append(Candidate(sequence, top_scores[rank].item() / length**length_penalty))
        hypotheses = sorted(hypotheses, key=lambda hypothesis: hypothesis.score, reverse=True)[:num_beams]
        alive = (~ends).nonzero().squeeze(-1)[:num_beams]
        if len(alive) == 0 or _beam_search_done(
            hypotheses, top_scores[alive[0]].item(), num_beams, length, max_new_tokens, length_penalty, early_stopping
        ):
            break
        beams = torch.cat([beams[parents[alive]], tokens[alive, None]], dim=-1)
        beam_scores = top_scores[alive]
        cache.reorder_cache(parents[alive])
        new_ids = tokens[alive, None]
    return hypotheses


def _beam_search_done(
    hypotheses: list[Candidate],
    best_running_score: float,
    num_beams: int,
    length: int,
    max_new_tokens: int,
    length_penalty: float,
    early_stopping: bool | Literal["never"],
) -> bool:
    """Whether more steps can no longer change the ``num_beams`` best hypotheses (HF's stopping rule).

    Until ``num_beams`` hypotheses exist the search goes on. Then it stops at once with
    ``early_stopping=True``; otherwise when the best running beam, length-penalised at its
    current length (at the length limit for ``"never"`` with a positive penalty), does not
    beat the worst kept hypothesis.
    """
    if len(hypotheses) < num_beams:
        return False
    if early_stopping is True:
        return True
    best_length = max_new_tokens if early_stopping == "never" and length_penalty > 0 else length
    return best_running_score / best_length**length_penalty <= hypotheses[-1].score


# ------------------------------------------------------------------------- best-of-N


def completion_log_probs(
    model: PreTrainedModel, prompt_ids: torch.Tensor, completion_ids: torch.Tensor
) -> torch.Tensor:
    """Log-probability of each completion token given everything before it, shape ``(len(completion_ids),)``.

    One forward pass over prompt + completion; position ``t`` predicts token ``t + 1``.
    """
    ids = torch.cat([prompt_ids, completion_ids])[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
    return logits.log_softmax(dim=-1).gather(-1, completion_ids[:, None]).squeeze(-1)


def mean_log_prob_scorer(model: PreTrainedModel) -> Scorer:
    """The default best-of-N scorer: mean log-probability per generated token under ``model``.

    It scores under the plain model (temperature 1, no filters), whatever settings drew the
    sample; the mean, not the sum, so that short answers are not favoured for being short.
    """

    def score(prompt_ids: torch.Tensor, completion_ids: torch.Tensor) -> float:
        return completion_log_probs(model, prompt_ids, completion_ids).mean().item()

    return score


def _until_eos(tokens: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
    """The tokens up to and including the first end-of-sequence token (drops the EOS padding)."""
    ends = torch.isin(tokens, eos).nonzero()
    return tokens if len(ends) == 0 else tokens[: ends[0, 0] + 1]


def best_of_n(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    n: int,
    max_new_tokens: int,
    *,
    scorer: Scorer | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    **sampling: Unpack[SamplingOptions],
) -> list[Candidate]:
    """Best-of-N: sample ``n`` completions of one prompt, score each, return them best first.

    The n samples run as one batch of n copies of the prompt, drawn by
    :func:`generate_sampling` with the given ``sampling`` options. ``scorer`` defaults to
    :func:`mean_log_prob_scorer`; a reward model can be plugged in as any :data:`Scorer`.
    Completions are cut after their first EOS token before scoring.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    prompt = _single_prompt(input_ids)
    samples = generate_sampling(model, input_ids.expand(n, -1), max_new_tokens, eos_token_id=eos_token_id, **sampling)
    eos = _eos_ids(model, eos_token_id)
    score = scorer or mean_log_prob_scorer(model)
    completions = [_until_eos(row[len(prompt) :], eos) for row in samples]
    candidates = [Candidate(completion, score(prompt, completion)) for completion in completions]
    return sorted(candidates, key=lambda candidate: candidate.score, reverse=True)


def expected_best_of_n(scores: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """The expected ``values`` of best-of-n, per prompt, from ``N >= n`` samples already drawn and scored.

    ``scores`` and ``values`` have shape ``(prompts, N)``: the scorer's number for each sample
    (e.g. a reward model) and what we care about in that sample (the reward itself, or a true
    measure such as "states the fact"). Best-of-n draws n of the N samples and keeps the
    highest-scoring one. Averaging over *every* n-subset instead of one draw gives the same
    expectation with far less noise: the sample of rank i (1 = lowest score) is the best of
    C(i-1, n-1) of the C(N, n) subsets. Of two equal scores, the later sample counts as the higher.
    """
    if scores.shape != values.shape or scores.dim() != 2:
        raise ValueError(f"scores and values must share one (prompts, N) shape, got {tuple(scores.shape)} "
                         f"and {tuple(values.shape)}")
    total = scores.shape[1]
    if not 1 <= n <= total:
        raise ValueError(f"n must be between 1 and the {total} samples drawn, got {n}")
    ranks = torch.arange(1, total + 1)
    weights = torch.tensor([math.comb(int(i) - 1, n - 1) for i in ranks], dtype=torch.float64) / math.comb(total, n)
    order = torch.sort(scores, dim=1, stable=True).indices
    return (values.gather(1, order).double() * weights).sum(dim=1)


def best_of_n_kl(n: int) -> float:
    """The KL divergence of best-of-n from the model it samples, log n − (n − 1)/n nats (Stiennon et al., 2020).

    Exact for the distribution of the pick when the scorer has no ties, and an upper bound otherwise
    (Beirami et al., 2024): a cheap way to put best-of-n on the same KL axis as a trained policy.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return math.log(n) - (n - 1) / n


# --------------------------------------------------------------- diversity and plots


def distinct_n(texts: Sequence[str] | Sequence[Sequence[int]], n: int) -> float:
    """Distinct-n (Li et al., 2016): unique n-grams / all n-grams, pooled over ``texts``.

    1.0 means no n-gram occurs twice; low values mean repetitive or mutually similar
    outputs. Strings are split on whitespace; other sequences (e.g. token ids) are used
    as they are. Returns 0.0 when no text has ``n`` tokens.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    sequences = [text.split() if isinstance(text, str) else list(text) for text in texts]
    ngrams = [tuple(tokens[i : i + n]) for tokens in sequences for i in range(len(tokens) - n + 1)]
    return len(set(ngrams)) / len(ngrams) if ngrams else 0.0


@torch.no_grad()
def next_token_probs(model: PreTrainedModel, input_ids: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The model's next-token distribution after each prompt at ``temperature``, shape ``(batch, vocab)``."""
    logits = model(input_ids=input_ids, logits_to_keep=1).logits[:, -1, :].float()
    return apply_temperature(logits, temperature).softmax(dim=-1)


def top_tokens(probs: torch.Tensor, tokenizer: PreTrainedTokenizerBase, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` most likely tokens of a 1-D distribution as ``(decoded token, probability)``, most likely first."""
    values, ids = probs.topk(k)
    return [(tokenizer.decode([token_id]), value) for token_id, value in zip(ids.tolist(), values.tolist())]
