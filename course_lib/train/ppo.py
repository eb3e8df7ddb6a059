"""PPO for a chat model, written out: rollouts, a value head, and the clipped update in minibatch epochs.

The pieces of the algorithm (KL penalty, GAE, clipped losses, whitening) are in
:mod:`course_lib.train.rl`; this module runs them on a real model. The policy is a
LoRA-adapted causal LM, so the reference model is the same network with its
adapter disabled: one copy of the weights serves both. The value head reads the
policy's last hidden state, as in the original RLHF recipe (Ziegler et al., 2019)
and TRL's former ``PPOTrainer``.
"""

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from course_lib.infer.chat import chat_batch, position_ids
from course_lib.train.rl import (
    KLEstimator, checked_rewards, clipped_policy_loss, clipped_value_loss, generalized_advantages, masked_whiten,
    token_rewards,
)

RewardFunction = Callable[[list[str], list[str]], Tensor]
"""Scores a batch of answers: ``(prompts, replies) -> one number per reply``."""


@dataclass(frozen=True)
class PPOSettings:
    """The knobs of one PPO run; defaults are the usual RLHF ones (TRL's former PPOConfig) unless noted."""

    kl_coef: float = 0.05  # β of the per-token penalty −β·KL(π ‖ π_ref)
    kl_estimator: KLEstimator = "k1"
    gamma: float = 1.0  # no discounting within an answer
    lam: float = 0.95  # GAE's bias/variance trade-off
    clip_range: float = 0.2  # ε of the clipped policy ratio
    value_clip_range: float = 0.2
    value_coef: float = 0.1  # weight of the value loss in the shared backbone's loss
    epochs: int = 2  # passes over each batch of rollouts
    minibatch_size: int = 4
    learning_rate: float = 1e-4  # a LoRA rate (TRL's 1.41e-5 was for full fine-tuning)
    max_grad_norm: float = 1.0
    temperature: float = 1.0  # sampling temperature; log-probabilities use the same one


class PolicyWithValueHead(nn.Module):
    """A causal LM and a scalar value head on its last hidden state: V(context) for every position.

    The head starts at zero, so the first values are 0 and the first advantages are the rewards themselves.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.value_head = nn.Linear(model.config.hidden_size, 1, device=model.device, dtype=model.dtype)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Logits ``(batch, length, vocab)`` and values ``(batch, length)``."""
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
                            output_hidden_states=True)
        return output.logits, self.value_head(output.hidden_states[-1]).squeeze(-1)


def response_mask(response_ids: Tensor, eos_token_id: int) -> Tensor:
    """1 on each answer's tokens up to and including its first end-of-turn token; 0 on what ``generate`` padded."""
    is_end = (response_ids == eos_token_id).long()
    ended_before = is_end.cumsum(dim=1) - is_end
    return (ended_before == 0).long()


@dataclass
class Rollouts:
    """One batch of episodes: prompts, the sampled answers and everything PPO needs about them.

    ``input_ids``/``attention_mask`` hold the left-padded prompt followed by the answer;
    the ``(batch, T)`` tensors are over the answer's tokens, with ``mask`` 1 on real ones.
    """

    prompts: list[str]
    replies: list[str]
    input_ids: Tensor
    attention_mask: Tensor
    mask: Tensor
    logprobs: Tensor
    ref_logprobs: Tensor
    values: Tensor
    scores: Tensor

    @property
    def prompt_length(self) -> int:
        return self.input_ids.shape[1] - self.mask.shape[1]


def answer_logprobs_and_values(policy: PolicyWithValueHead, input_ids: Tensor, attention_mask: Tensor, answer_length: int,
                               temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """log π(token) of each answer token (logits divided by ``temperature``) and V of the context before it."""
    logits, values = policy(input_ids, attention_mask)
    start = input_ids.shape[1] - answer_length
    logits = logits[:, start - 1:-1] / temperature
    logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, input_ids[:, start:, None]).squeeze(-1)
    return logprobs, values[:, start - 1:-1]


