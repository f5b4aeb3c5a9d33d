"""Parameter and FLOP accounting of a configuration, without building real weights."""

from __future__ import annotations

import torch

from coe.config import CoEConfig


def total_parameters(config: CoEConfig) -> int:
    from coe.modeling import CoEForCausalLM

    with torch.device("meta"):
        return sum(p.numel() for p in CoEForCausalLM(config).parameters())


def active_parameters(config: CoEConfig) -> int:
    """Parameters a token passes through in one forward, LM head included, embeddings excluded; experts count
    once per use, so a CoE layer counts its K routed and its shared experts once per iteration."""
    from coe.modeling import CoEForCausalLM

    with torch.device("meta"):
        model = CoEForCausalLM(config)
    dense = sum(
        p.numel()
        for n, p in model.named_parameters()
        if "embed_tokens" not in n and ".experts." not in n and "shared_experts" not in n
    )
    if config.tie_word_embeddings:
        dense += config.vocab_size * config.hidden_size
    per_expert = 3 * config.hidden_size * config.moe_intermediate_size
    used = config.inner_iter * (config.num_experts_per_tok + config.n_shared_experts)
    return dense + config.num_moe_layers * used * per_expert


def train_flops_per_token(config: CoEConfig, seq_len: int) -> float:
    """Model FLOPs of a training step per token: 6 x active parameters plus causal attention,
    3 (forward + backward) x S x H x (qk head + v head) per layer (half of the S x S scores are masked)."""
    if config.attention == "mla":
        head = config.qk_nope_head_dim + config.qk_rope_head_dim + config.v_head_dim
    else:
        head = 2 * config.gqa_head_dim
    attention = 3 * seq_len * config.num_attention_heads * head * config.num_hidden_layers
    return 6 * active_parameters(config) + attention
