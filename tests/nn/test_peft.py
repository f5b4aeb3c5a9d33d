"""LoRA through peft on every part of a tiny model: attention, shared experts and routers
(``target_modules``), the routed experts' stacked weights (``target_parameters``). Each adapter changes the
forward and merges into the same function; training moves every adapter and no base weight; save / reload
and merge keep the logits."""

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM
from coe.nn.experts import Experts
from coe.nn.router import Router
from tests.conftest import rel_err

peft = pytest.importorskip("peft")

ATTENTION = {
    "mla": ["q_proj", "kv_a_proj_with_mqa", "o_proj"],
    "gqa": ["q_proj", "k_proj", "v_proj", "o_proj"],
}
SHARED = ["shared_experts.gate_proj", "shared_experts.up_proj", "shared_experts.down_proj"]
ROUTED = ["experts.gate_up_proj", "experts.down_proj"]


def routers(config: CoEConfig) -> list[str]:
    return [f"routers.{t}" for t in range(config.num_routers)]


def tiny(preset: str = "coe-2-4-64", **overrides) -> CoEForCausalLM:
    torch.manual_seed(0)
    config = CoEConfig.from_preset(preset, size="tiny", **overrides)
    return CoEForCausalLM(config).eval()


def forward(model, ids: torch.Tensor):
    with torch.no_grad():
        return model(ids, use_cache=False, output_router_logits=True)


def ids_for(model) -> torch.Tensor:
    return torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "part, backend",
    [
        ("attention", "grouped"),
        ("shared", "grouped"),
        ("routers", "grouped"),
        ("routed", "grouped"),
        ("routed", "loop"),
        ("routed", "gather"),
    ],
)
@pytest.mark.parametrize("attention", ["mla", "gqa"])
def test_each_adapter_changes_the_forward_and_merges_into_it(part, backend, attention):
    """Random (nonzero) adapters: an adapter the forward ignored would leave the logits alone and then change
    them on merging."""
    model = tiny(attention=attention, expert_backend=backend)
    targets = {"attention": ATTENTION[attention], "shared": SHARED, "routers": routers(model.config)}
    lora = peft.LoraConfig(
        r=4,
        lora_alpha=64 if part == "routed" else 8,  # moves the logits well above rounding, not much more
        target_modules=targets.get(part, []),
        target_parameters=ROUTED if part == "routed" else None,
        init_lora_weights=False,
    )
    ids = ids_for(model)
    plain = forward(model, ids)
    adapted = get_peft_model(model, lora)
    out = forward(adapted, ids)
    changed = out.router_logits if part == "routers" else [out.logits]
    reference = plain.router_logits if part == "routers" else [plain.logits]
    assert all(rel_err(a, b) > 1e-3 for a, b in zip(changed, reference, strict=True))
    merged = forward(adapted.merge_and_unload(), ids)
    assert rel_err(merged.logits, out.logits) < 1e-4
    for a, b in zip(merged.router_logits, out.router_logits, strict=True):
        assert rel_err(a, b) < 1e-4


def get_peft_model(model, lora):
    adapted = peft.get_peft_model(model, lora)
    wrapped = [name for name, module in adapted.named_modules() if hasattr(module, "lora_A")]
    assert wrapped, "no module took the adapter"
    return adapted


