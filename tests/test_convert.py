"""Checkpoint conversion: reference and DeepSeek-V2 checkpoints in, the reference format out, errors, memory.

Reference-format checkpoints are written here from random tensors in the reference's key layout; their logits
are compared with transformers' DeepseekV2 (C = 1, the usual residual) and with an independent forward written
from the formulas below over the reference tensors (any C, the reference's residual and router choices).
"""

import json
import math
import weakref

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import DeepseekV2Config, DeepseekV2ForCausalLM

from coe import CoEConfig, CoEForCausalLM
from coe.convert import CheckpointReader, Format, convert, detect_format, read_config
from coe.presets import AS_RUN_TWINS
from tests.conftest import rel_err

YARN = dict(
    type="yarn",
    factor=4.0,
    original_max_position_embeddings=64,
    beta_fast=32,
    beta_slow=1,
    mscale=0.707,
    mscale_all_dim=1.0,
)


def ref_config(**overrides) -> dict:
    """A small reference config.json (model_type coe_deepseekv2), with the keys its code writes."""
    d = dict(
        model_type="coe_deepseekv2",
        architectures=["CoeForCausalLM"],
        transformers_version="4.49.0",
        auto_map={"AutoConfig": "configuration_coe.CoeConfig"},
        ep_size=1,
        pretraining_tp=1,
        torch_dtype="float32",
        vocab_size=61,
        hidden_size=32,
        num_hidden_layers=2,
        intermediate_size=40,
        num_attention_heads=2,
        num_key_value_heads=2,
        q_lora_rank=None,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=12,
        n_routed_experts=6,
        n_shared_experts=1,
        num_experts_per_tok=2,
        moe_intermediate_size=12,
        max_position_embeddings=256,
        rope_theta=10000.0,
        rope_scaling=None,
        rms_norm_eps=1e-6,
        first_k_dense_replace=0,
        moe_layer_freq=1,
        scoring_func="softmax",
        topk_method="greedy",
        n_group=1,
        topk_group=1,
        norm_topk_prob=False,
        routed_scaling_factor=1.0,
        aux_loss_alpha=0.001,
        seq_aux=True,
        tie_word_embeddings=False,
        hidden_act="silu",
        bos_token_id=0,
        eos_token_id=1,
        inner_iter=2,
        use_igate=True,
        residual="inner",
    )
    return {**d, **overrides}


def is_moe(cfg: dict, i: int) -> bool:
    return i >= cfg["first_k_dense_replace"] and i % cfg["moe_layer_freq"] == 0


def ref_weights(cfg: dict, std: float = 0.2) -> dict[str, torch.Tensor]:
    """Random tensors with the reference's names and shapes."""
    D, H, N = cfg["hidden_size"], cfg["num_attention_heads"], cfg["n_routed_experts"]
    nope, R, Vd, L = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
    Fe, S = cfg["moe_intermediate_size"], cfg["moe_intermediate_size"] * (cfg["n_shared_experts"] or 0)
    shapes = {"model.embed_tokens.weight": (cfg["vocab_size"], D), "model.norm.weight": (D,)}
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (cfg["vocab_size"], D)

    def swiglu(prefix, inner):
        shapes.update(
            {
                f"{prefix}.gate_proj.weight": (inner, D),
                f"{prefix}.up_proj.weight": (inner, D),
                f"{prefix}.down_proj.weight": (D, inner),
            }
        )

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        shapes.update(
            {
                f"{p}.input_layernorm.weight": (D,),
                f"{p}.post_attention_layernorm.weight": (D,),
                f"{p}.self_attn.kv_a_proj_with_mqa.weight": (L + R, D),
                f"{p}.self_attn.kv_a_layernorm.weight": (L,),
                f"{p}.self_attn.kv_b_proj.weight": (H * (nope + Vd), L),
                f"{p}.self_attn.o_proj.weight": (D, H * Vd),
            }
        )
        if cfg["q_lora_rank"] is None:
            shapes[f"{p}.self_attn.q_proj.weight"] = (H * (nope + R), D)
        else:
            Q = cfg["q_lora_rank"]
            shapes.update(
                {
                    f"{p}.self_attn.q_a_proj.weight": (Q, D),
                    f"{p}.self_attn.q_a_layernorm.weight": (Q,),
                    f"{p}.self_attn.q_b_proj.weight": (H * (nope + R), Q),
                }
            )
        if not is_moe(cfg, i):
            swiglu(f"{p}.mlp", cfg["intermediate_size"])
            continue
        routers = (
            [f"{p}.mlp.gate.{t}.weight" for t in range(cfg["inner_iter"])]
            if cfg["use_igate"]
            else [f"{p}.mlp.gate.weight"]
        )
        shapes.update({name: (N, D) for name in routers})
        for e in range(N):
            swiglu(f"{p}.mlp.experts.{e}", Fe)
        if S:
            swiglu(f"{p}.mlp.shared_experts", S)
    return {k: (1 + 0.1 * torch.randn(s)) if "norm" in k else std * torch.randn(s) for k, s in shapes.items()}


