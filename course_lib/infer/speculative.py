"""Speculative decoding: a small draft model proposes tokens, the big model checks them all in one pass.

Greedy decoding of a large model costs one full forward pass per token. A
draft model that agrees with it most of the time can guess the next k tokens
cheaply; the target then scores the prompt plus the k guesses in a single
pass, keeps the guesses up to the first one it would not have chosen, and
adds its own choice there. Every kept token is the target's own greedy
choice, so the output is exactly the target's greedy output, only reached
with fewer target passes (Leviathan et al. 2023; Chen et al. 2023).
transformers ships it as assisted generation (``generate(assistant_model=...)``);
:func:`speculative_greedy` is the accept/reject loop written out, with a KV
cache per model that is cut back to the accepted tokens after every round.
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


@torch.no_grad()
def speculative_greedy(target: torch.nn.Module, draft: torch.nn.Module, input_ids: torch.Tensor, max_new_tokens: int,
                       draft_tokens: int = 4, eos_token_id: int | None = None) -> SpeculativeOutput:
    """Greedy decoding of ``target`` for one prompt (``input_ids`` of shape (1, length)), drafted by ``draft``.

    Each round the draft proposes up to ``draft_tokens`` tokens greedily; one
    target pass over the proposal yields the target's choice after every
    prefix; the proposal is kept up to the first disagreement and the target's
    own token is added (at a disagreement, or after a fully accepted proposal).
    Both models keep a KV cache, cut back to the accepted tokens after each
    round. Stops after ``max_new_tokens`` tokens or at ``eos_token_id``.
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
        proposal = sequence
        for _ in range(min(draft_tokens, max_new_tokens - len(new_tokens) - 1)):  # the target always adds one
            next_token = _next_logits(draft, proposal, draft_cache)[:, -1].argmax(dim=-1, keepdim=True)
            proposal = torch.cat([proposal, next_token], dim=1)
        guesses = proposal[0, sequence.shape[1]:]
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
