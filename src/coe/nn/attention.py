"""Attention: rotary embeddings (default / linear / dynamic / YaRN), DeepSeek-V2 MLA and grouped-query
attention.

Shapes: B batch, S query positions, P key positions (cache included), H heads, G key/value heads,
R rotary size, L kv_lora_rank, N qk_nope_head_dim, V v_head_dim.

Both attentions run through ``F.scaled_dot_product_attention``, or FlexAttention for document masks on CUDA
(:func:`document_mask`). The key/value cache is any of transformers' ``Cache`` classes; MLA stores its
compressed latent (L + R numbers a position) as DeepSeek-V2 does, and decoding steps attend in that latent
space (:func:`latent_attention`) rather than decompressing the cache each step.
"""

from __future__ import annotations

import copy
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update

from coe.config import Attention, CoEConfig
from coe.nn.mlp import RMSNorm


def yarn_mscale(factor: float, mscale: float = 1.0) -> float:
    """YaRN's attention temperature correction, ``0.1 * mscale * ln(factor) + 1`` (1 when factor <= 1)."""
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def softmax_scale(config: CoEConfig, head_dim: int) -> float:
    """``head_dim**-0.5``, times ``mscale(factor, mscale_all_dim)**2`` under DeepSeek's YaRN."""
    scale = head_dim**-0.5
    rope = config.rope_parameters
    if rope["rope_type"] == "yarn" and rope.get("mscale_all_dim"):
        scale *= yarn_mscale(rope["factor"], rope["mscale_all_dim"]) ** 2
    return scale


class RotaryEmbedding(nn.Module):
    """cos / sin tables ``[B, S, R/2]`` for the given positions; frequencies from transformers'
    initialisers."""

    def __init__(self, config: CoEConfig) -> None:
        super().__init__()
        # transformers' initialisers read the rotary size from `head_dim`.
        rope_config = copy.copy(config)
        rope_config.head_dim = config.rope_head_dim
        self.config = rope_config
        self.rope_type = config.rope_parameters["rope_type"]
        self.max_seq_len_cached = self.original_max_seq_len = config.max_position_embeddings
        init_fn = ROPE_INIT_FUNCTIONS.get(self.rope_type, self.compute_default_rope_parameters)
        inv_freq, self.attention_scaling = init_fn(rope_config, None)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config: CoEConfig, device=None, **_) -> tuple[torch.Tensor, float]:
        """Plain RoPE: ``theta ** (-2i / R)`` (transformers' weight initialiser calls this by name)."""
        dim, theta = config.head_dim, config.rope_parameters["rope_theta"]
        return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim), 1.0

    @torch.no_grad()
    @dynamic_rope_update
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[..., None].float() * self.inv_freq.float()  # (B, S, R/2)
        return freqs.cos() * self.attention_scaling, freqs.sin() * self.attention_scaling


def rotate_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on adjacent pairs (x0, x1), (x2, x3), ... as DeepSeek-V2: (x0 cos - x1 sin, x0 sin + x1 cos) per
    pair. x: (B, *, S, R); cos, sin: (B, S, R/2).

    Written as x * (c, c) + (x1, x0) * (-s, s), elementwise over R, which gives the same values bit for bit
    (negation is exact, addition commutes) without stacking the rotated halves of each pair: the stack made
    the compiled decoding step's kernel that rotates the key and writes it into the cache a 3-D grid
    (rows x pairs x 2), where the flat form can be one dimension (docs/performance.md)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    x32 = x.float()
    swapped = x32.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # (x1, x0, x3, x2, ...)
    cos2 = cos.repeat_interleave(2, dim=-1)
    sin2 = torch.stack((-sin, sin), dim=-1).flatten(-2)
    return (x32 * cos2 + swapped * sin2).to(x.dtype)


