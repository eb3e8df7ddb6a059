"""Tests for course_lib.infer.timing, on a fake clock so that timings are exact."""

import pytest
import torch
from torch import nn

from course_lib.infer import timing
from course_lib.infer.timing import BatchTiming, batch_sweep, best_time, step_times, tokens_per_second
from course_lib.model.decoder import Decoder, DecoderConfig
from course_lib.model.toy import tiny_llama, word_tokenizer


class FakeClock:
    """Stands in for ``time.perf_counter``: time moves only when ``advance`` is called."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", fake)
    return fake


class SlowLayer(nn.Module):
    """A module whose forward pass 'takes' the next duration from a list, on the fake clock."""

    def __init__(self, clock: FakeClock, durations: list[float]) -> None:
        super().__init__()
        self.clock, self.durations = clock, durations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.advance(self.durations.pop(0))
        return x


def test_best_time_keeps_the_fastest_run(clock: FakeClock) -> None:
    durations = [3.0, 1.0, 2.0]
    assert best_time(lambda: clock.advance(durations.pop(0)), repeats=3) == 1.0
    assert durations == []


def test_step_times_are_cumulative_per_forward_call(clock: FakeClock) -> None:
    layer = SlowLayer(clock, [0.5, 0.1, 0.2])

    def run() -> None:
        clock.advance(1.0)  # work before the first step (e.g. tokenization) counts too
        for _ in range(3):
            layer(torch.zeros(1))

    output, times = step_times(layer, run)
    assert output is None
    assert times == pytest.approx([1.5, 1.6, 1.8])
    assert not layer._forward_hooks  # the hook is gone afterwards


def test_step_times_keep_the_fastest_run_per_step_and_the_last_output(clock: FakeClock) -> None:
    layer = SlowLayer(clock, [1.0, 1.0, 0.5, 2.0])
    outputs = iter(["first", "second"])

    def run() -> str:
        layer(torch.zeros(1))
        layer(torch.zeros(1))
        return next(outputs)

    assert step_times(layer, run, repeats=2) == ("second", [0.5, 2.0])


def test_step_times_remove_the_hook_on_error_and_check_step_counts(clock: FakeClock) -> None:
    layer = SlowLayer(clock, [0.1] * 4)

    def failing_run() -> None:
        layer(torch.zeros(1))
        raise RuntimeError("generation failed")

    with pytest.raises(RuntimeError, match="generation failed"):
        step_times(layer, failing_run)
    assert not layer._forward_hooks
    calls = iter([1, 2])
    with pytest.raises(ValueError, match="different numbers of steps"):
        step_times(layer, lambda: [layer(torch.zeros(1)) for _ in range(next(calls))], repeats=2)


def test_step_times_count_one_step_per_generated_token() -> None:
    decoder = Decoder(DecoderConfig(vocab_size=32, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1))
    prompt = torch.zeros(1, 3, dtype=torch.long)
    for use_cache in (True, False):
        tokens, times = step_times(decoder, lambda: decoder.generate(prompt, 5, use_cache=use_cache))
        assert tokens.shape == (1, 8)
        assert len(times) == 5
        assert times == sorted(times)


def test_tokens_per_second_counts_every_sequence_of_the_batch() -> None:
    times = [0.5, 1.0, 2.0, 4.0]
    assert tokens_per_second(times, [1, 2, 4]) == [2.0, 2.0, 1.0]
    assert tokens_per_second(times, [2], batch_size=8) == [16.0]
    with pytest.raises(ValueError, match="length 5"):
        tokens_per_second(times, [5])


def test_batch_sweep_reports_latency_and_throughput(clock: FakeClock) -> None:
    seconds_per_batch = {1: 1.0, 2: 1.5, 4: 2.0}
    sweep = batch_sweep(lambda batch_size: clock.advance(seconds_per_batch[batch_size]), [1, 2, 4], new_tokens=10)
    assert sweep == [BatchTiming(1, 1.0, 10.0), BatchTiming(2, 1.5, 20 / 1.5), BatchTiming(4, 2.0, 20.0)]


@pytest.mark.parametrize("call", [lambda: best_time(lambda: None, 0), lambda: step_times(nn.Identity(), lambda: None, 0)])
def test_repeats_must_be_positive(call) -> None:
    with pytest.raises(ValueError, match="repeats"):
        call()


def test_greedy_tokens_per_second_times_exactly_the_asked_tokens(clock: FakeClock) -> None:
    tokenizer = word_tokenizer("the sushi is fresh".split())
    model = tiny_llama(tokenizer).eval()
    lengths = []

    class Timed(nn.Module):
        """The toy model, whose generate takes 0.25 s per new token on the fake clock."""

        def generate(self, **kwargs):
            output = model.generate(**kwargs)
            lengths.append(output.shape[1] - kwargs["input_ids"].shape[1])
            clock.advance(0.25 * lengths[-1])
            return output

    batch = tokenizer(["the sushi"], return_tensors="pt")
    speed = timing.greedy_tokens_per_second(Timed(), batch, tokens=8, pad_token_id=tokenizer.pad_token_id, repeats=2)
    assert lengths == [8, 8]  # eos never stops it early: min_new_tokens = max_new_tokens
    assert speed == pytest.approx(4.0)
