"""Checkpoint formats in and out: the Chain-of-Experts reference code, transformers' DeepSeek-V2, and ours.

Formats, told apart by ``model_type`` in config.json:

- "coe": ours (:class:`coe.CoEForCausalLM`), stacked experts, one router per iteration.
- "coe_deepseekv2": the reference code (github.com/ZihanWang314/CoE, ``CoeForCausalLM``, transformers 4.49):
  one module per expert, routers named ``mlp.gate``.
- "deepseek_v2": transformers' ``DeepseekV2ForCausalLM`` (a standard DeepSeek-V2 model: C = 1, the usual
  residual), with per-expert or fused expert tensors.

Weight names, per MoE layer prefix ``model.layers.{i}.mlp``, iteration t, expert e, F moe_intermediate_size::

    reference / deepseek_v2                          ours
    gate.{t}.weight (gate.weight without use_igate)  routers.{t}.weight                 (N, D)
    experts.{e}.gate_proj.weight                     experts.gate_up_proj[e, :F]        (N, 2F, D)
    experts.{e}.up_proj.weight                       experts.gate_up_proj[e, F:]
    experts.{e}.down_proj.weight                     experts.down_proj[e]               (N, D, F)

Every other tensor (attention, norms, shared experts, dense layers, embeddings, LM head) keeps its name. The
attention carries over unchanged: the reference permutes the rotary pairs into halves before rotate-half,
transformers' DeepseekV2 multiplies complex pairs, ours rotates interleaved pairs; all three give the same
scores.

Memory: a conversion lists the source tensors by name, shape and dtype from the file headers, checks them all
against the layout the config implies, then produces the output tensors one at a time, each read from the
source when it is written (``safe_open`` reads a tensor or a slice of it; ``.bin`` files are memory-mapped),
straight into its output shard. Peak memory is about one output tensor (one layer's stacked experts), not
the model.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from coe.checks import FileError
from coe.config import Attention, BalanceLoss, CoEConfig, ScoringFunc
from coe.modeling import CoEForCausalLM, index_files
from coe.nn.attention import yarn_mscale

logger = logging.getLogger(__name__)

# A piece of one of our tensors: its name and an index into it (() for the whole tensor).
Piece = tuple[str, tuple]
COPIED_FILES = (
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.*",
)


class Format(StrEnum):
    COE = "coe"
    REFERENCE = "coe_deepseekv2"
    DEEPSEEK_V2 = "deepseek_v2"


def detect_format(path: str | os.PathLike) -> Format:
    """The format of a checkpoint directory, from ``model_type`` in its config.json."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} has no config.json: not a checkpoint directory")
    model_type = json.loads(config_file.read_text()).get("model_type")
    try:
        return Format(model_type)
    except ValueError:
        raise ValueError(
            f"{config_file}: model_type={model_type!r} is not a format this library converts; "
            f"known: {', '.join(repr(str(f)) for f in Format)}"
        ) from None


# ---------------------------------------------------------------------------------------- configuration

