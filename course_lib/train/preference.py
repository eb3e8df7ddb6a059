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

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from course_lib.core.profiles import Profile
from course_lib.data.chat_format import IGNORE_INDEX, chat_messages, completion_only_labels
from course_lib.train.sft import trainer_settings

if TYPE_CHECKING:
    import datasets


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


def token_kl(policy_logits: Tensor, reference_logits: Tensor) -> Tensor:
    """KL(π ‖ π_ref) of the next-token distributions at every position, exact (summed over the vocabulary).

    Σ_v π(v) (log π(v) − log π_ref(v)): how much more surprised the reference is, on average,
    by what the policy would say next. Zero exactly where the two distributions agree.
    Shape: the logits' without the vocabulary axis.
    """
    policy_logps = torch.log_softmax(policy_logits.float(), dim=-1)
    reference_logps = torch.log_softmax(reference_logits.float(), dim=-1)
    return (policy_logps.exp() * (policy_logps - reference_logps)).sum(dim=-1)


# ------------------------------------------------------------ measuring a LoRA policy against its reference


def completion_batch(tokenizer: Any, prompts: list[str], answers: list[str]) -> tuple[Tensor, Tensor, Tensor]:
    """``input_ids``, ``attention_mask`` and ``completion_mask`` of chat prompts with their answers, right-padded.

    The answer is the assistant's turn with its end-of-turn token, tokenized as SFT and TRL's
    DPOTrainer tokenize a conversation; ``completion_mask`` is 1 on the answer's tokens only.
    """
    rows = [completion_only_labels(tokenizer, prompt, answer) for prompt, answer in zip(prompts, answers)]
    width = max(len(row["input_ids"]) for row in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    completion_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        length = len(row["input_ids"])
        input_ids[i, :length] = torch.tensor(row["input_ids"])
        attention_mask[i, :length] = 1
        completion_mask[i, :length] = torch.tensor([label != IGNORE_INDEX for label in row["labels"]], dtype=torch.long)
    return input_ids, attention_mask, completion_mask


@torch.no_grad()
def answer_logprobs(model: Any, tokenizer: Any, prompts: list[str], answers: list[str], batch_size: int = 8) -> Tensor:
    """log π(answer | prompt) of each chat answer under ``model``, shape ``(len(prompts),)``.

    For a LoRA policy, the same call inside ``with model.disable_adapter():`` gives the reference's.
    With the policy's and the reference's log-probabilities of held-out chosen and rejected answers,
    :func:`dpo_loss` gives the implicit rewards, and :func:`pairwise_accuracy` the held-out preference accuracy.
    """
    logps = []
    for start in range(0, len(prompts), batch_size):
        batch = completion_batch(tokenizer, prompts[start:start + batch_size], answers[start:start + batch_size])
        logps.append(sequence_logprobs(model, *(t.to(model.device) for t in batch)).cpu())
    return torch.cat(logps)


@torch.no_grad()
def kl_to_reference(model: Any, tokenizer: Any, prompts: list[str], answers: list[str],
                    batch_size: int = 8) -> Tensor:
    """How far a LoRA policy has moved from its reference: per answer, the exact KL summed over its tokens.

    Measured along the policy's own answers (pass what it generated), as RLHF measures it:
    Σ_t KL(π(·|context_t) ‖ π_ref(·|context_t)). 0 for the untrained adapter. Shape ``(len(prompts),)``.
    """
    kls = []
    for start in range(0, len(prompts), batch_size):
        input_ids, attention_mask, completion_mask = (t.to(model.device) for t in completion_batch(
            tokenizer, prompts[start:start + batch_size], answers[start:start + batch_size]))
        policy_logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
        with model.disable_adapter():
            reference_logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
        kls.append((token_kl(policy_logits, reference_logits) * completion_mask[:, 1:]).sum(dim=1).cpu())
    return torch.cat(kls)


def on_policy_pairs(rows: list[dict[str, Any]], replies: list[str]) -> list[dict[str, Any]]:
    """Preference rows whose rejected answer is the model's own reply to the prompt, and chosen the reference.

    DPO learns most from pairs the policy could actually produce: an offline rejected answer that
    the model would never write (logp far below its own) teaches little about what it *does* write.
    Replies equal to the chosen answer make no pair and are dropped.
    """
    if len(replies) != len(rows):
        raise ValueError(f"{len(replies)} replies for {len(rows)} preference rows: give one reply per row")
    return [row | {"rejected": reply.strip(), "rejection_kind": "own_reply"}
            for row, reply in zip(rows, replies) if reply.strip() and reply.strip() != row["chosen"].strip()]


def optimal_policy_weights(rewards: Tensor, beta: float) -> Tensor:
    """The policy DPO and RLHF aim at, π*(y) ∝ π_ref(y)·exp(r(y)/β), on N answers sampled from π_ref.

    ``rewards`` has shape ``(prompts, N)``. The samples already carry π_ref's probabilities (each
    was drawn from it), so on them π* is a softmax of r/β: a large β leaves the reference's
    uniform weights, β → 0 puts all weight on the best answer (best-of-N). Returns the weights,
    one row per prompt, summing to 1.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return torch.softmax(rewards.double() / beta, dim=-1)


def kl_from_uniform(weights: Tensor) -> Tensor:
    """KL(weights ‖ uniform) per row, Σ w log(N·w): how far a reweighting of N samples is from the sampler."""
    n = weights.shape[-1]
    return torch.special.xlogy(weights, weights * n).sum(dim=-1)


# ------------------------------------------------------------------ training with TRL

PROMPT_SEPARATOR = " "
"""What joins prompt and answer in the plain text an encoder reward model reads (TRL concatenates them as given)."""


def answer_end(tokenizer: Any) -> str:
    """The token RewardTrainer appends to every answer: the end-of-sequence token, or an encoder's separator."""
    return tokenizer.eos_token or tokenizer.sep_token


def preference_dataset(rows: list[dict[str, Any]], conversational: bool) -> "datasets.Dataset":
    """Sakura preference rows in TRL's preference format: ``prompt``, ``chosen``, ``rejected``.

    ``conversational`` gives chat messages (a causal LM with a chat template reads them
    through it, as in SFT); otherwise plain text, the prompt followed by a space (for an
    encoder reward model, which has no chat template).
    """
    import datasets

    if conversational:
        data = [{"prompt": chat_messages(r["prompt"]), "chosen": [{"role": "assistant", "content": r["chosen"]}],
                 "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows]
    else:
        data = [{"prompt": r["prompt"] + PROMPT_SEPARATOR, "chosen": r["chosen"], "rejected": r["rejected"]}
                for r in rows]
    return datasets.Dataset.from_list(data)


def pairs_within(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The pairs whose prompt + longer answer + end token fit in ``max_length`` tokens, and the ids of those that do not.

    A trainer would truncate a long pair silently, and a truncated pair can lose the very
    words that make chosen and rejected differ; the caller reports the ids it leaves out.
    """
    kept, too_long = [], []
    for row in rows:
        longest = max(len(tokenizer(row["prompt"] + PROMPT_SEPARATOR + row[side] + answer_end(tokenizer))["input_ids"])
                      for side in ("chosen", "rejected"))
        (kept if longest <= max_length else too_long).append(row)
    return kept, [row["id"] for row in too_long]


NO_CHECKPOINTING = {"activation_checkpointing": False}


def reward_config(output_dir: Path, profile: Profile, **overrides: Any) -> Any:
    """A RewardConfig that runs anywhere: sized by the profile, no reports, float32 on CPU (TRL defaults to bf16).

    Activation checkpointing (on by default in TRL) is off: it recomputes every forward pass to save
    memory these small models do not need, and without it the reward model trained in 115 s instead of 190 s.
    """
    from trl import RewardConfig

    return RewardConfig(**(trainer_settings(output_dir, profile) | NO_CHECKPOINTING | overrides))


def dpo_config(output_dir: Path, profile: Profile, **overrides: Any) -> Any:
    """A DPOConfig that runs anywhere, like :func:`reward_config`."""
    from trl import DPOConfig

    return DPOConfig(**(trainer_settings(output_dir, profile) | NO_CHECKPOINTING | overrides))


def train_reward_model(model: Any, tokenizer: Any, rows: list[dict[str, Any]], config: Any) -> list[dict[str, float]]:
    """Train a one-output sequence classifier on preference pairs with TRL's RewardTrainer (Bradley-Terry loss).

    An encoder tokenizer without an end-of-sequence token gets its separator as one, which
    RewardTrainer appends to every answer. Returns the log history; the model is trained in place.
    """
    from trl import RewardTrainer

    tokenizer.eos_token = answer_end(tokenizer)
    model.config.pad_token_id = tokenizer.pad_token_id
    trainer = RewardTrainer(model=model, args=config, processing_class=tokenizer,
                            train_dataset=preference_dataset(rows, conversational=False))
    trainer.train()
    model.eval()
    return trainer.state.log_history


@torch.no_grad()
def reward_scores(model: Any, tokenizer: Any, prompts: list[str], answers: list[str], batch_size: int = 32) -> Tensor:
    """The reward model's score of each (prompt, answer), shape ``(len(prompts),)``: the text RewardTrainer saw."""
    scores = []
    for start in range(0, len(prompts), batch_size):
        texts = [prompt + PROMPT_SEPARATOR + answer + answer_end(tokenizer)
                 for prompt, answer in zip(prompts[start:start + batch_size], answers[start:start + batch_size])]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=True).to(model.device)
        scores.append(model(**batch).logits[:, 0].float())
    return torch.cat(scores)


def train_dpo(model: Any, tokenizer: Any, rows: list[dict[str, Any]], config: Any, peft_config: Any) -> Any:
    """DPO with TRL on a LoRA adapter: the reference model is the same network with the adapter disabled.

    One copy of the weights in memory: the policy is base + adapter, the reference is the
    base alone (``disable_adapter()``). Returns the trained ``DPOTrainer``: ``.model`` is the
    ``PeftModel`` (in eval mode), ``.state.log_history`` the logged losses and rewards, and
    ``.compute_loss`` TRL's loss, to check ours against on any batch of its ``data_collator``.
    """
    from trl import DPOTrainer

    trainer = DPOTrainer(model=model, args=config, processing_class=tokenizer, peft_config=peft_config,
                         train_dataset=preference_dataset(rows, conversational=True))
    trainer.train()
    trainer.model.eval()
    return trainer
