"""Tests for course_lib.infer.sampling: filters against transformers' logits processors,
decoding edge cases, and our loops against ``model.generate`` on the real SmolLM2."""

import pytest
import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MinPLogitsWarper,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from course_lib.assets.models import load_model, load_tokenizer
from course_lib.data.chat_format import prompt_ids
from course_lib.infer.sampling import (
    apply_repetition_penalty,
    apply_temperature,
    beam_search,
    best_of_n,
    completion_log_probs,
    distinct_n,
    expected_best_of_n,
    generate_greedy,
    generate_sampling,
    greedy,
    min_p_filter,
    next_token_probs,
    sample,
    sample_next_token,
    stop_string_hits,
    top_k_filter,
    top_p_filter,
    top_tokens,
)

SHAPES = [(1, 10), (3, 50), (4, 1000)]
SEEDS = [0, 1, 2]
UNUSED_IDS = torch.zeros(1, 1, dtype=torch.long)  # the warpers take input_ids but ignore them


def random_logits(seed: int, shape: tuple[int, int], ties: bool = False) -> torch.Tensor:
    """Random logits with a few -inf entries per row (already-banned tokens); integer-valued when ``ties``."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator) * 3
    if ties:
        logits = logits.round()
    banned = torch.rand(shape, generator=generator) < 0.1
    banned[:, 0] = False  # keep every row with at least one finite logit
    return logits.masked_fill(banned, float("-inf"))


# ------------------------------------------------------- filters = transformers processors


def random_cases(ties: bool = False) -> list[torch.Tensor]:
    """Logits for every seed and shape: the inputs on which each filter must equal its processor."""
    return [random_logits(seed, shape, ties) for seed in SEEDS for shape in SHAPES]


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_temperature_matches_transformers(temperature: float) -> None:
    warper = TemperatureLogitsWarper(temperature)
    for logits in random_cases():
        assert torch.equal(apply_temperature(logits, temperature), warper(UNUSED_IDS, logits))


@pytest.mark.parametrize("top_k", [1, 5, 40, 2000])
@pytest.mark.parametrize("ties", [False, True])
def test_top_k_matches_transformers(top_k: int, ties: bool) -> None:
    warper = TopKLogitsWarper(top_k)
    for logits in random_cases(ties):
        assert torch.equal(top_k_filter(logits, top_k), warper(UNUSED_IDS, logits))


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.9, 0.999, 1.0])
@pytest.mark.parametrize("ties", [False, True])
def test_top_p_matches_transformers(top_p: float, ties: bool) -> None:
    warper = TopPLogitsWarper(top_p)
    for logits in random_cases(ties):
        assert torch.equal(top_p_filter(logits, top_p), warper(UNUSED_IDS, logits))


@pytest.mark.parametrize("min_p", [0.0, 0.05, 0.3, 1.0])
@pytest.mark.parametrize("ties", [False, True])
def test_min_p_matches_transformers(min_p: float, ties: bool) -> None:
    warper = MinPLogitsWarper(min_p)
    for logits in random_cases(ties):
        assert torch.equal(min_p_filter(logits, min_p), warper(UNUSED_IDS, logits.clone()))


def test_min_p_keeps_tokens_relative_to_the_peak() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(min_p_filter(probs.log(), 0.25))
    assert kept.tolist() == [[True, True, True, False]]  # bar: 0.25 x 0.5 = 0.125


@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.3, 3.0])
def test_repetition_penalty_matches_transformers(penalty: float) -> None:
    processor = RepetitionPenaltyLogitsProcessor(penalty)
    generator = torch.Generator().manual_seed(0)
    for logits in random_cases():
        batch, vocab = logits.shape
        input_ids = torch.randint(0, min(vocab, 8), (batch, 12), generator=generator)  # many repeats
        expected = processor(input_ids, logits.clone())
        assert torch.equal(apply_repetition_penalty(logits, input_ids, penalty), expected)


def test_repetition_penalty_pushes_seen_tokens_down_once() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, -1.0]])
    penalised = apply_repetition_penalty(logits, torch.tensor([[0, 1, 1, 1]]), 2.0)
    assert penalised.tolist() == [[1.0, -4.0, 1.0, -1.0]]


# ------------------------------------------------------------------------ edge cases


def test_top_p_one_keeps_every_finite_token() -> None:
    logits = random_logits(0, (4, 1000))
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_top_p_boundary_keeps_exactly_top_p_mass() -> None:
    logits = torch.zeros(1, 4)  # probabilities 0.25 each: cumulative sums are exact
    for top_p, kept in [(0.5, 2), (0.75, 3), (0.76, 4)]:
        filtered = top_p_filter(logits, top_p)
        assert torch.isfinite(filtered).sum().item() == kept
        assert torch.equal(filtered, TopPLogitsWarper(top_p)(UNUSED_IDS, logits))


def test_top_p_keeps_the_smallest_nucleus() -> None:
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 1e-6)).tolist() == [[True, False, False, False]]


def test_top_k_one_equals_greedy() -> None:
    logits = random_logits(3, (16, 1000))
    assert torch.equal(sample(top_k_filter(logits, 1)), greedy(logits))
    assert torch.equal(sample_next_token(logits, top_k=1), greedy(logits))


def test_ties_greedy_takes_lowest_id_and_filters_keep_all_tied() -> None:
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0]])
    assert greedy(logits).item() == 1
    assert torch.isfinite(top_k_filter(logits, 1)).tolist() == [[False, True, True, False, True]]
    probs = apply_temperature(logits, 0.0).softmax(dim=-1)
    assert torch.allclose(probs, torch.tensor([[0.0, 1 / 3, 1 / 3, 0.0, 1 / 3]]))


def test_temperature_zero_is_greedy_even_with_ties() -> None:
    logits = random_logits(4, (32, 50), ties=True)
    generator = torch.Generator().manual_seed(0)
    chosen = sample_next_token(logits, temperature=0.0, top_k=5, top_p=0.9, generator=generator)
    assert torch.equal(chosen, greedy(logits))


def test_temperature_to_zero_converges_to_one_hot() -> None:
    logits = torch.randperm(100).float()[None] / 10  # distinct logits, gaps of 0.1
    one_hot = apply_temperature(logits, 0.0).softmax(dim=-1)
    assert one_hot.max().item() == 1.0
    assert torch.allclose(apply_temperature(logits, 1e-3).softmax(dim=-1), one_hot)
    entropies = [torch.special.entr(apply_temperature(logits, t).softmax(-1)).sum().item() for t in (0.5, 1, 2)]
    assert entropies == sorted(entropies)


def test_seeded_sampling_is_reproducible() -> None:
    logits = torch.zeros(64, 1000)  # uniform: 64 draws from 1000 tokens each

    def draw(seed: int) -> torch.Tensor:
        return sample(logits, torch.Generator().manual_seed(seed))

    global_state = torch.get_rng_state()
    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))
    assert torch.equal(torch.get_rng_state(), global_state)  # a generator leaves the global RNG alone


def test_sampling_follows_the_distribution() -> None:
    logits = torch.tensor([0.7, 0.2, 0.1]).log().expand(20000, -1)
    counts = torch.bincount(sample(logits, torch.Generator().manual_seed(0)), minlength=3)
    assert torch.allclose(counts / 20000, torch.tensor([0.7, 0.2, 0.1]), atol=0.015)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda x: top_p_filter(x, 0.0), "top_p"),
        (lambda x: top_p_filter(x, 1.5), "top_p"),
        (lambda x: top_p_filter(x, -0.1), "top_p"),
        (lambda x: top_k_filter(x, 0), "top_k"),
        (lambda x: min_p_filter(x, 1.5), "min_p"),
        (lambda x: top_k_filter(x, -3), "top_k"),
        (lambda x: top_k_filter(x, 2.5), "top_k"),
        (lambda x: apply_temperature(x, -0.5), "temperature"),
        (lambda x: sample_next_token(x, temperature=-1.0), "temperature"),
        (lambda x: sample_next_token(x, temperature=0.0, top_p=2.0), "top_p"),
        (lambda x: apply_repetition_penalty(x, torch.zeros(1, 1, dtype=torch.long), 0.0), "repetition_penalty"),
        (lambda x: distinct_n(["a b"], 0), "n"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(call, name: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(torch.zeros(1, 10))


def test_generation_rejects_bad_arguments(tiny_model: PreTrainedModel) -> None:
    prompt = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="top_k"):
        generate_sampling(tiny_model, prompt, 4, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_greedy(tiny_model, prompt, 0)
    with pytest.raises(ValueError, match="num_beams"):
        beam_search(tiny_model, prompt, 0, 4)
    with pytest.raises(ValueError, match="input_ids"):
        beam_search(tiny_model, prompt.expand(2, -1), 2, 4)
    with pytest.raises(ValueError, match="tokenizer="):
        generate_greedy(tiny_model, prompt, 4, stop_strings=["."])


# ----------------------------------------------------------------- loops, tiny model


@pytest.fixture(scope="module")
def tiny_model() -> PreTrainedModel:
    """A 2-layer random Llama with a 64-token vocabulary and no EOS: fast loops for invariants."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


