"""Mixture of Experts from scratch: a top-k router, SwiGLU experts and a load-balancing loss.

An MoE layer replaces one feed-forward with many ("experts") and a small
router that sends each token to only k of them. The model then *holds* the
parameters of all experts but *uses* only k per token: more capacity for the
same compute per token (Mixtral: 8 experts, k = 2). The risk is collapse: the
router favouring a few experts that then get all the training signal, which
the auxiliary load-balancing loss of the Switch Transformer counteracts.
"""

from typing import NamedTuple

import torch
from torch import nn

from course_lib.model.decoder import SwiGLU


class Routing(NamedTuple):
    """Where each token goes. Shapes for N tokens, E experts and top-k routing:

    ``logits`` (N, E), the router's raw scores for every expert;
    ``experts`` (N, k), the indices of the k chosen experts;
    ``weights`` (N, k), their mixing weights, summing to 1 for each token.
    """

    logits: torch.Tensor
    experts: torch.Tensor
    weights: torch.Tensor


class MoEOutput(NamedTuple):
    """The layer's output (same shape as its input) and the routing that produced it."""

    output: torch.Tensor
    routing: Routing


class TopKRouter(nn.Module):
    """A linear scorer over experts that keeps the k best for each token.

    The mixing weights are a softmax over the k kept logits only (as in
    Mixtral), so they sum to 1 whatever k is; the other experts get weight 0
    and are not computed at all.
    """

    def __init__(self, hidden_size: int, num_experts: int, k: int) -> None:
        super().__init__()
        if not 1 <= k <= num_experts:
            raise ValueError(f"k must be between 1 and num_experts ({num_experts}), got {k}")
        self.k = k
        self.gate = nn.Linear(hidden_size, num_experts, bias=False)

    def forward(self, tokens: torch.Tensor) -> Routing:
        """Route tokens (N, hidden) to k experts each."""
        logits = self.gate(tokens)
        top_logits, experts = logits.topk(self.k, dim=-1)
        return Routing(logits, experts, torch.softmax(top_logits, dim=-1))


class MoELayer(nn.Module):
    """A drop-in replacement for a SwiGLU feed-forward: num_experts SwiGLUs, k used per token."""

    def __init__(self, hidden_size: int, intermediate_size: int, num_experts: int, k: int) -> None:
        super().__init__()
        self.router = TopKRouter(hidden_size, num_experts, k)
        self.experts = nn.ModuleList(SwiGLU(hidden_size, intermediate_size) for _ in range(num_experts))

    def forward(self, x: torch.Tensor) -> MoEOutput:
        """Mix, for every token of x (..., hidden), the outputs of its k experts.

        The loop runs over experts, not tokens: each expert processes, in one
        batch, exactly the tokens that chose it, and adds its weighted output
        back at their places.
        """
        tokens = x.reshape(-1, x.shape[-1])
        routing = self.router(tokens)
        output = torch.zeros_like(tokens)
        for index, expert in enumerate(self.experts):
            token_ids, slot = (routing.experts == index).nonzero(as_tuple=True)
            if token_ids.numel():
                weight = routing.weights[token_ids, slot, None]
                output.index_add_(0, token_ids, weight * expert(tokens[token_ids]))
        return MoEOutput(output.view_as(x), routing)

    def parameter_counts(self) -> tuple[int, int]:
        """(total, active): parameters stored, and parameters one token actually uses (router + k experts)."""
        router = sum(p.numel() for p in self.router.parameters())
        per_expert = sum(p.numel() for p in self.experts[0].parameters())
        return router + len(self.experts) * per_expert, router + self.router.k * per_expert


def expert_load(experts: torch.Tensor, num_experts: int) -> torch.Tensor:
    """The fraction of routing slots each expert received, shape (num_experts,), summing to 1.

    ``experts`` is ``Routing.experts`` (N, k); uniform routing gives 1/num_experts everywhere.
    """
    counts = torch.bincount(experts.flatten(), minlength=num_experts)
    return counts.float() / experts.numel()


def load_balancing_loss(routing: Routing) -> torch.Tensor:
    """The Switch Transformer auxiliary loss: num_experts * sum_i f_i * P_i.

    f_i is the fraction of routing slots sent to expert i (``expert_load``,
    not differentiable) and P_i the router's mean softmax probability for
    expert i over the tokens (differentiable). It is 1 when both are uniform
    (1/num_experts each), the balanced target, and approaches num_experts when
    one expert takes every token with full confidence. Its gradient lowers the
    probability of the overloaded experts. (When the load and the probabilities
    disagree it can dip a little below 1, so 1 is a target, not a bound.)
    """
    num_experts = routing.logits.shape[-1]
    load = expert_load(routing.experts, num_experts)
    mean_probability = torch.softmax(routing.logits, dim=-1).mean(dim=0)
    return num_experts * (load * mean_probability).sum()


class MoETraining(NamedTuple):
    """What :func:`train_moe` measured at every step: ``loads`` (steps, num_experts) and the task loss."""

    loads: torch.Tensor
    task_losses: list[float]


def train_moe(
    layer: MoELayer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    aux_loss_weight: float,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> MoETraining:
    """Fit ``layer`` to map inputs (N, hidden) to targets by mean squared error, plus the balancing loss.

    The objective is ``mse + aux_loss_weight * load_balancing_loss``. With a
    weight of 0 nothing stops the rich from getting richer: an expert that
    wins a few more tokens gets more gradient, improves, and wins even more.
    Returns the expert load and the task loss (the MSE alone) of every step.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(layer.parameters(), lr=learning_rate)
    loads, task_losses = [], []
    for _ in range(steps):
        batch = torch.randint(0, len(inputs), (batch_size,), generator=generator)
        output, routing = layer(inputs[batch])
        task_loss = nn.functional.mse_loss(output, targets[batch])
        loss = task_loss + aux_loss_weight * load_balancing_loss(routing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loads.append(expert_load(routing.experts, len(layer.experts)))
        task_losses.append(task_loss.item())
    return MoETraining(torch.stack(loads), task_losses)
