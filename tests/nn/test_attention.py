"""Attention: GQA against transformers' Llama, the masks, RoPE forms and the YaRN softmax scale."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from coe import CoEConfig, CoEForCausalLM
from coe.nn.attention import (
    RotaryEmbedding,
    build_attention,
    causal_mask,
    document_mask,
    document_positions,
    padded_flex,
    rotate_half,
    rotate_interleaved,
    softmax_scale,
    use_flex_attention,
)
from tests.conftest import rel_err


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_all_dense_gqa_model_equals_transformers_llama(kv_heads):
    """first_k_dense_replace = all layers makes a Llama: same logits as transformers' LlamaForCausalLM."""
    cfg = CoEConfig(
        vocab_size=101,
        hidden_size=32,
        num_hidden_layers=2,
        intermediate_size=48,
        attention="gqa",
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        first_k_dense_replace=2,
        rope_parameters={"rope_type": "default", "rope_theta": 500.0},
        initializer_range=0.3,
    )
    ours = CoEForCausalLM(cfg).eval()
    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=101,
            hidden_size=32,
            num_hidden_layers=2,
            intermediate_size=48,
            num_attention_heads=4,
            num_key_value_heads=kv_heads,
            rope_parameters={"rope_type": "default", "rope_theta": 500.0},
            rms_norm_eps=cfg.rms_norm_eps,
            attn_implementation="eager",
        )
    ).eval()
    missing, unexpected = llama.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all("rotary" in k for k in missing)
    ids = torch.randint(0, 101, (2, 13))
    with torch.no_grad():
        assert rel_err(ours(ids).logits, llama(ids).logits) < 1e-5


def test_rope_forms_rotate_the_same_pairs_differently_laid_out():
    x = torch.randn(1, 1, 5, 8)
    cos, sin = torch.rand(1, 5, 4), torch.rand(1, 5, 4)
    halves = torch.cat([x[..., 0::2], x[..., 1::2]], dim=-1)  # the reference's pair-to-halves permutation
    a = rotate_interleaved(x, cos, sin)
    b = rotate_half(halves, cos, sin)
    torch.testing.assert_close(torch.cat([a[..., 0::2], a[..., 1::2]], dim=-1), b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_interleaved_rope_equals_the_pairwise_formula_bit_for_bit(dtype):
    """(x0 cos - x1 sin, x0 sin + x1 cos) for every pair, by a plain loop in float32, to the last bit."""
    x = torch.randn(2, 3, 5, 8).to(dtype)
    cos, sin = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    expected = torch.empty(2, 3, 5, 8)
    x32 = x.float()
    for p in range(4):
        x0, x1, c, s = x32[..., 2 * p], x32[..., 2 * p + 1], cos[:, None, :, p], sin[:, None, :, p]
        expected[..., 2 * p], expected[..., 2 * p + 1] = x0 * c - x1 * s, x0 * s + x1 * c
    assert torch.equal(rotate_interleaved(x, cos, sin), expected.to(dtype))


def test_yarn_softmax_scale():
    cfg = CoEConfig(
        rope_parameters={
            "rope_type": "yarn",
            "factor": 40.0,
            "mscale_all_dim": 0.707,
            "mscale": 0.707,
            "original_max_position_embeddings": 4096,
        }
    )
    m = 0.1 * 0.707 * math.log(40.0) + 1.0
    assert math.isclose(softmax_scale(cfg, 192), 192**-0.5 * m * m)
    assert math.isclose(softmax_scale(CoEConfig(), 192), 192**-0.5)


def test_causal_mask_with_cache_and_padding():
    assert causal_mask(None, 4, 4, torch.device("cpu")) is None
    mask = causal_mask(torch.tensor([[0, 1, 1, 1, 1]]), 2, 5, torch.device("cpu"))
    assert mask.shape == (1, 1, 2, 5)
    assert mask[0, 0].tolist() == [[False, True, True, True, False], [False, True, True, True, True]]
    only_pad = causal_mask(torch.tensor([[0, 0, 1]]), 3, 3, torch.device("cpu"))
    assert only_pad[0, 0, 0].all()  # a padding query that could see nothing sees everything (no NaN)


def test_causal_mask_of_a_static_cache():
    """Queries at positions past.. of P slots (past a 0-d tensor, as a static cache counts): later slots are
    masked, and a 2-D padding mask shorter than P covers the first positions."""
    cpu = torch.device("cpu")
    mask = causal_mask(torch.tensor([[0, 1, 1, 1]]), 2, 6, cpu, past=torch.tensor(2))
    assert mask[0, 0].tolist() == [
        [False, True, True, False, False, False],
        [False, True, True, True, False, False],
    ]
    unpadded = causal_mask(None, 3, 5, cpu, past=0)  # a prefill into an empty static cache
    assert unpadded[0, 0].tolist() == [[k <= q for k in range(5)] for q in range(3)]
    with pytest.raises(ValueError, match="covers 7 positions"):
        causal_mask(torch.ones(1, 7), 1, 6, cpu, past=5)


@pytest.mark.parametrize("form", ["bool", "float-min", "float-inf", "int"])
def test_causal_mask_takes_transformers_4d_masks(form):
    """A 4-D mask is used as given, whichever convention it follows; a query it lets see nothing sees
    everything."""
    allowed = torch.tensor([[[[True, True, False], [False, False, False]]]])  # (1, 1, 2, 3)
    if form == "bool":
        given = allowed
    elif form == "int":
        given = allowed.long()
    else:
        low = torch.finfo(torch.float32).min if form == "float-min" else float("-inf")
        given = torch.zeros(allowed.shape).masked_fill(~allowed, low)
    mask = causal_mask(given, 2, 3, torch.device("cpu"))
    assert mask.dtype == torch.bool
    assert mask[0, 0].tolist() == [[True, True, False], [True, True, True]]
    with pytest.raises(ValueError, match=r"shape \(B, 1, 2, 4\)"):
        causal_mask(given, 2, 4, torch.device("cpu"))


DOCUMENTS = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0, -1, -1, -1]])


