"""Chat formatting for training and generation: one conversation builder, the SFT row formats, the loss mask.

A prompt/completion row becomes the messages a chat template renders; TRL's
conversational prompt-completion format splits them where the loss starts,
and :func:`completion_only_labels` shows that split token by token.
"""

from typing import Any

IGNORE_INDEX = -100  # the label PyTorch's cross-entropy (and so every trainer) skips

Row = dict[str, Any]
Messages = list[dict[str, str]]


def chat_messages(prompt: str, system: str | None = None) -> Messages:
    """The messages of a one-turn conversation, with an optional system prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": prompt}]


def conversation(prompt: str | Messages, system: str | None = None) -> Messages:
    """A prompt as messages: a user message (``system`` put before it), or a whole conversation as it is."""
    return chat_messages(prompt, system) if isinstance(prompt, str) else prompt


def to_chat(row: Row) -> dict[str, list[dict[str, str]]]:
    """A prompt/completion row as a chat: ``{"messages": [user, assistant]}``."""
    return {"messages": chat_messages(row["prompt"]) + [{"role": "assistant", "content": row["completion"]}]}


def to_conversational(row: Row) -> dict[str, list[dict[str, str]]]:
    """A row in TRL's conversational prompt-completion format: the chat split where the loss starts."""
    return {"prompt": chat_messages(row["prompt"]), "completion": [{"role": "assistant", "content": row["completion"]}]}


def prompt_ids(tokenizer: Any, prompt: str | Messages, system: str | None = None) -> list[int]:
    """The token ids the model reads before it answers: the chat template with the generation prompt."""
    return tokenizer.apply_chat_template(conversation(prompt, system), add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]


def completion_only_labels(tokenizer: Any, prompt: str, completion: str) -> dict[str, list[int]]:
    """Token ids of the whole chat and labels that train on the assistant's turn only.

    The prompt part (system, user turn, ``<|im_start|>assistant``) gets ``IGNORE_INDEX``;
    everything after it (the answer, the end-of-turn token that teaches the model to stop,
    and whatever the template writes after it) keeps its id. The same split TRL's SFTTrainer
    makes for conversational prompt-completion data.
    """
    messages = to_chat({"prompt": prompt, "completion": completion})["messages"]
    prompt_part = prompt_ids(tokenizer, prompt)
    input_ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    if input_ids[:len(prompt_part)] != prompt_part:
        raise ValueError("The chat template renders the prompt differently when an answer follows it: "
                         "the completion cannot be masked on a token boundary.")
    return {"input_ids": input_ids, "labels": [IGNORE_INDEX] * len(prompt_part) + input_ids[len(prompt_part):]}
