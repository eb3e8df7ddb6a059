"""Pretraining from scratch: next-token prediction on raw text, with the training loop written by hand.

Pretraining is one idea repeated: cut a random window out of the corpus, ask
the model to predict every next token in it, measure how surprised it was
(cross-entropy), nudge all weights to be less surprised, repeat. Everything
else here is bookkeeping around that loop: a learning-rate schedule, gradient
clipping, a fixed validation set to measure perplexity on, and samples to
read along the way.

The second half sizes models for a compute budget. Training costs about
6·N·D floating-point operations for N parameters and D tokens (2 for the
forward pass, 4 for the backward pass, per parameter per token). Chinchilla
(Hoffmann et al., 2022, arXiv:2203.15556) found that, for a fixed budget, loss
is lowest at about 20 tokens per parameter: :func:`chinchilla_optimal` turns a
budget into that N and D, :func:`train_at_budget` trains one model size on one
budget, and :func:`fit_loss_curve` finds the best size of a sweep between the
sizes tried (Chinchilla's "IsoFLOP profiles": a parabola in log N).
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.infer.sampling import sample_next_token
from course_lib.model.decoder import Decoder, DecoderConfig
from course_lib.model.parameters import count_parameters
from course_lib.model.tokenization import CharTokenizer

CHINCHILLA_TOKENS_PER_PARAMETER = 20.0
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class TrainingConfig:
    """The knobs of the pretraining loop."""

    steps: int = 400
    batch_size: int = 32
    seq_len: int = 64
    learning_rate: float = 6e-3
    warmup_steps: int = 30
    min_learning_rate_ratio: float = 0.1  # the cosine decay ends at this fraction of the peak
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_windows: int = 64
    seed: int = 0


@dataclass
class TrainingHistory:
    """What the loop measured: the training loss at every step, the validation loss at every evaluation."""

    train_losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)


def random_batch(
    ids: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of the token stream ``ids``: inputs, and the same shifted by one.

    The target at position t is the token at t + 1, so one window of seq_len
    tokens holds seq_len next-token predictions, each from a longer prefix.
    """
    starts = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator)
    windows = torch.stack([ids[start : start + seq_len + 1] for start in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def evaluation_windows(ids: torch.Tensor, seq_len: int, num_windows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_windows`` evenly spaced windows of ``ids``: the same every time, so losses compare."""
    starts = torch.linspace(0, len(ids) - seq_len - 1, num_windows).long()
    windows = torch.stack([ids[start : start + seq_len + 1] for start in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def next_token_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the model's next-token predictions: the pretraining objective."""
    logits = model(inputs)
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


@torch.no_grad()
def evaluate_loss(model: nn.Module, ids: torch.Tensor, seq_len: int, num_windows: int) -> float:
    """Mean next-token loss over :func:`evaluation_windows` of ``ids``, in nats per token."""
    was_training = model.training
    model.eval()
    inputs, targets = evaluation_windows(ids, seq_len, num_windows)
    loss = next_token_loss(model, inputs, targets).item()
    model.train(was_training)
    return loss


def unigram_loss(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int) -> float:
    """The validation loss of a 'model' that knows only how often each token occurs in training.

    It predicts every token from the training frequencies (add-one smoothed),
    ignoring all context: any model that reads context must do better.
    """
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1
    log_probabilities = (counts / counts.sum()).log()
    return -log_probabilities[val_ids].mean().item()


def loss_to_perplexity(loss: float) -> float:
    """exp(loss): the number of equally likely tokens the model is, on average, hesitating between."""
    return math.exp(loss)


def learning_rate_at(step: int, config: TrainingConfig) -> float:
    """Linear warm-up to the peak over ``warmup_steps``, then a cosine decay down to the floor.

    Warm-up keeps the first, large and noisy gradients of a random model from
    throwing it far off; the decay lets it settle into a minimum at the end.
    """
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    floor = config.learning_rate * config.min_learning_rate_ratio
    return floor + (config.learning_rate - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: decaying norm gains towards 0 would only hurt."""
    parameters = list(model.parameters())
    groups = [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.95))


def train(
    model: nn.Module,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    config: TrainingConfig,
    on_eval: Callable[[int, float], None] | None = None,
    progress: bool = True,
) -> TrainingHistory:
    """Pretrain ``model`` on random windows of ``train_ids``; evaluate on ``val_ids`` along the way.

    The validation loss is measured before the first step and every
    ``eval_every`` steps (and after the last); ``on_eval(step, val_loss)`` is
    called each time, e.g. to print a sample. Returns the measured losses.
    """
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    history = TrainingHistory()

    def evaluate(step: int) -> None:
        val_loss = evaluate_loss(model, val_ids, config.seq_len, config.eval_windows)
        history.eval_steps.append(step)
        history.val_losses.append(val_loss)
        if on_eval is not None:
            on_eval(step, val_loss)

    evaluate(0)
    model.train()
    bar = tqdm(range(config.steps), desc="pretraining", disable=not progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, config)
        inputs, targets = random_batch(train_ids, config.batch_size, config.seq_len, generator)
        loss = next_token_loss(model, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        history.train_losses.append(loss.item())
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            evaluate(step + 1)
            bar.set_postfix(train=f"{loss.item():.3f}", val=f"{history.val_losses[-1]:.3f}")
    model.eval()
    return history


@torch.no_grad()
def sample_text(
    model: nn.Module,
    tokenizer: CharTokenizer,
    prompt: str,
    max_new_tokens: int,
    context: int,
    temperature: float = 0.8,
    generator: torch.Generator | None = None,
) -> str:
    """Continue ``prompt`` by drawing one token at a time (temperature 0: greedy); returns the new text.

    The model only ever sees the last ``context`` tokens, the window length it
    was trained on: RoPE models degrade on positions they never saw. A
    ``generator`` must live on the model's device.
    """
    prompt_ids = tokenizer.encode(prompt)
    ids = torch.tensor([prompt_ids], device=next(model.parameters()).device)
    for _ in range(max_new_tokens):
        logits = model(ids[:, -context:])[:, -1]
        next_token = sample_next_token(logits, temperature=temperature, generator=generator)
        ids = torch.cat((ids, next_token[:, None]), dim=1)
    return tokenizer.decode(ids[0, len(prompt_ids) :].tolist())


def words_of(text: str) -> list[str]:
    """The case-folded words (runs of letters) of a text, in order."""
    return [word.casefold() for word in _WORD.findall(text)]


def known_word_rate(text: str, vocabulary: set[str], min_length: int = 3) -> float:
    """The fraction of the words of ``text`` found in ``vocabulary`` (e.g. ``set(words_of(training_text))``).

    A crude but honest reading of a sample: random characters make no words,
    a model that has learned to spell makes mostly real ones. Words shorter
    than ``min_length`` letters ("a", "I", "of") are skipped: random text hits them by chance.
    """
    words = [word for word in words_of(text) if len(word) >= min_length]
    return sum(word in vocabulary for word in words) / len(words) if words else 0.0


def training_flops(num_parameters: float, num_tokens: float) -> float:
    """≈ 6·N·D: the compute of training N parameters on D tokens (attention's own work is left out)."""
    return 6.0 * num_parameters * num_tokens


def chinchilla_optimal(
    flops: float, tokens_per_parameter: float = CHINCHILLA_TOKENS_PER_PARAMETER
) -> tuple[float, float]:
    """(N, D) that spend ``flops`` with D = tokens_per_parameter · N: N = sqrt(C / (6 · ratio))."""
    num_parameters = math.sqrt(flops / (6.0 * tokens_per_parameter))
    return num_parameters, tokens_per_parameter * num_parameters


def tiny_config(vocab_size: int, hidden_size: int, num_layers: int) -> DecoderConfig:
    """A small decoder of the given width and depth: heads of about 16 dimensions, half as many KV heads.

    The feed-forward is 3x wider than the model (SmolLM2's is 2.67x, Llama's about as much).
    """
    num_heads = max(1, hidden_size // 16)
    return DecoderConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=max(1, num_heads // 2),
        intermediate_size=3 * hidden_size,
    )


@dataclass(frozen=True)
class BudgetRun:
    """One point of a compute-optimal sweep: a model size, the tokens the budget bought, the loss reached."""

    hidden_size: int
    num_layers: int
    parameters: int
    tokens: int
    steps: int
    val_loss: float

    @property
    def tokens_per_parameter(self) -> float:
        return self.tokens / self.parameters


def train_at_budget(
    model_config: DecoderConfig,
    flops: float,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    config: TrainingConfig,
) -> BudgetRun:
    """Train a fresh model of this shape for as many steps as ``flops`` pays for; report its validation loss.

    A bigger model gets fewer tokens: D = flops / (6 N). The warm-up shrinks
    with the run so that short runs are not all warm-up.
    """
    torch.manual_seed(config.seed)
    model = Decoder(model_config).to(train_ids.device)
    num_parameters = count_parameters(model)
    tokens_per_step = config.batch_size * config.seq_len
    steps = max(1, round(flops / training_flops(num_parameters, tokens_per_step)))
    run_config = replace(config, steps=steps, eval_every=steps, warmup_steps=min(config.warmup_steps, steps // 10 + 1))
    history = train(model, train_ids, val_ids, run_config, progress=False)
    return BudgetRun(
        hidden_size=model_config.hidden_size,
        num_layers=model_config.num_layers,
        parameters=num_parameters,
        tokens=steps * tokens_per_step,
        steps=steps,
        val_loss=history.val_losses[-1],
    )


@dataclass(frozen=True)
class LossCurve:
    """A parabola through a sweep's (log10 N, loss) points: loss ≈ a·x² + b·x + c with x = log10 N."""

    a: float
    b: float
    c: float

    @property
    def optimal_parameters(self) -> float:
        """The N at the bottom of the parabola: 10 ** (-b / 2a)."""
        return 10.0 ** (-self.b / (2.0 * self.a))

    def loss_at(self, parameters: float | np.ndarray) -> float | np.ndarray:
        """The fitted loss at ``parameters`` (a number or an array, e.g. to draw the curve)."""
        x = np.log10(parameters)
        return self.a * x**2 + self.b * x + self.c


def fit_loss_curve(parameters: list[float], losses: list[float], neighbours: int = 2) -> LossCurve:
    """Least-squares parabola of loss against log10 N (``numpy.polyfit``) near the best size: Chinchilla's IsoFLOP fit.

    One budget's sweep gives a U-shaped curve; the bottom of a parabola
    through the best run and its ``neighbours`` on each side (in order of N)
    estimates the best model size even between the sizes tried. Far from the
    bottom the U flattens (a model with too few steps barely learns, however
    big), which a parabola cannot follow, so those points are left out. A
    curve that opens downwards has no bottom: the sweep did not bracket it.
    """
    if len(parameters) != len(losses) or len(parameters) < 3:
        raise ValueError(f"need at least 3 (size, loss) points of the same length, got {len(parameters)} sizes "
                         f"and {len(losses)} losses")
    order = np.argsort(parameters)
    sizes, values = np.asarray(parameters, dtype=float)[order], np.asarray(losses, dtype=float)[order]
    best = int(np.argmin(values))
    low, high = max(0, best - neighbours), min(len(values), best + neighbours + 1)
    if high - low < 3:
        raise ValueError(f"{high - low} points around the best size are too few for a parabola: "
                         f"raise neighbours (now {neighbours})")
    a, b, c = np.polyfit(np.log10(sizes[low:high]), values[low:high], 2)
    if a <= 0:
        raise ValueError("the fitted curve opens downwards (no minimum): the sweep does not bracket the best size; "
                         "add smaller and larger models")
    return LossCurve(float(a), float(b), float(c))
