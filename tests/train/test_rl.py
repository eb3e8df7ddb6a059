"""The pieces of PPO and GRPO on hand-computed cases, and the KL estimators against the exact KL."""

import math

import pytest
import torch
from trl.trainer.utils import nanstd

from course_lib.train.rl import (
    checked_reward_function,
    checked_rewards,
    clipped_policy_loss,
    clipped_value_loss,
    generalized_advantages,
    group_advantages,
    kl_penalty,
    masked_mean,
    masked_whiten,
    token_rewards,
)


def test_masked_whiten_ignores_padding_and_uses_the_unbiased_variance() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 99.0, 99.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    real = torch.tensor([1.0, 2.0, 3.0, 4.0])
    expected = (real - real.mean()) / real.std()  # torch's std is the unbiased one
    whitened = masked_whiten(values, mask)
    torch.testing.assert_close(whitened[mask.bool()], expected, atol=1e-5, rtol=0)
    assert masked_mean(values, mask).item() == pytest.approx(2.5)
    torch.testing.assert_close(masked_whiten(values, mask, shift_mean=False)[mask.bool()], expected + 2.5,
                               atol=1e-5, rtol=0)


def test_kl_estimators_on_one_token() -> None:
    logprobs, ref = torch.tensor([-1.0]), torch.tensor([-2.0])  # r = ref - logp = -1
    assert kl_penalty(logprobs, ref, "k1").item() == pytest.approx(1.0)
    assert kl_penalty(logprobs, ref, "k2").item() == pytest.approx(0.5)
    assert kl_penalty(logprobs, ref, "k3").item() == pytest.approx(math.exp(-1) - 1 + 1)
    with pytest.raises(ValueError, match="'k1', 'k2' or 'k3'"):
        kl_penalty(logprobs, ref, "k4")


def test_k1_and_k3_are_unbiased_estimates_of_the_exact_kl_and_k3_is_never_negative() -> None:
    generator = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(6, generator=generator), dim=0)
    q = torch.softmax(torch.randn(6, generator=generator), dim=0)
    exact = (p * (p.log() - q.log())).sum().item()
    tokens = torch.multinomial(p, 200_000, replacement=True, generator=generator)
    logp, logq = p.log()[tokens], q.log()[tokens]
    for estimator in ("k1", "k3"):
        estimates = kl_penalty(logp, logq, estimator)
        standard_error = estimates.std().item() / math.sqrt(len(tokens))
        assert abs(estimates.mean().item() - exact) < 4 * standard_error, estimator
    assert (kl_penalty(logp, logq, "k3") >= 0).all() and (kl_penalty(logp, logq, "k1") < 0).any()


def test_token_rewards_put_the_score_on_the_last_real_token() -> None:
    logprobs = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -1.0, 0.0]])
    ref = torch.tensor([[-1.5, -1.0, -1.0], [-1.0, -2.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    rewards, kl = token_rewards(torch.tensor([2.0, -1.0]), logprobs, ref, mask, kl_coef=0.1)
    torch.testing.assert_close(kl, torch.tensor([[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, 0.0, 2.0], [0.0, -0.1 - 1.0, 0.0]]))
    with pytest.raises(ValueError, match="at least one token"):
        token_rewards(torch.tensor([1.0]), logprobs[:1], ref[:1], torch.zeros(1, 3), kl_coef=0.1)


def test_generalized_advantages_on_hand_computed_cases() -> None:
    full = torch.ones(1, 3)
    rewards, values = torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.5, 0.5]])
    advantages, returns = generalized_advantages(rewards, values, full, gamma=1.0, lam=1.0)
    torch.testing.assert_close(returns, torch.tensor([[1.0, 1.0, 1.0]]))  # λ = 1: the Monte-Carlo return
    torch.testing.assert_close(advantages, torch.tensor([[0.5, 0.5, 0.5]]))
    advantages, _ = generalized_advantages(rewards, values, full, gamma=1.0, lam=0.0)
    torch.testing.assert_close(advantages, torch.tensor([[0.0, 0.0, 0.5]]))  # λ = 0: one-step TD errors
    # γ = 0.9, λ = 0.8: δ = (1 + 0.9·0.4 − 0.2, 0 + 0.9·0.6 − 0.4, 2 − 0.6); A_t = δ_t + 0.72·A_{t+1}
    advantages, _ = generalized_advantages(torch.tensor([[1.0, 0.0, 2.0]]), torch.tensor([[0.2, 0.4, 0.6]]), full,
                                           gamma=0.9, lam=0.8)
    torch.testing.assert_close(advantages, torch.tensor([[1.98656, 1.148, 1.4]]))