# The reference's CoeConfig defaults, for keys a config.json leaves out.
REFERENCE_DEFAULTS: dict[str, Any] = dict(
    vocab_size=102400,
    hidden_size=4096,
    intermediate_size=11008,
    moe_intermediate_size=1407,
    num_hidden_layers=30,
    num_attention_heads=32,
    num_key_value_heads=32,
    n_shared_experts=None,
    n_routed_experts=None,
    routed_scaling_factor=1.0,
    kv_lora_rank=512,
    q_lora_rank=1536,
    qk_rope_head_dim=64,
    v_head_dim=128,
    qk_nope_head_dim=128,
    topk_method="gready",
    n_group=None,
    topk_group=None,
    num_experts_per_tok=None,
    moe_layer_freq=1,
    first_k_dense_replace=0,
    norm_topk_prob=False,
    scoring_func="softmax",
    aux_loss_alpha=0.001,
    hidden_act="silu",
    max_position_embeddings=2048,
    initializer_range=0.02,
    rms_norm_eps=1e-6,
    use_cache=True,
    pad_token_id=None,
    bos_token_id=100000,
    eos_token_id=100001,
    tie_word_embeddings=False,
    attention_bias=False,
    attention_dropout=0.0,
)
# Fields of ours that the reference has no use for: written as extra config.json keys (its config class keeps
# and ignores unknown keys), so that the way back is lossless. router_init among them: the reference always
# initialises its routers with kaiming_uniform_, and a converted checkpoint carries trained router weights.
OUR_EXTRAS = {"expert_backend": "adaptive", "router_z_loss_coef": 0.0, "router_init": "normal"}
# The reference's YaRN defaults (CoeYarnRotaryEmbedding).
REFERENCE_YARN_DEFAULTS = dict(
    original_max_position_embeddings=4096, beta_fast=32, beta_slow=1, mscale=1, mscale_all_dim=0
)
RESIDUALS = {"inner": (True, False), "outer": (False, True), "none": (False, False)}
# Keys that never change the model: bookkeeping, distribution and generation settings.
DROPPED_KEYS = {
    "model_type",
    "architectures",
    "auto_map",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "_name_or_path",
    "ep_size",
    "pretraining_tp",
    "save_routing_logits",
    "output_router_logits",
    "_attn_implementation_autoset",
    "torchscript",
    "use_bfloat16",
    "pruned_heads",
    "is_decoder",
    "tie_encoder_decoder",
    "add_cross_attention",
    "cross_attention_hidden_size",
    "finetuning_task",
    "tokenizer_class",
    "prefix",
    "sep_token_id",
    "task_specific_params",
    "tf_legacy_loss",
}


@cache
def _dropped_keys() -> frozenset[str]:
    from transformers import GenerationConfig, PreTrainedConfig

    generic = PreTrainedConfig().to_dict().keys() | GenerationConfig().to_dict().keys()
    return frozenset(DROPPED_KEYS | generic)


def _check_known(d: dict, known: set[str], source: str) -> None:
    for key, value in d.items():
        if key not in known and key not in _dropped_keys():
            raise ValueError(
                f"{source} config: key {key!r}={value!r} is unknown to this converter and may "
                "change the model; remove it if it does not"
            )


def _rope_from_legacy(rope_scaling: dict | None, rope_theta: float, *, reference: bool) -> dict:
    """``rope_scaling`` / ``rope_theta`` (the reference's and old DeepSeek-V2 spelling) -> rope_parameters.

    With ``reference`` the reference's YaRN defaults fill missing keys, and where its cos/sin factor
    ``mscale(factor, mscale) / mscale(factor, mscale_all_dim)`` differs from what transformers infers from
    the same keys (it does when one of the two is 0 or missing), that factor becomes ``attention_factor``.
    """
    if rope_scaling is None:
        return {"rope_type": "default", "rope_theta": float(rope_theta)}
    rope = dict(rope_scaling)
    rope_type = rope.pop("type", None) or rope.pop("rope_type", None)
    if rope_type not in ("linear", "dynamic", "yarn"):
        raise ValueError(
            f"rope_scaling type {rope_type!r} is not supported: allowed 'linear', 'dynamic', 'yarn'"
        )
    allowed = {"factor"} | (set(REFERENCE_YARN_DEFAULTS) if rope_type == "yarn" else set())
    if not reference and rope_type == "yarn":
        allowed |= {"attention_factor", "truncate"}
    for key, value in rope.items():
        if key not in allowed:
            raise ValueError(f"rope_scaling[{key!r}]={value!r} is not supported for rope type {rope_type!r}")
    if "factor" not in rope:
        raise ValueError(f"rope_scaling of type {rope_type!r} needs a 'factor'")
    if rope_type == "yarn" and reference:
        rope = {**REFERENCE_YARN_DEFAULTS, **rope}
        ours = _reference_yarn_attention_factor(rope)
        if not math.isclose(ours, _transformers_yarn_attention_factor(rope), rel_tol=1e-12):
            rope["attention_factor"] = ours
    return {"rope_type": rope_type, "rope_theta": float(rope_theta), **rope}


def _reference_yarn_attention_factor(rope: dict) -> float:
    return yarn_mscale(rope["factor"], rope["mscale"]) / yarn_mscale(rope["factor"], rope["mscale_all_dim"])


