"""MLA decoding with the absorbed projections against the decompressed path: the attention functions, the
module against a cache, and greedy generation."""

import pytest
import torch
from transformers.cache_utils import DynamicCache

from coe import CoEConfig, CoEForCausalLM
from coe.nn import attention
from coe.nn.attention import (
    MultiHeadLatentAttention,
    RotaryEmbedding,
    causal_mask,
    decompressed_attention,
    latent_attention,
    latent_attention_is_cheaper,
)
from tests.conftest import rel_err

B, H, N, R, V, L = 3, 4, 8, 6, 10, 16


def reference_attention(q_nope, q_pe, latent, k_pe, w_kv, mask, scale):
    """Plain loops over batch and heads: decompressed keys and values, softmax of masked scores."""
    out = torch.zeros(q_nope.shape[0], q_nope.shape[2], H, V, dtype=q_nope.dtype)
    for b in range(q_nope.shape[0]):
        for h in range(H):
            k_nope, v = (latent[b, 0] @ w_kv[h].T).split((N, V), dim=-1)  # (P, N), (P, V)
            scores = (q_nope[b, h] @ k_nope.T + q_pe[b, h] @ k_pe[b, 0].T) * scale  # (S, P)
            if mask is not None:
                scores = scores.masked_fill(~mask[b if mask.shape[0] > 1 else 0, 0], float("-inf"))
            out[b, :, h] = scores.softmax(-1) @ v
    return out.flatten(2)


def random_inputs(S, P, dtype):
    g = torch.Generator().manual_seed(S * 100 + P)
    return (
        torch.randn(B, H, S, N, generator=g, dtype=dtype),
        torch.randn(B, H, S, R, generator=g, dtype=dtype),
        torch.randn(B, 1, P, L, generator=g, dtype=dtype),
        torch.randn(B, 1, P, R, generator=g, dtype=dtype),
        torch.randn(H, N + V, L, generator=g, dtype=dtype) * L**-0.5,
    )


PADDING = torch.tensor(
    [[1] * 9, [0, 0, 0] + [1] * 6, [0] + [1] * 8]
)  # left padding, as in batched generation


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("S", [1, 3])
@pytest.mark.parametrize("padded", [False, True])
def test_latent_attention_equals_decompressed(dtype, tol, S, padded):
    """Last S of P = 9 positions, with a random cache and weights, with and without left padding."""
    P = 9
    inputs = random_inputs(S, P, dtype)
    mask = causal_mask(PADDING if padded else None, S, P, torch.device("cpu"))
    scale = (N + R) ** -0.5
    latent = latent_attention(*inputs, mask=mask, scale=scale)
    decompressed = decompressed_attention(*inputs, mask=mask, scale=scale)
    expected = reference_attention(*inputs, mask, scale)
    assert latent.shape == decompressed.shape == (B, S, H * V)
    assert rel_err(decompressed, expected) < tol
    assert rel_err(latent, expected) < tol
    if padded:  # the padding changes the answer: the test would see a mask dropped
        unpadded = latent_attention(*inputs, mask=causal_mask(None, S, P, torch.device("cpu")), scale=scale)
        assert rel_err(unpadded, latent) > 1e-3


def test_latent_attention_without_mask_is_causal():
    """mask None means causal over the last S positions (what SDPA's is_causal means for the decompressed
    path), for one query and for several."""
    for S, P in [(1, 7), (4, 4), (3, 8)]:
        inputs = random_inputs(S, P, torch.float64)
        full = causal_mask(torch.ones(1, P), S, P, torch.device("cpu"))
        expected = reference_attention(*inputs, full, 0.3)
        assert rel_err(latent_attention(*inputs, mask=None, scale=0.3), expected) < 1e-12


def test_decoding_steps_choose_the_latent_path():
    sizes = dict(L=512, N=128, R=64, V=128)  # DeepSeek-V2's
    assert latent_attention_is_cheaper(1, 2, **sizes) and latent_attention_is_cheaper(1, 4096, **sizes)
    assert latent_attention_is_cheaper(8, 4096, **sizes)
    assert not latent_attention_is_cheaper(512, 512, **sizes)  # prefill decompresses
    assert not latent_attention_is_cheaper(1024, 4096, **sizes)


def tiny_config(**overrides) -> CoEConfig:
    fields = dict(
        vocab_size=97,
        hidden_size=48,
        num_hidden_layers=2,
        intermediate_size=80,
        num_attention_heads=4,
        q_lora_rank=20,
        kv_lora_rank=24,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=12,
        n_routed_experts=9,
        n_shared_experts=1,
        num_experts_per_tok=3,
        moe_intermediate_size=20,
        max_position_embeddings=256,
        initializer_range=0.2,
    )
    return CoEConfig(**{**fields, **overrides})


