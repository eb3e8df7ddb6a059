"""Prompt tuning from scratch: a few learned "virtual token" embeddings in front of every input.

The model stays frozen; the only trainable numbers are ``num_virtual_tokens x
hidden_size`` embeddings prepended to the embedded input (the attention mask
grows with them, and their label positions are ignored by the loss). It is
the cheapest form of fine-tuning there is — a few thousand numbers — and, as
in peft's ``PromptTuningConfig``, the embeddings can start from the
embeddings of a real text. With the same embeddings, :class:`SoftPromptModel`
gives the same logits as peft's prompt-tuning model (the tests check it).
"""

import torch
from torch import nn

IGNORE_INDEX = nn.CrossEntropyLoss().ignore_index  # -100: the label every PyTorch and HF loss skips


class SoftPromptModel(nn.Module):
    """A frozen causal LM behind ``num_virtual_tokens`` trainable input embeddings."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int, init_token_ids: list[int] | None = None) -> None:
        super().__init__()
        if num_virtual_tokens <= 0:
            raise ValueError(f"num_virtual_tokens must be at least 1, got {num_virtual_tokens}.")
        self.model = model.requires_grad_(False)
        embeddings = model.get_input_embeddings().weight
        if init_token_ids is None:
            initial = torch.randn(num_virtual_tokens, embeddings.shape[1], dtype=embeddings.dtype) * embeddings.std()
        else:
            # peft's TEXT init: the text's token embeddings, repeated or cut to the prompt length.
            ids = (init_token_ids * (num_virtual_tokens // len(init_token_ids) + 1))[:num_virtual_tokens]
            initial = embeddings[torch.tensor(ids)].detach().clone()
        self.prompt = nn.Parameter(initial.to(embeddings.device))

    @property
    def num_virtual_tokens(self) -> int:
        return self.prompt.shape[0]

    def extend(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The model's inputs with the virtual tokens in front: embeddings, attention mask and labels."""
        batch = input_ids.shape[0]
        embedded = self.model.get_input_embeddings()(input_ids)
        inputs = {"inputs_embeds": torch.cat([self.prompt.expand(batch, -1, -1).to(embedded.dtype), embedded], dim=1)}
        if attention_mask is not None:
            ones = attention_mask.new_ones(batch, self.num_virtual_tokens)
            inputs["attention_mask"] = torch.cat([ones, attention_mask], dim=1)
        if labels is not None:
            ignored = labels.new_full((batch, self.num_virtual_tokens), IGNORE_INDEX)
            inputs["labels"] = torch.cat([ignored, labels], dim=1)
        return inputs

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None):
        """The wrapped model's output on the extended inputs (logits cover the virtual positions too)."""
        return self.model(**self.extend(input_ids, attention_mask, labels))
