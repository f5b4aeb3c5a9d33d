"""Expert parallelism against the unsharded grouped backend: two gloo ranks on the CPU, each with its own
tokens, must get the outputs and gradients one process gets for the same tokens."""

import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.device_mesh import init_device_mesh

from coe.nn.expert_parallel import expert_split, shard_experts
from coe.nn.experts import Experts

N, D, F_, K = 5, 16, 8, 2
TOKENS = (7, 4)  # per rank: unequal, so the ranks send and receive unequal numbers of copies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_inputs(backend: str = "grouped"):
    g = torch.Generator().manual_seed(0)
    experts = Experts(N, D, F_, backend=backend)
    with torch.no_grad():
        experts.gate_up_proj.copy_(torch.randn(experts.gate_up_proj.shape, generator=g) * 0.3)
        experts.down_proj.copy_(torch.randn(experts.down_proj.shape, generator=g) * 0.3)
    xs = [torch.randn(t, D, generator=g) for t in TOKENS]
    # Expert 4 (on rank 1) receives nothing; rank 1's tokens all go to rank 0's experts 0-2.
    idx = [
        torch.stack([torch.randperm(4, generator=g)[:K] for _ in range(TOKENS[0])]),
        torch.stack([torch.randperm(3, generator=g)[:K] for _ in range(TOKENS[1])]),
    ]
    ws = [torch.rand(t, K, generator=g) for t in TOKENS]
    grads = [torch.randn(t, D, generator=g) for t in TOKENS]
    return experts, xs, idx, ws, grads


def reference():
    """One process, all tokens: outputs, input and gate gradients per rank, weight gradients."""
    experts, xs, idx, ws, grads = make_inputs()
    x = torch.cat(xs).requires_grad_()
    w = torch.cat(ws).requires_grad_()
    y = experts(x, torch.cat(idx), w)
    y.backward(torch.cat(grads))
    split = list(TOKENS)
    return (
        y.detach().split(split),
        x.grad.split(split),
        w.grad.split(split),
        experts.gate_up_proj.grad,
        experts.down_proj.grad,
    )


def worker(rank: int, port: int, backend: str, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=60))
    try:
        experts, xs, idx, ws, grads = make_inputs(backend)
        mesh = init_device_mesh("cpu", (1, 2), mesh_dim_names=("dp", "ep"))
        shard_experts(experts, mesh)
        x, w = xs[rank].requires_grad_(), ws[rank].requires_grad_()
        y = experts(x, idx[rank], w)
        y.backward(grads[rank])
        out[rank] = (
            y.detach(),
            x.grad,
            w.grad,
            experts.gate_up_proj.grad.to_local(),
            experts.down_proj.grad.to_local(),
            tuple(experts.gate_up_proj.to_local().shape),
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("backend", ["grouped", "adaptive"])
def test_expert_parallel_equals_one_process(backend):
    """ "adaptive", the default, runs grouped on a shard: a rank's 7 or 4 tokens of 2 copies would take gather
    unsharded, which cannot reach another rank's experts."""
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(worker, args=(free_port(), backend, out), nprocs=2)
        out = dict(out)
    y_ref, dx_ref, dw_ref, dgate_up_ref, ddown_ref = reference()
    sizes = expert_split(N, 2)
    assert sizes == (3, 2) and [out[r][5][0] for r in (0, 1)] == [3, 2]  # each rank holds its chunk only
    for r in (0, 1):
        y, dx, dw, dgate_up, ddown, _ = out[r]
        first = sum(sizes[:r])
        assert torch.allclose(y, y_ref[r], rtol=1e-5, atol=1e-6)
        assert torch.allclose(dx, dx_ref[r], rtol=1e-5, atol=1e-6)
        assert torch.allclose(dw, dw_ref[r], rtol=1e-5, atol=1e-6)
        # A rank's weight gradient sums over every rank's tokens (the all-to-all's backward brought them).
        assert torch.allclose(dgate_up, dgate_up_ref[first : first + sizes[r]], rtol=1e-5, atol=1e-6)
        assert torch.allclose(ddown, ddown_ref[first : first + sizes[r]], rtol=1e-5, atol=1e-6)
    assert torch.all(out[1][3][1] == 0)  # expert 4 got no tokens from anyone


def test_expert_split_follows_torch_chunk():
    assert expert_split(63, 8) == (8,) * 7 + (7,)
    assert expert_split(63, 2) == (32, 31)
    with pytest.raises(ValueError, match="5 experts cannot be split over 4"):
        expert_split(5, 4)  # torch.chunk would leave the last rank empty
