"""The pretraining loop and its helpers: batches, schedule, losses, sampling, compute budgets."""

import math

import numpy as np
import pytest
import torch

from course_lib.model.decoder import Decoder
from course_lib.model.parameters import count_parameters
from course_lib.model.tokenization import CharTokenizer
from course_lib.train.pretraining import (
    TrainingConfig,
    chinchilla_optimal,
    fit_loss_curve,
    evaluate_loss,
    evaluation_windows,
    known_word_rate,
    learning_rate_at,
    loss_to_perplexity,
    make_optimizer,
    random_batch,
    sample_text,
    tiny_config,
    train,
    train_at_budget,
    training_flops,
    unigram_loss,
    words_of,
)

TEXT = "to be, or not to be: that is the question.\nwhether 'tis nobler in the mind to suffer\n" * 40


@pytest.fixture(scope="module")
def corpus() -> tuple[CharTokenizer, torch.Tensor, torch.Tensor]:
    tokenizer = CharTokenizer(TEXT)
    ids = torch.tensor(tokenizer.encode(TEXT))
    return tokenizer, ids[:3000], ids[3000:]


def test_batches_are_windows_with_targets_shifted_by_one() -> None:
    ids = torch.arange(100)
    inputs, targets = random_batch(ids, batch_size=5, seq_len=8, generator=torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (5, 8)
    assert torch.equal(targets[:, :-1], inputs[:, 1:]) and torch.equal(targets, inputs + 1)
    again, _ = random_batch(ids, batch_size=5, seq_len=8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(inputs, again)
    windows, _ = evaluation_windows(ids, seq_len=8, num_windows=4)
    assert windows[:, 0].tolist() == [0, 30, 60, 91] and windows[-1, -1] == 98


def test_learning_rate_warms_up_then_decays_to_the_floor() -> None:
    config = TrainingConfig(steps=100, warmup_steps=10, learning_rate=1e-3, min_learning_rate_ratio=0.1)
    rates = [learning_rate_at(step, config) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert learning_rate_at(100, config) == pytest.approx(1e-4)


def test_weight_decay_spares_vectors() -> None:
    model = Decoder(tiny_config(vocab_size=20, hidden_size=16, num_layers=1))
    decayed, spared = make_optimizer(model, TrainingConfig()).param_groups
    assert decayed["weight_decay"] > 0 and all(p.dim() == 2 for p in decayed["params"])
    assert spared["weight_decay"] == 0 and all(p.dim() == 1 for p in spared["params"])
    assert len(decayed["params"]) + len(spared["params"]) == len(list(model.parameters()))


def test_training_loss_decreases_and_is_reproducible(corpus) -> None:
    tokenizer, train_ids, val_ids = corpus
    config = TrainingConfig(steps=40, batch_size=8, seq_len=32, warmup_steps=5, eval_every=20, eval_windows=8)

    def run() -> list[float]:
        torch.manual_seed(0)
        model = Decoder(tiny_config(len(tokenizer), hidden_size=32, num_layers=1))
        evaluated = []
        history = train(model, train_ids, val_ids, config, on_eval=lambda step, loss: evaluated.append(step), progress=False)
        assert evaluated == history.eval_steps == [0, 20, 40] and len(history.train_losses) == 40
        assert not model.training
        return history.val_losses

    losses = run()
    assert losses[0] == pytest.approx(math.log(len(tokenizer)), abs=0.1)  # a fresh model guesses uniformly
    assert losses[2] < losses[1] < losses[0] - 1.0
    assert run() == losses


def test_unigram_loss_is_the_cross_entropy_of_the_frequencies() -> None:
    train_ids = torch.tensor([0, 0, 0, 1, 1, 2])  # counts + 1: 4, 3, 2 out of 9
    val_ids = torch.tensor([0, 2])
    assert unigram_loss(train_ids, val_ids, vocab_size=3) == pytest.approx(-(math.log(4 / 9) + math.log(2 / 9)) / 2)
    assert loss_to_perplexity(math.log(7)) == pytest.approx(7)


def test_evaluation_restores_the_training_mode(corpus) -> None:
    tokenizer, _, val_ids = corpus
    model = Decoder(tiny_config(len(tokenizer), hidden_size=16, num_layers=1)).train()
    loss = evaluate_loss(model, val_ids, seq_len=16, num_windows=4)
    assert model.training and loss == evaluate_loss(model, val_ids, seq_len=16, num_windows=4)


def test_greedy_sampling_matches_the_decoder_generate(corpus) -> None:
    tokenizer, _, _ = corpus
    model = Decoder(tiny_config(len(tokenizer), hidden_size=32, num_layers=2)).eval()
    prompt = "to be"
    greedy = sample_text(model, tokenizer, prompt, max_new_tokens=12, context=64, temperature=0)
    expected = model.generate(torch.tensor([tokenizer.encode(prompt)]), max_new_tokens=12)[0, 5:]
    assert greedy == tokenizer.decode(expected.tolist())
    sampled = sample_text(model, tokenizer, prompt, 30, context=8, generator=torch.Generator().manual_seed(1))
    assert len(sampled) == 30
    assert sampled == sample_text(model, tokenizer, prompt, 30, context=8, generator=torch.Generator().manual_seed(1))


def test_known_word_rate() -> None:
    vocabulary = set(words_of("To be, or not to be"))
    assert vocabulary == {"to", "be", "or", "not"}
    assert known_word_rate("NOT to bee!", vocabulary) == pytest.approx(1 / 2)  # "to" is too short to count
    assert known_word_rate("NOT to bee!", vocabulary, min_length=1) == pytest.approx(2 / 3)
    assert known_word_rate("... a", vocabulary) == 0.0


def test_chinchilla_rule_spends_the_budget_at_twenty_tokens_per_parameter() -> None:
    flops = 5.76e23  # Chinchilla's own budget: 70B parameters, 1.4T tokens
    parameters, tokens = chinchilla_optimal(flops)
    assert tokens == pytest.approx(20 * parameters)
    assert training_flops(parameters, tokens) == pytest.approx(flops)
    assert parameters == pytest.approx(70e9, rel=0.02)


def test_training_at_a_budget_buys_fewer_tokens_for_bigger_models(corpus) -> None:
    tokenizer, train_ids, val_ids = corpus
    config = TrainingConfig(batch_size=4, seq_len=16, eval_windows=4)
    small, big = (
        train_at_budget(tiny_config(len(tokenizer), hidden, 1), 2e8, train_ids, val_ids, config)
        for hidden in (16, 32)
    )
    assert small.parameters < big.parameters and small.tokens > big.tokens
    for run in (small, big):
        assert run.tokens == run.steps * 4 * 16
        assert training_flops(run.parameters, run.tokens) == pytest.approx(2e8, rel=0.05)
        assert count_parameters(Decoder(tiny_config(len(tokenizer), run.hidden_size, 1))) == run.parameters


def test_fit_loss_curve_finds_the_bottom_of_a_parabola_in_log_n() -> None:
    sizes = [1e3, 3e3, 1e4, 3e4, 1e5]
    losses = [0.5 * (math.log10(n) - math.log10(5e3)) ** 2 + 2.0 for n in sizes]
    curve = fit_loss_curve(sizes, losses)
    assert curve.optimal_parameters == pytest.approx(5e3, rel=1e-6)
    assert curve.loss_at(5e3) == pytest.approx(2.0, abs=1e-9)
    assert curve.loss_at(np.array(sizes)) == pytest.approx(losses, abs=1e-9)
    numpy_coefficients = np.polyfit(np.log10(sizes), losses, 2)
    assert [curve.a, curve.b, curve.c] == pytest.approx(list(numpy_coefficients))


def test_fit_loss_curve_refuses_a_sweep_that_does_not_bracket_the_optimum() -> None:
    with pytest.raises(ValueError, match="does not bracket"):
        fit_loss_curve([1e3, 1e4, 1e5], [2.0, 2.5, 2.6])  # concave: the best size is off the grid
    with pytest.raises(ValueError, match="at least 3"):
        fit_loss_curve([1e3, 1e4], [2.0, 1.9])
    with pytest.raises(ValueError, match="too few"):
        fit_loss_curve([1e3, 1e4, 1e5], [1.0, 2.0, 3.0], neighbours=1)  # the best is the first: 2 points


def test_fit_loss_curve_keeps_only_the_points_near_the_best_size() -> None:
    sizes = [1e5, 1e3, 3e3, 1e4, 3e4, 3e5]  # any order
    losses = [(math.log10(n) - 3.5) ** 2 + 1.0 for n in sizes]
    losses[0] = losses[-1] = 3.0  # a plateau far from the bottom that no parabola through the rest follows
    curve = fit_loss_curve(sizes, losses, neighbours=1)
    assert curve.optimal_parameters == pytest.approx(10**3.5, rel=1e-6)  # exact: the plateau is left out
    assert fit_loss_curve(sizes, losses, neighbours=5).optimal_parameters != pytest.approx(10**3.5, rel=0.05)