def _transformers_yarn_attention_factor(rope: dict) -> float:
    # transformers' _compute_yarn_parameters: the ratio only when both mscales are set, else mscale(factor).
    if rope.get("attention_factor") is not None:
        return rope["attention_factor"]
    if rope.get("mscale") and rope.get("mscale_all_dim"):
        return _reference_yarn_attention_factor(rope)
    return yarn_mscale(rope["factor"])


def _balance_loss(d: dict) -> str:
    if "balance_loss" in d:  # our extra key wins over the reference's flag
        return d["balance_loss"]
    return BalanceLoss.SEQ if d.get("seq_aux", True) else BalanceLoss.BATCH


def config_from_reference(d: dict) -> CoEConfig:
    """A reference config.json dict (model_type "coe_deepseekv2") -> CoEConfig; ValueError naming a key it
    cannot represent."""
    _check_known(
        d,
        set(REFERENCE_DEFAULTS)
        | set(OUR_EXTRAS)
        | {
            "inner_iter",
            "use_igate",
            "residual",
            "inner_residual",
            "outer_residual",
            "seq_aux",
            "balance_loss",
            "rope_scaling",
            "rope_theta",
        },
        "reference",
    )
    for key in ("inner_iter", "use_igate"):
        if key not in d:  # the reference reads both without a default
            raise ValueError(f"reference config: key {key!r} is missing (the reference code requires it)")
    full = {**REFERENCE_DEFAULTS, **d}
    if full["n_routed_experts"] is None:
        raise ValueError("reference config: n_routed_experts=None (a dense model) is not supported")
    if full["scoring_func"] != ScoringFunc.SOFTMAX:
        raise ValueError(
            f"reference config: scoring_func={full['scoring_func']!r} is not supported (the "
            "reference router is softmax only)"
        )
    inner, outer = _reference_residual(d)
    fields = {k: full[k] for k in REFERENCE_DEFAULTS}
    fields["num_key_value_heads"] = fields["num_key_value_heads"] or fields["num_attention_heads"]
    fields["n_shared_experts"] = fields["n_shared_experts"] or 0
    K = fields["num_experts_per_tok"]
    if fields["norm_topk_prob"] and isinstance(K, int) and K > 1 and fields["routed_scaling_factor"] != 1.0:
        # The reference skips the factor when it renormalises; ours always applies it.
        logger.info(
            "reference config: norm_topk_prob with top-%d ignores routed_scaling_factor=%s in the "
            "reference; converted as routed_scaling_factor=1.0",
            K,
            fields["routed_scaling_factor"],
        )
        fields["routed_scaling_factor"] = 1.0
    rope = _rope_from_legacy(full.get("rope_scaling"), full.get("rope_theta", 10000.0), reference=True)
    extras = {k: d[k] for k in OUR_EXTRAS if k in d}
    return CoEConfig(
        **fields,
        **extras,
        balance_loss=_balance_loss(d),
        rope_parameters=rope,
        attention=Attention.MLA,
        inner_iter=d["inner_iter"],
        use_igate=d["use_igate"],
        inner_residual=inner,
        outer_residual=outer,
    )


def _reference_residual(d: dict) -> tuple[bool, bool]:
    """(inner_residual, outer_residual) from the string ``residual`` or the older boolean flags."""
    flags = None
    if "inner_residual" in d or "outer_residual" in d:
        flags = (bool(d.get("inner_residual", True)), bool(d.get("outer_residual", False)))
    if "residual" not in d:
        return flags or RESIDUALS["inner"]  # the reference's default
    residual = d["residual"]
    if residual not in RESIDUALS:
        raise ValueError(
            f"reference config: residual={residual!r} cannot be represented (allowed: "
            f"{', '.join(map(repr, RESIDUALS))}; 'addinit' adds the first normalised input back "
            "in every iteration, which this library does not implement)"
        )
    if flags is not None and flags != RESIDUALS[residual]:
        raise ValueError(
            f"reference config: residual={residual!r} contradicts inner_residual={flags[0]}, "
            f"outer_residual={flags[1]}"
        )
    return RESIDUALS[residual]