def rotate_half(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on the halves (x[:R/2], x[R/2:]) as Llama. x: (B, *, S, R); cos, sin: (B, S, R/2)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    x32 = x.float()
    x0, x1 = x32.chunk(2, dim=-1)
    return torch.cat((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).to(x.dtype)


FLEX_LEAST_HEAD_DIM = 16
"""The least head dim FlexAttention's CUDA kernels take (torch 2.11: "NYI: embedding dimension of the query,
key, and value must be at least 16"); the tiny size's value heads (8) are narrower."""


def padded_flex(
    flex, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, least: int, **kwargs
) -> torch.Tensor:
    """``flex(q, k, v, **kwargs)`` with head dims under ``least`` zero-padded up to it: zeros added to queries
    and keys change no score (the scale is passed explicitly), zero value columns are cut from the output."""
    E, Ev = q.shape[-1], v.shape[-1]
    if min(E, Ev) >= least:
        return flex(q, k, v, **kwargs)
    pad_qk, pad_v = max(0, least - E), max(0, least - Ev)
    out = flex(F.pad(q, (0, pad_qk)), F.pad(k, (0, pad_qk)), F.pad(v, (0, pad_v)), **kwargs)
    return out[..., :Ev]


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    mask: torch.Tensor | BlockMask | None,
    scale: float,
    dropout: float,
    gqa: bool = False,
) -> torch.Tensor:
    """SDPA, causal when no mask is given, or FlexAttention for a ``BlockMask``. q: (B, H, S, E);
    k: (B, G, P, E); v: (B, G, P, Ev) -> (B, S, H*Ev)."""
    kwargs = {"enable_gqa": True} if gqa and k.shape[1] != q.shape[1] else {}
    if isinstance(mask, BlockMask):
        # Inside a compiled decoder layer flex_attention compiles with it; on the CPU (forward only: there is
        # no CPU backward) it runs eagerly.
        plain = torch.compiler.is_compiling() or not q.is_cuda
        flex = flex_attention if plain else _compiled_flex_attention()
        least = FLEX_LEAST_HEAD_DIM if q.is_cuda else 1
        out = padded_flex(flex, q, k, v, least, block_mask=mask, scale=scale, **kwargs)
    else:
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None, scale=scale, dropout_p=dropout, **kwargs
        )
        if mask is not None:
            # A query that may see no key (padding in a document mask) gets zero, as from FlexAttention:
            # CUDA's SDPA kernels return something else there (the CPU's give zero too).
            out = out.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    return out.transpose(1, 2).flatten(2)


# Eager flex_attention materialises the scores and eager create_block_mask runs many small kernels (6 ms for
# 64 x 512 positions on an H200, against 0.15 ms compiled): outside compiled code, compiled versions of both.
@functools.cache
def _compiled_flex_attention():
    return torch.compile(flex_attention, dynamic=False)


@functools.cache
def _compiled_create_block_mask():
    return torch.compile(create_block_mask)


def decompressed_attention(
    q_nope: torch.Tensor,
    q_pe: torch.Tensor,
    latent: torch.Tensor,
    k_pe: torch.Tensor,
    w_kv: torch.Tensor,
    *,
    mask: torch.Tensor | BlockMask | None,
    scale: float,
    dropout: float = 0.0,
    kv_b_proj: nn.Module | None = None,
) -> torch.Tensor:
    """MLA as written: every position's latent decompressed into per-head keys and values.

    q_nope: (B, H, S, N); q_pe: (B, H, S, R), rotated; latent: (B, 1, P, L); k_pe: (B, 1, P, R), rotated;
    w_kv: (H, N + V, L), ``kv_b_proj.weight`` by head. Returns (B, S, H*V). ``kv_b_proj``: the module that
    holds ``w_kv``, called when given, so that an adapter wrapping it (a LoRA) takes part.
    """
    B, H, _, N = q_nope.shape
    P, R = latent.shape[2], k_pe.shape[-1]
    kv = kv_b_proj(latent[:, 0]) if kv_b_proj is not None else F.linear(latent[:, 0], w_kv.flatten(0, 1))
    kv = kv.view(B, P, H, -1).transpose(1, 2)  # (B, H, P, N + V)
    k_nope, v = kv.split((N, w_kv.shape[1] - N), dim=-1)  # (B, H, P, N), (B, H, P, V)
    k = torch.cat((k_nope, k_pe.expand(B, H, P, R)), dim=-1)
    q = torch.cat((q_nope, q_pe), dim=-1)
    return attend(q, k, v, mask=mask, scale=scale, dropout=dropout)


