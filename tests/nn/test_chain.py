"""The CoE block and decoder layer against a float64 per-token reference written from the paper's formulas."""

import pytest
import torch
import torch.nn.functional as F

from coe import CoEConfig
from coe.modeling import CoEDecoderLayer
from coe.nn.chain import ChainOfExperts
from tests.conftest import rel_err


def config(**overrides) -> CoEConfig:
    fields = dict(
        hidden_size=16,
        n_routed_experts=7,
        n_shared_experts=1,
        num_experts_per_tok=2,
        moe_intermediate_size=12,
        inner_iter=2,
        num_attention_heads=2,
        kv_lora_rank=8,
        qk_nope_head_dim=4,
        qk_rope_head_dim=4,
        v_head_dim=4,
        num_hidden_layers=1,
    )
    return CoEConfig(**{**fields, **overrides})


def init(module: torch.nn.Module) -> torch.nn.Module:
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.4)
    return module


def swiglu(x, gate, up, down):
    return down @ (F.silu(gate @ x) * (up @ x))


def reference_block(chain: ChainOfExperts, cfg: CoEConfig, x: torch.Tensor) -> torch.Tensor:
    """x_t = sum_k g_tk E_k(x_{t-1}) + S(x_{t-1}) (+ x_{t-1}), token by token, straight from the formulas."""
    Fi = cfg.moe_intermediate_size
    out = torch.empty_like(x)
    for n, token in enumerate(x):
        for t in range(cfg.inner_iter):
            W = chain.routers[t if cfg.use_igate else 0].weight
            scores = (W @ token).softmax(-1) if cfg.scoring_func == "softmax" else (W @ token).sigmoid()
            chosen = scores.argsort(descending=True)[: cfg.num_experts_per_tok]
            gates = scores[chosen]
            if cfg.norm_topk_prob:
                gates = gates / gates.sum()
            gates = gates * cfg.routed_scaling_factor
            y = torch.zeros_like(token)
            for g, e in zip(gates, chosen, strict=True):
                gu = chain.experts.gate_up_proj[e]
                y = y + g * swiglu(token, gu[:Fi], gu[Fi:], chain.experts.down_proj[e])
            s = chain.shared_experts
            y = y + swiglu(token, s.gate_proj.weight, s.up_proj.weight, s.down_proj.weight)
            token = y + token if cfg.inner_residual else y
        out[n] = token
    return out


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(use_igate=False),
        dict(inner_residual=False),
        dict(inner_iter=3, norm_topk_prob=True, routed_scaling_factor=1.7),
        dict(scoring_func="sigmoid"),
        dict(inner_iter=1),
    ],
    ids=["coe2", "shared_router", "no_inner_residual", "c3_norm_scaled", "sigmoid", "moe"],
)
@pytest.mark.parametrize("backend", ["grouped", "loop"])
def test_chain_equals_float64_reference(overrides, backend):
    cfg = config(expert_backend=backend, **overrides)
    chain = init(ChainOfExperts(cfg)).double()
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    out = chain(x)
    assert len(out.routings) == cfg.inner_iter
    assert len(chain.routers) == (cfg.inner_iter if cfg.use_igate else 1)
    ref = reference_block(chain, cfg, x.view(-1, 16)).view_as(x)
    assert rel_err(out.hidden, ref) < 1e-10


@pytest.mark.parametrize("inner, outer", [(True, False), (False, True), (True, True), (False, False)])
def test_decoder_layer_residuals(inner, outer):
    cfg = config(inner_residual=inner, outer_residual=outer)
    layer = init(CoEDecoderLayer(cfg, 0)).double()
    layer.self_attn.forward = lambda x, rope, mask, cache=None: torch.zeros_like(x)  # isolate the FFN part
    h = torch.randn(1, 4, 16, dtype=torch.float64)
    out, _chain = layer(h, None, None)
    x0 = layer.post_attention_layernorm(h)
    expected = reference_block(layer.mlp, cfg, x0.view(-1, 16)).view_as(h) + (h if outer else 0)
    assert rel_err(out, expected) < 1e-10


def test_iterations_route_on_their_own_input():
    """Iteration 2 routes x_1, not x_0: its logits equal its router applied to the output of iteration 1."""
    cfg = config(inner_iter=2)
    chain = init(ChainOfExperts(cfg)).double()
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    two = chain(x)
    chain.num_iterations = 1
    one = chain(x)
    torch.testing.assert_close(two.routings[1].logits, chain.routers[1](one.hidden.view(-1, 16)))


def test_expert_bias_changes_choice_not_weights_and_updates_by_sign():
    cfg = config(router_bias_update_rate=0.1)
    chain = init(ChainOfExperts(cfg))
    router = chain.routers[0]
    x = torch.randn(30, 16)
    before = router.select(router(x))
    router.expert_bias[3] = 10.0  # expert 3 now wins every choice
    after = router.select(router(x))
    assert torch.all((after.topk_idx == 3).any(-1))
    torch.testing.assert_close(after.topk_weight, after.scores.gather(-1, after.topk_idx))
    assert not torch.equal(before.topk_idx, after.topk_idx)

    router.expert_bias.zero_()
    chain.record(chain(x.view(1, 30, 16)))
    load = chain.take_counts()
    assert load.sum() == 2 * 30 * cfg.num_experts_per_tok and torch.all(chain.tokens_per_expert == 0)
    chain.update_expert_bias(load, 0.1)
    for t, r in enumerate(chain.routers):
        expected = 0.1 * torch.sign(load[t].mean() - load[t])
        torch.testing.assert_close(r.expert_bias, expected)


