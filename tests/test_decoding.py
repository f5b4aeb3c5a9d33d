"""StepDecoder (coe.decoding) against generate() and a plain loop of cacheless forwards: the same tokens for
left-padded batches, the same stopping at end tokens, valid seeded samples, the compiled step; and pick()'s
sampling (transformers' warpers) against the distribution they define."""

import pytest
import torch
from torch._dynamo.utils import counters

from coe.decoding import StepDecoder, pick, sampling_warpers
from coe.generation import decode_kwargs
from tests.test_generation import ATTENTIONS, NEW, cacheless_greedy, left_padded, tiny_model


@pytest.mark.parametrize("attention", list(ATTENTIONS))
@pytest.mark.parametrize("preset", ["moe-8-64", "coe-2-4-64"])
def test_greedy_tokens_equal_a_plain_loop_and_generate(preset, attention):
    torch.manual_seed(0)
    model = tiny_model(preset, **ATTENTIONS[attention])
    ids, mask = left_padded([9, 4, 7], model.config.vocab_size)
    got = StepDecoder(model, compile=False).generate(ids, mask, max_new_tokens=NEW)
    assert torch.equal(got[:, : ids.shape[1]], ids)
    assert torch.equal(got[:, ids.shape[1] :], cacheless_greedy(model, ids, mask))
    want = model.generate(ids, attention_mask=mask, max_new_tokens=NEW, do_sample=False, pad_token_id=0)
    assert torch.equal(got, want)


@pytest.mark.parametrize("check_every", [1, 4, 16])
def test_end_tokens_stop_rows_as_generate_does(check_every):
    """A row that produced an end token continues with padding; the output ends where generate()'s does
    (after the step at which the last row finished), however often the host looks."""
    torch.manual_seed(1)
    model = tiny_model()
    ids, mask = left_padded([5, 8, 3, 6], model.config.vocab_size)
    free = StepDecoder(model, compile=False).generate(ids, mask, max_new_tokens=12)[:, ids.shape[1] :]
    # End tokens the rows produce on their own, at different steps: row 0's third and row 2's fifth token.
    eos = [int(free[0, 2]), int(free[2, 4])]
    kwargs = dict(max_new_tokens=12, eos_token_id=eos, pad_token_id=0)
    got = StepDecoder(model, compile=False, check_every=check_every).generate(ids, mask, **kwargs)
    want = model.generate(ids, attention_mask=mask, do_sample=False, **kwargs)
    assert torch.equal(got, want)
    assert (got[:, ids.shape[1] :] == 0).any()  # some row finished and was padded


def test_every_row_finished_ends_early():
    torch.manual_seed(2)
    model = tiny_model("moe-8-64")
    ids, mask = left_padded([4, 4], model.config.vocab_size)
    free = StepDecoder(model, compile=False).generate(ids, mask, max_new_tokens=8)[:, ids.shape[1] :]
    eos = sorted({int(free[0, 1]), int(free[1, 1])})  # both rows end by their second new token
    got = StepDecoder(model, compile=False, check_every=2).generate(
        ids, mask, max_new_tokens=40, eos_token_id=eos, pad_token_id=0
    )
    want = model.generate(ids, attention_mask=mask, max_new_tokens=40, eos_token_id=eos, pad_token_id=0)
    assert torch.equal(got, want) and got.shape[1] <= ids.shape[1] + 2


def test_compiled_step_gives_the_eager_tokens():
    torch.manual_seed(3)
    model = tiny_model(num_hidden_layers=1)
    ids, mask = left_padded([6, 3], model.config.vocab_size)
    torch._dynamo.reset()
    compiled = StepDecoder(model, compile=True)
    eager = StepDecoder(model, compile=False).generate(ids, mask, max_new_tokens=NEW)
    assert torch.equal(compiled.generate(ids, mask, max_new_tokens=NEW), eager)
    # Other prompt and output lengths of the same batch size reuse the compiled step (the cache length is
    # rounded up), with the eager tokens.
    graphs = counters["stats"]["unique_graphs"]
    ids, mask = left_padded([2, 9], model.config.vocab_size)
    eager = StepDecoder(model, compile=False).generate(ids, mask, max_new_tokens=2 * NEW)
    assert torch.equal(compiled.generate(ids, mask, max_new_tokens=2 * NEW), eager)
    assert counters["stats"]["unique_graphs"] == graphs


def test_sampling_is_seeded_and_draws_from_the_warped_distribution():
    model = tiny_model()
    ids, mask = left_padded([5, 7], model.config.vocab_size)
    decoder = StepDecoder(model, compile=False)
    kwargs = dict(max_new_tokens=NEW, do_sample=True, temperature=0.8, top_k=5)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(decoder.generate(ids, mask, **kwargs))
    assert torch.equal(runs[0], runs[1])
    # Each sampled token is among the top 5 of the logits after the tokens before it.
    with torch.no_grad():
        for b in range(2):
            row = runs[0][b : b + 1, ids.shape[1] - int(mask[b].sum()) :]
            logits = model(row, use_cache=False).logits[0]
            n = row.shape[1] - NEW
            for i in range(NEW):
                top = logits[n + i - 1].topk(5).indices
                assert row[0, n + i] in top, (b, i)


def test_pick_matches_the_warped_softmax():
    """Sample frequencies of pick() against the distribution top-k, top-p and temperature define."""
    torch.manual_seed(4)
    logits = torch.randn(1, 12)
    T, k, p = 0.7, 6, 0.8
    scaled = logits[0] / T
    keep = scaled >= scaled.topk(k).values[-1]
    probs = torch.where(keep, scaled, float("-inf")).softmax(-1)
    order = probs.argsort(descending=True)
    mass = probs[order].cumsum(0)
    nucleus = order[: int((mass < p).sum()) + 1]  # the smallest set reaching p
    want = torch.zeros(12)
    want[nucleus] = probs[nucleus] / probs[nucleus].sum()
    draws = pick(logits.expand(200_000, -1), sampling_warpers(T, k, p))
    got = torch.bincount(draws, minlength=12).float() / draws.numel()
    assert torch.allclose(got, want, atol=4e-3), (got, want)
    assert torch.equal(pick(logits, None), logits.argmax(-1))


def test_bad_arguments_are_refused():
    model = tiny_model()
    ids = torch.ones(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="check_every"):
        StepDecoder(model, check_every=0)
    decoder = StepDecoder(model, compile=False)
    with pytest.raises(ValueError, match="max_new_tokens"):
        decoder.generate(ids, max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        decoder.generate(ids, max_new_tokens=2, do_sample=True, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        decoder.generate(ids, max_new_tokens=2, top_p=1.5)
    with pytest.raises(ValueError, match="pad_token_id"):
        decoder.generate(ids, max_new_tokens=2, eos_token_id=3)


def test_generate_arguments_of_the_loop_are_refused():
    """The loop is a decode path of `coe generate` but gives no generate() arguments (exact-match decoding,
    which needs generate()'s stopping criteria, refuses it)."""
    with pytest.raises(ValueError, match="outside generate"):
        decode_kwargs("loop", torch.device("cpu"))