def latent_attention(
    q_nope: torch.Tensor,
    q_pe: torch.Tensor,
    latent: torch.Tensor,
    k_pe: torch.Tensor,
    w_kv: torch.Tensor,
    *,
    mask: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """MLA with the absorbed projections, as DeepSeek-V2 decodes: the same result as
    :func:`decompressed_attention`, without decompressing the latent.

    With W_UK (H, N, L) and W_UV (H, V, L) the two halves of ``w_kv``, head h's score against position p is
    ``q_nope . (W_UK c_p) + q_pe . k_pe_p = (W_UK^T q_nope) . c_p + q_pe . k_pe_p`` and its output
    ``sum_p a_p W_UV c_p = W_UV (sum_p a_p c_p)``. So the queries move into the latent space, every head
    attends to the cached latent ``c_p`` and rotary key ``k_pe_p`` themselves, and W_UV maps each head's
    latent output back. A step costs O(S P (2L + R)) a head instead of the O(P L (N + V)) of decompressing
    P positions. Written as DeepSeek's reference inference code writes it (einsums, softmax in float32),
    which keeps the nope and rotary scores apart rather than concatenating per step. On the CPU (2026-12-02,
    a 2-core VM, one thread, DeepSeek-V2's head sizes, 8 heads, batch 8, 2,048 cached positions) it takes
    7 ms in bf16 and 19 ms in float32 against 290 and 600 ms decompressed, and 73 and 59 ms for the same
    product through SDPA (H*S queries of one key/value head). Its scores are rounded to the input dtype
    before the softmax, so in bf16 its error is about twice SDPA's (relative max 1.0e-2 against 4.6e-3
    decompressed, float64 reference); float32 and float64 agree to rounding.

    Shapes as :func:`decompressed_attention`; mask: boolean (B or 1, 1, S, P), True where allowed, each
    query allowed at least one key (:func:`causal_mask` sees to it), or None for causal over the last S
    positions. No dropout: this is an inference path. Returns (B, S, H*V).
    """
    S, N = q_nope.shape[2:]
    P = latent.shape[2]
    c, k_pe = latent[:, 0], k_pe[:, 0]  # (B, P, L), (B, P, R)
    w_uk, w_uv = w_kv[:, :N], w_kv[:, N:]  # (H, N, L), (H, V, L)
    q_latent = torch.einsum("bhsn,hnl->bhsl", q_nope, w_uk)
    scores = torch.einsum("bhsl,bpl->bhsp", q_latent, c) + torch.einsum("bhsr,bpr->bhsp", q_pe, k_pe)
    if mask is None and S > 1:
        mask = torch.ones(S, P, dtype=torch.bool, device=c.device).tril(P - S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # Softmax in float32 at least (bf16 scores), in float64 for float64 inputs.
    wide = torch.promote_types(scores.dtype, torch.float32)
    probs = (scores * scale).softmax(dim=-1, dtype=wide).to(c.dtype)  # (B, H, S, P)
    out_latent = torch.einsum("bhsp,bpl->bhsl", probs, c)
    return torch.einsum("bhsl,hvl->bshv", out_latent, w_uv).flatten(2)


def latent_attention_is_cheaper(num_queries: int, num_keys: int, *, L: int, N: int, R: int, V: int) -> bool:
    """Whether :func:`latent_attention` takes fewer multiply-adds a head than decompressing: the query and
    output maps and the latent-space scores and sums, ``S N L + S L V + S P (2L + R)``, against the
    decompression and the per-head scores and sums, ``P L (N + V) + S P (N + R + V)``. True for decoding
    steps (S = 1 at L = 512, N = V = 128, R = 64: 131,072 + 1,088 P against 131,392 P); prefill
    decompresses."""
    S, P = num_queries, num_keys
    return S * L * (N + V) + S * P * (2 * L + R) < P * L * (N + V) + S * P * (N + R + V)


def update_cache(
    cache, layer_idx: int, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Store S new positions' keys and values (B, G, S, *) (MLA: latent and rotary key) in layer
    ``layer_idx`` of ``cache``; return the cached ones (B, G, P, *) and ``mask`` (B or 1, 1, S, P') cut to
    them.

    A static cache returns all its P slots. When it was empty before this call (a prefill), only the first S
    are filled, and attending to the rest cost the prefill 0.6-0.9x the dynamic cache's speed (all slots
    decompressed and scored, docs/performance.md): keys, values and mask are then cut to the S filled
    positions, which gives the dynamic cache's computation. Whether it was empty is known on the host
    without a sync: an unfilled static layer reports its length as the int 0, a filled one as a tensor.
    Decoding steps (a tensor length) keep the full slots, so a compiled decoding step keeps its fixed
    shapes; a dynamic cache returns exactly its filled positions anyway.

    Under autocast keys and values can differ in dtype (MLA: the normed latent in float32, the rotary key in
    bfloat16), and a static cache holds both in one dtype in some transformers versions (5.17: the keys');
    both are therefore stored in their promoted dtype, which changes no value.
    """
    if keys.dtype != values.dtype:
        common = torch.promote_types(keys.dtype, values.dtype)
        keys, values = keys.to(common), values.to(common)
    past, S = cache.get_seq_length(layer_idx), keys.shape[2]
    keys, values = cache.update(keys, values, layer_idx)
    if isinstance(past, int) and keys.shape[2] > past + S:
        filled = past + S
        keys, values = keys[:, :, :filled], values[:, :, :filled]
        if mask is not None:
            mask = mask[..., :filled]
    return keys, values, mask


class MultiHeadLatentAttention(nn.Module):
    """DeepSeek-V2 multi-head latent attention; parameter names as in DeepSeek-V2 checkpoints."""

    def __init__(self, config: CoEConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.nope_dim, self.rope_dim = config.qk_nope_head_dim, config.qk_rope_head_dim
        self.v_dim, self.kv_lora_rank = config.v_head_dim, config.kv_lora_rank
        self.q_lora_rank = config.q_lora_rank
        self.dropout = config.attention_dropout
        q_dim = self.num_heads * (self.nope_dim + self.rope_dim)
        D, bias = config.hidden_size, config.attention_bias
        if self.q_lora_rank is None:
            self.q_proj = nn.Linear(D, q_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(D, self.q_lora_rank, bias=bias)
            self.q_a_layernorm = RMSNorm(self.q_lora_rank, config.rms_norm_eps)
            self.q_b_proj = nn.Linear(self.q_lora_rank, q_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(D, self.kv_lora_rank + self.rope_dim, bias=bias)
        self.kv_a_layernorm = RMSNorm(self.kv_lora_rank, config.rms_norm_eps)
        kv_size = self.num_heads * (self.nope_dim + self.v_dim)
        self.kv_b_proj = nn.Linear(self.kv_lora_rank, kv_size, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.v_dim, D, bias=bias)
        self.scale = softmax_scale(config, self.nope_dim + self.rope_dim)
        self.absorb = config.mla_absorb
        """Decoding steps attend in the latent space (:func:`latent_attention`); False: always decompress."""

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None, cache=None
    ) -> torch.Tensor:
        """x: (B, S, D); mask: see :func:`attend`; cache: a transformers ``Cache`` holding the latent and the
        rotary key of earlier positions. Returns (B, S, D)."""
        B, S, _ = x.shape
        H = self.num_heads
        if self.q_lora_rank is None:
            q = self.q_proj(x)
        else:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.view(B, S, H, -1).transpose(1, 2)  # (B, H, S, nope + R)
        q_nope, q_pe = q.split((self.nope_dim, self.rope_dim), dim=-1)
        latent, k_pe = self.kv_a_proj_with_mqa(x).split((self.kv_lora_rank, self.rope_dim), dim=-1)
        latent = self.kv_a_layernorm(latent).view(B, 1, S, self.kv_lora_rank)  # (B, 1, S, L)
        k_pe = k_pe.view(B, 1, S, self.rope_dim)  # one rotary key shared by all heads
        cos, sin = rope
        q_pe, k_pe = rotate_interleaved(q_pe, cos, sin), rotate_interleaved(k_pe, cos, sin)
        if cache is not None:
            latent, k_pe, mask = update_cache(cache, self.layer_idx, latent, k_pe, mask)  # (B, 1, P, L/R)
        P = latent.shape[2]
        w_kv = self.kv_b_proj.weight.view(H, self.nope_dim + self.v_dim, self.kv_lora_rank)
        # Shapes only decide (no host sync): the absorbed form for decoding steps against a cache.
        # The absorbed form folds kv_b_proj's weight into the queries: only for a plain Linear, not one an
        # adapter wraps (its update would be left out).
        absorbed = (
            self.absorb
            and type(self.kv_b_proj) is nn.Linear
            and cache is not None
            and not self.training
            and latent_attention_is_cheaper(
                S, P, L=self.kv_lora_rank, N=self.nope_dim, R=self.rope_dim, V=self.v_dim
            )
        )
        if absorbed:
            out = latent_attention(q_nope, q_pe, latent, k_pe, w_kv, mask=mask, scale=self.scale)
        else:
            dropout = self.dropout if self.training else 0.0
            out = decompressed_attention(
                q_nope,
                q_pe,
                latent,
                k_pe,
                w_kv,
                mask=mask,
                scale=self.scale,
                dropout=dropout,
                kv_b_proj=self.kv_b_proj,
            )
        return self.o_proj(out)


class GroupedQueryAttention(nn.Module):
    """Llama-style attention with G key/value heads shared by groups of query heads (rotate-half RoPE)."""

    def __init__(self, config: CoEConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads, self.num_kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = config.gqa_head_dim
        self.dropout = config.attention_dropout
        D, bias = config.hidden_size, config.attention_bias
        self.q_proj = nn.Linear(D, self.num_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(D, self.num_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(D, self.num_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, D, bias=bias)
        self.scale = softmax_scale(config, self.head_dim)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None, cache=None
    ) -> torch.Tensor:
        B, S, _ = x.shape
        q = self.q_proj(x).view(B, S, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, S, E)
        k = self.k_proj(x).view(B, S, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, G, S, E)
        v = self.v_proj(x).view(B, S, self.num_kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rope
        q, k = rotate_half(q, cos, sin), rotate_half(k, cos, sin)
        if cache is not None:
            k, v, mask = update_cache(cache, self.layer_idx, k, v, mask)
        out = attend(
            q, k, v, mask=mask, scale=self.scale, dropout=self.dropout if self.training else 0.0, gqa=True
        )
        return self.o_proj(out)


def build_attention(config: CoEConfig, layer_idx: int) -> nn.Module:
    if config.attention == Attention.MLA:
        return MultiHeadLatentAttention(config, layer_idx)
    return GroupedQueryAttention(config, layer_idx)


def causal_mask(
    attention_mask: torch.Tensor | None,
    num_queries: int,
    num_keys: int,
    device: torch.device,
    past: int | torch.Tensor | None = None,
) -> torch.Tensor | None:
    """Boolean (B, 1, S, P) mask of S queries against P cached key positions, True where attention is
    allowed; None for the plain causal case (S = P, no padding: SDPA's is_causal path).

    The queries sit at key positions ``past .. past + S - 1``; ``past`` None means the last S of the P (a
    dynamic cache). A static cache holds P slots of which ``past`` are filled, a 0-d tensor there, used as
    one (no host sync); the slots after the queries are masked like any later position.

    attention_mask is one of:

    - None: causal;
    - (B, P'), 1 for real tokens and 0 for padding, over the first P' <= P positions (later ones are the
      static cache's free slots, which causality masks anyway);
    - a 4-D mask (B or 1, 1, S, P), as transformers' generate() builds for a static cache, taken as it is
      (causality included): boolean True where allowed (SDPA's convention), floating additive with 0 where
      allowed and a large negative value or -inf where not (the eager convention), or integers, nonzero
      where allowed.

    A query that may see no key (a padding position) would give NaN: it sees every position instead.
    """
    if attention_mask is not None and attention_mask.ndim == 4:
        if attention_mask.shape[-2:] != (num_queries, num_keys) or attention_mask.shape[1] != 1:
            raise ValueError(
                f"a 4-D attention_mask must have shape (B, 1, {num_queries}, {num_keys}) for "
                f"{num_queries} queries against {num_keys} key positions, got {tuple(attention_mask.shape)}"
            )
        allowed = boolean_mask(attention_mask)
    else:
        if attention_mask is not None and attention_mask.ndim != 2:
            raise ValueError(f"attention_mask must be 2-D or 4-D, got shape {tuple(attention_mask.shape)}")
        if attention_mask is None and num_queries == num_keys:
            return None
        first = num_keys - num_queries if past is None else past
        key_pos = torch.arange(num_keys, device=device)
        query_pos = torch.arange(num_queries, device=device) + first
        allowed = (key_pos[None, :] <= query_pos[:, None])[None, None]  # (1, 1, S, P)
        if attention_mask is not None:
            padding = attention_mask.bool()
            if padding.shape[1] > num_keys:
                raise ValueError(
                    f"attention_mask covers {padding.shape[1]} positions, the cache only {num_keys}"
                )
            padding = F.pad(padding, (0, num_keys - padding.shape[1]))  # (B, P)
            allowed = allowed & padding[:, None, None, :]
    return allowed | ~allowed.any(dim=-1, keepdim=True)


def boolean_mask(mask: torch.Tensor) -> torch.Tensor:
    """An attention mask as booleans, True where allowed: booleans as they are, floating (additive) masks
    allowed where above half their dtype's lowest value (0 allowed; finfo.min or -inf masked), integers where
    nonzero."""
    if mask.dtype == torch.bool:
        return mask
    if mask.is_floating_point():
        return mask > torch.finfo(mask.dtype).min / 2
    return mask != 0


def use_flex_attention(
    device: torch.device, dropout: float = 0.0, dtype: torch.dtype = torch.bfloat16
) -> bool:
    """Whether document masks run through FlexAttention (a ``BlockMask``) or SDPA with a dense mask: the one
    place that chooses.

    FlexAttention on CUDA: its kernel skips the blocks a document mask leaves empty, where SDPA with a dense
    mask leaves the flash kernel for one that computes every block. On an H200 (paper model, bf16, documents
    of 100-400 tokens, compiled layers, ``benchmarks/batching.py``) a training step takes the same time either
    way at 64 x 512 positions (122.5 ms, against 116.6 ms without documents) and 10% less with FlexAttention
    at 16 x 2048 (122.8 ms against 136.6 ms); attention alone, 2.3 ms against 22 ms at 4 x 8192. Its padding
    rows come out zero by themselves.
    SDPA with a dense (B, 1, S, S) boolean mask elsewhere: torch has no FlexAttention backward on the CPU, and
    FlexAttention has no dropout (attention_dropout > 0 takes SDPA on CUDA too). Float32 on CUDA takes SDPA as
    well: the compiled FlexAttention kernel for the MLA head size (192) in float32 asks for 279,808 bytes of
    shared memory, over the H200's 232,448 (the float32 routing analysis of a paper run failed so on
    2026-12-03).
    """
    return device.type == "cuda" and dropout == 0.0 and dtype in (torch.bfloat16, torch.float16)


def document_mask(document_ids: torch.Tensor, *, flex: bool) -> torch.Tensor | BlockMask:
    """The attention mask of rows of documents: query q sees key k when ``k <= q`` and both lie in the same
    document. A negative id marks padding, which sees nothing (its attention output is zero, as in the
    reference's padding-free flash attention) and which no token sees.

    document_ids: (B, S) integers, equal within a document. Returns a ``BlockMask`` for FlexAttention when
    ``flex``, else a boolean (B, 1, S, S) mask for SDPA, True where attention is allowed.
    """
    B, S = document_ids.shape
    if flex:

        def same_document(b, h, q, k):
            doc = document_ids[b, q]
            return (k <= q) & (doc == document_ids[b, k]) & (doc >= 0)

        plain = torch.compiler.is_compiling() or not document_ids.is_cuda
        build = create_block_mask if plain else _compiled_create_block_mask()
        return build(same_document, B, None, S, S, device=document_ids.device)
    pos = torch.arange(S, device=document_ids.device)
    causal = pos[None, :] <= pos[:, None]  # (S, S)
    same = document_ids[:, :, None] == document_ids[:, None, :]  # (B, S, S)
    return (causal & same & (document_ids >= 0)[:, :, None]).unsqueeze(1)  # (B, 1, S, S)


def document_positions(document_ids: torch.Tensor) -> torch.Tensor:
    """Position ids (B, S) that restart at 0 at the first token of each document. document_ids: (B, S)."""
    S = document_ids.shape[1]
    pos = torch.arange(S, device=document_ids.device).expand_as(document_ids)
    starts = F.pad(document_ids[:, 1:] != document_ids[:, :-1], (1, 0), value=True)  # (B, S)
    return pos - torch.where(starts, pos, 0).cummax(dim=1).values