def test_group_limited_greedy_picks_only_from_top_groups():
    cfg = config(
        n_routed_experts=8, topk_method="group_limited_greedy", n_group=4, topk_group=2, num_experts_per_tok=3
    )
    router = init(ChainOfExperts(cfg)).routers[0]
    x = torch.randn(50, 16)
    r = router.select(router(x))
    group_best = r.scores.view(50, 4, 2).amax(-1)
    top_groups = group_best.topk(2).indices
    for n in range(50):
        allowed = torch.cat([torch.arange(2 * g, 2 * g + 2) for g in top_groups[n]])
        best = allowed[r.scores[n, allowed].topk(3).indices]
        assert set(r.topk_idx[n].tolist()) == set(best.tolist())


def test_router_logits_stay_float32_under_autocast():
    """bf16 autocast must not reach the router: its logits are the float32 GEMM of a float32 run."""
    from coe.nn.router import Router

    config = CoEConfig.from_preset("coe-2-4-64", size="tiny")
    router = Router(config)
    torch.nn.init.normal_(router.weight, std=0.5)
    x = torch.randn(16, config.hidden_size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = router(x)
    plain = router(x)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, plain, rtol=0, atol=0)


@pytest.mark.parametrize("balance", ["seq", "batch"])
def test_token_mask_leaves_masked_tokens_out_of_losses_and_counts(balance):
    """Tokens pass the block independently: the masked block's losses and counts are those of the counted
    tokens alone, and its outputs are those of the unmasked block."""
    cfg = config(balance_loss=balance, router_z_loss_coef=0.1)
    chain = init(ChainOfExperts(cfg)).train()
    B, S = 2, 6
    x = torch.randn(B, S, cfg.hidden_size)
    mask = torch.ones(B, S, dtype=torch.bool)
    mask[0, 4:] = False  # the first row is padded after 4 tokens
    masked = chain(x, mask)
    chain.record(masked)
    counts = chain.take_counts()
    torch.testing.assert_close(masked.hidden, chain(x).hidden)
    rows = [chain(x[0:1, :4]), chain(x[1:2])]  # each row's tokens alone
    together = chain(x[mask].unsqueeze(0))  # all counted tokens as one row
    for row in rows:
        chain.record(row)
    assert torch.equal(counts, chain.take_counts())
    assert counts.sum() == mask.sum() * cfg.num_experts_per_tok * cfg.inner_iter
    for t in range(cfg.inner_iter):
        if balance == "seq":
            want = sum(row.balance_losses[t] for row in rows) / 2
        else:
            want = together.balance_losses[t]
        torch.testing.assert_close(masked.balance_losses[t], want)
        torch.testing.assert_close(masked.z_losses[t], together.z_losses[t])


class ShiftLogits(torch.nn.Module):
    """An adapter's way of wrapping a router (peft's LoRA keeps the wrapped module as ``base_layer``)."""

    def __init__(self, base_layer: torch.nn.Module, shift: torch.Tensor) -> None:
        super().__init__()
        self.base_layer, self.shift = base_layer, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x) + self.shift


def test_routing_calls_a_wrapped_router_and_keeps_the_bias_on_the_router_inside():
    cfg = config(router_bias_update_rate=0.1)
    chain = init(ChainOfExperts(cfg))
    routers = list(chain.routers)
    shift = torch.zeros(cfg.n_routed_experts)
    shift[2] = 100.0  # expert 2 now wins every choice of the first iteration
    chain.routers[0] = ShiftLogits(ShiftLogits(routers[0], shift), torch.zeros(cfg.n_routed_experts))
    x = torch.randn(1, 30, 16)
    out = chain(x)
    assert torch.all((out.routings[0].topk_idx == 2).any(-1))
    torch.testing.assert_close(out.routings[0].logits, routers[0](x.view(30, 16)) + shift)
    load = torch.rand(cfg.inner_iter, cfg.n_routed_experts)
    chain.update_expert_bias(load, 0.1)
    torch.testing.assert_close(routers[0].expert_bias, 0.1 * torch.sign(load[0].mean() - load[0]))
    with torch.no_grad():
        routers[0].expert_bias[4] = 1e3  # the choice adds the bias of the router inside the wrappers
    assert torch.all((chain(x).routings[0].topk_idx == 4).any(-1))


def test_router_is_a_linear_layer_with_the_checkpoint_names():
    """Adapters and tools that handle nn.Linear take the router; its state keeps the names checkpoints use."""
    router = init(ChainOfExperts(config(router_bias_update_rate=0.1))).routers[0]
    assert isinstance(router, torch.nn.Linear) and router.bias is None
    assert list(router.state_dict()) == ["weight", "expert_bias"] and router.weight.shape == (7, 16)
    x = torch.randn(5, 16)
    torch.testing.assert_close(router(x), x @ router.weight.T)
