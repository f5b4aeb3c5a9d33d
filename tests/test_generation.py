"""generate() with the static cache, left-padded batches and sampling, against eager dynamic-cache generation
and a plain loop of cacheless forwards; the compiled decoding step."""

import pytest
import torch
from transformers import CompileConfig
from transformers.cache_utils import DynamicCache, StaticCache

import coe.nn.attention
from coe import CoEConfig, CoEForCausalLM
from coe.generation import fast_generate_kwargs
from coe.modeling import CACHE_FIELD

NEW = 6
ATTENTIONS = {
    "mla": dict(),
    "mla-decompressed": dict(mla_absorb=False),
    "gqa": dict(attention="gqa", num_key_value_heads=1),
}


def tiny_model(preset: str = "coe-2-4-64", **overrides) -> CoEForCausalLM:
    return CoEForCausalLM(CoEConfig.from_preset(preset, size="tiny", **overrides)).eval()


def left_padded(lengths: list[int], vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, max length) random prompts of the given lengths, left-padded with token 0, and their mask."""
    S = max(lengths)
    ids = torch.zeros(len(lengths), S, dtype=torch.long)
    mask = torch.zeros(len(lengths), S, dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, S - n :] = torch.randint(1, vocab_size, (n,))
        mask[b, S - n :] = 1
    return ids, mask


def greedy(model: CoEForCausalLM, ids: torch.Tensor, mask: torch.Tensor, **kwargs) -> torch.Tensor:
    out = model.generate(
        ids, attention_mask=mask, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, **kwargs
    )
    return out[:, ids.shape[1] :]


@torch.no_grad()
def cacheless_greedy(model: CoEForCausalLM, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reference: every step a full forward of the padded rows without a cache (padding attends to
    nothing and is not attended to), positions counted from each row's first real token."""
    for _ in range(NEW):
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        logits = model(ids, attention_mask=mask, position_ids=positions, use_cache=False).logits
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return ids[:, -NEW:]


@pytest.mark.parametrize("attention", list(ATTENTIONS))
@pytest.mark.parametrize("preset", ["moe-8-64", "coe-2-4-64"])
def test_static_cache_gives_the_tokens_of_the_dynamic_cache_and_of_a_plain_loop(preset, attention):
    model = tiny_model(preset, **ATTENTIONS[attention])
    ids, mask = left_padded([9, 4, 7], model.config.vocab_size)
    expected = cacheless_greedy(model, ids, mask)
    assert torch.equal(greedy(model, ids, mask), expected)
    assert torch.equal(greedy(model, ids, mask, cache_implementation="static"), expected)


@pytest.mark.parametrize("cache", ["dynamic", "static"])
@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_left_padded_batch_gives_each_sequence_its_tokens_alone(attention, cache):
    model = tiny_model(**ATTENTIONS[attention])
    lengths = [3, 8, 5]
    ids, mask = left_padded(lengths, model.config.vocab_size)
    batched = greedy(model, ids, mask, cache_implementation=cache)
    for b, n in enumerate(lengths):
        row = ids[b : b + 1, ids.shape[1] - n :]
        alone = greedy(model, row, torch.ones_like(row), cache_implementation=cache)
        assert torch.equal(batched[b : b + 1], alone), b


def test_static_cache_keeps_mla_latent_and_gqa_key_value_heads():
    """The static cache holds what the dynamic one does: MLA's latent (L) and rotary key (R) once per position
    for all heads, GQA's G key and value heads."""
    for attention, shapes in [("mla", [(1, 16), (1, 8)]), ("gqa", [(1, 16), (1, 16)])]:
        model = tiny_model(**ATTENTIONS[attention])
        cache = StaticCache(config=model.config, max_cache_len=12)
        ids = torch.randint(0, model.config.vocab_size, (2, 5))
        with torch.no_grad():
            out = model(ids, cache=cache, use_cache=True)
        layer = getattr(out, CACHE_FIELD).layers[0]
        assert [(t.shape[1], t.shape[3]) for t in (layer.keys, layer.values)] == shapes
        assert layer.keys.shape[:3] == (2, 1, 12)


@torch.no_grad()
def test_static_cache_forward_by_hand_equals_cacheless_logits():
    """A plain forward loop against a StaticCache (2-D padding mask, positions from the cache) gives the
    logits of the full forward."""
    model = tiny_model()
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    full = model(ids, use_cache=False).logits
    cache = StaticCache(config=model.config, max_cache_len=16)
    parts = [model(ids[:, :5], cache=cache, use_cache=True).logits]
    for i in range(5, 9):
        mask = torch.ones(2, i + 1, dtype=torch.long)
        parts.append(model(ids[:, i : i + 1], attention_mask=mask, cache=cache, use_cache=True).logits)
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", list(ATTENTIONS))
@torch.no_grad()
def test_static_cache_prefill_attends_to_the_prompt_alone_and_gives_the_dynamic_cache_logits(
    attention, monkeypatch
):
    """A prefill into an empty static cache attends to the prompt's positions, not to all the cache's slots:
    its logits equal the dynamic cache's at every position (padding rows too, which saw the free slots
    before), and every attention sees S keys."""
    model = tiny_model(**ATTENTIONS[attention])
    ids, mask = left_padded([9, 4, 7], model.config.vocab_size)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    inputs = dict(attention_mask=mask, position_ids=positions, use_cache=True)
    dynamic = model(ids, cache=DynamicCache(), **inputs).logits
    keys_seen = []
    attend = coe.nn.attention.attend

    def recording_attend(q, k, v, **kwargs):
        keys_seen.append(k.shape[2])
        return attend(q, k, v, **kwargs)

    monkeypatch.setattr(coe.nn.attention, "attend", recording_attend)
    static = model(ids, cache=StaticCache(config=model.config, max_cache_len=32), **inputs).logits
    assert keys_seen == [ids.shape[1]] * model.config.num_hidden_layers
    assert torch.equal(static, dynamic)