def test_lora_on_mla_kv_b_proj_merges_into_the_forward():
    """The attention calls kv_b_proj (it does not read its weight), so a LoRA on it counts before merging; and
    generation keeps to the decompressed form under the adapter (the absorbed one folds the weight alone)."""
    model = tiny()
    ids = ids_for(model)
    plain = forward(model, ids).logits
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["kv_b_proj"], init_lora_weights=False)
    adapted = peft.get_peft_model(model, lora)
    out = forward(adapted, ids)
    assert (out.logits - plain).abs().max() > 1e-3  # the adapter counts before merging
    # Decoding steps of this tiny model take the absorbed form when nothing wraps kv_b_proj: the scores of
    # every step, not only the tokens, must be the merged model's.
    settings = dict(max_new_tokens=4, do_sample=False, output_scores=True, return_dict_in_generate=True)
    adapted_steps = adapted.generate(ids[:1, :5], **settings)
    merged = adapted.merge_and_unload()
    torch.testing.assert_close(forward(merged, ids).logits, out.logits, rtol=0, atol=1e-5)
    merged_steps = merged.generate(ids[:1, :5], **settings)
    assert torch.equal(merged_steps.sequences, adapted_steps.sequences)
    for got, want in zip(adapted_steps.scores, merged_steps.scores, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("preset, attention", [("coe-2-4-64", "mla"), ("moe-8-64", "gqa")])
def test_lora_on_every_part_trains_saves_reloads_and_merges(tmp_path, preset, attention):
    model = tiny(preset, attention=attention)
    config = model.config
    ids = ids_for(model)
    lora = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=ATTENTION[attention] + SHARED + routers(config),
        target_parameters=ROUTED,
    )
    adapted = peft.get_peft_model(model, lora)
    trainable = {name: p for name, p in adapted.named_parameters() if p.requires_grad}
    frozen = {name: p.detach().clone() for name, p in adapted.named_parameters() if not p.requires_grad}
    moe_layers = config.num_hidden_layers - config.first_k_dense_replace
    wrapped = {part: config.num_hidden_layers for part in ATTENTION[attention]}
    wrapped |= {part: moe_layers for part in [*SHARED, *routers(config), "mlp.experts", "experts.base_layer"]}
    for part, layers in wrapped.items():  # nested ParamWrappers: one per expert weight
        assert sum(n.endswith(f".{part}.lora_B.default.weight") for n in trainable) == layers, part
    assert len(trainable) == 2 * sum(wrapped.values())  # A and B of each, nothing else
    lora_b = {name: p.detach().clone() for name, p in trainable.items() if "lora_B" in name}
    assert all(torch.all(b == 0) for b in lora_b.values())  # peft's default init: the adapter starts at 0

    adapted.train()
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    for _ in range(3):
        adapted(ids, labels=ids, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    adapted.eval()
    assert all(not torch.equal(p, lora_b[name]) for name, p in trainable.items() if name in lora_b)
    assert all(torch.equal(p, frozen[name]) for name, p in adapted.named_parameters() if name in frozen)

    out = forward(adapted, ids)
    with adapted.disable_adapter():
        assert (forward(adapted, ids).logits - out.logits).abs().max() > 1e-3

    adapted.save_pretrained(tmp_path)
    reloaded = peft.PeftModel.from_pretrained(tiny(preset, attention=attention), tmp_path).eval()
    torch.testing.assert_close(forward(reloaded, ids).logits, out.logits, rtol=0, atol=0)

    merged = reloaded.merge_and_unload()
    assert isinstance(merged, CoEForCausalLM)
    assert all(type(r) is Router for chain in merged.chains() for r in chain.routers)
    assert all(type(chain.experts) is Experts for chain in merged.chains())
    got = forward(merged, ids)
    torch.testing.assert_close(got.logits, out.logits, rtol=0, atol=1e-5)
    for a, b in zip(got.selected_experts, out.selected_experts, strict=True):
        assert torch.equal(a.sort(-1).values, b.sort(-1).values)


def test_expert_bias_balancing_reaches_routers_under_lora():
    """Auxiliary-loss-free balancing with LoRA on the routers: the choice adds the wrapped router's bias, and
    the bias step updates it."""
    model = tiny(router_bias_update_rate=0.1)
    adapted = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=routers(model.config)))
    adapted.train()
    adapted(ids_for(model), use_cache=False)
    counts = torch.stack([chain.take_counts() for chain in model.chains()])
    adapted.update_router_biases(counts)
    bias = model.chains()[0].routers[0].get_base_layer().expert_bias
    load = counts[0, 0]
    torch.testing.assert_close(bias, 0.1 * torch.sign(load.mean() - load))
    with torch.no_grad():
        bias[5] = 1e3  # expert 5 now wins every choice of the first MoE layer's first iteration
    out = adapted.eval()(ids_for(model), use_cache=False, output_router_logits=True)
    assert torch.all((out.selected_experts[0] == 5).any(-1))


def test_modules_to_save_trains_full_copies_of_routers_and_routed_experts(tmp_path):
    model = tiny()
    ids = ids_for(model)
    lora = peft.LoraConfig(
        r=4, target_modules=["q_proj"], modules_to_save=[*routers(model.config), "mlp.experts"]
    )
    adapted = peft.get_peft_model(model, lora)
    copies = [n for n, p in adapted.named_parameters() if p.requires_grad and "modules_to_save" in n]
    assert any("routers.1.modules_to_save" in n for n in copies)
    assert any("experts.modules_to_save.default.gate_up_proj" in n for n in copies)
    assert not any("shared_experts" in n for n in copies)
    adapted.train()
    adapted(ids, labels=ids, use_cache=False).loss.backward()
    assert all(p.grad is not None for n, p in adapted.named_parameters() if n in copies)
    adapted.eval()
    out = forward(adapted, ids)
    adapted.save_pretrained(tmp_path)
    reloaded = peft.PeftModel.from_pretrained(tiny(), tmp_path).eval()
    torch.testing.assert_close(forward(reloaded, ids).logits, out.logits, rtol=0, atol=0)
