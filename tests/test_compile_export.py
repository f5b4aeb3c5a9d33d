"""torch.compile (one full graph) and torch.export of a tiny MoE and CoE model in float32 on the CPU, with
each expert backend: the compiled forward and the exported program equal the eager forward. On a CUDA GPU
(skipped elsewhere), the same in bf16, where the grouped backend runs torch's grouped GEMM kernel."""

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM
from tests.conftest import rel_err


def tiny(preset: str, backend: str) -> CoEForCausalLM:
    # Traced, the loop unrolls every expert of every iteration of every layer: one layer keeps it short.
    layers = {"num_hidden_layers": 1} if backend == "loop" else {}
    torch.manual_seed(0)
    config = CoEConfig.from_preset(preset, size="tiny", expert_backend=backend, **layers)
    return CoEForCausalLM(config).eval()


def ids_for(model: CoEForCausalLM) -> torch.Tensor:
    return torch.randint(0, model.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))


CASES = [
    ("moe-8-64", "grouped"),
    ("coe-2-4-64", "grouped"),
    ("coe-2-4-64", "loop"),
    ("coe-2-4-64", "gather"),
    ("coe-2-4-64", "adaptive"),
    ("coe-2-4-64", "dense"),
]


@pytest.mark.parametrize("preset, backend", CASES)
def test_compiled_forward_is_one_graph_and_equals_eager(preset, backend):
    model = tiny(preset, backend)
    ids = ids_for(model)
    torch._dynamo.reset()
    # Inductor for the grouped path (what a user runs); the others through AOT autograd alone, which traces
    # with fake tensors as inductor does (where grouped_mm rejects float32), in a fraction of the time.
    compiler = "inductor" if backend == "grouped" else "aot_eager"
    compiled = torch.compile(model, fullgraph=True, backend=compiler)
    with torch.no_grad():
        want = model(ids, use_cache=False, output_router_logits=True)
        got = compiled(ids, use_cache=False, output_router_logits=True)
    assert rel_err(got.logits, want.logits) < 1e-5
    for a, b in zip(got.selected_experts, want.selected_experts, strict=True):
        assert torch.equal(a.sort(-1).values, b.sort(-1).values)


def test_compiled_training_step_equals_eager():
    """Loss and every gradient of a compiled training forward (balance loss included) equal eager ones."""
    model = tiny("coe-2-4-64", "grouped").train()
    ids = ids_for(model)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    losses, grads = [], []
    for run in (model, compiled):
        model.zero_grad()
        loss = run(ids, labels=ids, use_cache=False).loss
        loss.backward()
        losses.append(loss.detach())
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=0)
    assert grads[1].keys() == grads[0].keys() and any(".routers." in name for name in grads[0])
    for name, grad in grads[0].items():
        assert rel_err(grads[1][name], grad) < 1e-4, name


@pytest.mark.parametrize("preset, backend", CASES)
def test_exported_program_equals_eager(preset, backend):
    model = tiny(preset, backend)
    ids = ids_for(model)
    program = torch.export.export(model, (ids,), kwargs={"use_cache": False})
    other = torch.randint(0, model.config.vocab_size, ids.shape, generator=torch.Generator().manual_seed(2))
    for x in (ids, other):  # the routing of other tokens too: no choice of experts is baked in
        with torch.no_grad():
            want = model(x, use_cache=False).logits
        got = program.module()(x, use_cache=False).logits
        assert rel_err(got, want) < 1e-5


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA_CASES = [
    ("moe-8-64", "grouped"),
    ("coe-2-4-64", "grouped"),
    ("coe-2-4-64", "gather"),
    ("coe-2-4-64", "dense"),
    # The default: dense for these 18 tokens in bf16 under no_grad (the compiled forward, eager references),
    # grouped where export traces with grad enabled.
    ("coe-2-4-64", "adaptive"),
]


def tiny_bf16_cuda(preset: str, backend: str) -> CoEForCausalLM:
    return tiny(preset, backend).to("cuda", torch.bfloat16)


def assert_close_bf16(
    got: torch.Tensor, want: torch.Tensor, model: CoEForCausalLM, ids: torch.Tensor
) -> None:
    """bf16 results of two ways of computing one forward agree to bf16 rounding: within a few times the
    distance of the eager bf16 logits from the float32 ones."""
    with torch.no_grad():
        exact = model.float()(ids, use_cache=False).logits
    model.to(torch.bfloat16)
    rounding = rel_err(want.float(), exact)
    assert rel_err(got.float(), want.float()) < max(4 * rounding, 1e-3), (
        rel_err(got.float(), want.float()),
        rounding,
    )


@cuda
@pytest.mark.parametrize("preset, backend", CUDA_CASES)
def test_compiled_forward_in_bf16_on_cuda_equals_eager(preset, backend):
    model = tiny_bf16_cuda(preset, backend)
    ids = ids_for(model).cuda()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)  # inductor
    with torch.no_grad():
        want = model(ids, use_cache=False).logits
        got = compiled(ids, use_cache=False).logits
    assert got.dtype == want.dtype == torch.bfloat16
    assert_close_bf16(got, want, model, ids)


@cuda
@pytest.mark.parametrize("preset, backend", CUDA_CASES)
def test_exported_program_in_bf16_on_cuda_equals_eager(preset, backend):
    model = tiny_bf16_cuda(preset, backend)
    ids = ids_for(model).cuda()
    program = torch.export.export(model, (ids,), kwargs={"use_cache": False})
    other = torch.randint(
        0, model.config.vocab_size, ids.shape, generator=torch.Generator().manual_seed(2)
    ).cuda()
    for x in (ids, other):
        with torch.no_grad():
            want = model(x, use_cache=False).logits
            got = program.module()(x, use_cache=False).logits
        assert_close_bf16(got, want, model, x)