@torch.no_grad()
def collect_rollouts(policy: PolicyWithValueHead, tokenizer: Any, prompts: list[str], reward_fn: RewardFunction,
                     max_new_tokens: int, temperature: float = 1.0, system: str | None = None) -> Rollouts:
    """Sample one answer per prompt from the policy, score it, and record log π, log π_ref and V per token.

    Sampling is plain (no top-k, no top-p), so the answers come from the distribution whose
    log-probabilities PPO uses. The reference's log-probabilities come from the same network
    with its LoRA adapter disabled.
    """
    model = policy.model
    batch = chat_batch(tokenizer, prompts, system).to(model.device)
    output = model.generate(**batch, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                            max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    answer_ids = output[:, batch["input_ids"].shape[1]:]
    mask = response_mask(answer_ids, tokenizer.eos_token_id)
    attention_mask = torch.cat([batch["attention_mask"], mask], dim=1)
    replies = [tokenizer.decode(ids[m.bool()], skip_special_tokens=True).strip() for ids, m in zip(answer_ids, mask)]
    was_training = policy.training
    policy.eval()
    logprobs, values = answer_logprobs_and_values(policy, output, attention_mask, mask.shape[1], temperature)
    with model.disable_adapter():
        ref_logprobs, _ = answer_logprobs_and_values(policy, output, attention_mask, mask.shape[1], temperature)
    policy.train(was_training)
    scores = checked_rewards(reward_fn(prompts, replies), len(prompts)).to(logprobs.device)
    return Rollouts(prompts, replies, output, attention_mask, mask, logprobs * mask, ref_logprobs * mask, values * mask,
                    scores)


@dataclass(frozen=True)
class PPOStats:
    """What one PPO step did, for the curves: the reward, the KL, and how the update went."""

    score: float  # mean reward-model score of the rollouts
    kl: float  # mean per-answer KL(π ‖ π_ref), summed over tokens (the estimator in the settings)
    reward: float  # score − β·KL: what PPO maximises
    policy_loss: float
    value_loss: float
    clip_fraction: float  # share of tokens where the ratio was clipped
    answer_tokens: float


def ppo_update(policy: PolicyWithValueHead, optimizer: torch.optim.Optimizer, rollouts: Rollouts, settings: PPOSettings,
               generator: torch.Generator | None = None) -> PPOStats:
    """One PPO step on a batch of rollouts: per-token rewards, GAE, whitened advantages, then ``epochs`` passes of
    shuffled minibatches with the clipped policy and value losses."""
    mask = rollouts.mask.float()
    rewards, kl = token_rewards(rollouts.scores, rollouts.logprobs, rollouts.ref_logprobs, mask, settings.kl_coef,
                                settings.kl_estimator)
    advantages, returns = generalized_advantages(rewards, rollouts.values, mask, settings.gamma, settings.lam)
    advantages = masked_whiten(advantages, mask)
    policy.train()
    losses: dict[str, list[float]] = {"policy": [], "value": [], "clip": []}
    for _ in range(settings.epochs):
        order = torch.randperm(len(rollouts.prompts), generator=generator)
        for start in range(0, len(order), settings.minibatch_size):
            idx = order[start:start + settings.minibatch_size]
            logprobs, values = answer_logprobs_and_values(policy, rollouts.input_ids[idx], rollouts.attention_mask[idx],
                                                          mask.shape[1], settings.temperature)
            policy_loss, clip_fraction = clipped_policy_loss(logprobs, rollouts.logprobs[idx], advantages[idx], mask[idx],
                                                             settings.clip_range)
            value_loss = clipped_value_loss(values, rollouts.values[idx], returns[idx], mask[idx], settings.value_clip_range)
            optimizer.zero_grad()
            (policy_loss + settings.value_coef * value_loss).backward()
            torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]],
                                           settings.max_grad_norm)
            optimizer.step()
            losses["policy"].append(policy_loss.item())
            losses["value"].append(value_loss.item())
            losses["clip"].append(clip_fraction.item())
    policy.eval()
    kl_per_answer = kl.sum(dim=1)
    return PPOStats(
        score=rollouts.scores.mean().item(), kl=kl_per_answer.mean().item(),
        reward=(rollouts.scores - settings.kl_coef * kl_per_answer).mean().item(),
        policy_loss=sum(losses["policy"]) / len(losses["policy"]), value_loss=sum(losses["value"]) / len(losses["value"]),
        clip_fraction=sum(losses["clip"]) / len(losses["clip"]), answer_tokens=mask.sum(dim=1).mean().item(),
    )


def trainable_parameters(policy: PolicyWithValueHead) -> list[nn.Parameter]:
    """The LoRA weights and the value head: what PPO updates (the base weights stay frozen as the reference)."""
    return [p for p in policy.parameters() if p.requires_grad]


def train_ppo(policy: PolicyWithValueHead, tokenizer: Any, prompts: list[str], reward_fn: RewardFunction,
              settings: PPOSettings, steps: int, batch_size: int, max_new_tokens: int, seed: int = 0,
              system: str | None = None, progress: bool = True) -> list[dict[str, float]]:
    """PPO's outer loop: each step samples ``batch_size`` prompts, collects rollouts and updates; returns one row of
    :class:`PPOStats` per step. Seeded: the same call gives the same run."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(trainable_parameters(policy), lr=settings.learning_rate)
    history = []
    for _ in tqdm(range(steps), desc="PPO steps", disable=not progress):
        rollouts = collect_rollouts(policy, tokenizer, rng.sample(prompts, batch_size), reward_fn, max_new_tokens,
                                    settings.temperature, system)
        history.append(asdict(ppo_update(policy, optimizer, rollouts, settings, generator)))
    return history
