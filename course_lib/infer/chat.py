"""Talking to a chat model: prompts in, replies out, batched and greedy by default."""

from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from course_lib.data.chat_format import Messages, conversation


@dataclass(frozen=True)
class ChatGeneration:
    """The replies to a list of prompts, and how many tokens each prompt took after the chat template."""

    replies: list[str]
    prompt_tokens: list[int]


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as ``generate`` assigns them: a forward pass on a padded batch
    then sees each prompt as it would alone."""
    return (attention_mask.cumsum(dim=-1) - 1).clamp(min=0)


def chat_batch(tokenizer: Any, prompts: list[str] | list[Messages], system: str | None = None) -> Any:
    """Prompts wrapped in the model's chat template and tokenized as one left-padded batch.

    Left padding puts every prompt's last token in the last column, where
    generation continues and where the next-token logits are read. The
    tokenizer's own padding side is restored afterwards.
    """
    texts = [
        tokenizer.apply_chat_template(conversation(p, system), tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = padding_side


@torch.no_grad()
def generate_chat(
    model: Any,
    tokenizer: Any,
    prompts: list[str] | list[Messages],
    *,
    max_new_tokens: int = 40,
    system: str | None = None,
    batch_size: int = 8,
    progress: bool = False,
    **generate_kwargs: Any,
) -> ChatGeneration:
    """The model's reply to each prompt (greedy unless ``generate_kwargs`` say otherwise), with prompt lengths.

    A prompt is a user message (``system`` is put before it) or a whole
    conversation (a list of messages, e.g. few-shot examples as earlier turns).
    Prompts are wrapped in the model's chat template and generated in
    left-padded batches (:func:`chat_batch`), so a batch costs little more
    than one prompt. ``progress`` shows a bar over the batches when there is more than one (a one-batch bar
    says nothing).
    """
    settings = {"do_sample": False, "max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
    replies: list[str] = []
    prompt_tokens: list[int] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="generating",
                      disable=not progress or len(prompts) <= batch_size):
        batch = chat_batch(tokenizer, prompts[start : start + batch_size], system).to(model.device)
        output = model.generate(**batch, **(settings | generate_kwargs))
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        replies += [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
        prompt_tokens += batch["attention_mask"].sum(dim=1).tolist()
    return ChatGeneration(replies, prompt_tokens)


def generate_replies(model: Any, tokenizer: Any, prompts: list[str] | list[Messages], **kwargs: Any) -> list[str]:
    """The model's reply to each prompt: :func:`generate_chat`'s replies (same keyword arguments)."""
    return generate_chat(model, tokenizer, prompts, **kwargs).replies


def chat(model: Any, tokenizer: Any, prompt: str, **kwargs: Any) -> str:
    """The model's reply to one prompt."""
    return generate_replies(model, tokenizer, [prompt], **kwargs)[0]