def test_document_mask_and_positions():
    mask = document_mask(DOCUMENTS, flex=False)
    assert mask.shape == (2, 1, 9, 9)
    for b, row in enumerate(DOCUMENTS.tolist()):
        for q in range(9):
            for k in range(9):
                allowed = k <= q and row[k] == row[q] and row[q] >= 0  # padding (-1) sees nothing
                assert mask[b, 0, q, k].item() == allowed
    assert document_positions(DOCUMENTS).tolist() == [
        [0, 1, 2, 0, 1, 0, 1, 2, 3],
        [0, 1, 2, 3, 4, 5, 0, 1, 2],
    ]
    assert not use_flex_attention(torch.device("cpu"))
    assert use_flex_attention(torch.device("cuda")) and not use_flex_attention(torch.device("cuda"), 0.1)
    assert not use_flex_attention(torch.device("cuda"), dtype=torch.float32)


@pytest.mark.filterwarnings("ignore:.*flex_attention.*:UserWarning")
@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_flex_block_mask_equals_the_dense_mask(attention):
    """The CUDA path (FlexAttention with a BlockMask) computes what the CPU path (SDPA with the dense mask)
    does; checked here with FlexAttention's CPU forward (it has no CPU backward). Padding rows give zeros."""
    cfg = CoEConfig(
        hidden_size=32,
        num_attention_heads=4,
        num_key_value_heads=2,
        attention=attention,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=4,
    )
    attn = build_attention(cfg, 0).eval()
    x = torch.randn(2, 9, 32)
    rope = RotaryEmbedding(cfg)(x, document_positions(DOCUMENTS))
    with torch.no_grad():
        dense = attn(x, rope, document_mask(DOCUMENTS, flex=False))
        flex = attn(x, rope, document_mask(DOCUMENTS, flex=True))
    assert rel_err(flex, dense) < 1e-5
    pads = DOCUMENTS < 0
    assert not dense[pads].any() and not flex[pads].any() and dense[~pads].abs().min() > 0


@pytest.mark.filterwarnings("ignore:.*flex_attention.*:UserWarning")
def test_head_dims_padded_for_flex_attention_change_nothing():
    """FlexAttention's CUDA kernels need head dims of at least 16 (the tiny size's value heads are 8): padded
    with zeros up to 16, scores and outputs are those of the narrow heads (checked with the CPU forward)."""
    from torch.nn.attention.flex_attention import flex_attention

    q, k, v = torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 4)
    mask = document_mask(DOCUMENTS, flex=True)
    narrow = flex_attention(q, k, v, block_mask=mask, scale=0.3)
    padded = padded_flex(flex_attention, q, k, v, 16, block_mask=mask, scale=0.3)
    assert padded.shape == narrow.shape and rel_err(padded, narrow) < 1e-6


def test_queries_that_see_nothing_get_zero_from_any_sdpa_kernel(monkeypatch):
    """CUDA's SDPA kernels return other values than zero for a query with no key to see; attend zeroes it."""
    from coe.nn import attention

    mask = document_mask(DOCUMENTS, flex=False)
    q = torch.randn(2, 1, 9, 4)
    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", lambda q, k, v, **kw: torch.ones_like(v))
    out = attention.attend(q, q, q, mask=mask, scale=1.0, dropout=0.0)  # (2, 9, 4)
    assert torch.equal(out[DOCUMENTS < 0], torch.zeros(3, 4)) and (out[DOCUMENTS >= 0] == 1).all()
