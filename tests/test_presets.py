"""Presets: the paper's shapes (parameter counts of the reference), every preset builds and runs small."""

import math

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM, list_presets
from coe.flops import active_parameters, total_parameters
from coe.presets import AS_RUN_TWINS, PAPER_SHAPE, PRESETS

EMBEDDINGS = 2 * 102400 * 1024
CLEAN = [
    "moe-8-64",
    "coe-2-4-64",
    "coe-2-4-48",
    "moe-16-64",
    "moe-24-64",
    "coe-2-8-64",
    "moe-8-64-8l",
    "moe-8-64-12l",
    "coe-2-8-64-shared-router",
    "coe-2-8-64-outer-residual",
    "dense-8-8",
    "dense-8-8-c2",
]
# What the reference's launch scripts ran differently from each clean preset: field -> (clean, as run).
NO_SHARED_EXPERT_64 = dict(n_routed_experts=(63, 64), n_shared_experts=(1, 0))
NO_SHARED_EXPERT_8 = dict(n_routed_experts=(7, 8), num_experts_per_tok=(7, 8), n_shared_experts=(1, 0))
AS_RUN = {
    "coe-2-8-64-shared-router-as-run": (
        "coe-2-8-64-shared-router",
        dict(**NO_SHARED_EXPERT_64, outer_residual=(False, True)),
    ),
    "coe-2-8-64-outer-residual-as-run": (
        "coe-2-8-64-outer-residual",
        dict(**NO_SHARED_EXPERT_64, inner_residual=(False, True)),
    ),
    "dense-8-8-as-run": ("dense-8-8", NO_SHARED_EXPERT_8),
    "dense-8-8-c2-as-run": ("dense-8-8-c2", NO_SHARED_EXPERT_8),
}


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
    assert list(list_presets()) == [*CLEAN, *AS_RUN]
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


@pytest.mark.parametrize("size", ["paper", "tiny"])
@pytest.mark.parametrize("name", list(AS_RUN))
def test_as_run_presets_differ_from_their_twin_exactly_as_documented(name, size):
    twin, expected = AS_RUN[name]
    assert AS_RUN_TWINS[name] == twin
    as_run, clean = CoEConfig.from_preset(name, size).to_dict(), CoEConfig.from_preset(twin, size).to_dict()
    differences = {key: (clean[key], as_run[key]) for key in clean if clean[key] != as_run[key]}
    assert differences == expected
    assert as_run.keys() == clean.keys()
    description = list_presets()[name]
    assert twin in description and "as the reference ran it" in description


def test_as_run_twins_are_the_as_run_presets():
    assert list(AS_RUN_TWINS) == [name for name in PRESETS if name.endswith("-as-run")]
    assert all(twin in CLEAN for twin in AS_RUN_TWINS.values())


@pytest.mark.parametrize("name", list(AS_RUN))
def test_as_run_parameter_counts(name):
    as_run, clean = CoEConfig.from_preset(name), CoEConfig.from_preset(AS_RUN[name][0])
    layers, routers, D, F = 4, clean.num_routers, 1024, 704
    expert = 3 * D * F  # one SwiGLU expert; the shared expert of the clean presets is one too
    extra_router_rows = layers * routers * D * (as_run.n_routed_experts - clean.n_routed_experts)
    # The same experts in all (the shared one becomes routed), one more row in every router.
    assert total_parameters(as_run) == parameter_count(as_run) == total_parameters(clean) + extra_router_rows
    # A token passes through C x K routed experts, and no shared one.
    used = as_run.inner_iter * as_run.num_experts_per_tok
    used_clean = clean.inner_iter * (clean.num_experts_per_tok + 1)
    assert active_parameters(as_run) - active_parameters(clean) == (
        extra_router_rows + layers * (used - used_clean) * expert
    )
    if name.startswith("coe-2-8-64"):  # 64 experts as moe-8-64, whose 780.7M are the reference's
        moe = CoEConfig.from_preset("moe-8-64")
        assert total_parameters(as_run) == total_parameters(moe) + layers * (routers * 64 - 63) * D


def test_dense_as_run_routes_every_token_to_all_eight_experts():
    config = CoEConfig.from_preset("dense-8-8-c2-as-run", size="tiny", num_hidden_layers=1)
    model = CoEForCausalLM(config).eval()
    out = model(torch.randint(0, config.vocab_size, (2, 6)), output_router_logits=True)
    for chosen in out.selected_experts:  # (T, K), one per iteration
        assert torch.equal(chosen.sort(dim=-1).values, torch.arange(8).expand(12, 8))
    assert model.model.layers[0].mlp.shared_experts is None
