"""Speculative decoding: a small draft model proposes tokens, the big model checks them all in one pass.

Greedy decoding of a large model costs one full forward pass per token. A
draft model that agrees with it most of the time can guess the next k tokens
cheaply; the target then scores the prompt plus the k guesses in a single
pass, keeps the guesses up to the first one it would not have chosen, and
adds its own choice there. Every kept token is the target's own greedy
choice, so the output is exactly the target's greedy output, only reached
with fewer target passes (Leviathan et al. 2023; Chen et al. 2023).
transformers ships it as assisted generation (``generate(assistant_model=...)``,
or ``prompt_lookup_num_tokens=...`` to draft by copying from the prompt);
:func:`speculative_greedy` is the accept/reject loop written out, with a KV
cache per model that is cut back to the accepted tokens after every round.
The draft is a smaller model or an :class:`NgramDraft`, which has no weights:
it copies what followed the last few tokens in the sequence so far (prompt
lookup) or in texts the target is known to repeat, so a draft token costs
nothing and any accepted one is a target pass saved.
"""

from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass(frozen=True)
class SpeculativeOutput:
    """The generated tokens and how the draft fared."""

    tokens: list[int]  # the new tokens (prompt excluded)
    drafted: int  # tokens the draft proposed
    accepted: int  # proposed tokens the target agreed with
    target_passes: int  # forward passes of the target

    @property
    def acceptance_rate(self) -> float:
        """Share of drafted tokens the target kept."""
        return self.accepted / self.drafted if self.drafted else 0.0


def accepted_length(guesses: torch.Tensor, choices: torch.Tensor) -> int:
    """How many of the draft's ``guesses`` the target keeps: the length of the prefix where they equal the
    target's ``choices`` after the same prefixes (``choices`` may hold one more, the target's next token)."""
    if len(choices) < len(guesses):
        raise ValueError(f"{len(choices)} target choices for {len(guesses)} guesses: the target must judge every guess")
    return int((choices[: len(guesses)] == guesses).long().cumprod(dim=0).sum())


def _next_logits(model: torch.nn.Module, tokens: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
    """The model's logits for the positions of ``tokens`` it has not cached yet (it caches them now)."""
    return model(tokens[:, cache.get_seq_length():], past_key_values=cache, use_cache=True).logits


class NgramDraft:
    """A draft without weights: after the sequence's last ``max_ngram`` (or fewer) tokens it proposes what followed
    them earlier in the sequence itself (prompt lookup, as ``generate(prompt_lookup_num_tokens=...)``) or, failing
    that, in ``corpus``, token lists the target often repeats (a house's set phrases)."""

    def __init__(self, corpus: list[list[int]], max_ngram: int = 3):
        if max_ngram < 1:
            raise ValueError(f"max_ngram must be >= 1, got {max_ngram}")
        self.max_ngram = max_ngram
        self._corpus = [list(text) for text in corpus]
        self._continuations: dict[tuple[int, ...], tuple[int, int]] = {}  # n-gram -> (text, where its first follower is)
        for number, text in enumerate(self._corpus):
            for n in range(1, max_ngram + 1):
                for start in range(len(text) - n):
                    self._continuations.setdefault(tuple(text[start:start + n]), (number, start + n))

    def propose(self, sequence: list[int], count: int) -> list[int]:
        """Up to ``count`` tokens that followed the longest matching tail of ``sequence``; none if no tail matches."""
        for n in range(min(self.max_ngram, len(sequence) - 1), 0, -1):
            tail = sequence[-n:]
            for start in range(len(sequence) - n - 1, -1, -1):  # the latest earlier occurrence in the sequence
                if sequence[start:start + n] == tail:
                    return sequence[start + n:start + n + count]
            found = self._continuations.get(tuple(tail))
            if found is not None:
                number, follower = found
                return self._corpus[number][follower:follower + count]
        return []


def _model_guesses(draft: torch.nn.Module, sequence: torch.Tensor, count: int, cache: DynamicCache) -> torch.Tensor:
    """The draft model's ``count`` greedy tokens after ``sequence`` (its cache grows with them)."""
    proposal = sequence
    for _ in range(count):
        next_token = _next_logits(draft, proposal, cache)[:, -1].argmax(dim=-1, keepdim=True)
        proposal = torch.cat([proposal, next_token], dim=1)
    return proposal[0, sequence.shape[1]:]


@torch.no_grad()
def speculative_greedy(target: torch.nn.Module, draft: torch.nn.Module | NgramDraft, input_ids: torch.Tensor,
                       max_new_tokens: int, draft_tokens: int = 4, eos_token_id: int | None = None) -> SpeculativeOutput:
    """Greedy decoding of ``target`` for one prompt (``input_ids`` of shape (1, length)), drafted by ``draft``.

    Each round the draft (a model, greedily, or an :class:`NgramDraft`)
    proposes up to ``draft_tokens`` tokens; one target pass over the proposal
    yields the target's choice after every prefix; the proposal is kept up to
    the first disagreement and the target's own token is added (at a
    disagreement, or after a fully accepted proposal). The target and a draft
    model keep a KV cache, cut back to the accepted tokens after each round.
    Stops after ``max_new_tokens`` tokens or at ``eos_token_id``.
    """
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(f"input_ids must have shape (1, length): one prompt, got {tuple(input_ids.shape)}")
    if draft_tokens < 1 or max_new_tokens < 1:
        raise ValueError(f"draft_tokens and max_new_tokens must be >= 1, got {draft_tokens} and {max_new_tokens}")
    target_cache, draft_cache = DynamicCache(), DynamicCache()
    sequence = input_ids
    new_tokens: list[int] = []
    drafted = accepted = passes = 0
    while len(new_tokens) < max_new_tokens:
        count = min(draft_tokens, max_new_tokens - len(new_tokens) - 1)  # the target always adds one
        if isinstance(draft, NgramDraft):
            guesses = torch.tensor(draft.propose(sequence[0].tolist(), count), dtype=sequence.dtype,
                                   device=sequence.device)
        else:
            guesses = _model_guesses(draft, sequence, count, draft_cache)
        proposal = torch.cat([sequence, guesses[None]], dim=1)
        # The target's choice after the accepted sequence and after each guess: len(guesses) + 1 choices.
        choices = _next_logits(target, proposal, target_cache)[0, -(len(guesses) + 1):].argmax(dim=-1)
        passes += 1
        agree = accepted_length(guesses, choices)
        drafted += len(guesses)
        accepted += agree
        kept = [*guesses[:agree].tolist(), int(choices[agree])][: max_new_tokens - len(new_tokens)]
        if eos_token_id is not None and eos_token_id in kept:
            new_tokens += kept[: kept.index(eos_token_id) + 1]
            break
        new_tokens += kept
        sequence = torch.cat([sequence, torch.tensor([kept], device=sequence.device)], dim=1)
        for cache in (target_cache, draft_cache):  # forget the rejected guesses; the last token is fed next round
            excess = cache.get_seq_length() - (sequence.shape[1] - 1)
            if excess > 0:
                cache.crop(-excess)
    return SpeculativeOutput(new_tokens, drafted, accepted, passes)
