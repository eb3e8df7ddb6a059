"""Preference tuning from scratch: hand-computed values, then TRL's RewardTrainer and DPOTrainer on one tiny batch."""

import math
from pathlib import Path

import datasets
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification, PreTrainedTokenizerFast
from transformers.modeling_outputs import CausalLMOutput
from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

from course_lib.train.preference import (
    bradley_terry_loss,
    completion_batch,
    answer_logprobs,
    dpo_loss,
    kl_to_reference,
    on_policy_pairs,
    pairs_within,
    pairwise_accuracy,
    preference_dataset,
    reward_centering_penalty,
    reward_scores,
    sequence_logprobs,
    token_kl,
    train_dpo,
    train_reward_model,
)

WORDS = "<pad> <eos> <unk> which what fish is raw open on monday ? tuna salmon eel yes no maybe closed sunday".split()
PAIRS = [  # prompt, chosen, rejected: completions of different lengths, so padding is exercised
    ("which fish is raw ?", " tuna salmon", " eel"),
    ("what is open on monday ?", " no", " yes maybe sunday closed"),
    ("is eel raw ?", " no", " yes"),
]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer built in memory: no download, and one token per word, so lengths are easy to read."""
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def tiny_config(seed: int, **extra) -> LlamaConfig:
    """A one-layer Llama over :data:`WORDS`; seeds the weights the model built from it next will get."""
    torch.manual_seed(seed)
    return LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, pad_token_id=0, eos_token_id=1, bos_token_id=None,
                       **extra)


def trainer_args(config_class: type, tmp_path: Path, **overrides) -> RewardConfig | DPOConfig:
    """CPU, float32 (TRL's configs default to ``bf16=True``, and DPO's reference pass runs under that autocast)."""
    return config_class(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False,
                        per_device_train_batch_size=len(PAIRS), dataloader_num_workers=0, **overrides)


# Hand-computed values


def test_bradley_terry_loss_is_log_2_for_equal_rewards_and_known_otherwise() -> None:
    rewards = torch.tensor([0.5, -2.0, 3.0])
    assert bradley_terry_loss(rewards, rewards).item() == pytest.approx(math.log(2))
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
    assert loss.item() == pytest.approx((math.log1p(math.exp(-1)) + math.log1p(math.exp(2))) / 2)


def test_bradley_terry_margin_is_subtracted_from_the_reward_difference() -> None:
    chosen, rejected = torch.tensor([3.0, 1.0]), torch.tensor([1.0, 0.5])
    assert bradley_terry_loss(chosen, rejected, margin=torch.tensor([2.0, 0.5])).item() == pytest.approx(math.log(2))


def test_bradley_terry_loss_stays_finite_for_a_badly_wrong_reward() -> None:
    assert bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([0.0])).item() == pytest.approx(200.0)


def test_reward_centering_penalty_is_the_mean_squared_pair_sum() -> None:
    penalty = reward_centering_penalty(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 0.0]))
    assert penalty.item() == pytest.approx((4 + 1) / 2)


class FixedLM(torch.nn.Module):
    """Logits that make token (t + 1) mod 4 have probability 0.7 at position t, and each other token 0.1."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> CausalLMOutput:
        batch, length = input_ids.shape
        probs = torch.full((batch, length, 4), 0.1)
        probs[:, torch.arange(length), (torch.arange(length) + 1) % 4] = 0.7
        return CausalLMOutput(logits=probs.log())


def test_sequence_logprobs_score_each_token_with_the_previous_position() -> None:
    input_ids = torch.tensor([[0, 1, 2, 3, 0], [0, 1, 2, 0, 0]])  # token t is t mod 4: the 0.7 token when shifted
    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    completion_mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])  # prompts of 2 and 1 tokens, then padding
    logps = sequence_logprobs(FixedLM(), input_ids, attention_mask, completion_mask)
    torch.testing.assert_close(logps, torch.tensor([3 * math.log(0.7), 2 * math.log(0.7)]))


def test_dpo_loss_is_log_2_with_zero_rewards_when_the_policy_is_the_reference() -> None:
    logps = torch.tensor([-3.0, -7.5])
    loss, chosen_rewards, rejected_rewards = dpo_loss(logps, logps - 1, logps, logps - 1, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2))
    assert chosen_rewards.tolist() == rejected_rewards.tolist() == [0.0, 0.0]


def test_dpo_loss_and_rewards_on_known_log_ratios() -> None:
    # Log-ratios +1 (chosen) and -1 (rejected): rewards ±β, loss -log σ(2β).
    loss, chosen_rewards, rejected_rewards = dpo_loss(torch.tensor([-4.0]), torch.tensor([-6.0]),
                                                      torch.tensor([-5.0]), torch.tensor([-5.0]), beta=0.5)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.0)))
    assert (chosen_rewards.item(), rejected_rewards.item()) == pytest.approx((0.5, -0.5))