def config_from_deepseek_v2(d: dict) -> CoEConfig:
    """A transformers DeepseekV2 config.json dict (model_type "deepseek_v2") -> CoEConfig with the semantics
    of transformers' DeepseekV2ForCausalLM: C = 1, the usual residual, softmax router whose gates are the
    chosen scores times routed_scaling_factor (norm_topk_prob ignored), MoE from first_k_dense_replace on."""
    from transformers import DeepseekV2Config

    defaults = DeepseekV2Config().to_dict()
    _check_known(
        d,
        set(defaults)
        | {
            "num_experts",
            "rope_scaling",
            "rope_theta",
            "aux_loss_alpha",
            "seq_aux",
            "scoring_func",
            "moe_layer_freq",
        },
        "deepseek_v2",
    )
    full = {**defaults, **d}
    if "num_experts" in d:
        full["n_routed_experts"] = d["num_experts"]
    for key, allowed in (("mlp_bias", False), ("scoring_func", "softmax"), ("moe_layer_freq", 1)):
        if full.get(key, allowed) != allowed:
            raise ValueError(
                f"deepseek_v2 config: {key}={full[key]!r} cannot be represented "
                f"(transformers' DeepseekV2 supports {allowed!r} only)"
            )
    if full["norm_topk_prob"]:
        logger.info("deepseek_v2 config: norm_topk_prob is ignored, as transformers' DeepseekV2 ignores it")
    if d.get("rope_parameters"):
        rope = dict(d["rope_parameters"])
    else:
        rope = _rope_from_legacy(d.get("rope_scaling"), d.get("rope_theta", 10000.0), reference=False)
    if rope.get("rope_type", "default") not in ("default", "yarn") and rope.get("mscale_all_dim"):
        raise ValueError(
            f"deepseek_v2 config: rope_parameters['mscale_all_dim'] with rope_type "
            f"{rope['rope_type']!r} cannot be represented (only YaRN scales the softmax)"
        )
    keep = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "intermediate_size",
        "max_position_embeddings",
        "num_attention_heads",
        "num_key_value_heads",
        "q_lora_rank",
        "kv_lora_rank",
        "qk_nope_head_dim",
        "qk_rope_head_dim",
        "v_head_dim",
        "attention_bias",
        "attention_dropout",
        "n_routed_experts",
        "n_shared_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "first_k_dense_replace",
        "topk_method",
        "n_group",
        "topk_group",
        "routed_scaling_factor",
        "hidden_act",
        "rms_norm_eps",
        "initializer_range",
        "tie_word_embeddings",
        "use_cache",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
    )
    fields = {k: full[k] for k in keep}
    fields["num_key_value_heads"] = fields["num_key_value_heads"] or fields["num_attention_heads"]
    fields["attention_dropout"] = fields["attention_dropout"] or 0.0
    return CoEConfig(
        **fields,
        aux_loss_alpha=d.get("aux_loss_alpha", 0.001),
        balance_loss=_balance_loss(d),
        rope_parameters=rope,
        attention=Attention.MLA,
        norm_topk_prob=False,
        scoring_func=ScoringFunc.SOFTMAX,
        moe_layer_freq=1,
        inner_iter=1,
        use_igate=False,
        inner_residual=False,
        outer_residual=True,
    )