def test_generalized_advantages_end_the_episode_at_the_last_real_token() -> None:
    rewards, values = torch.tensor([[0.0, 1.0, 7.0]]), torch.tensor([[0.3, 0.6, 5.0]])  # the last step is padding
    padded, padded_returns = generalized_advantages(rewards, values, torch.tensor([[1, 1, 0]]), gamma=0.9, lam=0.8)
    short, short_returns = generalized_advantages(rewards[:, :2], values[:, :2], torch.ones(1, 2), gamma=0.9, lam=0.8)
    torch.testing.assert_close(padded[:, :2], short)
    torch.testing.assert_close(padded_returns[:, :2], short_returns)
    assert padded[0, 2] == 0 and padded_returns[0, 2] == 0


def test_clipped_policy_loss_caps_the_gain_and_stops_the_gradient_beyond_the_clip() -> None:
    old = torch.zeros(1, 3)
    logprobs = torch.log(torch.tensor([[1.5, 0.5, 0.5]])).requires_grad_()
    advantages = torch.tensor([[1.0, 1.0, -1.0]])
    loss, clip_fraction = clipped_policy_loss(logprobs, old, advantages, torch.ones(1, 3), clip_range=0.2)
    # token 1: ratio 1.5, A > 0 -> capped at 1.2; token 2: ratio 0.5, A > 0 -> 0.5 (no cap on the bad side);
    # token 3: ratio 0.5, A < 0 -> min(-0.5, -0.8) = -0.8 (clipped)
    assert loss.item() == pytest.approx(-(1.2 + 0.5 - 0.8) / 3)
    assert clip_fraction.item() == pytest.approx(2 / 3)
    loss.backward()
    assert logprobs.grad[0, 0] == 0 and logprobs.grad[0, 2] == 0 and logprobs.grad[0, 1] != 0


def test_clipped_value_loss_takes_the_worse_of_the_clipped_and_unclipped_errors() -> None:
    old, returns, mask = torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 0.0]]), torch.ones(1, 2)
    values = torch.tensor([[1.5, 1.1]])
    # token 1: unclipped (1.5 - 2)² = 0.25, clipped 1.2 -> 0.64: take 0.64; token 2: 1.21 against 1.21
    assert clipped_value_loss(values, old, returns, mask, clip_range=0.2).item() == pytest.approx(0.5 * (0.64 + 1.21) / 2)


def test_group_advantages_equal_trl_group_scaling() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    ours = group_advantages(rewards, group_size=4)
    grouped = rewards.view(-1, 4)
    # TRL 1.16 GRPOTrainer, scale_rewards="group": (r - group mean) / (group nanstd + 1e-4)
    theirs = (rewards - grouped.mean(dim=1).repeat_interleave(4)) / (nanstd(grouped, dim=1).repeat_interleave(4) + 1e-4)
    torch.testing.assert_close(ours, theirs)
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)  # deviations ±0.5, unbiased std √(1/3)
    assert ours[:4].tolist() == pytest.approx([a, -a, -a, a], rel=1e-5)
    assert (ours[4:] == 0).all()  # all answers scored the same: no signal
    torch.testing.assert_close(group_advantages(rewards, 4, scale=False), rewards - grouped.mean(1).repeat_interleave(4))
    with pytest.raises(ValueError, match="whole groups of 3"):
        group_advantages(rewards, group_size=3)


def test_checked_rewards_refuse_a_wrong_count_and_non_finite_values() -> None:
    torch.testing.assert_close(checked_rewards([1, 0.5], 2), torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match=r"returned 1 rewards for 2 answers"):
        checked_rewards([1.0], 2)
    with pytest.raises(ValueError, match=r"non-finite reward for answers \[1\]"):
        checked_rewards([1.0, float("nan")], 2)


def test_checked_reward_function_keeps_the_name_trl_logs_and_checks_every_call() -> None:
    def total_reward(completions, total, **kwargs):
        return [1.0 if c == t else float("inf") for c, t in zip(completions, total)]

    checked = checked_reward_function(total_reward)
    assert checked.__name__ == "total_reward"
    assert checked(completions=["3", "4"], total=["3", "4"]) == [1.0, 1.0]
    with pytest.raises(ValueError, match="non-finite"):
        checked(completions=["3", "5"], total=["3", "4"])