def test_dpo_loss_falls_as_the_policy_prefers_the_chosen_answer() -> None:
    policy_chosen = torch.tensor([-5.0], requires_grad=True)
    loss, _, _ = dpo_loss(policy_chosen, torch.tensor([-5.0]), torch.tensor([-5.0]), torch.tensor([-5.0]), beta=0.1)
    loss.backward()
    assert policy_chosen.grad.item() == pytest.approx(-0.1 * 0.5)  # dL/dπ_c = -β σ(-0) = -β/2


def test_pairwise_accuracy_counts_ties_as_wrong() -> None:
    assert pairwise_accuracy(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 4.0])) == pytest.approx(1 / 3)


# Against TRL


def test_bradley_terry_loss_equals_trl_reward_trainer(tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    """RewardTrainer.compute_loss on a collated batch (chosen rows, then rejected rows) against ours on its rewards.

    The margin column and ``center_rewards_coefficient`` are on, so both optional terms of TRL's loss are compared.
    """
    def ids(text: str) -> list[int]:
        return tokenizer(text + "<eos>")["input_ids"]

    rows = [{"chosen_ids": ids(p + c), "rejected_ids": ids(p + r), "margin": m}
            for (p, c, r), m in zip(PAIRS, (0.0, 0.3, -0.2), strict=True)]
    model = LlamaForSequenceClassification(tiny_config(seed=1, num_labels=1))
    coefficient = 0.01
    trainer = RewardTrainer(model=model, processing_class=tokenizer, train_dataset=datasets.Dataset.from_list(rows),
                            args=trainer_args(RewardConfig, tmp_path, center_rewards_coefficient=coefficient))
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, dict(batch))
        rewards = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
    chosen, rejected = rewards.chunk(2)
    penalty = coefficient * reward_centering_penalty(chosen, rejected)
    ours = bradley_terry_loss(chosen, rejected, batch["margin"]) + penalty
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert (chosen != rejected).all() and not torch.isclose(ours, torch.tensor(math.log(2)))  # a test that can fail


def test_dpo_equals_trl_dpo_trainer(tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    """DPOTrainer with a separate, differently seeded reference model, so the rewards are not zero.

    TRL 1.16 computes log-probabilities with its fused LM head (``trl.trainer.utils.add_fused_lm_head``);
    ``compute_ref_log_probs(model, batch)`` runs that same code for any model, so it gives TRL's per-sequence
    log-probabilities of the policy and of the reference. Its ``compute_loss`` returns the loss only: the rewards
    it computes are logged, as batch means, in the trainer's metrics, where this test reads them.
    """
    beta = 0.5
    policy, reference = LlamaForCausalLM(tiny_config(seed=1)), LlamaForCausalLM(tiny_config(seed=2))
    dataset = datasets.Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS])
    trainer = DPOTrainer(model=policy, ref_model=reference, processing_class=tokenizer, train_dataset=dataset,
                         args=trainer_args(DPOConfig, tmp_path, beta=beta))
    batch = trainer.data_collator(list(trainer.train_dataset))
    inputs = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    with torch.no_grad():
        policy_logps = sequence_logprobs(trainer.model, *inputs).chunk(2)
        ref_logps = sequence_logprobs(trainer.ref_model, *inputs).chunk(2)
        for ours, model in ((policy_logps, trainer.model), (ref_logps, trainer.ref_model)):
            theirs = trainer.compute_ref_log_probs(model, dict(batch))
            torch.testing.assert_close(torch.cat(ours), torch.cat(theirs), atol=1e-5, rtol=0)
        loss, chosen_rewards, rejected_rewards = dpo_loss(*policy_logps, *ref_logps, beta=beta)
        their_loss = trainer.compute_loss(trainer.model, dict(batch))
    metrics = trainer._metrics["train" if trainer.model.training else "eval"]
    torch.testing.assert_close(loss, their_loss, atol=1e-5, rtol=0)
    assert metrics["rewards/chosen"][-1] == pytest.approx(chosen_rewards.mean().item(), abs=1e-5)
    assert metrics["rewards/rejected"][-1] == pytest.approx(rejected_rewards.mean().item(), abs=1e-5)
    assert metrics["rewards/accuracies"][-1] == pytest.approx(pairwise_accuracy(chosen_rewards, rejected_rewards))
    assert chosen_rewards.abs().min() > 1e-3 and not math.isclose(loss.item(), math.log(2), abs_tol=1e-3)


# Training helpers: data formats, the length guard, the LoRA-as-reference trick, a DPO step


