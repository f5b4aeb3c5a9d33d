"""The grouped and gather backends against the plain loop: outputs and every gradient, edge cases, no host
syncs. The grouped backend has two ways back to tokens (the gather-only combine of the GPU, sum_copies of
the CPU): both run here. "adaptive" picks gather, dense or grouped by device and shapes; "dense" runs every
expert on every token."""

import functools

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM
from coe.nn import experts as experts_module
from coe.nn.dispatch import combine, permute, sort_by_expert, sorted_weights, sum_copies
from coe.nn.experts import GATHER_MAX_COPIES, Experts, expected_reach, grouped_mm, tiled_grouped_mm
from tests.conftest import rel_err

GROUPED = ["grouped-combine", "grouped-add"]  # _grouped(add_copies=False / True)
FAST = [*GROUPED, "gather", "dense"]


def make_experts(N=6, D=24, F=10):
    experts = Experts(N, D, F, backend="grouped")
    torch.nn.init.normal_(experts.gate_up_proj, std=0.3)
    torch.nn.init.normal_(experts.down_proj, std=0.3)
    return experts


def layer(experts, backend):
    if backend in GROUPED:
        return functools.partial(experts._grouped, add_copies=backend == "grouped-add")
    experts.backend = backend
    return experts


def run(experts, backend, x, idx, w):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    experts.zero_grad()
    y = layer(experts, backend)(x, idx, w)
    y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(1)))
    return y, x.grad, w.grad, experts.gate_up_proj.grad.clone(), experts.down_proj.grad.clone()


def test_cpu_forward_takes_the_add_path(monkeypatch):
    experts = make_experts()
    seen = []
    original = experts._grouped
    monkeypatch.setattr(experts, "_grouped", lambda *a, **kw: seen.append(kw) or original(*a, **kw))
    experts(torch.randn(5, 24), torch.randint(0, 6, (5, 2)), torch.rand(5, 2))
    assert seen == [{"add_copies": True}]


@pytest.mark.parametrize("grouped", FAST)
@pytest.mark.parametrize("routing", ["random", "one_expert", "some_unused"])
def test_fast_backends_equal_loop_outputs_and_gradients(routing, grouped):
    N, T, K = 6, 37, 3
    experts = make_experts(N)
    x = torch.randn(T, 24)
    w = torch.rand(T, K)
    if routing == "random":
        idx = torch.stack([torch.randperm(N)[:K] for _ in range(T)])
    elif routing == "one_expert":  # every copy goes to expert 4 (K copies of the same expert)
        idx = torch.full((T, K), 4)
    else:  # experts 0 and 5 receive nothing
        idx = torch.stack([torch.randperm(4)[:K] + 1 for _ in range(T)])
    grouped = run(experts, grouped, x, idx, w)
    loop = run(experts, "loop", x, idx, w)
    for name, a, b in zip(["y", "dx", "dw", "dgate_up", "ddown"], grouped, loop, strict=True):
        assert rel_err(a, b) < 1e-5, name
    if routing == "some_unused":
        assert torch.all(grouped[3][[0, 5]] == 0) and torch.all(grouped[4][[0, 5]] == 0)


