"""Mixture of Experts: routing, dispatch, parameter counts and the load-balancing loss."""

import pytest
import torch

from course_lib.model.moe import MoELayer, Routing, TopKRouter, expert_load, load_balancing_loss, train_moe


def test_router_keeps_the_k_best_experts_with_weights_summing_to_one() -> None:
    router = TopKRouter(hidden_size=16, num_experts=8, k=3)
    routing = router(torch.randn(20, 16))
    assert routing.logits.shape == (20, 8) and routing.experts.shape == routing.weights.shape == (20, 3)
    torch.testing.assert_close(routing.weights.sum(dim=-1), torch.ones(20))
    chosen = routing.logits.gather(1, routing.experts)
    assert torch.all(chosen.min(dim=1).values >= routing.logits.sort(dim=1).values[:, -3])
    with pytest.raises(ValueError):
        TopKRouter(16, num_experts=4, k=5)


@pytest.mark.parametrize("k", [1, 2])
def test_each_token_uses_exactly_k_experts(k: int) -> None:
    layer = MoELayer(hidden_size=16, intermediate_size=32, num_experts=4, k=k)
    x = torch.randn(3, 7, 16)
    with torch.no_grad():
        output, routing = layer(x)
    assert output.shape == x.shape
    assert routing.experts.shape == (21, k)
    assert all(len(set(row)) == k for row in routing.experts.tolist())
    # The output is, token by token, the weighted sum of its k experts' outputs and nothing else.
    tokens = x.reshape(21, 16)
    with torch.no_grad():
        expected = torch.stack([
            sum(weight * layer.experts[expert](token) for expert, weight in zip(experts.tolist(), weights))
            for token, experts, weights in zip(tokens, routing.experts, routing.weights)
        ])
    torch.testing.assert_close(output.reshape(21, 16), expected, atol=1e-6, rtol=1e-5)


def test_active_parameters_are_fewer_than_total() -> None:
    layer = MoELayer(hidden_size=16, intermediate_size=32, num_experts=8, k=2)
    total, active = layer.parameter_counts()
    expert, router = 3 * 16 * 32, 16 * 8
    assert total == sum(p.numel() for p in layer.parameters()) == router + 8 * expert
    assert active == router + 2 * expert < total


def _routing(logits: torch.Tensor, experts: torch.Tensor) -> Routing:
    return Routing(logits, experts, torch.ones(experts.shape) / experts.shape[1])


def test_load_balancing_loss_is_one_when_uniform_and_grows_with_collapse() -> None:
    num_tokens, num_experts = 32, 4
    uniform = _routing(torch.zeros(num_tokens, num_experts), torch.arange(num_tokens)[:, None] % num_experts)
    torch.testing.assert_close(expert_load(uniform.experts, num_experts), torch.full((4,), 0.25))
    assert load_balancing_loss(uniform).item() == pytest.approx(1.0)

    all_to_expert_0 = torch.zeros(num_tokens, 1, dtype=torch.long)
    leaning = torch.zeros(num_tokens, num_experts).index_fill(1, torch.tensor([0]), 1.0)
    partly = _routing(leaning, all_to_expert_0)
    collapsed = _routing(leaning * 20, all_to_expert_0)
    assert 1.0 < load_balancing_loss(partly) < load_balancing_loss(collapsed)
    assert load_balancing_loss(collapsed).item() == pytest.approx(num_experts, abs=1e-3)


def test_load_balancing_loss_spreads_a_collapsed_router() -> None:
    layer = MoELayer(hidden_size=8, intermediate_size=16, num_experts=4, k=1)
    with torch.no_grad():
        layer.router.gate.weight[0] += 0.5  # expert 0 wins every token
    x = torch.randn(64, 8) + 1
    optimizer = torch.optim.SGD(layer.router.parameters(), lr=0.1)
    losses, busiest = [], []
    for _ in range(20):
        busiest.append(expert_load(layer.router(x).experts, 4).max().item())
        loss = load_balancing_loss(layer(x).routing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(p.grad is None for p in layer.experts.parameters())  # it trains the router only
    assert busiest[0] == 1.0 and losses[0] > 3
    assert busiest[-1] < 0.7 and losses[-1] < 1.5


@pytest.mark.parametrize("seed", [0, 1])
def test_training_without_the_balancing_loss_collapses_and_with_it_does_not(seed: int) -> None:
    torch.manual_seed(seed)
    teacher = torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.Tanh(), torch.nn.Linear(128, 32))
    inputs = torch.randn(4096, 32) + 0.5  # every token shares a direction, so one expert can grab them all
    with torch.no_grad():
        targets = teacher(inputs)
    final_loads = {}
    for weight in (0.0, 0.01):
        torch.manual_seed(seed)
        layer = MoELayer(hidden_size=32, intermediate_size=64, num_experts=8, k=2)
        result = train_moe(layer, inputs, targets, steps=200, aux_loss_weight=weight, seed=seed)
        assert result.loads.shape == (200, 8) and len(result.task_losses) == 200
        assert result.task_losses[-1] < 0.5 * result.task_losses[0]
        final_loads[weight] = result.loads[-10:].mean(dim=0)
    collapsed, balanced = final_loads[0.0], final_loads[0.01]
    assert collapsed.max() > 0.4 and collapsed.topk(2).values.sum() > 0.7  # uniform would be 0.125 each
    assert balanced.max() < 0.2
