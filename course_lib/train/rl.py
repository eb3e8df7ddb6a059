"""Reinforcement learning for language models, written out: the pieces of PPO and of GRPO's advantage.

Generating an answer is an episode: the policy is the language model, an action
is the next token, and the reward model scores the whole answer once, at its
last token. A per-token penalty β·KL(π ‖ π_ref) keeps the policy near the
reference model (the fine-tuned model it started from). PPO turns those
rewards into per-token advantages with a value head and generalised advantage
estimation, and updates the policy with a clipped objective; GRPO drops the
value head and compares each answer with the other answers to the same prompt.

Conventions: every tensor is ``(batch, T)`` over the generated tokens, with a
``mask`` that is 1 on real tokens and 0 on padding after an answer ends.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

KLEstimator = Literal["k1", "k2", "k3"]


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """The mean of ``values`` over the positions where ``mask`` is 1."""
    return (values * mask).sum() / mask.sum()


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """``values`` scaled to unit variance over the masked positions (and centred, unless ``shift_mean=False``).

    PPO whitens the advantages of a batch so that one learning rate suits every batch, whatever
    the scale of the rewards. The variance is the unbiased one (n − 1), as in TRL's PPO.
    """
    mean = masked_mean(values, mask)
    centred = values - mean
    variance = masked_mean(centred**2, mask) * mask.sum() / (mask.sum() - 1)
    whitened = centred * torch.rsqrt(variance + 1e-8)
    return whitened if shift_mean else whitened + mean


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, estimator: KLEstimator = "k1") -> Tensor:
    """A per-token estimate of KL(π ‖ π_ref) from the log-probabilities of the sampled tokens (Schulman, 2020).

    With r = log π_ref − log π at a token sampled from π:
    ``k1`` = −r (unbiased, can be negative on one token), ``k2`` = r²/2 (biased, low variance),
    ``k3`` = (e^r − 1) − r (unbiased and never negative: what GRPO uses).
    """
    log_ratio = ref_logprobs - logprobs
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    if estimator == "k3":
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"estimator must be 'k1', 'k2' or 'k3', got {estimator!r}")


def token_rewards(scores: Tensor, logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor, kl_coef: float,
                  estimator: KLEstimator = "k1") -> tuple[Tensor, Tensor]:
    """Per-token rewards: −kl_coef·KL at every token, plus the reward model's score at each answer's last token.

    ``scores`` has one number per answer. Returns the rewards and the per-token KL, both ``(batch, T)``
    and zero on padding.
    """
    kl = kl_penalty(logprobs, ref_logprobs, estimator) * mask
    rewards = -kl_coef * kl
    last = mask.sum(dim=1).long() - 1
    if (last < 0).any():
        raise ValueError("every answer needs at least one token: a row of the mask is all zeros")
    rewards[torch.arange(len(scores)), last] += scores
    return rewards, kl


def generalized_advantages(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0,
                           lam: float = 0.95) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016): advantages and the returns the value head learns.

    δ_t = r_t + γ V_{t+1} − V_t and A_t = δ_t + γλ A_{t+1}, computed backwards; after the last
    real token the next value is 0 (the episode has ended). λ = 1 gives the Monte-Carlo return
    minus V (unbiased, noisy); λ = 0 the one-step TD error (biased by V, calm). Returns are A + V.
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    next_value = torch.zeros_like(running)
    for t in reversed(range(rewards.shape[1])):
        live = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * live
        advantages[:, t] = running
        next_value = values[:, t] * live
    return advantages, (advantages + values) * mask


def clipped_policy_loss(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor,
                        clip_range: float = 0.2) -> tuple[Tensor, Tensor]:
    """PPO's clipped surrogate objective as a loss, and the share of tokens where the clip was active.

    With ρ = π/π_old per token: −min(ρ·A, clip(ρ, 1 − ε, 1 + ε)·A), averaged over the tokens.
    The clip removes any gain from moving ρ beyond 1 ± ε in the direction the advantage favours,
    so several epochs on one batch of rollouts cannot push the policy far from the one that sampled it.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_range, 1 + clip_range) * advantages
    loss = masked_mean(-torch.minimum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped < unclipped).float(), mask)
    return loss, clip_fraction


def clipped_value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
                       clip_range: float = 0.2) -> Tensor:
    """PPO's value loss: ½·max((V − R)², (V_clipped − R)²), V_clipped kept within ±ε of the rollout's values."""
    clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


def group_advantages(rewards: Tensor, group_size: int, scale: bool = True) -> Tensor:
    """GRPO's advantage: each answer's reward minus the mean of its group (the answers to the same prompt).

    ``rewards`` holds ``group_size`` consecutive answers per prompt. With ``scale`` the difference is
    divided by the group's standard deviation (n − 1) + 1e-4, as TRL's ``scale_rewards="group"``;
    a group whose answers all score the same gives 0 and teaches nothing.
    """
    if rewards.dim() != 1 or len(rewards) % group_size:
        raise ValueError(f"need a flat tensor of whole groups of {group_size}, got shape {tuple(rewards.shape)}")
    groups = rewards.view(-1, group_size)
    advantages = groups - groups.mean(dim=1, keepdim=True)
    if scale:
        advantages = advantages / (groups.std(dim=1, keepdim=True) + 1e-4)
    return advantages.flatten()


def checked_rewards(rewards: Sequence[float] | Tensor, expected: int) -> Tensor:
    """Rewards as a float tensor, refused when there are not ``expected`` of them or one is NaN or infinite.

    A reward function that drops an answer or divides by zero would otherwise train the policy on garbage
    without a word: a NaN spreads through the advantages into every weight.
    """
    values = torch.as_tensor(rewards, dtype=torch.float32).detach().flatten().cpu()
    if len(values) != expected:
        raise ValueError(f"the reward function returned {len(values)} rewards for {expected} answers: "
                         "it must score every answer, in order")
    bad = (~torch.isfinite(values)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"the reward function returned a non-finite reward for answers {bad[:5]} "
                         f"(values {[values[i].item() for i in bad[:5]]}): fix it before training on it")
    return values


def checked_reward_function(function: Callable[..., list[float]]) -> Callable[..., list[float]]:
    """A TRL-style reward function (``completions`` and dataset columns in, one float per completion out) that
    fails with :func:`checked_rewards`' errors instead of handing the trainer a wrong count or a NaN."""

    @functools.wraps(function)
    def checked(completions: list[Any], **kwargs: Any) -> list[float]:
        return checked_rewards(function(completions=completions, **kwargs), len(completions)).tolist()

    return checked
