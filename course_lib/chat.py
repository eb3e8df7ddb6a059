"""Talking to a chat model: prompts in, replies out, batched and greedy by default."""

from typing import Any

import torch
from tqdm.auto import tqdm


def chat_messages(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    """The messages of a one-turn conversation, with an optional system prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": prompt}]


@torch.no_grad()
def generate_replies(
    model: Any,
    tokenizer: Any,
    prompts: list[str] | list[list[dict[str, str]]],
    *,
    max_new_tokens: int = 40,
    system: str | None = None,
    batch_size: int = 8,
    progress: bool = False,
    **generate_kwargs: Any,
) -> list[str]:
    """The model's reply to each prompt (greedy unless ``generate_kwargs`` say otherwise).

    A prompt is a user message (``system`` is put before it) or a whole
    conversation (a list of messages, e.g. few-shot examples as earlier turns).
    Prompts are wrapped in the model's chat template and generated in
    left-padded batches, so a batch costs little more than one prompt.
    """
    tokenizer.padding_side = "left"
    texts = [
        tokenizer.apply_chat_template(
            chat_messages(p, system) if isinstance(p, str) else p, tokenize=False, add_generation_prompt=True
        )
        for p in prompts
    ]
    settings = {"do_sample": False, "max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
    replies: list[str] = []
    batches = range(0, len(texts), batch_size)
    for start in tqdm(batches, desc="generating", disable=not progress):
        batch = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(model.device)
        output = model.generate(**batch, **(settings | generate_kwargs))
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        replies += [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    return replies


def chat(model: Any, tokenizer: Any, prompt: str, **kwargs: Any) -> str:
    """The model's reply to one prompt."""
    return generate_replies(model, tokenizer, [prompt], **kwargs)[0]