def config_to_reference(config: CoEConfig, dtype: torch.dtype | None = None) -> dict:
    """CoEConfig -> a reference config.json dict that reproduces our model; ValueError naming the field when
    the reference cannot express it.

    The residuals are written as the booleans ``inner_residual`` / ``outer_residual``, which the code of the
    paper's runs reads, and as the string ``residual`` of its later versions where the choice is one of
    theirs; both residuals on (its ablations as they ran) is written as the booleans alone."""

    def fail(field: str, why: str) -> None:
        raise ValueError(
            f"CoEConfig.{field}={getattr(config, field)!r} cannot be written in the reference format: {why}"
        )

    if config.attention != Attention.MLA:
        fail("attention", "the reference has MLA attention only")
    if config.scoring_func != ScoringFunc.SOFTMAX:
        fail("scoring_func", "the reference router is softmax only")
    if config.router_bias_update_rate > 0:
        fail("router_bias_update_rate", "the reference router has no per-expert selection bias")
    K = config.num_experts_per_tok
    if config.norm_topk_prob and K > 1 and config.routed_scaling_factor != 1.0:
        fail("routed_scaling_factor", "with norm_topk_prob and K > 1 the reference applies no scaling factor")
    d: dict[str, Any] = {"architectures": ["CoeForCausalLM"], "model_type": Format.REFERENCE.value}
    for key in REFERENCE_DEFAULTS:
        d[key] = getattr(config, key)
    if config.balance_loss == BalanceLoss.NONE:  # the reference's way to train without it: alpha 0
        d["aux_loss_alpha"], d["balance_loss"] = 0.0, BalanceLoss.NONE.value
    d["seq_aux"] = config.balance_loss != BalanceLoss.BATCH
    d["n_shared_experts"] = config.n_shared_experts or None
    d.update(_rope_to_legacy(config.rope_parameters))
    d.update(inner_iter=config.inner_iter, use_igate=config.use_igate)
    flags = (config.inner_residual, config.outer_residual)
    d.update(inner_residual=flags[0], outer_residual=flags[1])
    residual = next((name for name, value in RESIDUALS.items() if value == flags), None)
    if residual is not None:
        d["residual"] = residual
    else:
        logger.warning(
            "inner_residual and outer_residual are both on: written as the reference's booleans, which its "
            "code of the paper's runs reads; its later code reads only `residual` and would take 'inner'"
        )
    for key, default in OUR_EXTRAS.items():
        if getattr(config, key) != default:
            d[key] = getattr(config, key)
    if config.router_z_loss_coef:
        logger.warning(
            "router_z_loss_coef=%s is kept as an extra config key; the reference code ignores it",
            config.router_z_loss_coef,
        )
    if dtype is not None:
        d["torch_dtype"] = str(dtype).removeprefix("torch.")
    return d


def _rope_to_legacy(rope: dict) -> dict:
    rope = dict(rope)
    rope_type, theta = rope.pop("rope_type"), rope.pop("rope_theta")
    if rope_type == "default":
        unused = set(rope)
        scaling = None
    elif rope_type in ("linear", "dynamic"):
        unused = set(rope) - {"factor"}
        scaling = {"type": rope_type, "factor": rope["factor"]}
    else:
        unused = set(rope) - set(REFERENCE_YARN_DEFAULTS) - {"factor", "attention_factor", "truncate"}
        if rope.get("truncate", True) is not True:
            raise ValueError("rope_parameters['truncate']=False cannot be written in the reference format")
        scaling = {
            "type": "yarn",
            "factor": rope["factor"],
            **{k: rope.get(k, default) for k, default in REFERENCE_YARN_DEFAULTS.items()},
        }
        for key in ("beta_fast", "beta_slow"):  # transformers reads a missing or 0 value as the default
            scaling[key] = scaling[key] or REFERENCE_YARN_DEFAULTS[key]
        # Our effective cos/sin factor must be the one the reference computes from the keys it is given.
        ours, theirs = _transformers_yarn_attention_factor(rope), _reference_yarn_attention_factor(scaling)
        if not math.isclose(ours, theirs, rel_tol=1e-12):
            raise ValueError(
                f"rope_parameters={rope!r}: its YaRN attention factor {ours} cannot be written "
                "in the reference format, where it is mscale(factor, mscale) / "
                "mscale(factor, mscale_all_dim)"
            )
    if unused:
        raise ValueError(f"rope_parameters[{min(unused)!r}] cannot be written in the reference format")
    return {"rope_theta": theta, "rope_scaling": scaling}


def read_config(path: str | os.PathLike, fmt: Format | None = None) -> CoEConfig:
    """The CoEConfig of a checkpoint directory in any of the formats."""
    fmt = fmt or detect_format(path)
    d = json.loads((Path(path) / "config.json").read_text())
    if fmt == Format.COE:
        return CoEConfig.from_dict(d)
    return config_from_reference(d) if fmt == Format.REFERENCE else config_from_deepseek_v2(d)


# ---------------------------------------------------------------------------------------------- layouts


