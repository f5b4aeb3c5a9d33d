"""CoEConfig: the one configuration of Chain-of-Experts and MoE causal language models.

The field names follow DeepSeek-V2 and the Chain-of-Experts reference code (its flag names are kept:
``inner_iter`` is C, ``use_igate`` gives each iteration its own router), so that configurations convert
one to one. Every field is checked when the config is built; a bad value raises ``ValueError`` naming
the field, the value and what is allowed. :meth:`CoEConfig.from_preset` builds the paper's named
configurations (:mod:`coe.presets`).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from transformers import PreTrainedConfig

from coe.checks import invalid
from coe.layout import weights_dir
from coe.presets import PAPER_SHAPE, PRESETS, SIZES


class Attention(StrEnum):
    MLA = "mla"  # DeepSeek-V2 multi-head latent attention
    GQA = "gqa"  # grouped-query attention (Llama style)


class ScoringFunc(StrEnum):
    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"


class TopkMethod(StrEnum):
    GREEDY = "greedy"
    GROUP_LIMITED_GREEDY = "group_limited_greedy"


class BalanceLoss(StrEnum):
    SEQ = "seq"  # sequence-wise, as the reference (its seq_aux=True)
    BATCH = "batch"  # batch-wise, Switch Transformer form (seq_aux=False)
    NONE = "none"


class RouterInit(StrEnum):
    NORMAL = "normal"  # normal(0, initializer_range), as every other weight
    KAIMING_UNIFORM = "kaiming_uniform"  # the reference's kaiming_uniform_(a=sqrt(5)): U(+-1/sqrt(D))


class ExpertBackend(StrEnum):
    GROUPED = "grouped"  # sort by expert, one grouped matmul per projection
    GATHER = "gather"  # each token copy gathers its expert's weights, batched matmuls: few tokens (decoding)
    ADAPTIVE = "adaptive"  # per call, by its shapes: gather, dense (GPU) or grouped (coe.nn.experts)
    DENSE = "dense"  # every expert on every token, weighted 0 where not chosen: one pass over the weights
    LOOP = "loop"  # plain loop over experts: the ground truth of the tests


ROPE_TYPES = ("default", "linear", "dynamic", "yarn")


class CoEConfig(PreTrainedConfig):
    """Configuration of :class:`coe.CoEForCausalLM`.

    Decoder layer ``i`` (``i >= first_k_dense_replace`` and ``i % moe_layer_freq == 0``) computes::

        h = h + Attn(RMSNorm_1(h))
        r = h; x_0 = RMSNorm_2(h)
        x_t = MoE_t(x_{t-1}) + (x_{t-1} if inner_residual else 0)      for t = 1..inner_iter
        out = x_C + (r if outer_residual else 0)

    With the defaults (inner residual on, outer residual off) the un-normalised ``r`` is *not* added back:
    this is what the reference code does, for its MoE runs too. ``inner_iter=1, inner_residual=False,
    outer_residual=True`` is a standard DeepSeek-V2 layer. Dense layers always use ``h + MLP(RMSNorm_2(h))``.
    """

    model_type = "coe"
    keys_to_ignore_at_inference = ["past_key_values", "cache"]

    # --- sizes
    vocab_size: int = 102400
    """Vocabulary size (rows of the embedding and the LM head)."""
    hidden_size: int = 1024
    """Model width D."""
    num_hidden_layers: int = 4
    """Number of decoder layers."""
    intermediate_size: int = 5472
    """Intermediate size of the dense SwiGLU MLP of the leading dense layers."""
    max_position_embeddings: int = 4096
    """Longest sequence the model is meant for; training sequences may not exceed it."""

    # --- attention
    attention: str = "mla"
    """"mla" (DeepSeek-V2 multi-head latent attention) or "gqa" (grouped-query attention)."""
    num_attention_heads: int = 8
    """Query heads."""
    num_key_value_heads: int | None = None
    """Key/value heads for "gqa" (must divide num_attention_heads); None means num_attention_heads."""
    head_dim: int | None = None
    """Head size for "gqa"; None means hidden_size // num_attention_heads. Ignored by "mla"."""
    q_lora_rank: int | None = None
    """MLA: rank of the low-rank query projection; None projects queries directly."""
    kv_lora_rank: int = 512
    """MLA: rank of the compressed key/value latent (what the cache stores)."""
    qk_nope_head_dim: int = 128
    """MLA: per-head query/key size without rotary embedding."""
    qk_rope_head_dim: int = 64
    """MLA: per-head query/key size with rotary embedding (shared by all heads for keys)."""
    v_head_dim: int = 128
    """MLA: per-head value size."""
    mla_absorb: bool = True
    """MLA: decoding steps against a cache attend in the latent space, W_UK absorbed into the queries and
    W_UV applied after attention, as DeepSeek-V2 infers: the cached latent is never decompressed. False
    decompresses it every step (same results up to rounding)."""
    attention_bias: bool = False
    """Bias in the attention projections that DeepSeek-V2 allows one for."""
    attention_dropout: float = 0.0
    """Dropout on attention probabilities during training."""
    rope_parameters: dict | None = None
    """Rotary embedding: {"rope_type": "default" | "linear" | "dynamic" | "yarn", "rope_theta": ..., ...}.
    The reference's ``rope_scaling``/``rope_theta`` keys are accepted and folded in."""

    # --- mixture of experts
    n_routed_experts: int = 63
    """N: routed experts per MoE layer."""
    n_shared_experts: int = 1
    """Shared experts, applied to every token in every iteration (one SwiGLU of n * moe_intermediate_size)."""
    num_experts_per_tok: int = 8
    """K: routed experts chosen per token in each iteration."""
    moe_intermediate_size: int = 704
    """F: intermediate size of one expert."""
    first_k_dense_replace: int = 0
    """The first k layers use a dense SwiGLU MLP instead of experts."""
    moe_layer_freq: int = 1
    """After the dense layers, every moe_layer_freq-th layer is an MoE layer, the others dense."""
    scoring_func: str = "softmax"
    """Router scores from logits: "softmax" over the N experts or per-expert "sigmoid"."""
    topk_method: str = "greedy"
    """"greedy" top-K, or DeepSeek-V2's "group_limited_greedy" (top-K within topk_group of n_group groups)."""
    n_group: int | None = None
    """Expert groups for "group_limited_greedy"."""
    topk_group: int | None = None
    """Groups a token may pick from for "group_limited_greedy"."""
    norm_topk_prob: bool = False
    """Renormalise the K selected scores to sum to 1 (before routed_scaling_factor)."""
    routed_scaling_factor: float = 1.0
    """Factor applied to the gate weights of the routed experts."""
    router_init: str = "normal"
    """Initial router weights: "normal" (mean 0, std initializer_range, as every other weight) or
    "kaiming_uniform", the reference code's ``kaiming_uniform_(a=sqrt(5))``: uniform on +-1/sqrt(hidden_size)
    (std 0.018 at hidden 1024). Both draw the same random numbers, so the other weights do not change."""
    expert_backend: str = "adaptive"
    """"adaptive" (per call, from its shapes, device, dtype and grad mode, no host sync: "gather" for the few
    token copies of a decoding step, "dense" for inference batches on a GPU in bf16, "grouped" otherwise and
    for training; the thresholds and their measurements are in ``coe.nn.experts``), "grouped" (sorted tokens,
    grouped matmuls), "gather" (each token copy gathers its expert's weights: batched matmuls), "dense"
    (every routed expert on every token, weighted 0 where not chosen: N / K times the FLOPs, one pass over
    the weights) or "loop" (plain reference loop). Config files that say "auto", the former name of
    "grouped", load as "grouped"."""

    # --- Chain-of-Experts
    inner_iter: int = 1
    """C: iterations of the expert block inside a layer; 1 is a standard MoE."""
    use_igate: bool = True
    """One router per iteration (True) or one router shared by all iterations (False)."""
    inner_residual: bool = True
    """Add x_{t-1} to the output of iteration t."""
    outer_residual: bool = False
    """Add the un-normalised layer input r to the block output (the usual transformer residual)."""

    # --- load balancing
    balance_loss: str = "seq"
    """"seq" (per sequence, as the reference), "batch" (Switch form over the batch) or "none"."""
    aux_loss_alpha: float = 0.001
    """Weight of the balance loss of each (layer, iteration)."""
    router_z_loss_coef: float = 0.0
    """Weight of the ST-MoE router z-loss, mean(logsumexp(logits)^2), of each (layer, iteration)."""
    router_bias_update_rate: float = 0.0
    """DeepSeek-V3 auxiliary-loss-free balancing: > 0 adds a per-expert bias to the scores for selection
    only, moved by this rate times the sign of the load error after each optimizer step."""

    # --- the rest
    hidden_act: str = "silu"
    """Expert and MLP activation; SwiGLU needs "silu"."""
    rms_norm_eps: float = 1e-6
    """Epsilon of every RMSNorm."""
    initializer_range: float = 0.02
    """Standard deviation of the normal initialisation."""
    tie_word_embeddings: bool = False
    """Share the embedding matrix with the LM head."""
    use_cache: bool = True
    """Whether generate() keeps a key/value cache (transformers' generation default). A plain forward returns
    a cache only when called with use_cache=True or given one."""
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        # The reference names the balance loss form by a flag; fold it into our choice.
        seq_aux = kwargs.pop("seq_aux", None)
        if seq_aux is not None:
            self.balance_loss = BalanceLoss.SEQ if seq_aux else BalanceLoss.BATCH
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.expert_backend == "auto":  # the former alias of "grouped": older config files still load
            logging.getLogger(__name__).warning(
                "CoEConfig.expert_backend='auto' is deprecated: it is 'grouped'"
            )
            self.expert_backend = ExpertBackend.GROUPED
        super().__post_init__(**kwargs)
        if not self.rope_parameters:
            self.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
        self.rope_parameters.setdefault("rope_theta", 10000.0)
        legacy_type = self.rope_parameters.pop("type", None)  # the reference's rope_scaling spelling
        self.rope_parameters.setdefault("rope_type", legacy_type or "default")
        self._check()

    # Rotary helpers read these (transformers' rope initialisers look for `head_dim`).
    @property
    def rope_head_dim(self) -> int:
        """Size of the rotary part of a query/key head."""
        return self.qk_rope_head_dim if self.attention == Attention.MLA else self.gqa_head_dim

    @property
    def gqa_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def moe_layers(self) -> list[int]:
        """Indices of the MoE decoder layers, in order (the rows of ``routing counts`` and router metrics)."""
        return [i for i in range(self.num_hidden_layers) if self.is_moe_layer(i)]

    @property
    def num_moe_layers(self) -> int:
        return len(self.moe_layers)

    @property
    def num_routers(self) -> int:
        """Routers in one MoE layer: one per iteration with use_igate, else one."""
        return self.inner_iter if self.use_igate else 1

    def is_moe_layer(self, layer_idx: int) -> bool:
        return layer_idx >= self.first_k_dense_replace and layer_idx % self.moe_layer_freq == 0

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs) -> tuple[dict[str, Any], dict]:
        """transformers' reading of config.json, for this library's format only: a checkpoint of another
        ``model_type`` (the reference code's "coe_deepseekv2", transformers' "deepseek_v2") raises ValueError
        before any weight is read, where transformers would only warn and build a wrong model. A training
        checkpoint ``step-N`` reads ``step-N/model`` (:func:`coe.layout.weights_dir`)."""
        if isinstance(pretrained_model_name_or_path, str | os.PathLike) and os.path.isdir(
            pretrained_model_name_or_path
        ):
            pretrained_model_name_or_path = weights_dir(Path(pretrained_model_name_or_path))
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        model_type = config_dict.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            path = pretrained_model_name_or_path
            raise ValueError(
                f"{path} holds a checkpoint of model_type {model_type!r}, not this library's "
                f"format ({cls.model_type!r}): convert it first, with `coe convert {path} DST` "
                "or coe.convert.convert(src, dst), then load DST"
            )
        return config_dict, kwargs

    @classmethod
    def from_preset(cls, name: str, size: str = "paper", **overrides: Any) -> CoEConfig:
        """The paper's configuration ``name`` (``coe.list_presets()``) at ``size`` ("paper", "small" or
        "tiny"), then ``overrides``, which must be CoEConfig fields (a misspelt one would otherwise be kept as
        an unused attribute, as transformers keeps unknown keys of a config file). The arguments are those of
        the trainer's ``model`` options, whose names the errors use."""
        if name not in PRESETS:
            raise invalid("model.preset", name, f"choose one of {', '.join(PRESETS)}")
        if size not in SIZES:
            raise invalid("model.size", size, f"choose one of {', '.join(SIZES)}")
        known = [f.name for f in dataclasses.fields(cls)]
        for key in overrides:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise invalid(
                    "model.overrides", key, f"not a CoEConfig field{hint}; known fields: {', '.join(known)}"
                )
        fields = {**PAPER_SHAPE, **SIZES[size], **PRESETS[name][1], **overrides}
        fields["rope_parameters"] = dict(fields["rope_parameters"])  # never share the module-level dict
        return cls(**fields)

    def _check(self) -> None:
        def fail(field: str, allowed: str) -> None:
            raise invalid(f"CoEConfig.{field}", getattr(self, field), allowed)

        for field in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "intermediate_size",
            "max_position_embeddings",
            "num_attention_heads",
            "num_key_value_heads",
            "n_routed_experts",
            "num_experts_per_tok",
            "moe_intermediate_size",
            "moe_layer_freq",
            "kv_lora_rank",
            "qk_rope_head_dim",
            "v_head_dim",
        ):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                fail(field, "must be a positive integer")
        for field in ("q_lora_rank", "head_dim"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or value <= 0):
                fail(field, "must be a positive integer or None")
        for field in ("qk_nope_head_dim", "n_shared_experts", "first_k_dense_replace"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 0:
                fail(field, "must be a non-negative integer")
        for field, enum in (
            ("attention", Attention),
            ("scoring_func", ScoringFunc),
            ("topk_method", TopkMethod),
            ("balance_loss", BalanceLoss),
            ("expert_backend", ExpertBackend),
            ("router_init", RouterInit),
        ):
            if getattr(self, field) not in set(enum):
                fail(field, f"allowed values are {', '.join(repr(str(e)) for e in enum)}")
        if self.hidden_act != "silu":
            fail("hidden_act", "SwiGLU experts need 'silu'")
        if not isinstance(self.inner_iter, int) or self.inner_iter < 1:
            fail("inner_iter", "C must be an integer >= 1")
        if self.num_experts_per_tok > self.n_routed_experts:
            fail("num_experts_per_tok", f"K must be at most n_routed_experts={self.n_routed_experts}")
        if self.num_attention_heads % self.num_key_value_heads:
            fail("num_key_value_heads", f"must divide num_attention_heads={self.num_attention_heads}")
        if self.attention == Attention.GQA and self.gqa_head_dim % 2:
            fail("head_dim", "rotary embedding needs an even head size")
        if self.qk_rope_head_dim % 2:
            fail("qk_rope_head_dim", "rotary embedding needs an even size")
        if self.topk_method == TopkMethod.GROUP_LIMITED_GREEDY:
            if not self.n_group or self.n_routed_experts % self.n_group:
                fail(
                    "n_group",
                    f"group_limited_greedy needs n_group dividing n_routed_experts={self.n_routed_experts}",
                )
            if not self.topk_group or not 1 <= self.topk_group <= self.n_group:
                fail("topk_group", f"group_limited_greedy needs 1 <= topk_group <= n_group={self.n_group}")
        for field in (
            "aux_loss_alpha",
            "router_z_loss_coef",
            "router_bias_update_rate",
            "attention_dropout",
            "rms_norm_eps",
            "initializer_range",
        ):
            if getattr(self, field) < 0:
                fail(field, "must be >= 0")
        if self.routed_scaling_factor <= 0:
            fail("routed_scaling_factor", "must be > 0")
        rope_type = self.rope_parameters.get("rope_type")
        if rope_type not in ROPE_TYPES:
            raise invalid(
                "CoEConfig.rope_parameters['rope_type']",
                rope_type,
                f"allowed values are {', '.join(map(repr, ROPE_TYPES))}",
            )
        if rope_type != "default" and not self.rope_parameters.get("factor"):
            fail("rope_parameters", f"rope_type {rope_type!r} needs a 'factor'")