def write_checkpoint(path, cfg: dict, weights: dict[str, torch.Tensor], storage: str = "safetensors"):
    """config.json plus weights as one safetensors / pytorch_model.bin file, or sharded with an index."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg))
    ext, save = ("safetensors", save_file) if storage.startswith("safetensors") else ("bin", torch.save)
    prefix = "model" if ext == "safetensors" else "pytorch_model"
    if not storage.endswith("sharded"):
        save(weights, path / f"{prefix}.{ext}")
        return path
    keys = list(weights)
    shards = [keys[: len(keys) // 3], keys[len(keys) // 3 : 2 * len(keys) // 3], keys[2 * len(keys) // 3 :]]
    weight_map = {}
    for n, shard in enumerate(shards):
        name = f"{prefix}-{n + 1:05d}-of-00003.{ext}"
        save({k: weights[k] for k in shard}, path / name)
        weight_map.update(dict.fromkeys(shard, name))
    (path / f"{prefix}.{ext}.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return path


# ------------------------------------------------------------------ an independent forward of the reference


def mscale(factor: float, m: float) -> float:
    return 1.0 if factor <= 1 else 0.1 * m * math.log(factor) + 1.0


def rope_tables(cfg: dict, S: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """cos, sin (S, R) in the reference's halves layout, and the softmax scale (reference YaRN formulas)."""
    R, base, scaling = cfg["qk_rope_head_dim"], cfg["rope_theta"], cfg["rope_scaling"]
    inv_freq = 1.0 / base ** (torch.arange(0, R, 2).float() / R)
    pos, amp, scale = torch.arange(S).float(), 1.0, (cfg["qk_nope_head_dim"] + R) ** -0.5
    if scaling and scaling["type"] == "linear":
        pos = pos / scaling["factor"]
    elif scaling and scaling["type"] == "yarn":
        y = {
            "original_max_position_embeddings": 4096,
            "beta_fast": 32,
            "beta_slow": 1,
            "mscale": 1,
            "mscale_all_dim": 0,
            **scaling,
        }
        f = y["factor"]

        def dim_of(rotations):  # the dimension that turns `rotations` times over the original context
            turns = y["original_max_position_embeddings"] / (rotations * 2 * math.pi)
            return R * math.log(turns) / (2 * math.log(base))

        low, high = max(math.floor(dim_of(y["beta_fast"])), 0), min(math.ceil(dim_of(y["beta_slow"])), R - 1)
        keep = 1 - ((torch.arange(R // 2).float() - low) / ((high - low) or 0.001)).clamp(0, 1)
        inv_freq = inv_freq / f * (1 - keep) + inv_freq * keep
        amp = mscale(f, y["mscale"]) / mscale(f, y["mscale_all_dim"])
        if y["mscale_all_dim"]:
            scale *= mscale(f, y["mscale_all_dim"]) ** 2
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * amp, emb.sin() * amp, scale


def reference_logits(cfg: dict, w: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """The reference model from its formulas, over reference-layout tensors. ids (B, S) -> logits (B, S, V).

    Layer: h = h + Attn(RMSNorm1(h)); r = h; x_0 = RMSNorm2(h);
    x_t = sum_k g_tk E_k(x_{t-1}) + S(x_{t-1}) (+ x_{t-1} with the inner residual), t = 1..C;
    out = x_C (+ r with the outer residual). Dense layers: h + MLP(RMSNorm2(h)).
    """
    B, S = ids.shape
    H, nope, R = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"]
    Vd, L, K, C = cfg["v_head_dim"], cfg["kv_lora_rank"], cfg["num_experts_per_tok"], cfg["inner_iter"]
    inner, outer = {
        "inner": (True, False),
        "outer": (False, True),
        "none": (False, False),
        "inner+outer": (True, True),  # the reference's booleans both on, as its ablations ran
    }[cfg["residual"]]
    cos, sin, scale = rope_tables(cfg, S)

    def rms(x, weight):
        return weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["rms_norm_eps"])

    def swiglu(x, p):
        gate, up = F.linear(x, w[f"{p}.gate_proj.weight"]), F.linear(x, w[f"{p}.up_proj.weight"])
        return F.linear(F.silu(gate) * up, w[f"{p}.down_proj.weight"])

    def rope(x):  # the reference: interleaved pairs permuted into halves, then rotate-half
        x = x.unflatten(-1, (R // 2, 2)).transpose(-1, -2).flatten(-2)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin

    h = w["model.embed_tokens.weight"][ids]
    future = torch.ones(S, S, dtype=torch.bool).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        x = rms(h, w[f"{p}.input_layernorm.weight"])
        a = f"{p}.self_attn"
        if cfg["q_lora_rank"] is None:
            q = F.linear(x, w[f"{a}.q_proj.weight"])
        else:
            q_a = rms(F.linear(x, w[f"{a}.q_a_proj.weight"]), w[f"{a}.q_a_layernorm.weight"])
            q = F.linear(q_a, w[f"{a}.q_b_proj.weight"])
        q_nope, q_pe = q.view(B, S, H, nope + R).transpose(1, 2).split([nope, R], dim=-1)
        latent, k_pe = F.linear(x, w[f"{a}.kv_a_proj_with_mqa.weight"]).split([L, R], dim=-1)
        kv = F.linear(rms(latent, w[f"{a}.kv_a_layernorm.weight"]), w[f"{a}.kv_b_proj.weight"])
        k_nope, v = kv.view(B, S, H, nope + Vd).transpose(1, 2).split([nope, Vd], dim=-1)
        q = torch.cat((q_nope, rope(q_pe)), dim=-1)
        k = torch.cat((k_nope, rope(k_pe.view(B, 1, S, R)).expand(B, H, S, R)), dim=-1)
        scores = (q @ k.transpose(-1, -2) * scale).masked_fill(future, float("-inf"))
        att = scores.softmax(-1) @ v  # (B, H, S, Vd)
        h = h + F.linear(att.transpose(1, 2).reshape(B, S, H * Vd), w[f"{a}.o_proj.weight"])
        r, x = h, rms(h, w[f"{p}.post_attention_layernorm.weight"])
        if not is_moe(cfg, i):
            h = h + swiglu(x, f"{p}.mlp")
            continue
        for t in range(C):
            gate = w[f"{p}.mlp.gate.{t}.weight"] if cfg["use_igate"] else w[f"{p}.mlp.gate.weight"]
            g, idx = F.linear(x, gate).softmax(-1).topk(K, dim=-1)  # (B, S, K)
            if cfg["norm_topk_prob"] and K > 1:
                g = g / (g.sum(-1, keepdim=True) + 1e-20)
            else:
                g = g * cfg["routed_scaling_factor"]
            every = torch.stack(
                [swiglu(x, f"{p}.mlp.experts.{e}") for e in range(cfg["n_routed_experts"])], dim=-2
            )  # (B, S, N, D)
            y = (every.gather(-2, idx[..., None].expand(B, S, K, x.shape[-1])) * g[..., None]).sum(-2)
            if cfg["n_shared_experts"]:
                y = y + swiglu(x, f"{p}.mlp.shared_experts")
            x = y + x if inner else y
        h = x + r if outer else x
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return F.linear(rms(h, w["model.norm.weight"]), head)


def converted_logits(src, dst, ids) -> torch.Tensor:
    convert(src, dst)
    model = CoEForCausalLM.from_pretrained(dst).eval()
    with torch.no_grad():
        return model(ids).logits


# ------------------------------------------------------------------------------------------- reference in


@pytest.mark.parametrize(
    "overrides, storage",
    [
        (dict(), "safetensors"),
        (dict(q_lora_rank=16), "safetensors_sharded"),
        (dict(rope_scaling=YARN, routed_scaling_factor=1.5), "bin"),
        (
            dict(q_lora_rank=16, rope_scaling=YARN, num_hidden_layers=3, first_k_dense_replace=1),
            "bin_sharded",
        ),
    ],
    ids=["plain", "q_lora", "yarn", "all"],
)
def test_reference_c1_standard_residual_equals_transformers_deepseek_v2(tmp_path, overrides, storage):
    cfg = ref_config(inner_iter=1, use_igate=False, residual="outer", **overrides)
    w = ref_weights(cfg)
    ids = torch.randint(0, cfg["vocab_size"], (2, 24))
    ours = converted_logits(write_checkpoint(tmp_path / "ref", cfg, w, storage), tmp_path / "coe", ids)

    rope = {"rope_type": "default", "rope_theta": cfg["rope_theta"]}
    if cfg["rope_scaling"]:
        rope = {**{k: v for k, v in cfg["rope_scaling"].items() if k != "type"}, **rope, "rope_type": "yarn"}
    keys = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "intermediate_size",
        "num_attention_heads",
        "num_key_value_heads",
        "q_lora_rank",
        "kv_lora_rank",
        "qk_nope_head_dim",
        "qk_rope_head_dim",
        "v_head_dim",
        "n_routed_experts",
        "n_shared_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "first_k_dense_replace",
        "routed_scaling_factor",
        "max_position_embeddings",
        "rms_norm_eps",
        "tie_word_embeddings",
    )
    twin = DeepseekV2ForCausalLM(
        DeepseekV2Config(
            **{k: cfg[k] for k in keys},
            rope_parameters=rope,
            topk_method="greedy",
            attn_implementation="eager",
        )
    ).eval()
    state = {k: v for k, v in w.items() if ".experts." not in k}
    for i in range(cfg["first_k_dense_replace"], cfg["num_hidden_layers"]):
        p, N = f"model.layers.{i}.mlp", cfg["n_routed_experts"]
        state[f"{p}.experts.gate_up_proj"] = torch.stack(  # (N, 2F, D): gate rows, then up rows
            [
                torch.cat((w[f"{p}.experts.{e}.gate_proj.weight"], w[f"{p}.experts.{e}.up_proj.weight"]))
                for e in range(N)
            ]
        )
        state[f"{p}.experts.down_proj"] = torch.stack(
            [w[f"{p}.experts.{e}.down_proj.weight"] for e in range(N)]
        )
    missing, unexpected = twin.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    with torch.no_grad():
        assert rel_err(ours, twin(ids).logits) < 1e-5


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(rope_scaling=YARN),
        dict(use_igate=False),
        dict(residual="outer", rope_scaling=YARN),
        dict(residual="none", norm_topk_prob=True, routed_scaling_factor=2.0, num_experts_per_tok=3),
        dict(inner_residual=False, outer_residual=True, q_lora_rank=16, use_igate=False),
        dict(
            rope_scaling=dict(type="yarn", factor=8.0, original_max_position_embeddings=32, mscale=0.8),
            inner_iter=3,
        ),
        dict(
            rope_scaling=dict(type="linear", factor=2.0),
            num_hidden_layers=4,
            first_k_dense_replace=1,
            moe_layer_freq=2,
            routed_scaling_factor=1.5,
            tie_word_embeddings=True,
            n_shared_experts=None,
        ),
    ],
    ids=[
        "defaults",
        "yarn",
        "shared_router",
        "outer_yarn",
        "none_norm_topk",
        "old_flags",
        "yarn_mscale_only",
        "dense_linear_tied",
    ],
)
def test_reference_coe_equals_independent_reference(tmp_path, overrides):
    cfg = stored = ref_config(**overrides)
    if "outer_residual" in overrides:  # the older spelling: booleans and no `residual`
        stored = {k: v for k, v in cfg.items() if k != "residual"}
        cfg = {**cfg, "residual": "outer"}
    w = ref_weights(cfg)
    ids = torch.randint(0, cfg["vocab_size"], (2, 24))
    src = write_checkpoint(
        tmp_path / "ref", stored, w, "safetensors_sharded" if cfg["use_igate"] else "safetensors"
    )
    with torch.no_grad():
        assert rel_err(converted_logits(src, tmp_path / "coe", ids), reference_logits(cfg, w, ids)) < 1e-5


def test_reference_config_fields(tmp_path):
    cfg = ref_config(
        rope_scaling=YARN, seq_aux=False, residual="outer", norm_topk_prob=True, routed_scaling_factor=2.5
    )
    config = read_config(write_checkpoint(tmp_path, cfg, {}))
    assert (config.inner_iter, config.use_igate, config.inner_residual, config.outer_residual) == (
        2,
        True,
        False,
        True,
    )
    assert config.balance_loss == "batch" and config.routed_scaling_factor == 1.0 and config.norm_topk_prob
    assert config.rope_parameters["rope_type"] == "yarn" and config.rope_parameters["mscale_all_dim"] == 1.0
    assert detect_format(tmp_path) == Format.REFERENCE


def test_reference_as_run_ablation_checkpoint_in(tmp_path):
    # The reference's ablations as they ran: both residual booleans on, n_shared_experts=0, for which its code
    # builds a shared expert of width 0 and saves its empty tensors.
    cfg = ref_config(n_shared_experts=0, inner_residual=True, outer_residual=True)
    del cfg["residual"]
    w = ref_weights(cfg)
    D = cfg["hidden_size"]
    empty = {}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}.mlp.shared_experts"
        empty |= {
            f"{p}.gate_proj.weight": (0, D),
            f"{p}.up_proj.weight": (0, D),
            f"{p}.down_proj.weight": (D, 0),
        }
    src = write_checkpoint(tmp_path / "ref", cfg, w | {k: torch.empty(s) for k, s in empty.items()})
    config = read_config(src)
    assert (config.n_shared_experts, config.inner_residual, config.outer_residual) == (0, True, True)
    ids = torch.randint(0, cfg["vocab_size"], (2, 24))
    expected = reference_logits({**cfg, "residual": "inner+outer"}, w, ids)
    assert rel_err(converted_logits(src, tmp_path / "coe", ids), expected) < 1e-5


@pytest.mark.parametrize("name", list(AS_RUN_TWINS))
def test_as_run_presets_to_reference_and_back(tmp_path, name):
    router_init = "kaiming_uniform" if name.startswith("dense") else "normal"
    config = CoEConfig.from_preset(name, size="tiny", num_hidden_layers=2, router_init=router_init)
    model = CoEForCausalLM(config).eval()
    model.save_pretrained(tmp_path / "coe")
    convert(tmp_path / "coe", tmp_path / "ref", to="reference")
    ref = json.loads((tmp_path / "ref" / "config.json").read_text())
    both = config.inner_residual and config.outer_residual
    assert ref["n_shared_experts"] is None  # the reference builds no shared expert, as with its 0
    assert (ref["inner_residual"], ref["outer_residual"]) == (config.inner_residual, config.outer_residual)
    assert ref.get("residual") == (None if both else "inner")
    assert ref.get("router_init") == (None if router_init == "normal" else router_init)  # an extra key
    # The reference's forward over the written tensors computes our model's logits.
    w = load_file(tmp_path / "ref" / "model.safetensors")
    assert not any("shared_experts" in key for key in w)
    ids = torch.randint(0, config.vocab_size, (2, 16))
    with torch.no_grad():
        ours = model(ids).logits
    assert (
        rel_err(ours, reference_logits({**ref, "residual": "inner+outer" if both else "inner"}, w, ids))
        < 1e-5
    )
    convert(tmp_path / "ref", tmp_path / "back")
    original, back = (load_file(tmp_path / d / "model.safetensors") for d in ("coe", "back"))
    assert original.keys() == back.keys() and all(torch.equal(original[k], back[k]) for k in original)
    a, b = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("coe", "back"))
    assert a == b and b["router_init"] == router_init