def test_static_cache_decodes_the_dynamic_cache_s_logits_in_bf16():
    """Eagerly, MLA's static cache rounds as the dynamic cache does in bf16: the same logits at every one of
    64 greedy steps (left-padded rows), so the same tokens; before the prefill attended to the filled prefix
    alone they differed. (GQA's decoding steps attend through SDPA over all slots, which rounds differently
    from the dynamic cache's shorter rows; compiled decoding steps round differently too: docs/performance.md,
    Generation.)"""
    model = tiny_model().to(torch.bfloat16)
    ids, mask = left_padded([9, 4, 7, 2], model.config.vocab_size)
    options = dict(max_new_tokens=64, min_new_tokens=64, do_sample=False, pad_token_id=0)
    options.update(output_logits=True, return_dict_in_generate=True)
    dynamic = model.generate(ids, attention_mask=mask, **options)
    static = model.generate(ids, attention_mask=mask, cache_implementation="static", **options)
    assert torch.equal(static.sequences, dynamic.sequences)
    assert all(torch.equal(a, b) for a, b in zip(static.logits, dynamic.logits, strict=True))


@pytest.mark.parametrize("attention", list(ATTENTIONS))
def test_static_cache_under_autocast_holds_keys_and_values_in_one_dtype(attention, monkeypatch):
    """Under bf16 autocast (the trainer's exact-match decoding on CUDA) MLA's normed latent is float32 and its
    rotary key bf16. transformers 5.17's static layers hold values in the keys' dtype, which failed in
    index_copy_; imitated here, the static cache must give the dynamic cache's tokens."""
    from transformers.cache_utils import StaticLayer

    initialize = StaticLayer.lazy_initialization

    def values_in_keys_dtype(self, key_states, value_states):
        initialize(self, key_states, value_states)
        self.values = self.values.to(key_states.dtype)

    monkeypatch.setattr(StaticLayer, "lazy_initialization", values_in_keys_dtype)
    model = tiny_model(**ATTENTIONS[attention])
    ids, mask = left_padded([9, 4, 7], model.config.vocab_size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dynamic = greedy(model, ids, mask, pad_token_id=0)
        static = greedy(model, ids, mask, pad_token_id=0, cache_implementation="static")
    assert torch.equal(static, dynamic)


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_sampling_is_seeded_and_valid(cache):
    model = tiny_model()
    ids, mask = left_padded([6, 3], model.config.vocab_size)
    options = dict(do_sample=True, temperature=0.8, top_k=20, top_p=0.9, max_new_tokens=NEW)
    options["min_new_tokens"] = NEW

    def sample(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return model.generate(ids, attention_mask=mask, cache_implementation=cache, **options)

    first, again, other = sample(1), sample(1), sample(2)
    assert first.shape == (2, ids.shape[1] + NEW)
    assert torch.equal(first[:, : ids.shape[1]], ids)
    assert first.min() >= 0 and first.max() < model.config.vocab_size
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def counting_backend(graphs: list):
    """A torch.compile backend that records each graph it is given and runs it as traced (no code
    generation: the test checks what is captured, quickly)."""

    def backend(gm: torch.fx.GraphModule, example_inputs):
        graphs.append(gm)
        return gm.forward

    return backend


@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_compiled_decoding_is_one_graph_and_gives_the_eager_tokens(attention):
    """generate() with the static cache compiles the decoding step (transformers' own path: prefill eager,
    decoding steps through ``get_compiled_call``) as one full graph, which no host sync could be part of,
    traced once for all steps and for a second call."""
    torch._dynamo.reset()
    model = tiny_model(expert_backend="adaptive", **ATTENTIONS[attention])
    ids, mask = left_padded([6, 4], model.config.vocab_size)
    expected = greedy(model, ids, mask)
    graphs = []
    compile_config = CompileConfig(fullgraph=True, backend=counting_backend(graphs), mode=None)
    compile_config._compile_all_devices = True  # transformers compiles on accelerators only by default
    for _ in range(2):
        out = greedy(model, ids, mask, cache_implementation="static", compile_config=compile_config)
        assert torch.equal(out, expected)
    assert len(graphs) == 1


def test_fast_generate_kwargs_compile_the_decoding_step_on_every_device():
    for device, mode in [("cpu", "default"), ("cuda", "reduce-overhead")]:
        kwargs = fast_generate_kwargs(torch.device(device))
        assert kwargs["cache_implementation"] == "static"
        config = kwargs["compile_config"]
        assert config.fullgraph and config.mode == mode
        assert bool(config._compile_all_devices) == (device == "cpu")
    assert fast_generate_kwargs(torch.device("cpu"), compile=False) == dict(
        cache_implementation="static", disable_compile=True
    )


@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_chunked_prefill_into_a_static_cache(attention):
    """transformers preallocates the static cache before a chunked prefill; MLA's is left to take its latent
    shapes (one size for keys and values would not fit them)."""
    model = tiny_model(**ATTENTIONS[attention])
    ids, mask = left_padded([9, 7], model.config.vocab_size)
    chunked = greedy(
        model, ids, mask, cache_implementation="static", prefill_chunk_size=4, disable_compile=True
    )
    assert torch.equal(chunked, greedy(model, ids, mask))
