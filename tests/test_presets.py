"""Presets: the paper's shapes (parameter counts of the reference), every preset builds and runs small."""

import math

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM, list_presets
from coe.presets import PRESETS

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
    for field in ("n_routed_experts", "num_experts_per_tok", "inner_iter", "use_igate", "inner_residual",
                  "outer_residual"):
        assert getattr(config, field) == getattr(reference, field)
    model = CoEForCausalLM(config).train()
    ids = torch.randint(0, config.vocab_size, (2, 8))
    out = model(ids, labels=ids)
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_listing_and_errors():
    assert "coe-2-4-64" in list_presets() and len(list_presets()) == 12
    with pytest.raises(ValueError, match="unknown preset 'coe-9'"):
        CoEConfig.from_preset("coe-9")
    with pytest.raises(ValueError, match="unknown preset size 'huge'"):
        CoEConfig.from_preset("moe-8-64", size="huge")
    assert CoEConfig.from_preset("moe-8-64", hidden_size=512).hidden_size == 512