def sakura_rows() -> list[dict[str, str]]:
    """The tiny pairs as Sakura preference rows."""
    return [{"id": f"p{i}", "prompt": p, "chosen": c.strip(), "rejected": r.strip(), "rejection_kind": "wrong_fact"}
            for i, (p, c, r) in enumerate(PAIRS)]


def test_preference_dataset_formats() -> None:
    chat = preference_dataset(sakura_rows(), conversational=True)[0]
    assert chat == {"prompt": [{"role": "user", "content": "which fish is raw ?"}],
                    "chosen": [{"role": "assistant", "content": "tuna salmon"}],
                    "rejected": [{"role": "assistant", "content": "eel"}]}
    plain = preference_dataset(sakura_rows(), conversational=False)[0]
    assert plain == {"prompt": "which fish is raw ? ", "chosen": "tuna salmon", "rejected": "eel"}


def test_pairs_within_reports_the_pairs_too_long_instead_of_truncating(tokenizer) -> None:
    kept, too_long = pairs_within(sakura_rows(), tokenizer, max_length=8)
    # "what is open on monday ?" + "yes maybe sunday closed" + the appended <eos> is 11 tokens; the others fit in 8.
    assert [row["id"] for row in kept] == ["p0", "p2"] and too_long == ["p1"]
    assert pairs_within(sakura_rows(), tokenizer, max_length=10)[1] == ["p1"]  # the end token counts
    assert pairs_within(sakura_rows(), tokenizer, max_length=11)[1] == []


def test_disabled_adapter_gives_the_reference_logits_exactly() -> None:
    from peft import LoraConfig, get_peft_model

    base = LlamaForCausalLM(tiny_config(seed=0)).eval()
    ids = torch.tensor([[3, 5, 6, 7, 10]])
    with torch.no_grad():
        reference = base(input_ids=ids).logits.clone()
        policy = get_peft_model(base, LoraConfig(r=2, target_modules="all-linear", lora_dropout=0.0))
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_()  # a trained adapter: B is no longer zero
        moved = policy(input_ids=ids).logits
        with policy.disable_adapter():
            disabled = policy(input_ids=ids).logits
    assert not torch.allclose(moved, reference)
    assert torch.equal(disabled, reference)


def test_train_dpo_moves_only_the_adapter_and_lowers_the_loss(tokenizer, tmp_path: Path) -> None:
    from peft import LoraConfig

    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    model = LlamaForCausalLM(tiny_config(seed=0))
    before = {name: p.clone() for name, p in model.named_parameters()}
    config = trainer_args(DPOConfig, tmp_path, max_steps=8, learning_rate=5e-2, logging_steps=1, beta=0.5,
                          save_strategy="no")
    trainer = train_dpo(model, tokenizer, sakura_rows(), config,
                        LoraConfig(r=2, lora_alpha=4, target_modules="all-linear", lora_dropout=0.0))
    policy = trainer.model
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-3)  # policy = reference at the start
    assert losses[-1] < 0.85 * losses[0], losses  # measured 0.55 after 8 steps
    base = policy.get_base_model()
    assert all(torch.equal(p, before[name.replace("base_layer.", "")]) for name, p in base.named_parameters()
               if "lora_" not in name)


def test_reward_model_scores_what_reward_trainer_saw(tokenizer, tmp_path: Path) -> None:
    model = LlamaForSequenceClassification(tiny_config(seed=1, num_labels=1))
    config = trainer_args(RewardConfig, tmp_path, max_steps=30, learning_rate=5e-2, logging_steps=1,
                          save_strategy="no")
    history = train_reward_model(model, tokenizer, sakura_rows(), config)
    rows = sakura_rows()
    prompts = [row["prompt"] for row in rows]
    chosen = reward_scores(model, tokenizer, prompts, [row["chosen"] for row in rows])
    rejected = reward_scores(model, tokenizer, prompts, [row["rejected"] for row in rows])
    assert pairwise_accuracy(chosen, rejected) == 1.0  # three training pairs, learned
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(history[-2]["loss"], abs=0.05)


# Measuring a LoRA policy against its reference


TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}"


def test_token_kl_is_the_exact_kl_of_the_next_token_distributions() -> None:
    generator = torch.Generator().manual_seed(0)
    policy, reference = torch.randn(2, 5, 7, generator=generator), torch.randn(2, 5, 7, generator=generator)
    theirs = torch.nn.functional.kl_div(reference.log_softmax(-1), policy.log_softmax(-1), log_target=True,
                                        reduction="none").sum(-1)
    torch.testing.assert_close(token_kl(policy, reference), theirs)
    assert token_kl(policy, policy).abs().max() < 1e-6 and (token_kl(policy, reference) > 0).all()


