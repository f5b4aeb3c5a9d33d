"""Data and expert parallelism on the CPU: gloo ranks under torchrun (``-m coe train``, as a user runs it)
must train to the numbers one process gets on the same global batches, and checkpoints must move between world
sizes.

Tolerance: 1e-5 relative on losses, gradient norms, router metrics and validation losses, 1e-5 of the largest
weight on the final weights. The ranks see the same sequences as the single process, split in two, so only the
summation order of float32 reductions differs (measured: about 1e-7).
"""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
import yaml

from coe import CoEConfig, CoEForCausalLM
from coe.data import DataSpec, TokenizerSpec
from coe.nn.losses import batch_balance_loss
from coe.train.checkpoint import DCP_DIR, MODEL_DIR, TRAINING_DIR, checkpoint_dirs, latest_checkpoint
from coe.train.config import (
    CheckpointSpec,
    EvalSpec,
    LoggingSpec,
    ModelSpec,
    OptimSpec,
    RuntimeSpec,
    TrainConfig,
)
from coe.train.data import prepare_run_data, restore_position
from coe.train.distributed import parallel, parallelize
from coe.train.metrics import read_metrics
from coe.train.trainer import train
from tests.conftest import rel_err

RTOL = 1e-5
MODEL = ModelSpec("coe-2-4-64", "tiny", {"num_hidden_layers": 2})
# Batch-wise balance loss and auxiliary-loss-free bias updates: the two places where ranks must pool counts.
POOLED = ModelSpec(
    "coe-2-4-64", "tiny", {"num_hidden_layers": 2, "balance_loss": "batch", "router_bias_update_rate": 0.01}
)


def tiny(root, name, **overrides) -> TrainConfig:
    # Constant learning rate without warm-up at 3 and at 6 steps, so a 3-step run resumed to 6 is one run.
    fields = dict(
        out_dir=str(root / name),
        model=MODEL,
        data=DataSpec(synthetic_train=300, synthetic_eval=30),
        optim=OptimSpec(lr=3e-3),
        steps=6,
        batch_size=4,
        micro_batch_size=2,
        seq_len=32,
        seed=3,
        eval=EvalSpec(every=3, batches=1, accuracy_problems=0),
        logging=LoggingSpec(every=1, progress=False, tensorboard=False),
        checkpoint=CheckpointSpec(every=3, keep_last=2, resume=overrides.pop("resume", False)),
        runtime=RuntimeSpec(device="cpu", expert_parallel=overrides.pop("expert_parallel", 1)),
    )
    return TrainConfig(**{**fields, **overrides})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(cfg: TrainConfig, nproc: int = 2) -> None:
    """``torchrun --nproc_per_node=2 -m coe train --config run.yaml`` on the CPU (gloo)."""
    path = f"{cfg.out_dir}.yaml"
    with open(path, "w") as f:
        yaml.safe_dump(json.loads(json.dumps(cfg.to_dict())), f)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "coe",
        "train",
        "--config",
        path,
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


def records(run_dir, split="train") -> dict[int, dict]:
    found = [m for m in read_metrics(run_dir) if m["split"] == split]
    assert len({m["step"] for m in found}) == len(found), "a step was logged twice (by more than one rank?)"
    return {m["step"]: m for m in found}


