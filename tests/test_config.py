"""CoEConfig: validation at construction, the reference's flag spellings, save / load."""

import json
import math

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(num_experts_per_tok=9, n_routed_experts=8), "num_experts_per_tok"),
        (dict(inner_iter=0), "inner_iter"),
        (dict(num_attention_heads=8, num_key_value_heads=3), "num_key_value_heads"),
        (dict(scoring_func="relu"), "scoring_func"),
        (dict(expert_backend="cuda-magic"), "expert_backend"),
        (dict(hidden_size=0), "hidden_size"),
        (dict(moe_intermediate_size=-4), "moe_intermediate_size"),
        (dict(attention="linear"), "attention"),
        (dict(balance_loss="global"), "balance_loss"),
        (dict(aux_loss_alpha=-1.0), "aux_loss_alpha"),
        (dict(topk_method="group_limited_greedy", n_group=5), "n_group"),
        (dict(topk_method="group_limited_greedy", n_group=7, topk_group=9), "topk_group"),
        (dict(hidden_act="gelu"), "hidden_act"),
        (dict(qk_rope_head_dim=7), "qk_rope_head_dim"),
        (dict(router_init="xavier"), "router_init"),
    ],
)
def test_bad_values_name_the_field_and_the_value(overrides, field):
    with pytest.raises(ValueError) as err:
        CoEConfig(**overrides)
    message = str(err.value)
    assert f"CoEConfig.{field}=" in message and str(overrides[field]) in message


def test_unknown_rope_type_is_rejected():
    with pytest.raises(ValueError, match=r"rope_type.*longrope"):
        CoEConfig(rope_parameters={"rope_type": "longrope", "factor": 2.0})


def test_reference_spellings_are_folded_in():
    cfg = CoEConfig(
        rope_scaling={
            "type": "yarn",
            "factor": 40,
            "original_max_position_embeddings": 4096,
            "mscale": 0.707,
            "mscale_all_dim": 0.707,
        },
        rope_theta=5000,
        seq_aux=False,
    )
    assert cfg.rope_parameters["rope_type"] == "yarn" and "type" not in cfg.rope_parameters
    assert cfg.rope_parameters["rope_theta"] == 5000
    assert cfg.balance_loss == "batch"


def test_save_load_round_trip(tmp_path):
    cfg = CoEConfig(
        inner_iter=3, use_igate=False, attention="gqa", num_key_value_heads=2, router_z_loss_coef=0.1
    )
    cfg.save_pretrained(tmp_path)
    loaded = CoEConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == cfg.to_dict()
    assert loaded.num_routers == 1 and loaded.num_moe_layers == 4


def test_moe_layer_placement():
    cfg = CoEConfig(num_hidden_layers=6, first_k_dense_replace=2, moe_layer_freq=2)
    assert [cfg.is_moe_layer(i) for i in range(6)] == [False, False, True, False, True, False]
    assert cfg.moe_layers == [2, 4] and cfg.num_moe_layers == 2


def test_unknown_keys_of_a_config_file_are_kept(tmp_path):
    # transformers keeps keys it does not know (a newer writer's, the reference's extras); only
    # CoEConfig.from_preset rejects them, as a misspelt override.
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "coe", "inner_iter": 2, "ep_size": 1}))
    loaded = CoEConfig.from_pretrained(tmp_path)
    assert loaded.inner_iter == 2 and loaded.ep_size == 1


def test_expert_backend_auto_loads_as_grouped(tmp_path):
    # "auto" was an alias of "grouped"; config files written with it still load.
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "coe", "expert_backend": "auto"}))
    assert CoEConfig.from_pretrained(tmp_path).expert_backend == "grouped"
    assert CoEConfig(expert_backend="auto").expert_backend == "grouped"
    assert CoEConfig().expert_backend == "adaptive"