def test_temperature_zero_sampling_equals_greedy_loop(tiny_model: PreTrainedModel) -> None:
    prompt = torch.tensor([[5, 6, 7], [8, 9, 10]])
    expected = generate_greedy(tiny_model, prompt, 10)
    assert expected.shape == (2, 13)
    assert torch.equal(generate_sampling(tiny_model, prompt, 10, temperature=0.0, top_k=3), expected)


def test_seeded_generation_is_reproducible(tiny_model: PreTrainedModel) -> None:
    prompt = torch.tensor([[5, 6, 7]]).expand(4, -1)

    def run(seed: int) -> torch.Tensor:
        return generate_sampling(tiny_model, prompt, 8, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_one_beam_is_greedy(tiny_model: PreTrainedModel) -> None:
    prompt = torch.tensor([[5, 6, 7]])
    (hypothesis,) = beam_search(tiny_model, prompt, 1, 8)
    assert torch.equal(hypothesis.tokens, generate_greedy(tiny_model, prompt, 8)[0, 3:])


def test_best_of_n_ranks_and_cuts_at_eos(tiny_model: PreTrainedModel) -> None:
    prompt = torch.tensor([[5, 6, 7]])
    first_draws = generate_sampling(tiny_model, prompt.expand(6, -1), 10, generator=torch.Generator().manual_seed(0))
    eos = first_draws[0, 6].item()  # a token that certainly gets drawn: some candidate must stop there
    candidates = best_of_n(tiny_model, prompt, 6, 10, generator=torch.Generator().manual_seed(0), eos_token_id=eos)
    assert len(candidates) == 6
    scores = [candidate.score for candidate in candidates]
    assert scores == sorted(scores, reverse=True)
    assert any(candidate.tokens[-1].item() == eos for candidate in candidates)
    for candidate in candidates:
        assert (candidate.tokens[:-1] != eos).all()  # EOS only as the last token, padding dropped


def test_default_scorer_is_mean_log_prob_computed_step_by_step(tiny_model: PreTrainedModel) -> None:
    prompt = torch.tensor([[5, 6, 7]])
    candidates = best_of_n(tiny_model, prompt, 3, 6, temperature=1.5, generator=torch.Generator().manual_seed(1))
    for candidate in candidates:
        steps = []
        for t in range(len(candidate.tokens)):  # no cache, one prefix at a time
            prefix = torch.cat([prompt[0], candidate.tokens[:t]])[None]
            with torch.no_grad():
                log_probs = tiny_model(input_ids=prefix).logits[0, -1].log_softmax(-1)
            steps.append(log_probs[candidate.tokens[t]].item())
        assert candidate.score == pytest.approx(sum(steps) / len(steps), abs=1e-5)


def test_best_of_n_uses_a_plugged_in_scorer(tiny_model: PreTrainedModel) -> None:
    prompt = torch.tensor([[5, 6, 7]])

    def token_sum(_prompt: torch.Tensor, completion: torch.Tensor) -> float:
        return float(completion.sum())

    candidates = best_of_n(tiny_model, prompt, 5, 4, scorer=token_sum, generator=torch.Generator().manual_seed(2))
    assert [c.score for c in candidates] == sorted((float(c.tokens.sum()) for c in candidates), reverse=True)


def test_expected_best_of_n_averages_the_pick_over_every_subset() -> None:
    """Against brute force: every n-subset of the N samples, the best-scoring one's value, averaged."""
    import itertools

    generator = torch.Generator().manual_seed(0)
    scores, values = torch.randn(3, 6, generator=generator), torch.randn(3, 6, generator=generator)
    for n in range(1, 7):
        brute = torch.tensor([[values[p, max(subset, key=lambda i: scores[p, i])].item()
                               for subset in itertools.combinations(range(6), n)] for p in range(3)]).mean(dim=1)
        torch.testing.assert_close(expected_best_of_n(scores, values, n), brute.double())
    torch.testing.assert_close(expected_best_of_n(scores, values, 1), values.double().mean(dim=1))  # n=1: any sample
    torch.testing.assert_close(expected_best_of_n(scores, scores, 6), scores.double().max(dim=1).values)


def test_expected_best_of_n_rejects_bad_shapes_and_n() -> None:
    with pytest.raises(ValueError, match="between 1 and the 4 samples"):
        expected_best_of_n(torch.zeros(2, 4), torch.zeros(2, 4), 5)
    with pytest.raises(ValueError, match="one \\(prompts, N\\) shape"):
        expected_best_of_n(torch.zeros(2, 4), torch.zeros(2, 3), 2)


# ---------------------------------------------------------------------------- distinct-n


@pytest.mark.parametrize(
    ("texts", "n", "expected"),
    [
        (["a b a b"], 1, 2 / 4),
        (["a b a b"], 2, 2 / 3),
        (["the cat", "the dog"], 1, 3 / 4),
        (["the cat", "the dog"], 2, 1.0),
        (["the cat sat", "the cat ran"], 2, 3 / 4),
        ([[1, 2, 3], [1, 2, 4]], 2, 3 / 4),
        (["same same same"], 3, 1.0),
        (["too short"], 3, 0.0),
        ([], 1, 0.0),
    ],
)
def test_distinct_n_hand_computed(texts, n: int, expected: float) -> None:
    assert distinct_n(texts, n) == pytest.approx(expected)


# ---------------------------------------------------------- real model vs model.generate


@pytest.fixture(scope="module")
def smollm() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    return load_model("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")


def chat_prompt(tokenizer: PreTrainedTokenizerBase, question: str) -> torch.Tensor:
    """The ids of a one-turn chat ready for the assistant's answer, shape (1, prompt_len)."""
    return torch.tensor([prompt_ids(tokenizer, question)])


def hf_generate(model: PreTrainedModel, input_ids: torch.Tensor, **kwargs):
    """``model.generate`` on unpadded prompts (explicit all-ones attention mask)."""
    return model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)