# ------------------------------------------------------------------------------------------ deepseek_v2 in


def small_deepseek(**overrides) -> DeepseekV2ForCausalLM:
    fields = dict(
        vocab_size=61,
        hidden_size=32,
        num_hidden_layers=3,
        intermediate_size=40,
        num_attention_heads=2,
        q_lora_rank=16,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=12,
        n_routed_experts=6,
        n_shared_experts=2,
        num_experts_per_tok=2,
        moe_intermediate_size=12,
        first_k_dense_replace=1,
        routed_scaling_factor=2.0,
        norm_topk_prob=True,
        max_position_embeddings=256,
        initializer_range=0.2,
        attn_implementation="eager",
        rope_parameters=dict(
            rope_type="yarn",
            rope_theta=10000.0,
            factor=4.0,
            mscale=0.707,
            original_max_position_embeddings=64,
            mscale_all_dim=0.707,
        ),
    )
    return DeepseekV2ForCausalLM(DeepseekV2Config(**{**fields, **overrides})).eval()


def test_transformers_deepseek_v2_save_pretrained_in(tmp_path):
    model = small_deepseek()
    model.save_pretrained(tmp_path / "ds")
    assert detect_format(tmp_path / "ds") == Format.DEEPSEEK_V2
    ids = torch.randint(0, 61, (2, 20))
    with torch.no_grad():
        assert rel_err(converted_logits(tmp_path / "ds", tmp_path / "coe", ids), model(ids).logits) < 1e-5
    config = CoEConfig.from_pretrained(tmp_path / "coe")
    assert (config.inner_iter, config.inner_residual, config.outer_residual, config.norm_topk_prob) == (
        1,
        False,
        True,
        False,
    )