@pytest.mark.parametrize("model_type", ["coe_deepseekv2", "deepseek_v2"])
def test_another_format_is_refused_with_the_fix(tmp_path, model_type):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type, "hidden_size": 32}))
    with pytest.raises(ValueError) as err:
        CoEConfig.from_pretrained(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and repr(model_type) in message
    assert f"coe convert {tmp_path} DST" in message and "coe.convert.convert(src, dst)" in message


# ------------------------------------------------------------------------------------- router_init


def initial_weights(seed: int = 0, **overrides) -> dict[str, torch.Tensor]:
    config = CoEConfig.from_preset("coe-2-4-64", size="tiny", num_hidden_layers=2, **overrides)
    torch.manual_seed(seed)
    return CoEForCausalLM(config).state_dict()


def test_router_init_normal_is_the_default_and_old_config_files_load_as_it(tmp_path):
    assert CoEConfig().router_init == "normal"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "coe", "hidden_size": 64}))
    assert CoEConfig.from_pretrained(tmp_path).router_init == "normal"
    default, normal = initial_weights(), initial_weights(router_init="normal")
    assert all(torch.equal(default[key], normal[key]) for key in default)
    routers = torch.cat([w.flatten() for key, w in normal.items() if ".routers." in key])
    assert math.isclose(routers.std().item(), 0.02, rel_tol=0.05)  # normal(0, initializer_range)


@pytest.mark.parametrize("hidden_size", [1024, 40])  # 63 x 40 weights: torch's uniform_ would shift the rest
def test_router_init_kaiming_uniform_is_the_reference_and_changes_nothing_else(hidden_size):
    normal = initial_weights(hidden_size=hidden_size)
    kaiming = initial_weights(hidden_size=hidden_size, router_init="kaiming_uniform")
    router_keys = [key for key in normal if ".routers." in key]
    assert len(router_keys) == 4  # 2 layers x 2 iterations
    for key in normal:
        if key not in router_keys:
            assert torch.equal(normal[key], kaiming[key]), key
    # torch's kaiming_uniform_(a=sqrt(5)) on an (N, D) weight: U(-bound, bound), bound = gain * sqrt(3 / D).
    reference = torch.empty(63, hidden_size)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(reference)
    bound = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3 / fan_in)
    assert fan_in == hidden_size and math.isclose(bound, 1 / math.sqrt(hidden_size))
    torch.nn.init.kaiming_uniform_(reference, a=math.sqrt(5))
    routers = torch.cat([kaiming[key].flatten() for key in router_keys])
    n = routers.numel()
    assert routers.abs().max() <= bound * (1 + 1e-6) and reference.abs().max() <= bound * (1 + 1e-6)
    assert routers.abs().max() > bound * (1 - 20 / n)  # reaches the bound (the top of n uniforms)
    assert math.isclose(routers.std().item(), bound / math.sqrt(3), rel_tol=6 / math.sqrt(n))
    assert abs(routers.mean().item()) < 6 * bound / math.sqrt(3 * n)
    for fraction in (0.25, 0.5, 0.75):  # uniform: P(|w| < f * bound) = f
        assert abs((routers.abs() < fraction * bound).float().mean().item() - fraction) < 3 / math.sqrt(n)
    if hidden_size == 1024:
        assert math.isclose(routers.std().item(), 0.018, abs_tol=5e-4)  # the reference's std
    # Drawn from the same normals as "normal": each kaiming weight is erf(z / sqrt 2) * bound of its z.
    for key in router_keys:
        z = normal[key] / 0.02
        torch.testing.assert_close(kaiming[key], torch.erf(z / math.sqrt(2)) * bound, rtol=1e-5, atol=1e-7)


def test_router_init_leaves_loaded_router_weights_alone(tmp_path):
    config = CoEConfig.from_preset(
        "moe-8-64", size="tiny", num_hidden_layers=1, router_init="kaiming_uniform"
    )
    model = CoEForCausalLM(config)
    with torch.no_grad():
        model.model.layers[0].mlp.routers[0].weight.fill_(0.5)
    model.save_pretrained(tmp_path)
    loaded = CoEForCausalLM.from_pretrained(tmp_path)
    assert loaded.config.router_init == "kaiming_uniform"
    assert torch.equal(loaded.model.layers[0].mlp.routers[0].weight, torch.full((63, 32), 0.5))
