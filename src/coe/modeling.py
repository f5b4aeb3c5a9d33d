"""CoEForCausalLM: embeddings, decoder layers (attention + Chain-of-Experts block), LM head.

A transformers ``PreTrainedModel`` with ``GenerationMixin``: save_pretrained / from_pretrained through
safetensors, ``generate()`` with transformers' cache classes, registered with the Auto classes. Checkpoints of
the reference code or of transformers' DeepSeek-V2 are converted first (:mod:`coe.convert`, ``coe convert``);
from_pretrained refuses them. Loading is strict: a missing, unexpected or misshapen weight is an error naming
it, a directory without config.json is not a checkpoint, and a sharded index names files inside its directory.
A checkpoint ``coe train`` wrote (``step-N/``) loads too: its weights are in ``step-N/model/``.

Shapes: B batch, S positions, D hidden, V vocabulary, T = B * S tokens, N experts, K choices.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn
from torch.nn.attention.flex_attention import BlockMask
from torch.utils.checkpoint import checkpoint
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import MoeCausalLMOutputWithPast

from coe.checks import FileError
from coe.config import Attention, CoEConfig, RouterInit
from coe.layout import weights_dir
from coe.nn.attention import (
    RotaryEmbedding,
    build_attention,
    causal_mask,
    document_mask,
    document_positions,
    use_flex_attention,
)
from coe.nn.chain import ChainOfExperts, ChainOutput
from coe.nn.experts import Experts
from coe.nn.lm_loss import IGNORE_INDEX, linear_cross_entropy
from coe.nn.mlp import RMSNorm, SwiGLU
from coe.nn.router import Router

# transformers renamed the cache from `past_key_values` to `cache` in 5.2x (5.17: `past_key_values`, 5.24:
# `cache`), in forward's arguments and in the output together: generate() passes the cache to forward() under
# this name and reads it back from the output field of the same name.
CACHE_FIELD = "cache" if "cache" in {f.name for f in fields(MoeCausalLMOutputWithPast)} else "past_key_values"


# The attention implementations a model may be built with (None: transformers' choice, which is "sdpa").
SUPPORTED_ATTENTION = (None, "sdpa")


@dataclass
class CoECausalLMOutput(MoeCausalLMOutputWithPast):
    """transformers' MoE output plus what CoE adds. Router tensors come layer-major, iteration-minor:
    entry ``i * C + t`` belongs to the i-th MoE layer, iteration t.

    - loss: lm_loss + aux_loss (when labels are given)
    - lm_loss: the language-model cross-entropy alone
    - aux_loss: ``aux_loss_alpha * sum(balance_losses) + router_z_loss_coef * sum(z_losses)`` (training only)
    - balance_losses, z_losses: (R,) unweighted, one per (MoE layer, iteration) (training only)
    - router_logits: R tensors (T, N) and selected_experts: R tensors (T, K) with output_router_logits=True
    """

    lm_loss: torch.Tensor | None = None
    balance_losses: torch.Tensor | None = None
    z_losses: torch.Tensor | None = None
    selected_experts: tuple[torch.Tensor, ...] | None = None
    routing_weights: tuple[torch.Tensor, ...] | None = None


class CoEDecoderLayer(GradientCheckpointingLayer):
    """``h = h + Attn(norm1(h))``, then the CoE block on ``norm2(h)`` (see :class:`CoEConfig`)."""

    def __init__(self, config: CoEConfig, layer_idx: int) -> None:
        super().__init__()
        D = config.hidden_size
        self.self_attn = build_attention(config, layer_idx)
        self.input_layernorm = RMSNorm(D, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(D, config.rms_norm_eps)
        self.is_moe = config.is_moe_layer(layer_idx)
        self.mlp = ChainOfExperts(config) if self.is_moe else SwiGLU(D, config.intermediate_size)
        self.outer_residual = config.outer_residual

    def forward(
        self,
        h: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | BlockMask | None,
        cache: Cache | None = None,
        token_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ChainOutput | None]:
        """token_mask: (B, S) the tokens the routing losses and counts take (None: all)."""
        h = h + self.self_attn(self.input_layernorm(h), rope, mask, cache)
        x = self.post_attention_layernorm(h)
        if not self.is_moe:
            return h + self.mlp(x), None  # dense layers keep the standard residual
        chain = self.mlp(x, token_mask)
        return (chain.hidden + h if self.outer_residual else chain.hidden), chain


def index_files(index: Path) -> list[Path]:
    """The weight files a sharded checkpoint's index (``*.index.json``) names, each inside the index's
    directory; FileError for an unreadable index or a file outside (an index must not make a loader read
    elsewhere)."""
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (ValueError, KeyError, TypeError) as e:
        raise FileError(index, f"not a weight index ({e!r})") from e
    root = index.parent.resolve()
    files = []
    for name in dict.fromkeys(weight_map.values()):
        if not isinstance(name, str) or not (index.parent / name).resolve().is_relative_to(root):
            raise FileError(index, f"weight file {name!r} lies outside the checkpoint directory")
        files.append(index.parent / name)
    return files


def check_checkpoint_files(path: Path) -> None:
    """A local checkpoint directory holds config.json, and its sharded indexes name files inside it."""
    if not (path / "config.json").is_file():
        raise FileError(path, "no config.json: not a checkpoint directory")
    for index in path.glob("*.index.json"):
        index_files(index)


class CoEPreTrainedModel(PreTrainedModel):
    config: CoEConfig
    config_class = CoEConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["CoEDecoderLayer"]
    _supports_sdpa = True
    # The forward traces as one graph (tests/test_generation.py): generate() with the static cache compiles
    # its decoding steps whole (on CUDA with CUDA graphs, transformers' default compile mode).
    _can_compile_fullgraph = True
    _keep_in_fp32_modules_strict = ["routers"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool = True, **kwargs):
        """transformers' from_pretrained, strictly: a weight the checkpoint lacks, one the model has no place
        for, or one of another shape fails with ``FileError`` naming it (``strict=False``: transformers'
        report, and fresh initialisation of what did not load). A local directory must hold config.json
        (without it transformers would build the paper-size defaults), and its weights must be readable; a
        training checkpoint ``step-N`` loads from ``step-N/model`` (:func:`weights_dir`)."""
        source = pretrained_model_name_or_path
        local = isinstance(source, str | os.PathLike) and Path(source).is_dir()
        if local:
            source = weights_dir(Path(source))
            check_checkpoint_files(source)
        wants_info = kwargs.pop("output_loading_info", False)
        kwargs.setdefault("ignore_mismatched_sizes", True)  # strict: reported below, by name
        try:
            model, info = super().from_pretrained(source, *model_args, output_loading_info=True, **kwargs)
        except SafetensorError as e:
            raise FileError(source, f"unreadable weights ({e})") from e
        problems = [f"{key}: missing from the checkpoint" for key in sorted(info["missing_keys"])]
        problems += [f"{key}: in the checkpoint, not in the model" for key in sorted(info["unexpected_keys"])]
        problems += [
            f"{key}: shape {tuple(saved)} in the checkpoint, {tuple(wanted)} in the model"
            for key, saved, wanted in sorted(info["mismatched_keys"])
        ]
        if strict and problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise FileError(source, f"weights do not match the model: {shown} (strict=False loads it anyway)")
        return (model, info) if wants_info else model

    def _set_gradient_checkpointing(
        self, enable: bool = True, gradient_checkpointing_func=checkpoint, **kwargs
    ):
        """transformers' switch for activation checkpointing (``gradient_checkpointing_enable`` and
        ``activation_checkpointing_enable`` end here), refusing the reentrant form: reentrant checkpointing
        reruns a layer's forward without autograd and connects only the tensors the layer returns, while the
        router losses travel in its ``ChainOutput``, so their gradient would be silently lost (the loss value
        unchanged). The non-reentrant form (transformers' default) keeps them."""
        if enable and getattr(gradient_checkpointing_func, "keywords", {}).get("use_reentrant"):
            raise ValueError(
                "gradient checkpointing with use_reentrant=True would drop the router losses' gradient "
                "(they are not among the tensors a checkpointed layer returns); use use_reentrant=False "
                "(transformers' default)"
            )
        super()._set_gradient_checkpointing(enable, gradient_checkpointing_func, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, Router):
            # An nn.Linear, drawn here alone: the generic Linear init would draw once more first and so shift
            # every weight drawn after it (the same seed would give other weights than before).
            weight = module.weight  # (N, D)
            if self.config.router_init == RouterInit.NORMAL:
                init.normal_(weight, mean=0.0, std=std)
            elif not getattr(weight, "_is_hf_initialized", False):  # not loaded from a checkpoint
                # The reference's kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound sqrt(3) * gain /
                # sqrt(fan_in) = 1 / sqrt(D). Drawn as standard normals z mapped through erf(z / sqrt(2)),
                # uniform on (-1, 1): the random numbers "normal" draws, so for the same seed every other
                # weight is the same with either choice (uniform_ may consume the generator differently).
                with torch.no_grad():
                    weight.normal_().mul_(2**-0.5).erf_().mul_(weight.shape[1] ** -0.5)
            if module.expert_bias is not None:
                init.zeros_(module.expert_bias)
            return
        super()._init_weights(module)
        if isinstance(module, Experts):
            init.normal_(module.gate_up_proj, mean=0.0, std=std)
            init.normal_(module.down_proj, mean=0.0, std=std)
        elif isinstance(module, ChainOfExperts):
            init.zeros_(module.tokens_per_expert)


class CoEModel(CoEPreTrainedModel):
    """The decoder stack without the LM head."""

    def __init__(self, config: CoEConfig) -> None:
        super().__init__(config)
        # No padding_idx: padding is masked out of attention and loss, so no row needs to stay zero, and the
        # pad token is often a real one (the trainer pads with EOS). A frozen zero row is a trap: a sequence
        # that starts with it keeps an all-zero hidden state through every layer (attention to itself,
        # experts and norms of zero are zero), and each RMSNorm's backward multiplies its gradient by
        # 1/sqrt(eps): with 8 layers the gradient overflows.
        if config._attn_implementation not in SUPPORTED_ATTENTION:
            raise ValueError(
                f"attn_implementation={config._attn_implementation!r} is not supported; supported: "
                f"{', '.join(map(repr, SUPPORTED_ATTENTION))} (SDPA, FlexAttention for document masks on "
                "CUDA, latent attention for MLA decoding; no eager path returning attention weights)"
            )
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(CoEDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
        document_ids: torch.Tensor | None = None,
        routing_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[ChainOutput], Cache | None, tuple[torch.Tensor, ...] | None]:
        """Returns (last hidden (B, S, D), one ChainOutput per MoE layer, cache, all hidden states or
        None). See :meth:`CoEForCausalLM.forward` for ``document_ids`` and ``routing_mask``."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        h = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        _B, S, _ = h.shape
        if use_cache and cache is None:
            cache = DynamicCache()
        if document_ids is not None and cache is not None:
            raise ValueError("document_ids are for forwards without a key/value cache (use_cache=False)")
        # Positions filled in the cache: an int for a dynamic cache, a 0-d tensor for a static one (no sync).
        past = cache.get_seq_length() if cache is not None else 0
        if position_ids is None:
            if document_ids is not None:
                position_ids = document_positions(document_ids)
            else:
                position_ids = (torch.arange(S, device=h.device) + past).unsqueeze(0)
        rope = self.rotary_emb(h, position_ids)
        mask = self._mask(attention_mask, document_ids, cache, past, h)
        token_mask = None  # the tokens of the routing losses and counts, which training forwards alone take
        if self.training:
            padding = attention_mask if attention_mask is not None and attention_mask.ndim == 2 else None
            counted = routing_mask if routing_mask is not None else padding  # by default not the padding
            token_mask = counted[:, -S:].bool() if counted is not None else None
        chains: list[ChainOutput] = []
        hidden_states = [h] if output_hidden_states else None
        for layer in self.layers:
            h, chain = layer(h, rope, mask, cache, token_mask)
            if chain is not None:
                chains.append(chain)
                # Training load only: evaluation and generate() leave the counts alone. Counted here rather
                # than inside the layer so that activation recomputation doesn't recount.
                if self.training:
                    layer.mlp.record(chain)
            if hidden_states is not None:
                hidden_states.append(h)
        h = self.norm(h)
        if hidden_states is not None:
            hidden_states[-1] = h
        return h, chains, cache, tuple(hidden_states) if hidden_states is not None else None

    def _mask(
        self,
        attention_mask: torch.Tensor | None,
        document_ids: torch.Tensor | None,
        cache: Cache | None,
        past: int | torch.Tensor,
        h: torch.Tensor,
    ) -> torch.Tensor | BlockMask | None:
        """The attention mask. With a cache (generation), or for a 4-D mask as transformers builds them, the
        boolean mask of ``causal_mask`` against the cache's key positions (a static cache: all its slots).
        Without one (training, validation), padding and documents become one document mask: padding
        (attention_mask 0) sees nothing and is seen by nothing, documents see only themselves, in the kernel
        that ``use_flex_attention`` picks for the device and the dtype attention computes in (autocast's or
        ``h``'s)."""
        device, S = h.device, h.shape[1]
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else h.dtype
        if cache is not None:
            num_keys, _ = cache.get_mask_sizes(S, 0)
            return causal_mask(attention_mask, S, num_keys, device, past)
        if (attention_mask is None or attention_mask.ndim == 4) and document_ids is None:
            return causal_mask(attention_mask, S, S, device)
        if attention_mask is not None and attention_mask.ndim != 2:
            raise ValueError(
                f"attention_mask with document_ids must be 2-D (B, S), got {tuple(attention_mask.shape)}"
            )
        ids = document_ids if document_ids is not None else attention_mask.new_zeros(attention_mask.shape)
        if attention_mask is not None:
            ids = ids.masked_fill(attention_mask == 0, -1)
        return document_mask(ids, flex=use_flex_attention(device, self.config.attention_dropout, dtype))


class CoEForCausalLM(CoEPreTrainedModel, GenerationMixin):
    """Chain-of-Experts causal language model (MoE when ``inner_iter == 1``)."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: CoEConfig) -> None:
        super().__init__(config)
        self.model = CoEModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def chains(self) -> list[ChainOfExperts]:
        """The Chain-of-Experts blocks, one per MoE layer, in layer order."""
        return [layer.mlp for layer in self.model.layers if layer.is_moe]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        shift_labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_router_logits: bool = False,
        output_hidden_states: bool = False,
        logits_to_keep: int | torch.Tensor = 0,
        return_logits: bool = True,
        document_ids: torch.Tensor | None = None,
        routing_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> CoECausalLMOutput:
        """Logits (B, S', V) and, with ``labels`` (B, S) (shifted inside, IGNORE_INDEX ignored) or
        ``shift_labels`` (B, S) (already the next tokens), the loss. ``return_logits=False`` with labels
        computes the loss in chunks without ever holding the full logits (training at large vocabularies);
        logits are then None.
        ``cache``: the key/value cache (any of transformers' ``Cache`` classes: ``DynamicCache``,
        ``StaticCache``), returned in the output field ``CACHE_FIELD``; without one, a cache is made and
        returned only with ``use_cache=True`` (generate() always says). ``attention_mask`` may also be a 4-D
        mask as transformers' generate() builds for a static cache (see ``coe.nn.attention.causal_mask``).
        Other keyword arguments from generate() are ignored.

        Batches of several documents or of padded rows (without a cache):

        - ``attention_mask`` (B, S): 1 for real tokens, 0 for padding, which attends to nothing and which
          nothing attends to;
        - ``document_ids`` (B, S): documents packed in a row; a token attends only to earlier tokens of its
          own document, and positions restart at 0 in each document unless ``position_ids`` are given;
        - ``routing_mask`` (B, S): the tokens that count in the routing losses and the routing counts of
          training forwards; default: the real tokens of ``attention_mask`` (all without one). Every token is
          routed either way; ones here count padding as the reference code did."""
        # generate() passes the cache under CACHE_FIELD. Before transformers 5.2x that is `past_key_values`,
        # taken for those versions only; from 5.2x on the old name fails instead of being ignored like the
        # other extra arguments.
        if kwargs.get("output_attentions"):
            raise ValueError(
                "output_attentions=True is not supported: attention runs in SDPA / FlexAttention kernels, "
                "which return no attention weights"
            )
        if "past_key_values" in kwargs:
            if CACHE_FIELD == "cache":
                raise TypeError("CoEForCausalLM.forward takes the key/value cache as `cache`")
            cache = kwargs.pop("past_key_values")
        # A cache only when asked for (generate() always says) or passed in.
        use_cache = bool(use_cache)
        h, chains, cache, hidden_states = self.model(
            input_ids,
            attention_mask,
            position_ids,
            cache,
            inputs_embeds,
            use_cache,
            output_hidden_states,
            document_ids=document_ids,
            routing_mask=routing_mask,
        )
        has_labels = labels is not None or shift_labels is not None
        if has_labels and shift_labels is None:
            shift_labels = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
        logits = None
        if return_logits or not has_labels:
            keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            logits = self.lm_head(h[:, keep, :])

        routings = [r for chain in chains for r in chain.routings]
        out = CoECausalLMOutput(logits=logits, hidden_states=hidden_states, **{CACHE_FIELD: cache})
        balance = [b for chain in chains for b in chain.balance_losses]
        z = [z for chain in chains for z in chain.z_losses]
        if balance or z:
            out.aux_loss = h.new_zeros((), dtype=torch.float32)
        if balance:
            out.balance_losses = torch.stack(balance)
            out.aux_loss = out.aux_loss + self.config.aux_loss_alpha * out.balance_losses.sum()
        if z:
            out.z_losses = torch.stack(z)
            out.aux_loss = out.aux_loss + self.config.router_z_loss_coef * out.z_losses.sum()
        if has_labels:
            if logits is not None:
                out.lm_loss = F.cross_entropy(
                    logits.float().flatten(0, 1), shift_labels.flatten(), ignore_index=IGNORE_INDEX
                )
            else:
                out.lm_loss = linear_cross_entropy(
                    h.flatten(0, 1), self.lm_head.weight, shift_labels.flatten()
                )
            out.loss = out.lm_loss if out.aux_loss is None else out.lm_loss + out.aux_loss
        if output_router_logits:
            out.router_logits = tuple(r.logits for r in routings)
            out.selected_experts = tuple(r.topk_idx for r in routings)
            out.routing_weights = tuple(r.topk_weight for r in routings)
        return out

    def _get_static_cache_init_shape(self) -> tuple[int, int] | None:
        """transformers' preallocation of a static cache before a chunked prefill (``prefill_chunk_size``):
        one (heads, size) for keys and values alike, which fits GQA but not MLA's latent and rotary key of
        two sizes. None for MLA: its static cache takes its shapes from the first tensors stored."""
        if self.config.attention == Attention.MLA:
            return None
        return super()._get_static_cache_init_shape()

    def update_router_biases(self, counts: torch.Tensor) -> None:
        """One auxiliary-loss-free balancing step (after each optimizer step) from ``counts`` (MoE layers, C,
        N), the step's tokens per expert as ``coe.train.distributed.take_routing_counts`` returns them."""
        for chain, layer_counts in zip(self.chains(), counts, strict=True):
            chain.update_expert_bias(layer_counts, self.config.router_bias_update_rate)
