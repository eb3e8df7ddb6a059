"""Preference tuning from scratch: the reward model's Bradley-Terry loss and DPO, equal to TRL's.

A preference row pairs a *chosen* and a *rejected* answer to one prompt. A
reward model scores each answer with one number and learns with the
Bradley-Terry loss (:func:`bradley_terry_loss`, what TRL's ``RewardTrainer``
minimises). DPO skips the reward model: the policy's log-probability of an
answer (:func:`sequence_logprobs`), minus the frozen reference model's, times
β is an *implicit* reward, and the same logistic loss on those rewards
(:func:`dpo_loss`, TRL's default ``loss_type="sigmoid"``) trains the policy.
:func:`pairwise_accuracy` is the share of pairs a reward ranks the right way
round, the number both trainers log as ``accuracy``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def bradley_terry_loss(chosen_rewards: Tensor, rejected_rewards: Tensor, margin: Tensor | None = None) -> Tensor:
    """Mean of −log σ(r_chosen − r_rejected [− margin]) over the pairs.

    σ(r_c − r_r) is the Bradley-Terry probability that the chosen answer wins,
    so this is the negative log-likelihood of the human labels. A ``margin``
    (one per pair) asks the chosen reward to lead by at least that much before
    the loss fades. ``logsigmoid`` stays finite where ``log(sigmoid(x))`` would
    round to log 0 for a very negative x.
    """
    difference = chosen_rewards - rejected_rewards
    if margin is not None:
        difference = difference - margin
    return -F.logsigmoid(difference).mean()


def reward_centering_penalty(chosen_rewards: Tensor, rejected_rewards: Tensor) -> Tensor:
    """Mean of (r_chosen + r_rejected)²: small when the rewards of each pair sum to about zero.

    The Bradley-Terry loss only sees differences, so adding a constant to every
    reward changes nothing and rewards can drift. A small multiple of this term
    (TRL's ``center_rewards_coefficient``, 0.01 recommended) keeps them centred on 0.
    """
    return torch.mean((chosen_rewards + rejected_rewards) ** 2)


def sequence_logprobs(model: torch.nn.Module, input_ids: Tensor, attention_mask: Tensor,
                      completion_mask: Tensor) -> Tensor:
    """The log-probability a causal LM gives each row's completion: the sum over its completion tokens.

    The logits at position t predict the token at t + 1, so the logits drop
    their last position and the tokens and mask drop their first. Prompt and
    padding tokens have ``completion_mask`` 0 and add nothing. Returns one
    number per row, shape ``(batch,)``.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    token_logps = torch.log_softmax(logits.float(), dim=-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (token_logps * completion_mask[:, 1:]).sum(dim=1)


def dpo_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
             ref_rejected_logps: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """The sigmoid DPO loss and the implicit rewards β·(log π − log π_ref) of the chosen and rejected answers.

    The loss is the Bradley-Terry loss on the implicit rewards:
    mean of −log σ(β[(π_c − ref_c) − (π_r − ref_r)]). β sets how far the
    policy may move from the reference: a small β makes a large change in
    log-probability cost little reward. The rewards are detached, as they are
    logged, not trained on.
    """
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    loss = bradley_terry_loss(chosen_rewards, rejected_rewards)
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def pairwise_accuracy(chosen_rewards: Tensor, rejected_rewards: Tensor) -> float:
    """The share of pairs whose chosen reward is strictly higher than the rejected one (a tie counts as wrong)."""
    return (chosen_rewards > rejected_rewards).float().mean().item()
