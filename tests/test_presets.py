"""Presets: the paper's shapes (parameter counts of the reference), every preset builds and runs small."""

import math

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM, list_presets
from coe.presets import PAPER_SHAPE, PRESETS

EMBEDDINGS = 2 * 102400 * 1024


def parameter_count(config: CoEConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in CoEForCausalLM(config).parameters())


def test_moe_8_64_has_the_reference_parameter_count():
    total = parameter_count(CoEConfig.from_preset("moe-8-64"))
    assert round(total / 1e6, 1) == 780.7
    assert math.floor((total - EMBEDDINGS) / 1e5) / 10 == 570.9


def test_coe_adds_only_routers():
    moe = parameter_count(CoEConfig.from_preset("moe-8-64"))
    coe = parameter_count(CoEConfig.from_preset("coe-2-4-64"))
    shared_router = parameter_count(CoEConfig.from_preset("coe-2-8-64-shared-router"))
    assert coe - moe == 4 * 63 * 1024  # one extra router per layer
    assert shared_router == moe


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_trains_one_step_tiny(name):
    config = CoEConfig.from_preset(name, size="tiny", num_hidden_layers=2)
    reference = CoEConfig.from_preset(name)
    for field in (
        "n_routed_experts",
        "num_experts_per_tok",
        "inner_iter",
        "use_igate",
        "inner_residual",
        "outer_residual",
    ):
        assert getattr(config, field) == getattr(reference, field)
    model = CoEForCausalLM(config).train()
    ids = torch.randint(0, config.vocab_size, (2, 8))
    out = model(ids, labels=ids)
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_listing_and_errors():
    assert "coe-2-4-64" in list_presets() and len(list_presets()) == 12
    with pytest.raises(ValueError, match=r"model.preset='coe-9' is invalid: choose one of moe-8-64, "):
        CoEConfig.from_preset("coe-9")
    with pytest.raises(ValueError, match=r"model.size='huge' is invalid: choose one of paper, small, tiny"):
        CoEConfig.from_preset("moe-8-64", size="huge")
    assert CoEConfig.from_preset("moe-8-64", hidden_size=512).hidden_size == 512


def test_overrides_must_be_config_fields():
    # A misspelt key would otherwise be kept as an unused attribute and the run would train the preset as is.
    with pytest.raises(ValueError) as err:
        CoEConfig.from_preset("coe-2-4-64", size="tiny", inner_iterz=3)
    message = str(err.value)
    assert message.startswith(
        "model.overrides='inner_iterz' is invalid: not a CoEConfig field (did you mean "
        "'inner_iter'?); known fields: "
    )
    assert "router_bias_update_rate" in message
    with pytest.raises(ValueError, match=r"model.overrides='rope_theta' is invalid"):
        CoEConfig.from_preset("coe-2-4-64", rope_theta=5000.0)  # a reference spelling, not a field
    config = CoEConfig.from_preset("coe-2-4-64", size="tiny", inner_iter=3, dtype="bfloat16")
    assert config.inner_iter == 3


def test_configs_do_not_share_the_preset_data():
    config = CoEConfig.from_preset("moe-8-64")
    config.rope_parameters["factor"] = 1.0
    assert PAPER_SHAPE["rope_parameters"]["factor"] == 40.0  # a config never shares the module's dicts
