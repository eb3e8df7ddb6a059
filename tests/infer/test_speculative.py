from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from course_lib.infer.speculative import NgramDraft, accepted_length, speculative_greedy
from course_lib.model.layer_dropping import drop_layers


def llama(seed: int, layers: int = 4) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def plain_greedy(model, ids, max_new_tokens, eos_token_id=None):
    output = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0,
                            eos_token_id=eos_token_id)
    return output[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize("draft_tokens", [1, 3, 5])
@pytest.mark.parametrize("draft_kind", ["itself", "layer-dropped", "unrelated"])
def test_speculative_greedy_equals_plain_greedy(draft_kind, draft_tokens):
    target = llama(0)
    draft = {"itself": target, "layer-dropped": drop_layers(target, [1, 3]), "unrelated": llama(1, layers=1)}[draft_kind]
    ids = torch.tensor([[7, 3, 19, 40]])
    output = speculative_greedy(target, draft, ids, max_new_tokens=17, draft_tokens=draft_tokens)
    assert output.tokens == plain_greedy(target, ids, 17)
    assert output.accepted <= output.drafted
    if draft_kind == "itself":  # a perfect draft: every guess kept, one target pass per draft_tokens + 1 tokens
        assert output.acceptance_rate == 1.0
        assert output.target_passes == -(-17 // (draft_tokens + 1))


class AlwaysGuesses(torch.nn.Module):
    """A draft that proposes the same token after every prefix."""

    def __init__(self, token: int, vocab_size: int):
        super().__init__()
        self.token, self.vocab_size = token, vocab_size

    def forward(self, input_ids, **kwargs):
        logits = torch.nn.functional.one_hot(torch.full_like(input_ids, self.token), self.vocab_size).float()
        return SimpleNamespace(logits=logits)


def test_a_wrong_draft_costs_passes_not_correctness():
    target = llama(0)
    ids = torch.tensor([[7, 3, 19, 40]])
    reference = plain_greedy(target, ids, 12)
    never_chosen = next(token for token in range(64) if token not in reference)
    output = speculative_greedy(target, AlwaysGuesses(never_chosen, 64), ids, max_new_tokens=12, draft_tokens=4)
    assert output.tokens == reference
    assert output.accepted == 0 and output.acceptance_rate == 0.0
    assert output.target_passes == 12  # one token per target pass: plain greedy decoding, plus the wasted guesses


@pytest.mark.parametrize("max_new_tokens", [1, 2, 5])
def test_no_draft_is_wasted_on_the_last_token(max_new_tokens):
    target = llama(0)
    ids = torch.tensor([[7, 3, 19, 40]])
    output = speculative_greedy(target, target, ids, max_new_tokens=max_new_tokens, draft_tokens=4)
    assert output.tokens == plain_greedy(target, ids, max_new_tokens)
    assert output.drafted == max_new_tokens - 1  # the target's own token is always the last one
    if max_new_tokens == 1:
        assert output.acceptance_rate == 0.0


@pytest.mark.parametrize("eos_from", ["an accepted guess", "the target's own token"])
def test_eos_ends_the_reply_whoever_produced_it(eos_from):
    target = llama(0)
    ids = torch.tensor([[7, 3, 19, 40]])
    reference = plain_greedy(target, ids, 12)
    eos = reference[2]
    # A perfect draft proposing 4 tokens: the third token arrives as a guess; proposing 2, as the target's own token.
    output = speculative_greedy(target, target, ids, max_new_tokens=12,
                                draft_tokens=4 if eos_from == "an accepted guess" else 2, eos_token_id=eos)
    assert output.tokens == reference[: reference.index(eos) + 1] == plain_greedy(target, ids, 12, eos_token_id=eos)
    assert output.target_passes == 1


def test_speculative_greedy_stops_at_the_end_of_sequence():
    target = llama(0)
    ids = torch.tensor([[7, 3, 19, 40]])
    reference = plain_greedy(target, ids, 12)
    eos = reference[5]  # pretend the sixth greedy token ends the reply
    expected = reference[: reference.index(eos) + 1]
    output = speculative_greedy(target, drop_layers(target, [0, 3]), ids, max_new_tokens=12, draft_tokens=3,
                                eos_token_id=eos)
    assert output.tokens == expected == plain_greedy(target, ids, 12, eos_token_id=eos)


@pytest.mark.parametrize(("ids", "kwargs", "message"), [
    (torch.tensor([[1, 2], [3, 4]]), {}, "one prompt"),
    (torch.tensor([1, 2]), {}, "one prompt"),
    (torch.tensor([[1, 2]]), {"draft_tokens": 0}, ">= 1"),
    (torch.tensor([[1, 2]]), {"max_new_tokens": 0}, ">= 1"),
])
def test_speculative_greedy_refuses_bad_input(ids, kwargs, message):
    with pytest.raises(ValueError, match=message):
        speculative_greedy(llama(0), llama(0), ids, **({"max_new_tokens": 4} | kwargs))


@pytest.mark.parametrize(("guesses", "choices", "expected"), [
    ([4, 5, 6], [4, 5, 6, 7], 3), ([4, 5, 6], [4, 9, 6, 7], 1), ([4, 5, 6], [1, 5, 6, 7], 0), ([], [3], 0),
])
def test_accepted_length_stops_at_the_first_disagreement(guesses, choices, expected):
    assert accepted_length(torch.tensor(guesses, dtype=torch.long), torch.tensor(choices)) == expected


def test_accepted_length_needs_a_choice_per_guess():
    with pytest.raises(ValueError, match="must judge every guess"):
        accepted_length(torch.tensor([1, 2, 3]), torch.tensor([1, 2]))


@pytest.mark.parametrize("sequence, corpus, expected", [
    ([1, 2, 3, 9, 1, 2], [], [3, 9, 1]),  # prompt lookup: what followed (1, 2) earlier in the sequence
    ([5, 6], [[4, 5, 6, 7, 8]], [7, 8]),  # the corpus, cut at its end
    ([5, 1, 2], [[2, 9], [1, 2, 7]], [7]),  # the longest matching tail wins over a shorter one met first
    ([3, 4], [[1, 2]], []),  # nothing matches: no guess
])
def test_the_ngram_draft_copies_what_followed_the_tail(sequence, corpus, expected):
    assert NgramDraft(corpus, max_ngram=3).propose(sequence, 3) == expected


def test_the_ngram_draft_needs_an_ngram():
    with pytest.raises(ValueError, match="max_ngram must be >= 1, got 0"):
        NgramDraft([[1, 2]], max_ngram=0)


def test_an_ngram_draft_of_the_reply_saves_target_passes_and_changes_nothing():
    target = llama(0)
    ids = torch.tensor([[7, 3, 19, 40]])
    reference = plain_greedy(target, ids, 16)
    output = speculative_greedy(target, NgramDraft([ids[0].tolist() + reference]), ids, max_new_tokens=16,
                                draft_tokens=4)
    assert output.tokens == reference
    assert output.accepted > 0 and output.target_passes < len(reference)
    lookup_only = speculative_greedy(target, NgramDraft([]), ids, max_new_tokens=16, draft_tokens=4)
    assert lookup_only.tokens == reference
    transformers_lookup = target.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=0,
                                          prompt_lookup_num_tokens=4)[0, ids.shape[1]:].tolist()
    assert transformers_lookup == reference
