"""PPO on a real (tiny) model: rollouts that score what was sampled, a reference that is the disabled adapter,
and an update that raises a reward."""

import pytest
import torch
from peft import LoraConfig, get_peft_model

from course_lib.model.toy import tiny_llama, word_tokenizer
from course_lib.train.ppo import (
    PolicyWithValueHead, PPOSettings, answer_logprobs_and_values, collect_rollouts, response_mask,
    train_ppo,
)

PROMPTS = ["tuna", "salmon eel", "rice tea tuna", "eel"]  # of different lengths, so left padding is exercised


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer("tuna salmon eel rice tea".split())


def lora_policy(tokenizer, seed: int = 0) -> PolicyWithValueHead:
    """The toy policy with LoRA on attention and the output layer (so a few steps move the word choice)."""
    model = get_peft_model(tiny_llama(tokenizer, seed), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "lm_head"]))
    return PolicyWithValueHead(model)


def tuna_share(prompts: list[str], replies: list[str]) -> torch.Tensor:
    """A toy reward: the share of an answer's words that are 'tuna'."""
    return torch.tensor([r.split().count("tuna") / max(len(r.split()), 1) for r in replies])


def test_response_mask_keeps_tokens_up_to_the_first_end_token() -> None:
    ids = torch.tensor([[5, 6, 1, 0, 0], [5, 5, 5, 5, 5], [1, 7, 1, 0, 0]])
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    torch.testing.assert_close(response_mask(ids, eos_token_id=1), expected)


def test_rollouts_score_the_sampled_answers_and_start_on_the_reference(tokenizer) -> None:
    policy = lora_policy(tokenizer)
    torch.manual_seed(1)
    rollouts = collect_rollouts(policy, tokenizer, PROMPTS, tuna_share, max_new_tokens=6)
    assert rollouts.mask.shape == (len(PROMPTS), 6) and rollouts.values.shape == rollouts.mask.shape
    torch.testing.assert_close(rollouts.scores, tuna_share(PROMPTS, rollouts.replies))
    # LoRA starts with B = 0: the policy is its reference, and the value head starts at 0.
    torch.testing.assert_close(rollouts.logprobs, rollouts.ref_logprobs)
    assert rollouts.values.abs().max().item() == 0.0
    assert (rollouts.logprobs[rollouts.mask == 0] == 0).all() and (rollouts.logprobs[rollouts.mask == 1] < 0).all()
    # A left-padded answer gets the log-probabilities it gets alone, without padding (positions skip the padding).
    for i in range(len(PROMPTS)):
        keep = rollouts.attention_mask[i].bool()
        length = int(rollouts.mask[i].sum())
        alone, _ = answer_logprobs_and_values(policy, rollouts.input_ids[i:i + 1, keep],
                                              rollouts.attention_mask[i:i + 1, keep], answer_length=length)
        torch.testing.assert_close(alone[0], rollouts.logprobs[i][:length], atol=1e-5, rtol=0)


def test_ppo_raises_the_reward_and_a_stronger_kl_coefficient_keeps_the_policy_closer(tokenizer) -> None:
    runs = {kl_coef: train_ppo(lora_policy(tokenizer), tokenizer, PROMPTS * 4, tuna_share,
                               PPOSettings(kl_coef=kl_coef, learning_rate=1e-2), steps=15, batch_size=8,
                               max_new_tokens=4, seed=0, progress=False)
            for kl_coef in (0.01, 1.0)}
    history = runs[0.01]
    assert sum(h["score"] for h in history[:3]) / 3 < 0.3
    assert sum(h["score"] for h in history[-3:]) / 3 > 0.8
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # step 1 samples from the reference itself
    assert all(0.0 <= h["clip_fraction"] <= 1.0 for h in history)
    assert runs[1.0][-1]["kl"] < history[-1]["kl"] / 2


def test_the_same_seed_gives_the_same_run(tokenizer) -> None:
    runs = [train_ppo(lora_policy(tokenizer), tokenizer, PROMPTS, tuna_share, PPOSettings(learning_rate=1e-2), steps=2,
                      batch_size=4, max_new_tokens=3, seed=3, progress=False) for _ in range(2)]
    assert runs[0] == runs[1]


def test_a_reward_function_that_drops_an_answer_fails(tokenizer) -> None:
    with pytest.raises(ValueError, match=r"returned 3 rewards for 4 answers"):
        collect_rollouts(lora_policy(tokenizer), tokenizer, PROMPTS, lambda p, r: torch.zeros(3), max_new_tokens=2)