def test_completion_batch_is_the_chosen_half_of_trl_dpo_batch(tokenizer, tmp_path: Path) -> None:
    tokenizer.chat_template = TEMPLATE
    rows = sakura_rows()
    trainer = DPOTrainer(model=LlamaForCausalLM(tiny_config(seed=1)), ref_model=LlamaForCausalLM(tiny_config(seed=2)),
                         processing_class=tokenizer, train_dataset=preference_dataset(rows, conversational=True),
                         args=trainer_args(DPOConfig, tmp_path))
    theirs = trainer.data_collator(list(trainer.train_dataset))
    ours = completion_batch(tokenizer, [r["prompt"] for r in rows], [r["chosen"] for r in rows])
    width = ours[0].shape[1]
    for mine, key in zip(ours, ("input_ids", "attention_mask", "completion_mask")):
        assert torch.equal(mine, theirs[key][:len(rows), :width]), key
    assert not theirs["attention_mask"][:len(rows), width:].any()  # nothing beyond our width but padding


def fresh_lora_policy() -> torch.nn.Module:
    """A fresh LoRA policy on the tiny model: B = 0, so it equals its reference until B moves."""
    from peft import LoraConfig, get_peft_model

    policy = get_peft_model(LlamaForCausalLM(tiny_config(seed=0)).eval(),
                            LoraConfig(r=2, target_modules="all-linear", lora_dropout=0.0))
    return policy


def test_kl_and_log_ratios_are_zero_until_the_adapter_moves(tokenizer) -> None:
    tokenizer.chat_template = TEMPLATE
    rows = sakura_rows()
    prompts, answers = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    policy = fresh_lora_policy()
    assert kl_to_reference(policy, tokenizer, prompts, answers).abs().max() < 1e-6
    with policy.disable_adapter():
        reference = answer_logprobs(policy, tokenizer, prompts, answers)
    torch.testing.assert_close(answer_logprobs(policy, tokenizer, prompts, answers), reference)
    with torch.no_grad():
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_(generator=torch.Generator().manual_seed(0))
    kl = kl_to_reference(policy, tokenizer, prompts, answers, batch_size=2)  # two batches, padded differently
    assert kl.shape == (3,) and (kl > 1e-3).all()
    moved = answer_logprobs(policy, tokenizer, prompts, answers, batch_size=2)
    assert (moved - reference).abs().min() > 1e-4
    # batching and padding change nothing: each row equals the row scored alone
    for i in range(3):
        alone = sequence_logprobs(policy, *completion_batch(tokenizer, prompts[i:i + 1], answers[i:i + 1]))
        assert moved[i].item() == pytest.approx(alone.item(), abs=1e-5)


def test_on_policy_pairs_reject_the_model_own_reply_and_drop_copies_of_the_chosen() -> None:
    rows = sakura_rows()
    pairs = on_policy_pairs(rows, ["eel", "no ", "  "])
    assert [(p["id"], p["rejected"], p["rejection_kind"]) for p in pairs] == [("p0", "eel", "own_reply")]
    assert pairs[0]["chosen"] == rows[0]["chosen"] and pairs[0]["prompt"] == rows[0]["prompt"]
    with pytest.raises(ValueError, match="2 replies for 3 preference rows"):
        on_policy_pairs(rows, ["a", "b"])


def test_optimal_policy_weights_run_from_the_reference_to_the_best_answer() -> None:
    from course_lib.infer.sampling import best_of_n_kl
    from course_lib.train.preference import kl_from_uniform, optimal_policy_weights

    rewards = torch.tensor([[0.0, 1.0, 3.0, 2.0]])
    uniform = optimal_policy_weights(rewards, beta=1e12)
    torch.testing.assert_close(uniform, torch.full((1, 4), 0.25, dtype=torch.float64))
    greedy = optimal_policy_weights(rewards, beta=1e-3)
    assert greedy[0, 2] == pytest.approx(1.0) and kl_from_uniform(greedy).item() == pytest.approx(math.log(4))
    weights = optimal_policy_weights(rewards, beta=1.0)
    expected = torch.exp(rewards[0].double()) / torch.exp(rewards[0].double()).sum()
    torch.testing.assert_close(weights[0], expected)
    assert kl_from_uniform(weights).item() == pytest.approx(float((expected * torch.log(4 * expected)).sum()))
    assert kl_from_uniform(uniform).item() == pytest.approx(0.0, abs=1e-9)
    # best-of-n has a KL of its own, between the two: 0 at n = 1, below log n at n = 4
    assert best_of_n_kl(1) == 0.0 and best_of_n_kl(4) == pytest.approx(math.log(4) - 0.75)
    assert 0 < best_of_n_kl(4) < math.log(4)
    with pytest.raises(ValueError, match="beta must be > 0"):
        optimal_policy_weights(rewards, beta=0.0)