def test_deepseek_v2_fused_experts_and_legacy_config_in(tmp_path):
    """Fused expert tensors (transformers' in-memory layout), a hub-style config (rope_scaling, more keys)."""
    model = small_deepseek(
        q_lora_rank=None,
        tie_word_embeddings=True,
        rope_parameters=dict(rope_type="default", rope_theta=5000.0),
    )
    d = {k: v for k, v in model.config.to_dict().items() if k != "rope_parameters"}
    d.update(
        rope_theta=5000.0,
        rope_scaling=None,
        scoring_func="softmax",
        moe_layer_freq=1,
        seq_aux=True,
        aux_loss_alpha=0.001,
        ep_size=1,
        auto_map={"AutoConfig": "configuration_deepseek.DeepseekV2Config"},
    )
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "config.json").write_text(json.dumps(d))
    save_file(state, tmp_path / "ds" / "model.safetensors")
    ids = torch.randint(0, 61, (2, 20))
    with torch.no_grad():
        assert rel_err(converted_logits(tmp_path / "ds", tmp_path / "coe", ids), model(ids).logits) < 1e-5


# ------------------------------------------------------------------------------------------- round trips


def small_coe(**overrides) -> CoEConfig:
    fields = dict(
        vocab_size=61,
        hidden_size=32,
        num_hidden_layers=3,
        intermediate_size=40,
        num_attention_heads=2,
        q_lora_rank=16,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=12,
        n_routed_experts=6,
        n_shared_experts=1,
        num_experts_per_tok=2,
        moe_intermediate_size=12,
        first_k_dense_replace=1,
        inner_iter=2,
        max_position_embeddings=256,
        initializer_range=0.2,
        rope_parameters=dict(
            rope_type="yarn",
            rope_theta=10000.0,
            factor=4.0,
            beta_fast=32,
            beta_slow=1,
            original_max_position_embeddings=64,
            mscale=0.707,
            mscale_all_dim=1.0,
        ),
    )
    return CoEConfig(**{**fields, **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(
            use_igate=False,
            tie_word_embeddings=True,
            balance_loss="batch",
            router_z_loss_coef=0.01,
            expert_backend="loop",
            inner_residual=False,
            outer_residual=True,
            norm_topk_prob=True,
        ),
        dict(
            inner_residual=False,
            balance_loss="none",
            aux_loss_alpha=0.0,
            routed_scaling_factor=2.0,
            rope_parameters=dict(rope_type="linear", rope_theta=500.0, factor=2.0),
        ),
    ],
    ids=["yarn_igate", "tied_shared_router_extras", "no_residual_linear"],
)
def test_coe_to_reference_and_back_is_identical(tmp_path, overrides):
    config = small_coe(**overrides)
    model = CoEForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(tmp_path / "coe")
    (tmp_path / "coe" / "tokenizer.json").write_text("{}")
    convert(tmp_path / "coe", tmp_path / "ref", to="reference", max_shard_size="20KB")
    assert (tmp_path / "ref" / "model.safetensors.index.json").is_file()  # several shards
    assert (tmp_path / "ref" / "tokenizer.json").is_file()
    ref = json.loads((tmp_path / "ref" / "config.json").read_text())
    assert ref["model_type"] == "coe_deepseekv2" and ref["torch_dtype"] == "bfloat16"
    assert (
        ref["residual"]
        == {(True, False): "inner", (False, True): "outer", (False, False): "none"}[
            (config.inner_residual, config.outer_residual)
        ]
    )
    convert(tmp_path / "ref", tmp_path / "back")

    original, back = (load_file(tmp_path / d / "model.safetensors") for d in ("coe", "back"))
    assert original.keys() == back.keys()
    for key in original:
        assert original[key].dtype == back[key].dtype and torch.equal(original[key], back[key]), key
    a, b = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("coe", "back"))
    assert a == b