def assert_same_training(one, many, steps) -> None:
    """Train and validation numbers of run ``many`` equal those of ``one`` at ``steps`` (within RTOL)."""
    a, b = records(one), records(many)
    for step in steps:
        keys = [k for k in a[step] if k in ("loss", "aux_loss", "grad_norm") or k.startswith("router/")]
        assert len(keys) > 10 and set(keys) <= set(b[step])
        for key in keys:
            assert abs(a[step][key] - b[step][key]) <= RTOL * abs(a[step][key]) + 1e-9, (step, key)
    va, vb = records(one, "val"), records(many, "val")
    for step in set(va) & set(vb) & set(steps):
        assert abs(va[step]["loss"] - vb[step]["loss"]) <= RTOL * va[step]["loss"], step


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    return CoEForCausalLM.from_pretrained(latest_checkpoint(run_dir) / MODEL_DIR).state_dict()


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Every tensor equal to RTOL in norm. Not elementwise: AdamW moves a parameter by about lr whatever the
    size of its gradient, so a row whose gradient is near zero can turn a rounding-sized difference of the
    reduction order into a visible one in that row alone (seen: two LM-head rows, 2.4e-5 of the tensor's
    largest weight after 4 steps, the whole tensor 8.8e-7 in norm)."""
    return a.keys() == b.keys() and all((b[k] - a[k]).norm() <= RTOL * a[k].norm() for k in a)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def reference(root):
    """One process, six steps: what every parallel layout must reproduce."""
    return train(tiny(root, "one-process")).run_dir


def test_data_parallel_equals_one_process(root, reference):
    cfg = tiny(root, "fsdp")
    torchrun(cfg)
    assert_same_training(reference, cfg.out_dir, range(1, 7))
    a, b = final_weights(reference), final_weights(cfg.out_dir)
    assert same_weights(a, b)
    summary = json.loads((root / "fsdp" / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["steps"] == 6
    newest = latest_checkpoint(cfg.out_dir)
    assert (newest / TRAINING_DIR / DCP_DIR / "__1_0.distcp").is_file()  # each rank wrote its shard
    assert (newest / MODEL_DIR / "model.safetensors").is_file()  # rank 0 gathered the whole model


def test_expert_parallel_equals_one_process(root):
    # Four ranks as a 2 x 2 ("dp", "ep") mesh: experts split over "ep", their gradients summed over "dp".
    # (Two ranks, both "ep", train in test_save_on_two_ranks_resume_on_one_and_back.)
    batches = dict(batch_size=8, micro_batch_size=4, steps=4)
    one = train(tiny(root, "pooled-one-process", model=POOLED, **batches)).run_dir
    cfg = tiny(root, "ep", model=POOLED, expert_parallel=2, **batches)
    torchrun(cfg, nproc=4)
    assert_same_training(one, cfg.out_dir, range(1, 5))
    a, b = final_weights(one), final_weights(cfg.out_dir)  # the experts gathered from both ranks
    assert same_weights(a, b)
    bias = "model.layers.0.mlp.routers.0.expert_bias"
    assert a[bias].abs().sum() > 0 and torch.equal(a[bias], b[bias])  # the same global loads moved them


def test_save_on_two_ranks_resume_on_one_and_back(root, reference):
    # Two ranks with expert parallelism write 3 steps; one process continues to 6.
    torchrun(tiny(root, "two-then-one", steps=3, expert_parallel=2))
    assert [p.name for p in checkpoint_dirs(root / "two-then-one")] == ["step-00000003"]
    train(tiny(root, "two-then-one", resume=True))
    assert_same_training(reference, root / "two-then-one", range(1, 7))

    # One process writes 3 steps; two ranks continue to 6.
    train(tiny(root, "one-then-two", steps=3))
    torchrun(tiny(root, "one-then-two", resume=True))
    assert_same_training(reference, root / "one-then-two", range(1, 7))


def _gradients_worker(rank: int, port: int, out: dict) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="4", LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)

    def build() -> CoEForCausalLM:
        torch.manual_seed(0)
        model = CoEForCausalLM(CoEConfig.from_preset("coe-2-4-64", "tiny", num_hidden_layers=2))
        with torch.no_grad():  # large experts, so that their gradients weigh in the norm
            for chain in model.chains():
                chain.experts.gate_up_proj.mul_(30)
                chain.experts.down_proj.mul_(30)
        return model

    ids = torch.randint(0, 500, (8, 16), generator=torch.Generator().manual_seed(1))  # the global batch
    ref = build()
    ref(ids, shift_labels=ids, use_cache=False).loss.backward()
    ref_norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 1e9)
    with parallel(torch.device("cpu"), expert_parallel=2) as par:
        model = build()
        parallelize(model, par)
        mine = ids[2 * rank : 2 * rank + 2]
        model(mine, shift_labels=mine, use_cache=False).loss.backward()
        par.finish_gradients(model)
        norm = par.clip_grad_norm_(model, 1e9)
        grads = {name: p.grad.full_tensor() for name, p in model.named_parameters()}
    ref_grads = dict(ref.named_parameters())
    out[rank] = (
        norm.item() / ref_norm.item() - 1,
        max(rel_err(grads[name], ref_grads[name].grad) for name in grads),
    )


def test_gradients_and_norm_on_a_2x2_mesh():
    """Four ranks, ("dp", "ep") = (2, 2): every gradient and the clipped norm equal one process's on the
    global batch (expert gradients summed over "dp", the norm counting each expert shard once)."""
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_gradients_worker, args=(free_port(), out), nprocs=4)
        out = dict(out)
    for rank in range(4):
        norm_err, grad_err = out[rank]
        assert abs(norm_err) < RTOL and grad_err < RTOL, (rank, norm_err, grad_err)


def test_batch_balance_loss_over_ranks_is_the_batch_loss():
    scores = torch.rand(12, 6).softmax(-1)
    topk = scores.topk(2, dim=-1).indices
    whole = batch_balance_loss(scores=scores, topk_idx=topk)
    counts = torch.zeros(6).scatter_add_(0, topk.flatten(), torch.ones(24))  # the ranks' all-reduce
    halves = [
        batch_balance_loss(scores=s, topk_idx=i, counts=counts)
        for s, i in zip(scores.split(6), topk.split(6), strict=True)
    ]
    assert torch.allclose(sum(halves) / 2, whole, rtol=1e-6)
    assert not torch.allclose(
        sum(
            batch_balance_loss(scores=s, topk_idx=i)
            for s, i in zip(scores.split(6), topk.split(6), strict=True)
        )
        / 2,
        whole,
        rtol=1e-6,
    )


def test_data_position_moves_between_world_sizes(tmp_path):
    kwargs = dict(
        run_dir=tmp_path,
        seq_len=32,
        batch_size=4,
        seed=0,
        tokenizer=TokenizerSpec(vocab_size=300),
        eval_batches=1,
        accuracy_problems=0,
    )
    spec = DataSpec(synthetic_train=200, synthetic_eval=20)
    one = prepare_run_data(spec, micro_batch_size=2, **kwargs)
    kwargs["tokenizer"] = TokenizerSpec(path=str(tmp_path / "tokenizer"))
    ranks = [prepare_run_data(spec, micro_batch_size=2, rank=r, world_size=2, **kwargs) for r in (0, 1)]
    for _ in range(3):
        whole = next(one.train)["input_ids"]
        halves = [next(r.train)["input_ids"] for r in ranks]
        assert torch.equal(torch.cat(halves), whole)  # no overlap, no gap
    restore_position(one.train, ranks[0].train.state_dict())  # saved on two ranks, resumed on one
    assert one.train.state_dict()["index"] == ranks[0].train.state_dict()["index"]
    other = prepare_run_data(spec, micro_batch_size=4, **kwargs)
    with pytest.raises(ValueError, match="micro-batches of 2 sequences over all ranks, this run reads 4"):
        restore_position(other.train, ranks[0].train.state_dict())
    with pytest.raises(ValueError, match=r"micro_batch_size=3 .* multiple of the number of ranks"):
        prepare_run_data(spec, micro_batch_size=3, rank=0, world_size=2, **{**kwargs, "batch_size": 3})


def test_config_and_single_process_checks(tmp_path):
    with pytest.raises(ValueError, match=r"runtime.expert_parallel=0 is invalid: must be a positive integer"):
        RuntimeSpec(expert_parallel=0)
    with pytest.raises(ValueError, match=r"expert_parallel=2 must divide the number of ranks \(1\)"):
        train(tiny(tmp_path, "ep-alone", expert_parallel=2))