class Spy:
    """Counts the calls of an attention function while forwarding them."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_module_decode_step_with_a_cache(monkeypatch, dtype, tol):
    """The module's decoding steps against a cache: absorbed (the default) equals decompressed."""
    config = tiny_config(rope_parameters={"rope_type": "yarn", "factor": 4.0, "mscale_all_dim": 1.0})
    attn = MultiHeadLatentAttention(config, 0).eval().to(dtype)
    rope_emb = RotaryEmbedding(config)
    spy = Spy(latent_attention)
    monkeypatch.setattr(attention, "latent_attention", spy)
    x = torch.randn(2, 10, 48, dtype=dtype)
    outs = {}
    for absorb in (True, False):
        attn.absorb = absorb
        cache = DynamicCache()
        pos = torch.arange(10)[None]
        rope = tuple(t.to(dtype) for t in rope_emb(x, pos))
        with torch.no_grad():
            prefill = attn(x[:, :7], tuple(t[:, :7] for t in rope), None, cache)
            steps = [
                attn(
                    x[:, i : i + 1],
                    tuple(t[:, i : i + 1] for t in rope),
                    causal_mask(None, 1, i + 1, x.device),
                    cache,
                )
                for i in range(7, 10)
            ]
        outs[absorb] = torch.cat([prefill, *steps], dim=1)
    assert spy.calls == 3  # the three steps with absorb on; the prefill decompresses
    assert rel_err(outs[True], outs[False]) < tol
    with torch.no_grad():
        whole = attn(x, rope, None)  # no cache: the decompressed path, causal
    assert rel_err(outs[True], whole) < tol


def test_generate_gives_the_same_tokens_absorbed_or_not(monkeypatch):
    """Greedy generation, one prompt at a time and a left-padded batch: the same tokens either way."""
    config = tiny_config(inner_iter=2)
    model = CoEForCausalLM(config).eval().double()  # float64: no rounding ties between the two paths
    spy = Spy(latent_attention)
    monkeypatch.setattr(attention, "latent_attention", spy)
    prompts = [torch.randint(0, 97, (n,)) for n in (3, 7, 12, 5)]
    width = max(len(p) for p in prompts)
    batch = torch.stack([torch.cat([p.new_zeros(width - len(p)), p]) for p in prompts])
    mask = torch.stack([torch.arange(width) >= width - len(p) for p in prompts]).long()
    tokens = {}
    for absorb in (True, False):
        for layer in model.model.layers:
            layer.self_attn.absorb = absorb
        calls = spy.calls
        alone = [
            model.generate(p[None], max_new_tokens=24, min_new_tokens=24, do_sample=False) for p in prompts
        ]
        batched = model.generate(
            batch, attention_mask=mask, max_new_tokens=24, min_new_tokens=24, do_sample=False, pad_token_id=0
        )
        tokens[absorb] = [a[0, -24:] for a in alone] + list(batched[:, -24:])
        assert (spy.calls > calls) == absorb
    for a, b in zip(tokens[True], tokens[False], strict=True):
        assert torch.equal(a, b)
    assert len({tuple(t.tolist()) for t in tokens[True]}) > 1  # the prompts lead to different continuations


def test_latent_attention_traces_without_graph_breaks():
    """A compiled decoding step can hold it whole (fullgraph), and it computes the same there."""
    inputs = random_inputs(1, 9, torch.float32)
    mask = causal_mask(PADDING, 1, 9, torch.device("cpu"))
    compiled = torch.compile(latent_attention, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(
        compiled(*inputs, mask=mask, scale=0.3), latent_attention(*inputs, mask=mask, scale=0.3)
    )


@pytest.mark.parametrize("attend", [latent_attention, decompressed_attention])
def test_a_static_cache_s_free_slots_change_nothing(attend):
    """Against a static cache of 14 slots of which 9 are filled (the free ones zero, or garbage), a decoding
    step with the mask causal_mask builds from the fill level equals the step against the 9 positions alone,
    with left padding."""
    S, P, slots = 1, 9, 14
    q_nope, q_pe, latent, k_pe, w_kv = random_inputs(S, P, torch.float64)
    cpu = torch.device("cpu")
    expected = attend(q_nope, q_pe, latent, k_pe, w_kv, mask=causal_mask(PADDING, S, P, cpu), scale=0.3)
    for free in (torch.zeros, torch.randn):
        static_latent = torch.cat([latent, free(B, 1, slots - P, L, dtype=torch.float64)], dim=2)
        static_k_pe = torch.cat([k_pe, free(B, 1, slots - P, R, dtype=torch.float64)], dim=2)
        mask = causal_mask(PADDING, S, slots, cpu, past=torch.tensor(P - S))
        out = attend(q_nope, q_pe, static_latent, static_k_pe, w_kv, mask=mask, scale=0.3)
        assert rel_err(out, expected) < 1e-12