@pytest.mark.real_model
def test_greedy_equals_generate(smollm) -> None:
    model, tokenizer = smollm
    prompt = chat_prompt(tokenizer, "Name a colour.")
    ours = generate_greedy(model, prompt, 12)
    assert ours.shape == (1, prompt.shape[1] + 12)
    assert torch.equal(ours, hf_generate(model, prompt, do_sample=False, max_new_tokens=12))


@pytest.mark.real_model
def test_seeded_sampling_equals_generate(smollm) -> None:
    model, tokenizer = smollm
    prompt = chat_prompt(tokenizer, "Name a colour.").expand(2, -1)
    settings = dict(temperature=0.8, top_k=40, top_p=0.9, repetition_penalty=1.2)
    ours = generate_sampling(model, prompt, 12, generator=torch.Generator().manual_seed(7), **settings)
    torch.manual_seed(7)
    theirs = hf_generate(model, prompt, do_sample=True, max_new_tokens=12, **settings)
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours[0], ours[1])


@pytest.mark.real_model
def test_min_p_sampling_equals_generate(smollm) -> None:
    model, tokenizer = smollm
    prompt = chat_prompt(tokenizer, "Name a colour.").expand(2, -1)
    ours = generate_sampling(model, prompt, 12, temperature=1.5, min_p=0.1, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(3)
    theirs = hf_generate(model, prompt, do_sample=True, max_new_tokens=12, temperature=1.5, min_p=0.1, top_k=None)
    assert torch.equal(ours, theirs)


@pytest.mark.real_model
@pytest.mark.parametrize("stop", [".", " and", "ing"])  # a whole token, a word with its space, the end of a token
def test_stop_strings_equal_generate(smollm, stop: str) -> None:
    model, tokenizer = smollm
    prompt = chat_prompt(tokenizer, "Describe sushi and ramen in three sentences.")
    ours = generate_greedy(model, prompt, 40, stop_strings=[stop], tokenizer=tokenizer)
    theirs = hf_generate(model, prompt, do_sample=False, max_new_tokens=40, stop_strings=[stop], tokenizer=tokenizer)
    assert torch.equal(ours, theirs)
    text = tokenizer.decode(ours[0, prompt.shape[1] :])
    assert stop in text and ours.shape[1] < prompt.shape[1] + 40, text


@pytest.mark.real_model
def test_stop_string_hits_only_when_the_last_token_completes_it(smollm) -> None:
    _, tokenizer = smollm
    ids = tokenizer("we stop at noon", add_special_tokens=False)["input_ids"]
    stop_at = next(n for n in range(1, len(ids) + 1) if "stop" in tokenizer.decode(ids[:n]))
    hits = [bool(stop_string_hits(tokenizer, torch.tensor([ids[:n]]), ["stop"])) for n in range(1, len(ids) + 1)]
    assert hits == [n == stop_at for n in range(1, len(ids) + 1)]


@pytest.mark.real_model
@pytest.mark.parametrize(
    ("num_beams", "length_penalty", "early_stopping"),
    [
        (3, 1.0, False),  # hypotheses end with EOS, the running beams cannot catch up: stops early
        (2, 2.0, "never"),  # a strong length penalty lets a long answer win
        (2, 0.0, True),  # raw sums; stops once two hypotheses exist; "No<EOS>" ranks 3rd and must be dropped
    ],
)
def test_beam_search_equals_generate(smollm, num_beams: int, length_penalty: float, early_stopping) -> None:
    model, tokenizer = smollm
    prompt = chat_prompt(tokenizer, "Reply with one word: yes or no. Is water wet?")
    ours = beam_search(model, prompt, num_beams, 12, length_penalty=length_penalty, early_stopping=early_stopping)
    theirs = hf_generate(
        model,
        prompt,
        do_sample=False,
        num_beams=num_beams,
        num_return_sequences=num_beams,
        max_new_tokens=12,
        length_penalty=length_penalty,
        early_stopping=early_stopping,
        output_scores=True,
        return_dict_in_generate=True,
    )
    assert len(ours) == num_beams
    for hypothesis, sequence in zip(ours, theirs.sequences):
        generated = sequence[prompt.shape[1] :]
        assert torch.equal(hypothesis.tokens, generated[: len(hypothesis.tokens)])
        assert (generated[len(hypothesis.tokens) :] == tokenizer.pad_token_id).all()
    assert [h.score for h in ours] == pytest.approx(theirs.sequences_scores.tolist(), abs=1e-5)


@pytest.mark.real_model
def test_completion_log_probs_match_generate_scores(smollm) -> None:
    model, tokenizer = smollm
    prompt = chat_prompt(tokenizer, "Name a colour.")
    out = hf_generate(
        model, prompt, do_sample=False, max_new_tokens=6, output_logits=True, return_dict_in_generate=True
    )
    expected = model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)[0]
    ours = completion_log_probs(model, prompt[0], out.sequences[0, prompt.shape[1] :])
    assert torch.allclose(ours, expected, atol=1e-3)  # full pass vs cached steps: float32 noise


@pytest.mark.real_model
def test_next_token_distribution_and_top_tokens(smollm) -> None:
    model, tokenizer = smollm
    prompt = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    probs = next_token_probs(model, prompt)
    assert probs.shape == (1, model.config.vocab_size)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-4)  # float32 softmax over 49,152 entries
    top = top_tokens(probs[0], tokenizer, k=5)
    assert top[0][0] == " Paris"
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    cold, hot = next_token_probs(model, prompt, 0.5), next_token_probs(model, prompt, 2.0)
    assert cold.max() > probs.max() > hot.max()
    assert next_token_probs(model, prompt, 0.0)[0, greedy(probs).item()].item() == 1.0