def test_reference_to_coe_and_back_keeps_tensors_and_keys(tmp_path):
    cfg = ref_config(rope_scaling=YARN, q_lora_rank=16, use_igate=True, residual="outer")
    w = ref_weights(cfg)
    write_checkpoint(tmp_path / "ref", cfg, w, "safetensors_sharded")
    convert(tmp_path / "ref", tmp_path / "coe")
    convert(tmp_path / "coe", tmp_path / "back", to="reference")
    back = load_file(tmp_path / "back" / "model.safetensors")
    assert back.keys() == w.keys() and all(torch.equal(back[k], w[k]) for k in w)
    back_cfg = json.loads((tmp_path / "back" / "config.json").read_text())
    dropped = {"auto_map", "ep_size", "pretraining_tp", "transformers_version"}
    assert {k: v for k, v in cfg.items() if k not in dropped} == {
        k: back_cfg[k] for k in cfg if k not in dropped
    }


# -------------------------------------------------------------------------------------------------- errors


def write_ref(tmp_path, cfg=None, weights=None, mutate=None):
    cfg = cfg or ref_config()
    weights = weights if weights is not None else ref_weights(cfg)
    if mutate:
        mutate(weights)
    return write_checkpoint(tmp_path / "ref", cfg, weights)


@pytest.mark.parametrize(
    "key, value, expected",
    [
        (
            "model.layers.1.mlp.experts.3.up_proj.weight",
            None,
            "missing weight model.layers.1.mlp.experts.3.up_proj.weight (expected shape (12, 32))",
        ),
        (
            "model.layers.0.mlp.gate.2.weight",
            (6, 32),
            "unexpected weight model.layers.0.mlp.gate.2.weight with shape (6, 32)",
        ),
        (
            "model.layers.0.self_attn.kv_b_proj.weight",
            (40, 15),
            "weight model.layers.0.self_attn.kv_b_proj.weight has shape (40, 15), expected (40, 16)",
        ),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_bad_weights_are_named(tmp_path, key, value, expected):
    def mutate(w):
        if value is None:
            w.pop(key)
        else:
            w[key] = torch.zeros(value)

    src = write_ref(tmp_path, mutate=mutate)
    with pytest.raises(ValueError) as err:
        convert(src, tmp_path / "out")
    assert expected in str(err.value)
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["ref"]


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (dict(rope_scaling={"type": "longrope", "factor": 2.0}), "'longrope'"),
        (dict(rope_scaling={"type": "yarn", "factor": 2.0, "beta_medium": 3}), "rope_scaling['beta_medium']"),
        (dict(residual="addinit"), "residual='addinit'"),
        (dict(residual="inner", outer_residual=True, inner_residual=False), "contradicts"),
        (dict(hidden_act="gelu"), "CoEConfig.hidden_act='gelu'"),
        (dict(model_type="llama"), "model_type='llama'"),
        (dict(use_mtp_layers=2), "key 'use_mtp_layers'=2 is unknown"),
        (dict(quantization_config={"bits": 4}), "key 'quantization_config'"),
        (dict(scoring_func="sigmoid"), "scoring_func='sigmoid'"),
        (dict(n_routed_experts=None), "n_routed_experts=None"),
    ],
    ids=[
        "rope_type",
        "rope_key",
        "addinit",
        "contradiction",
        "hidden_act",
        "model_type",
        "unknown_key",
        "quantized",
        "sigmoid",
        "dense_model",
    ],
)
def test_bad_reference_configs_name_the_field(tmp_path, overrides, expected):
    cfg = ref_config(**overrides)
    src = write_checkpoint(tmp_path / "ref", cfg, {})
    with pytest.raises(ValueError) as err:
        convert(src, tmp_path / "out")
    assert expected in str(err.value)