def our_shapes(config: CoEConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of our checkpoint with its shape, in model order (a model built on the meta device)."""
    with torch.device("meta"):
        model = CoEForCausalLM(config)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if config.tie_word_embeddings:
        shapes.pop("lm_head.weight")  # saved once, as the embedding
    return shapes


def reference_layout(config: CoEConfig, *, fused_experts: bool = False) -> dict[str, Piece]:
    """Reference (or DeepSeek-V2) weight name -> the piece of our tensor it holds. ``fused_experts`` keeps the
    stacked expert tensors (transformers' DeepseekV2 in memory) instead of one module per expert."""
    F, N = config.moe_intermediate_size, config.n_routed_experts
    layout: dict[str, Piece] = {}
    for key in our_shapes(config):
        prefix, _, name = key.partition(".mlp.")
        parts = name.split(".")
        if parts[0] == "routers":
            if parts[2] != "weight":
                raise ValueError(
                    f"{key}: the reference format has no place for it (router_bias_update_rate > 0)"
                )
            router = f"gate.{parts[1]}.weight" if config.use_igate else "gate.weight"
            layout[f"{prefix}.mlp.{router}"] = (key, ())
        elif name == "experts.gate_up_proj" and not fused_experts:
            for e in range(N):
                layout[f"{prefix}.mlp.experts.{e}.gate_proj.weight"] = (key, (e, slice(0, F)))
                layout[f"{prefix}.mlp.experts.{e}.up_proj.weight"] = (key, (e, slice(F, 2 * F)))
        elif name == "experts.down_proj" and not fused_experts:
            for e in range(N):
                layout[f"{prefix}.mlp.experts.{e}.down_proj.weight"] = (key, (e,))
        else:
            layout[key] = (key, ())
    return layout


def _layout(fmt: Format, config: CoEConfig, *, fused_experts: bool = False) -> dict[str, Piece]:
    if fmt == Format.COE:
        return {key: (key, ()) for key in our_shapes(config)}
    return reference_layout(config, fused_experts=fused_experts)


def _piece_shape(shape: tuple[int, ...], index: tuple) -> tuple[int, ...]:
    return tuple(torch.empty(shape, device="meta")[index].shape)


# ---------------------------------------------------------------------------------------------- reading

SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
SAFETENSORS_NAMES = {dtype: name for name, dtype in SAFETENSORS_DTYPES.items()}


def weight_files(path: Path) -> list[Path]:
    """The weight files of a checkpoint directory: safetensors or pytorch_model.bin, single or sharded."""
    for single, index in (
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (path / index).is_file():
            return index_files(path / index)
        if (path / single).is_file():
            return [path / single]
    raise FileNotFoundError(f"{path} has no model.safetensors, pytorch_model.bin or index of either")


class CheckpointReader:
    """The tensors of a checkpoint directory, listed from the file headers and read one at a time.

    safetensors files are opened for each read (``safe_open`` maps the file and reads just the tensor or the
    slice asked for, then lets go of it); ``.bin`` files are loaded memory-mapped, once each.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.files: dict[str, Path] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, torch.dtype] = {}
        self._bins: dict[Path, dict[str, torch.Tensor]] = {}
        for file in weight_files(self.path):
            if file.suffix == ".safetensors":
                try:
                    with safe_open(file, "pt") as f:
                        for key in f.keys():
                            view = f.get_slice(key)
                            dtype = SAFETENSORS_DTYPES[view.get_dtype()]
                            self._add(key, file, tuple(view.get_shape()), dtype)
                except SafetensorError as e:
                    raise FileError(file, f"unreadable safetensors file ({e})") from e
            else:
                for key, t in self._bin(file).items():
                    self._add(key, file, tuple(t.shape), t.dtype)

    def _add(self, key: str, file: Path, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        if key in self.files:
            raise ValueError(f"{self.path}: weight {key} is in both {self.files[key].name} and {file.name}")
        self.files[key], self.shapes[key], self.dtypes[key] = file, shape, dtype

    def _bin(self, file: Path) -> dict[str, torch.Tensor]:
        if file not in self._bins:
            self._bins[file] = torch.load(file, map_location="cpu", mmap=True, weights_only=True)
        return self._bins[file]

    def read(self, key: str, index: tuple = ()) -> torch.Tensor:
        """The tensor ``key``, or ``tensor[index]`` read without the rest."""
        file = self.files[key]
        if file.suffix != ".safetensors":
            return self._bin(file)[key][index].clone()
        with safe_open(file, "pt") as f:
            return f.get_slice(key)[index] if index else f.get_tensor(key)


# ---------------------------------------------------------------------------------------------- writing


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B)?\s*", size, re.IGNORECASE)
    if not match:
        raise ValueError(f"max_shard_size={size!r}: expected bytes or a size such as '5GB' or '500MiB'")
    unit = (match.group(2) or "B").upper()
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}[unit]
    return int(float(match.group(1)) * scale)


def write_safetensors_shards(
    dst: Path,
    entries: list[tuple[str, tuple[int, ...], torch.dtype, Callable[[], torch.Tensor]]],
    max_shard_size: int | str,
    prefix: str = "model",
) -> list[Path]:
    """Write ``(name, shape, dtype, produce)`` entries as ``{prefix}.safetensors`` or as shards with an index.

    Shapes and dtypes are known before any data is read, so each shard's header is written first and each
    tensor is produced, written and dropped in turn: memory holds one tensor at a time. Within a shard the
    tensors are ordered by decreasing element size, as safetensors' own writer does, to keep them aligned.
    """
    if sys.byteorder != "little":
        raise RuntimeError("writing safetensors needs a little-endian machine")
    limit = _parse_size(max_shard_size)
    shards: list[list] = [[]]
    size = 0
    for entry in entries:
        nbytes = math.prod(entry[1]) * entry[2].itemsize
        if shards[-1] and size + nbytes > limit:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += nbytes
    names = (
        [f"{prefix}.safetensors"]
        if len(shards) == 1
        else [f"{prefix}-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    for name, shard in zip(names, shards, strict=True):
        _write_safetensors(dst / name, sorted(shard, key=lambda e: -e[2].itemsize))
    if len(shards) > 1:
        weight_map = {entry[0]: name for name, shard in zip(names, shards, strict=True) for entry in shard}
        total = sum(math.prod(e[1]) * e[2].itemsize for e in entries)
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (dst / f"{prefix}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return [dst / name for name in names]


def _write_safetensors(path: Path, entries: list) -> None:
    # The format: 8-byte little-endian header size, a JSON header padded with spaces to 8 bytes, the data.
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, dtype, _ in entries:
        nbytes = math.prod(shape) * dtype.itemsize
        header[name] = {
            "dtype": SAFETENSORS_NAMES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape, dtype, produce in entries:
            t = produce()
            if tuple(t.shape) != tuple(shape) or t.dtype != dtype:
                raise RuntimeError(f"{name}: produced {tuple(t.shape)} {t.dtype}, planned {shape} {dtype}")
            if t.numel():
                f.write(t.contiguous().reshape(-1).view(torch.uint8).numpy().data)
            del t


# ------------------------------------------------------------------------------------------- conversion


class _Plan:
    """How each tensor of the target format is read out of the source checkpoint."""

    def __init__(self, reader: CheckpointReader, fmt: Format, config: CoEConfig) -> None:
        self.reader, self.config = reader, config
        fused = any(k.endswith("mlp.experts.gate_up_proj") for k in reader.files)
        self.ours = our_shapes(config)
        self.source = _layout(fmt, config, fused_experts=fused)  # source name -> piece of ours
        self.pieces: dict[str, list[tuple[str, tuple]]] = {}  # ours -> [(source name, index into ours)]
        for source_key, (key, index) in self.source.items():
            self.pieces.setdefault(key, []).append((source_key, index))
        self._check(fmt)
        self.dtypes = {key: self._dtype(key) for key in self.ours}

    def _check(self, fmt: Format) -> None:
        where = f"{fmt} checkpoint {self.reader.path}"
        expected = {k: _piece_shape(self.ours[key], index) for k, (key, index) in self.source.items()}
        found = self.reader.shapes
        ignored = {"lm_head.weight"} if self.config.tie_word_embeddings else set()
        if not self.config.n_shared_experts:
            # The reference with n_shared_experts=0 (its ablation and dense runs) builds a shared expert of
            # width 0 and saves its empty tensors.
            ignored |= {k for k, shape in found.items() if ".mlp.shared_experts." in k and 0 in shape}
        missing = [k for k in expected if k not in found]
        if missing:
            raise ValueError(
                f"{where}: missing weight {missing[0]} (expected shape {expected[missing[0]]})"
                + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            )
        unexpected = [k for k in found if k not in expected and k not in ignored]
        if unexpected:
            raise ValueError(
                f"{where}: unexpected weight {unexpected[0]} with shape {found[unexpected[0]]}"
                + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else "")
                + " (it does not fit the config)"
            )
        for k, shape in expected.items():
            if found[k] != shape:
                raise ValueError(
                    f"{where}: weight {k} has shape {found[k]}, expected {shape} from the config"
                )

    def _dtype(self, key: str) -> torch.dtype:
        dtypes = {self.reader.dtypes[k] for k, _ in self.pieces[key]}
        if len(dtypes) > 1:
            names = ", ".join(f"{k} ({self.reader.dtypes[k]})" for k, _ in self.pieces[key][:4])
            raise ValueError(f"{key}: its source tensors have different dtypes: {names}...")
        return dtypes.pop()

    def read(self, key: str, index: tuple = ()) -> torch.Tensor:
        """Our tensor ``key`` (or ``[index]`` of it), assembled from the source pieces it is made of."""
        pieces = self.pieces[key]
        for source_key, piece_index in pieces:
            if piece_index == index:
                return self.reader.read(source_key)
        if len(pieces) == 1 and pieces[0][1] == ():
            return self.reader.read(pieces[0][0], index)
        out = torch.empty(self.ours[key], dtype=self.dtypes[key])
        for source_key, piece_index in pieces:
            out[piece_index] = self.reader.read(source_key)
        return out[index].clone() if index else out

    def entries(self, target: dict[str, Piece]) -> list:
        """(name, shape, dtype, produce) for each tensor of the target layout, in its order."""
        return [
            (
                name,
                _piece_shape(self.ours[key], index),
                self.dtypes[key],
                lambda key=key, index=index: self.read(key, index),
            )
            for name, (key, index) in target.items()
        ]


@contextlib.contextmanager
def atomic_directory(dst: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary directory next to ``dst`` that replaces it on success and is removed on failure."""
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        why = "exists and is not empty (overwrite=True, `--overwrite true`, replaces it)"
        raise FileExistsError(errno.EEXIST, why, str(dst))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
    if dst.exists():
        dst.rename(old)
    try:
        tmp.rename(dst)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists():
            old.rename(dst)
        raise
    shutil.rmtree(old, ignore_errors=True)


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    to: str = "coe",
    max_shard_size: int | str = "5GB",
    overwrite: bool = False,
) -> Path:
    """Convert the checkpoint directory ``src`` (any :class:`Format`) into ``dst``.

    ``to="coe"`` writes our format (config.json from CoEConfig.save_pretrained, safetensors weights), which
    ``CoEForCausalLM.from_pretrained`` loads; ``to="reference"`` writes the reference code's config.json and
    key layout. Tokenizer and generation files are copied. Everything is checked before anything is written;
    ``dst`` appears whole or not at all. Returns ``dst``.
    """
    src, dst = Path(src), Path(dst)
    target = {"coe": Format.COE, "reference": Format.REFERENCE}.get(to)
    if target is None:
        raise ValueError(f"to={to!r}: convert writes 'coe' or 'reference'")
    fmt = detect_format(src)
    config = read_config(src, fmt)
    plan = _Plan(CheckpointReader(src), fmt, config)
    dtype = plan.dtypes["model.embed_tokens.weight"]
    if target == Format.REFERENCE:
        config_json = config_to_reference(config, dtype)
        layout = reference_layout(config)
    else:
        layout = _layout(Format.COE, config)
    entries = plan.entries(layout)
    logger.info("converting %s checkpoint %s to %s format in %s", fmt, src, target, dst)
    with atomic_directory(dst, overwrite) as tmp:
        if target == Format.REFERENCE:
            (tmp / "config.json").write_text(json.dumps(config_json, indent=2) + "\n")
        else:
            config.dtype = dtype
            config.architectures = [CoEForCausalLM.__name__]
            config.save_pretrained(tmp)
        write_safetensors_shards(tmp, entries, max_shard_size)
        for pattern in COPIED_FILES:
            for file in src.glob(pattern):
                if file.is_file():
                    shutil.copy2(file, tmp / file.name)
    return dst