def test_loop_matches_float64_formula():
    experts = make_experts().double()
    x = torch.randn(9, 24, dtype=torch.float64)
    idx = torch.stack([torch.randperm(6)[:2] for _ in range(9)])
    w = torch.rand(9, 2, dtype=torch.float64)
    experts.backend = "loop"
    y = experts(x, idx, w)
    F_ = experts.intermediate_size
    for t in range(9):
        ref = torch.zeros(24, dtype=torch.float64)
        for k in range(2):
            e = idx[t, k]
            gate = experts.gate_up_proj[e, :F_] @ x[t]
            up = experts.gate_up_proj[e, F_:] @ x[t]
            ref += w[t, k] * (experts.down_proj[e] @ (torch.nn.functional.silu(gate) * up))
        assert torch.allclose(y[t], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("grouped", FAST)
def test_fast_backends_match_float64_loop_at_cpu_experiment_shape(grouped):
    """The CPU experiment's layer shape (hidden 128, width 64, 63 experts, K = 8) on fewer tokens, float32
    against the loop in float64: outputs and every gradient."""
    experts = make_experts(N=63, D=128, F=64)
    T, K = 96, 8
    x, w = torch.randn(T, 128), torch.rand(T, K)
    idx = torch.randn(T, 63).topk(K, dim=-1).indices
    got = run(experts, grouped, x, idx, w)
    experts.double()
    want = run(experts, "loop", x.double(), idx, w.double())
    for name, a, b in zip(["y", "dx", "dw", "dgate_up", "ddown"], got, want, strict=True):
        assert a.dtype == torch.float32 and rel_err(a.double(), b) < 1e-5, name


def test_sorted_weights_and_sum_copies_against_a_loop():
    T, K, N, D = 7, 3, 5, 4
    idx = torch.stack([torch.randperm(N)[:K] for _ in range(T)])
    d = sort_by_expert(idx, N)
    w = torch.rand(T, K, requires_grad=True)
    ws = sorted_weights(w, d)  # (M, 1) in expert order
    y = torch.randn(T * K, D, requires_grad=True)
    out = sum_copies(y * ws, d, T)
    want = torch.zeros(T, D)
    for i in range(T * K):
        t, k = divmod(d.slot[i].item(), K)
        assert d.token[i] == t and ws[i, 0] == w[t, k]
        want[t] += w[t, k] * y[i]
    assert torch.allclose(out, want, atol=1e-6)
    g = torch.randn(T, D)
    out.backward(g)
    assert torch.allclose(y.grad, g[d.token] * ws.detach(), atol=1e-6)
    want_dw = torch.zeros(T, K)
    for i in range(T * K):
        t, k = divmod(d.slot[i].item(), K)
        want_dw[t, k] = (g[t] * y[i]).sum()
    assert torch.allclose(w.grad, want_dw, atol=1e-5)


def test_sum_copies_adds_bf16_copies_in_float32():
    d = sort_by_expert(torch.tensor([[0, 1, 2, 3]]), 4)  # one token, four copies
    y = torch.tensor([[256.0], [1.0], [1.0], [1.0]], dtype=torch.bfloat16)  # bf16: 256 + 1 rounds to 256
    out = sum_copies(y, d, 1)
    assert out.dtype == torch.float32 and out.item() == 259.0


def test_dispatch_permute_combine_round_trip():
    idx = torch.tensor([[2, 0], [1, 2], [2, 1]])
    d = sort_by_expert(idx, num_experts=4)
    assert d.offsets.tolist() == [1, 3, 6, 6]
    assert d.token.tolist() == [0, 1, 2, 0, 1, 2]  # expert 0: t0; expert 1: t1, t2; expert 2: t0, t1, t2
    x = torch.arange(3.0).unsqueeze(-1)
    assert permute(x, d).squeeze(-1).tolist() == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    w = torch.tensor([[0.5, 0.25], [1.0, 2.0], [3.0, 4.0]])
    y = torch.tensor(
        [[10.0], [20.0], [30.0], [40.0], [50.0], [60.0]]
    )  # sorted copies: e0:t0, e1:t1,t2, e2:t0,t1,t2
    out = combine(y, w, d)
    # t0: 0.5 * e2(40) + 0.25 * e0(10); t1: 1.0 * e1(20) + 2.0 * e2(50); t2: 3.0 * e2(60) + 4.0 * e1(30)
    assert out.squeeze(-1).tolist() == [22.5, 120.0, 300.0]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_grouped_path_traces_without_graph_breaks(dtype):
    """fullgraph tracing fails on .item(), .tolist(), nonzero or data-dependent branches: none may be
    there. grouped_mm's tracing rule takes bf16 only: float32 traces the tiled fallback (aot_eager traces
    with fake tensors, as inductor and export do)."""
    experts = make_experts().to(dtype)
    x = torch.randn(16, 24, dtype=dtype)
    idx = torch.randint(0, 6, (16, 2))
    w = torch.rand(16, 2)
    for add_copies in (False, True):
        torch._dynamo.reset()
        grouped = functools.partial(experts._grouped, add_copies=add_copies)
        compiled = torch.compile(grouped, backend="aot_eager", fullgraph=True)
        assert rel_err(compiled(x, idx, w), grouped(x, idx, w)) < (1e-2 if dtype == torch.bfloat16 else 1e-6)


@pytest.mark.parametrize("M", [1, 5, 40, 700])
@pytest.mark.parametrize("routing", ["random", "one_expert", "some_unused"])
def test_tiled_grouped_mm_equals_grouped_mm(M, routing):
    """The tiled fallback against torch's grouped_mm kernel in float32: products and both gradients, for row
    counts that give tiles of 1 to 64 rows, with empty experts."""
    N, I, O = 9, 24, 20
    g = torch.Generator().manual_seed(M)
    if routing == "random":
        expert = torch.randint(0, N, (M,), generator=g)
    elif routing == "one_expert":
        expert = torch.full((M,), 4)
    else:  # experts 0, 1 and 8 get nothing
        expert = torch.randint(2, 8, (M,), generator=g)
    offsets = torch.bincount(expert, minlength=N).cumsum(0).to(torch.int32)
    x = torch.randn(M, I, generator=g, requires_grad=True)
    w = torch.randn(N, I, O, generator=g, requires_grad=True)
    grad = torch.randn(M, O, generator=g)
    results = []
    for fn in (tiled_grouped_mm, grouped_mm):
        y = fn(x, w, offsets)
        dx, dw = torch.autograd.grad(y, (x, w), grad)
        results.append((y, dx, dw))
    for name, a, b in zip(["y", "dx", "dw"], *results, strict=True):
        assert rel_err(a, b) < 1e-5, name


def test_loop_while_tracing_runs_dense_and_equals_the_loop(monkeypatch):
    """Traced, the loop runs every token through every expert with a zero weight where not chosen (static
    shapes); repeated experts within a token add up as in the loop. Outputs and every gradient."""
    N, T, K = 6, 11, 3
    experts = make_experts(N).double()
    experts.backend = "loop"
    x, w = torch.randn(T, 24, dtype=torch.float64), torch.rand(T, K, dtype=torch.float64)
    idx = torch.randint(0, N, (T, K))
    want = run(experts, "loop", x, idx, w)
    monkeypatch.setattr(experts_module, "tracing", lambda: True)
    got = run(experts, "loop", x, idx, w)
    for name, a, b in zip(["y", "dx", "dw", "dgate_up", "ddown"], got, want, strict=True):
        assert rel_err(a, b) < 1e-12, name


@pytest.mark.parametrize("backend", ["grouped", "gather", "dense"])
def test_cache_casts_the_weights_once_for_the_calls_of_a_forward(backend):
    """A CoE layer's C calls share one cast: the first call fills the cache, the others read it."""
    experts = make_experts()
    experts.backend = backend
    x, idx, w = torch.randn(7, 24), torch.randint(0, 6, (7, 2)), torch.rand(7, 2)
    cache = {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = experts(x, idx, w, cache)
        (stacks,) = cache.values()
        assert list(cache) == [torch.bfloat16] and all(s.dtype == torch.bfloat16 for s in stacks)
        with torch.no_grad():
            experts.gate_up_proj.zero_()  # not read again: the cached cast stands for the weights
        second = experts(x, idx, w, cache)
        assert cache[torch.bfloat16] is stacks
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    assert torch.all(experts(x, idx, w) == 0)  # without the cache the (now zero) weights are read


@pytest.mark.parametrize("backend", ["gather", "dense"])
@pytest.mark.parametrize("T", [1, 5])
def test_gather_and_dense_equal_loop_in_float64(T, backend):
    """Both in float64 (no rounding to hide behind): outputs and every gradient, random routing, repeats
    allowed within a token (the gather path does not need distinct experts)."""
    N, K = 6, 4
    experts = make_experts(N).double()
    x, w = torch.randn(T, 24, dtype=torch.float64), torch.rand(T, K, dtype=torch.float64)
    idx = torch.randint(0, N, (T, K))
    got = run(experts, backend, x, idx, w)
    want = run(experts, "loop", x, idx, w)
    for name, a, b in zip(["y", "dx", "dw", "dgate_up", "ddown"], got, want, strict=True):
        assert a.dtype == torch.float64 and rel_err(a, b) < 1e-12, name


@pytest.mark.parametrize("backend", ["gather", "dense"])
def test_gather_and_dense_in_bfloat16_add_copies_in_float32(backend):
    experts = make_experts(N=8, D=32, F=16).to(torch.bfloat16)
    x, w = torch.randn(3, 32, dtype=torch.bfloat16), torch.rand(3, 4)
    idx = torch.stack([torch.randperm(8)[:4] for _ in range(3)])
    got = run(experts, backend, x, idx, w)
    want = run(experts, "grouped-add", x, idx, w)
    for name, a, b in zip(["y", "dx", "dw", "dgate_up", "ddown"], got, want, strict=True):
        assert a.dtype == b.dtype and rel_err(a.float(), b.float()) < 2e-2, name


def test_adaptive_runs_gather_for_few_copies_and_grouped_for_many_on_the_cpu(monkeypatch):
    experts = make_experts()
    experts.backend = "adaptive"
    seen = []
    original_gather = experts_module.gathered_swiglu
    monkeypatch.setattr(
        experts_module, "gathered_swiglu", lambda *a: seen.append("gather") or original_gather(*a)
    )
    original_grouped = experts._grouped
    monkeypatch.setattr(
        experts, "_grouped", lambda *a, **kw: seen.append("grouped") or original_grouped(*a, **kw)
    )
    K = 4
    tokens = [1, GATHER_MAX_COPIES // K, GATHER_MAX_COPIES // K + 1, 2048]
    for T in tokens:
        y = experts(torch.randn(T, 24), torch.randint(0, 6, (T, K)), torch.rand(T, K))
        assert y.shape == (T, 24)
    assert seen == ["gather", "gather", "grouped", "grouped"]


def adaptive_path(experts, device, T, K, dtype=torch.float32):
    """The backend "adaptive" picks for T tokens of K copies on ``device`` ("meta" stands for a GPU: any
    device but the CPU), from shapes alone."""
    x = torch.empty(T, experts.gate_up_proj.shape[-1], device=device, dtype=dtype)
    return experts._path(x, torch.empty(T, K, dtype=torch.long, device=device), dtype)


def test_adaptive_rule_by_device_copies_bytes_and_tokens():
    small = Experts(63, 128, 64, backend="adaptive")  # 98 KB a float32 expert: 32 copies are 3.1 MB
    assert adaptive_path(small, "cpu", GATHER_MAX_COPIES // 4, 4) == "gather"
    assert adaptive_path(small, "cpu", GATHER_MAX_COPIES // 4 + 1, 4) == "grouped"
    with torch.device("meta"):  # paper widths without their memory
        paper = Experts(63, 1024, 704, backend="adaptive")
    # CPU: one float32 expert of paper widths is 8.7 MB, over GATHER_MAX_BYTES_CPU: never gather.
    assert adaptive_path(paper, "cpu", 1, 1) == "grouped"
    assert adaptive_path(paper, "cpu", 64, 4) == "grouped"  # and never dense on the CPU
    # GPU, inference in bf16: gather up to 32 copies, dense up to DENSE_MAX_TOKENS tokens, grouped above.
    bf16 = torch.bfloat16
    with torch.no_grad():
        assert adaptive_path(paper, "meta", 8, 4, bf16) == "gather"
        assert adaptive_path(paper, "meta", 8, 8, bf16) == "dense"
        assert adaptive_path(paper, "meta", experts_module.DENSE_MAX_TOKENS, 4, bf16) == "dense"
        assert adaptive_path(paper, "meta", experts_module.DENSE_MAX_TOKENS + 1, 4, bf16) == "grouped"
        assert adaptive_path(paper, "meta", 64, 8, torch.float32) == "grouped"  # dense measured in bf16 only
        # Many experts, few tokens: 36 copies reach 20% of 160 experts, dense would read all of them.
        with torch.device("meta"):
            many = Experts(160, 1024, 704, backend="adaptive")
        assert adaptive_path(many, "meta", 6, 6, bf16) == "grouped"
        assert adaptive_path(many, "meta", 20, 6, bf16) == "dense"
    assert round(expected_reach(160, 6, 6), 2) == 0.20 and round(expected_reach(160, 6, 20), 2) == 0.53
    assert adaptive_path(paper, "meta", 64, 8, bf16) == "grouped"  # training: dense's backward is unmeasured
    assert adaptive_path(paper, "meta", 8, 4, bf16) == "gather"  # gather's gradients are tested
    assert adaptive_path(paper, "meta", 64 * 512, 8, bf16) == "grouped"  # a training batch
    paper.shard = object()  # expert parallelism: a rank holds only its experts, so always grouped
    assert adaptive_path(paper, "meta", 1, 4) == "grouped"
    for backend in ("gather", "grouped", "dense", "loop"):  # the others are what they say
        small.backend = backend
        assert adaptive_path(small, "cpu", 2048, 8) == adaptive_path(small, "meta", 1, 1) == backend


@pytest.mark.parametrize("backend", ["gather", "adaptive", "dense"])
def test_gather_path_traces_without_graph_breaks(backend):
    experts = make_experts()
    experts.backend = backend
    x, idx, w = torch.randn(3, 24), torch.randint(0, 6, (3, 2)), torch.rand(3, 2)
    torch._dynamo.reset()
    compiled = torch.compile(experts, backend="eager", fullgraph=True)
    assert rel_err(compiled(x, idx, w), experts(x, idx, w)) < 1e-6


def tiny_model(backend: str) -> CoEForCausalLM:
    torch.manual_seed(0)
    return CoEForCausalLM(CoEConfig.from_preset("coe-2-4-64", size="tiny", expert_backend=backend)).eval()


def test_greedy_generation_is_the_same_with_adaptive_and_grouped(monkeypatch):
    """Prefill (2 x 9 tokens, K = 4: 72 copies) runs grouped, each decoding step (2 tokens, 8 copies) gather:
    the greedy tokens equal the grouped backend's."""
    grouped, adaptive = tiny_model("grouped"), tiny_model("adaptive")
    config = grouped.config
    adaptive.load_state_dict(grouped.state_dict())
    calls = []
    original = experts_module.gathered_swiglu
    monkeypatch.setattr(
        experts_module, "gathered_swiglu", lambda *a: calls.append(a[0].shape[0]) or original(*a)
    )
    prompt = torch.randint(0, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    kwargs = dict(max_new_tokens=10, min_new_tokens=10, do_sample=False)
    want = grouped.generate(prompt, **kwargs)
    assert not calls
    got = adaptive.generate(prompt, **kwargs)
    assert torch.equal(got, want)
    assert calls and set(calls) == {2}  # every decoding step of every MoE layer and iteration, no prefill
    moe_layers = config.num_hidden_layers - config.first_k_dense_replace
    assert len(calls) == 9 * moe_layers * config.inner_iter


def test_expected_reach_matches_sampled_routing():
    """The share of experts a batch's copies reach, against uniform routing sampled (K distinct of N a token):
    4 of 63 by 64 tokens reach 98.5%, the figure the docs give for a batch-64 CoE step."""
    g = torch.Generator().manual_seed(0)
    for N, K, T in [(63, 4, 64), (63, 4, 8), (160, 6, 6)]:
        trials = [torch.rand(T, N, generator=g).topk(K).indices.unique().numel() / N for _ in range(2000)]
        assert abs(sum(trials) / len(trials) - expected_reach(N, K, T)) < 0.005, (N, K, T)
    assert round(expected_reach(63, 4, 64), 3) == 0.985


def test_dense_ignores_an_unchosen_expert_that_overflows():
    """Every expert runs on every token, so an unchosen one may overflow (inf * 0 would be NaN): its output
    must not reach the token. Expert 5 overflows; no token chooses it."""
    experts = make_experts()
    with torch.no_grad():
        experts.gate_up_proj[5] = 1e30
    x, w = torch.randn(7, 24), torch.rand(7, 2)
    idx = torch.stack([torch.randperm(5)[:2] for _ in range(7)])
    experts.backend = "dense"
    got = experts(x, idx, w)
    experts.backend = "loop"
    assert torch.isfinite(got).all() and rel_err(got, experts(x, idx, w)) < 1e-5


@pytest.mark.parametrize("backend", ["gather", "dense"])
def test_greedy_generation_is_the_same_with_a_decoding_backend_and_grouped(backend, monkeypatch):
    """A whole model, prefill and decoding steps on the backend: the greedy tokens equal the grouped
    backend's, and every expert call of the model took the backend's path."""
    grouped, other = tiny_model("grouped"), tiny_model(backend)
    other.load_state_dict(grouped.state_dict())
    prompt = torch.randint(0, grouped.config.vocab_size, (3, 7), generator=torch.Generator().manual_seed(1))
    kwargs = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False)
    want = grouped.generate(prompt, **kwargs)
    name = {"gather": "gathered_swiglu", "dense": "dense_swiglu"}[backend]
    calls = []
    original = getattr(experts_module, name)
    monkeypatch.setattr(experts_module, name, lambda *a: calls.append(a[0].shape[0]) or original(*a))
    monkeypatch.setattr(experts_module, "swiglu", None)  # the grouped path would fail
    assert torch.equal(other.generate(prompt, **kwargs), want)
    config = other.config
    moe_layers = config.num_hidden_layers - config.first_k_dense_replace
    assert len(calls) == 12 * moe_layers * config.inner_iter  # prefill and 11 decoding steps


def test_gather_follows_autocast_like_grouped():
    """Under CPU autocast to bfloat16 both paths run bf16 matmuls on float32 weights and return x's dtype."""
    experts = make_experts(N=8, D=32, F=16)
    x, w = torch.randn(3, 32), torch.rand(3, 4)
    idx = torch.stack([torch.randperm(8)[:4] for _ in range(3)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        experts.backend = "gather"
        got = experts(x, idx, w)
        want = experts._grouped(x, idx, w, add_copies=True)
    experts.backend = "loop"
    exact = experts(x, idx, w)
    assert got.dtype == torch.float32 and rel_err(got, want) < 1e-6
    assert 1e-4 < rel_err(got, exact) < 2e-2  # bf16 matmuls really ran


@pytest.mark.parametrize("combine", [experts_module.gathered_swiglu, experts_module.dense_swiglu])
def test_gather_and_dense_add_bf16_copies_in_float32(combine):
    """Each copy's output is rounded to bf16, the K copies of a token are added in float32: the sum equals the
    float32 sum of the bf16 per-copy outputs exactly (a bf16 sum would round at each addition)."""
    N, D, F_, T, K = 8, 32, 16, 5, 4
    experts = make_experts(N=N, D=D, F=F_).to(torch.bfloat16)
    w_gate_up, w_down = experts.matmul_weights(torch.bfloat16)
    x = torch.randn(T, D, dtype=torch.bfloat16)
    idx = torch.stack([torch.randperm(N)[:K] for _ in range(T)])
    w = torch.rand(T, K, dtype=torch.bfloat16)
    got = combine(x, idx, w, w_gate_up, w_down)
    assert got.dtype == torch.float32
    copies = torch.stack(  # (T, K, D): each copy alone through the same function, one copy per token
        [combine(x, idx[:, k : k + 1], w[:, k : k + 1], w_gate_up, w_down) for k in range(K)], dim=1
    )
    assert torch.equal(copies, copies.to(torch.bfloat16).float())  # each copy is a bf16 value
    torch.testing.assert_close(got, copies.sum(1), rtol=1e-6, atol=1e-6)
    assert not torch.equal(got, copies.to(torch.bfloat16).sum(1, dtype=torch.bfloat16).float())
