"""CoEConfig: validation at construction, the reference's flag spellings, save / load."""

import json

import pytest

from coe import CoEConfig


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
    assert CoEConfig().expert_backend == "grouped"


@pytest.mark.parametrize("model_type", ["coe_deepseekv2", "deepseek_v2"])
def test_another_format_is_refused_with_the_fix(tmp_path, model_type):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type, "hidden_size": 32}))
    with pytest.raises(ValueError) as err:
        CoEConfig.from_pretrained(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and repr(model_type) in message
    assert f"coe convert {tmp_path} DST" in message and "coe.convert.convert(src, dst)" in message
