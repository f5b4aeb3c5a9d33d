"""The paper's named configurations, shape-exact to the reference code, in three sizes.

"paper" is the reference's DeepSeek-V2-style model (hidden 1024, 4 layers, 8 heads, MLA, 63 routed + 1
shared experts of 704, vocabulary 102400, YaRN RoPE as in the reference's config.json). "small" keeps every
count that defines a preset (experts, K, C, layers, router and residual choices) and shrinks the widths so
that training runs on a CPU; "tiny" shrinks them further for unit tests.

Naming: ``moe-K-N`` / ``coe-C-K-N`` count N experts in all, one of them shared, so N - 1 are routed; K is
the routed experts chosen per iteration.

The ``-as-run`` presets are four runs as the reference's surviving launch scripts actually ran them, which
is not what the clean presets (and the paper's labels) say: its ablation and dense runs had
``N_SHARED_EXPERTS=0``, so all N experts were routed and none shared (the CoE-2(8/64) and MoE(8/64) they
were compared with had the shared expert), and both ablations had the inner and the outer residual on. They
exist to reproduce those runs; the clean presets are the configurations as stated.

Data only (keyword arguments of :class:`coe.CoEConfig`): ``CoEConfig.from_preset(name, size, **overrides)``
builds a configuration from them.
"""

from __future__ import annotations

from typing import Any

PAPER_SHAPE: dict[str, Any] = dict(
    vocab_size=102400,
    hidden_size=1024,
    num_hidden_layers=4,
    intermediate_size=5472,
    attention="mla",
    num_attention_heads=8,
    num_key_value_heads=8,
    q_lora_rank=None,
    kv_lora_rank=512,
    qk_nope_head_dim=128,
    qk_rope_head_dim=64,
    v_head_dim=128,
    n_routed_experts=63,
    n_shared_experts=1,
    moe_intermediate_size=704,
    max_position_embeddings=163840,
    rope_parameters=dict(
        rope_type="yarn",
        rope_theta=10000.0,
        factor=40.0,
        original_max_position_embeddings=4096,
        beta_fast=32,
        beta_slow=1,
        mscale=0.707,
        mscale_all_dim=0.707,
    ),
    scoring_func="softmax",
    topk_method="greedy",
    norm_topk_prob=False,
    routed_scaling_factor=1.0,
    balance_loss="seq",
    aux_loss_alpha=0.001,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
    bos_token_id=100000,
    eos_token_id=100001,
)

# Widths only: what makes a preset a preset (experts, K, C, layers, flags) is never changed by a size.
SIZES: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": dict(
        vocab_size=4096,
        hidden_size=128,
        intermediate_size=512,
        num_attention_heads=4,
        num_key_value_heads=4,
        kv_lora_rank=64,
        qk_nope_head_dim=16,
        qk_rope_head_dim=16,
        v_head_dim=32,
        moe_intermediate_size=64,
        bos_token_id=None,
        eos_token_id=None,
    ),
    "tiny": dict(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=2,
        num_key_value_heads=2,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=8,
        moe_intermediate_size=16,
        bos_token_id=None,
        eos_token_id=None,
    ),
}

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "moe-8-64": (
        "MoE(8/64): one pass, 8 of 63 routed experts + 1 shared",
        dict(inner_iter=1, num_experts_per_tok=8),
    ),
    "coe-2-4-64": (
        "CoE-2(4/64): two iterations of 4 of 63 routed + 1 shared",
        dict(inner_iter=2, num_experts_per_tok=4),
    ),
    "coe-2-4-48": (
        "CoE-2(4/48): fewer experts, 47 routed + 1 shared",
        dict(inner_iter=2, num_experts_per_tok=4, n_routed_experts=47),
    ),
    "moe-16-64": ("MoE(16/64): twice the selections", dict(inner_iter=1, num_experts_per_tok=16)),
    "moe-24-64": ("MoE(24/64): three times the selections", dict(inner_iter=1, num_experts_per_tok=24)),
    "coe-2-8-64": ("CoE-2(8/64): two iterations of 8", dict(inner_iter=2, num_experts_per_tok=8)),
    "moe-8-64-8l": (
        "MoE(8/64) with 8 layers",
        dict(inner_iter=1, num_experts_per_tok=8, num_hidden_layers=8),
    ),
    "moe-8-64-12l": (
        "MoE(8/64) with 12 layers",
        dict(inner_iter=1, num_experts_per_tok=8, num_hidden_layers=12),
    ),
    "coe-2-8-64-shared-router": (
        "ablation: CoE-2(8/64) with one router shared by both iterations",
        dict(inner_iter=2, num_experts_per_tok=8, use_igate=False),
    ),
    "coe-2-8-64-outer-residual": (
        "ablation: CoE-2(8/64) with the outer instead of the inner residual",
        dict(inner_iter=2, num_experts_per_tok=8, inner_residual=False, outer_residual=True),
    ),
    "dense-8-8": (
        "dense 8-of-8: all 7 routed + 1 shared experts active, C = 1",
        dict(inner_iter=1, num_experts_per_tok=7, n_routed_experts=7),
    ),
    "dense-8-8-c2": (
        "dense 8-of-8 with C = 2",
        dict(inner_iter=2, num_experts_per_tok=7, n_routed_experts=7),
    ),
    # As the reference ran them (its g0.sh launches of the runs "dsv2_coe_3-ab_*" and "dsv2_coe_3-ds_*").
    "coe-2-8-64-shared-router-as-run": (
        "ablation as the reference ran it: coe-2-8-64-shared-router with 64 routed experts instead of "
        "63 + 1 shared, and the outer residual on beside the inner one",
        dict(
            inner_iter=2,
            num_experts_per_tok=8,
            use_igate=False,
            n_routed_experts=64,
            n_shared_experts=0,
            outer_residual=True,
        ),
    ),
    "coe-2-8-64-outer-residual-as-run": (
        "ablation as the reference ran it: coe-2-8-64-outer-residual with 64 routed experts instead of "
        "63 + 1 shared, and the inner residual kept beside the outer one",
        dict(
            inner_iter=2,
            num_experts_per_tok=8,
            n_routed_experts=64,
            n_shared_experts=0,
            outer_residual=True,
        ),
    ),
    "dense-8-8-as-run": (
        "dense 8-of-8 as the reference ran it: dense-8-8 with 8 routed experts, all chosen (K = 8), "
        "instead of 7 routed + 1 shared",
        dict(inner_iter=1, num_experts_per_tok=8, n_routed_experts=8, n_shared_experts=0),
    ),
    "dense-8-8-c2-as-run": (
        "dense 8-of-8 with C = 2 as the reference ran it: dense-8-8-c2 with 8 routed experts, all chosen "
        "(K = 8), instead of 7 routed + 1 shared",
        dict(inner_iter=2, num_experts_per_tok=8, n_routed_experts=8, n_shared_experts=0),
    ),
}

# Each -as-run preset's clean twin: the preset of the same run with the paper's stated configuration.
AS_RUN_TWINS: dict[str, str] = {
    "coe-2-8-64-shared-router-as-run": "coe-2-8-64-shared-router",
    "coe-2-8-64-outer-residual-as-run": "coe-2-8-64-outer-residual",
    "dense-8-8-as-run": "dense-8-8",
    "dense-8-8-c2-as-run": "dense-8-8-c2",
}


def list_presets() -> dict[str, str]:
    """Preset name -> one-line description."""
    return {name: description for name, (description, _) in PRESETS.items()}