def test_missing_reference_flag_is_named(tmp_path):
    cfg = ref_config()
    del cfg["inner_iter"]
    with pytest.raises(ValueError, match="'inner_iter' is missing"):
        convert(write_checkpoint(tmp_path / "ref", cfg, {}), tmp_path / "out")


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(norm_topk_prob=True, routed_scaling_factor=2.0), "routed_scaling_factor"),
        (dict(attention="gqa", num_key_value_heads=1), "attention"),
        (dict(router_bias_update_rate=0.01), "router_bias_update_rate"),
        (dict(scoring_func="sigmoid"), "scoring_func"),
    ],
)
def test_what_the_reference_cannot_express_fails_on_export(tmp_path, overrides, field):
    CoEForCausalLM(small_coe(**overrides)).save_pretrained(tmp_path / "coe")
    with pytest.raises(ValueError, match=f"CoEConfig.{field}="):
        convert(tmp_path / "coe", tmp_path / "ref", to="reference")
    assert not (tmp_path / "ref").exists()


def test_existing_destination_needs_overwrite(tmp_path):
    src = write_ref(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        convert(src, tmp_path / "out")
    convert(src, tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out" / "keep.txt").exists() and (tmp_path / "out" / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "ref"]  # no temporary left behind


# ------------------------------------------------------------------------------- loading, memory


def files_under(root) -> dict[str, tuple[int, int]]:
    return {str(f): (f.stat().st_size, f.stat().st_mtime_ns) for f in root.rglob("*")}


@pytest.mark.parametrize("fmt", ["reference", "deepseek_v2"])
def test_from_pretrained_refuses_another_format_and_writes_nothing(tmp_path, monkeypatch, fmt):
    """No silent conversion: the error names the directory, its format and the command that converts it."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # where a cache of converted copies would go
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    if fmt == "reference":
        src, model_type = write_ref(tmp_path), "coe_deepseekv2"
    else:
        src, model_type = tmp_path / "ds", "deepseek_v2"
        small_deepseek().save_pretrained(src)
    before = files_under(tmp_path)
    with pytest.raises(ValueError) as err:
        CoEForCausalLM.from_pretrained(src)
    message = str(err.value)
    assert f"{src} holds a checkpoint of model_type {model_type!r}" in message
    assert f"coe convert {src} DST" in message and "coe.convert.convert(src, dst)" in message
    assert files_under(tmp_path) == before and not home.exists()


def test_sharded_conversion_loads_with_from_pretrained(tmp_path):
    cfg = ref_config(rope_scaling=YARN, tie_word_embeddings=True)
    w = ref_weights(cfg)
    src = write_checkpoint(tmp_path / "ref", cfg, w, "bin_sharded")
    convert(src, tmp_path / "coe", max_shard_size="30KB")
    assert len(list((tmp_path / "coe").glob("model-*.safetensors"))) > 2
    model = CoEForCausalLM.from_pretrained(tmp_path / "coe").eval()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    ids = torch.randint(0, cfg["vocab_size"], (2, 16))
    with torch.no_grad():
        assert rel_err(model(ids).logits, reference_logits(cfg, w, ids)) < 1e-5
    half = CoEForCausalLM.from_pretrained(tmp_path / "coe", dtype=torch.bfloat16)
    assert half.model.embed_tokens.weight.dtype == torch.bfloat16
    assert all(r.weight.dtype == torch.float32 for chain in half.chains() for r in chain.routers)


def test_conversion_holds_about_one_tensor_at_a_time(tmp_path, monkeypatch):
    """Source tensors alive at once never exceed about the largest one: the model is never held whole."""
    cfg = ref_config(num_hidden_layers=4, n_routed_experts=8, inner_iter=2)
    w = ref_weights(cfg)
    src = write_checkpoint(tmp_path / "ref", cfg, w, "safetensors_sharded")
    live = peak = 0

    def release(nbytes):
        nonlocal live
        live -= nbytes

    read = CheckpointReader.read

    def tracked_read(self, key, index=()):
        nonlocal live, peak
        t = read(self, key, index)
        live += t.nbytes
        peak = max(peak, live)
        weakref.finalize(t, release, t.nbytes)
        return t

    monkeypatch.setattr(CheckpointReader, "read", tracked_read)
    convert(src, tmp_path / "coe", max_shard_size="50KB")
    largest, total = max(t.nbytes for t in w.values()), sum(t.nbytes for t in w.values())
    assert total > 20 * largest
    assert 0 < peak <= 2 * largest
