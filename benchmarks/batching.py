"""Speed of a training step under each packing of the data (coe.data.packing), and checks of the mask kernels.

    python benchmarks/batching.py --size paper --batch 64 --seq 512 --compile   # an H200
    python benchmarks/batching.py --size small --batch 8 --seq 256              # the CPU

Modes: "packed" (causal attention across documents), "documents" (document mask), "padded" (one document per
row); "+sdpa" forces SDPA with a dense (B, 1, S, S) mask where the device would take FlexAttention (CUDA).
Documents are random tokens with lengths drawn uniformly from --doc-len, made into rows by the library's
own make_sequences; tokens/s counts every position of a row, label tokens/s the positions with a label.

--check (CUDA): FlexAttention against SDPA with the dense mask on a document batch (float32 logits), SDPA's
output on fully masked rows (padding), host syncs while the masks are built, and recompilations of the
compiled layers from step to step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/train_step.py

from train_step import Timer

from coe import CoEConfig, CoEForCausalLM
from coe.data.packing import make_sequences
from coe.nn.attention import document_mask
from coe.nn.lm_loss import IGNORE_INDEX
from coe.train.config import TrainConfig
from coe.train.distributed import Parallel
from coe.train.trainer import build_optimizer, compile_layers, train_step

EOS = 0


def batches(args, vocab_size: int, packing: str, count: int) -> list[dict[str, torch.Tensor]]:
    """``count`` batches of ``args.batch`` rows of ``args.seq`` positions, from random documents."""
    rng = np.random.default_rng(0)
    low, high = args.doc_len
    lengths = rng.integers(low, high + 1, size=args.batch * count * (args.seq // low + 1))
    stream = np.concatenate([np.append(rng.integers(1, vocab_size, size=n), EOS) for n in lengths])
    sequences = make_sequences(stream.astype(np.int64), args.seq, packing=packing, eos_token_id=EOS)
    return [sequences.batch(np.arange(i * args.batch, (i + 1) * args.batch)) for i in range(count)]


def bench_steps(args, device: torch.device) -> list[dict]:
    amp = torch.bfloat16 if device.type == "cuda" else None
    rows = []
    for mode in args.modes:
        packing, *options = mode.split("+")
        config = CoEConfig.from_preset(args.preset, size=args.size)
        torch.manual_seed(0)
        with device:
            model = CoEForCausalLM(config).train()
        if args.compile:
            compile_layers(model)
        optimizer = build_optimizer(model, TrainConfig(), device)
        data = batches(args, config.vocab_size, packing, args.warmup + args.steps)
        times, losses = [], []
        dense = mock.patch("coe.modeling.use_flex_attention", lambda *a: False)
        with dense if "sdpa" in options else contextlib.nullcontext():
            for i, batch in enumerate(data):
                if i == args.warmup and args.compile:
                    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
                with Timer(device) as t:
                    result = train_step(model, [batch], optimizer, Parallel(), amp=amp, grad_clip=1.0)
                times.append(t.ms)
                losses.append(result.lm_loss.item())
        ms = statistics.median(times[args.warmup :])
        labels = sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in data) / len(data)
        row = dict(
            mode=mode,
            ms=ms,
            tokens_per_s=args.batch * args.seq / ms * 1e3,
            label_tokens_per_s=labels / ms * 1e3,
            first_loss=losses[0],
            peak_gib=torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        )
        if args.compile:
            row["new_graphs_after_warmup"] = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs
        rows.append(row)
        print(json.dumps(row), flush=True)
        del model, optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
    return rows


def check(args, device: torch.device) -> dict:
    out = {}
    config = CoEConfig.from_preset(args.preset, size="small")
    torch.manual_seed(0)
    model = CoEForCausalLM(config).to(device).train()
    batch = {k: v.to(device) for k, v in batches(args, config.vocab_size, "documents", 1)[0].items()}
    with torch.no_grad():
        flex = model(batch["input_ids"], document_ids=batch["document_ids"]).logits
        with mock.patch("coe.modeling.use_flex_attention", lambda *a: False):
            dense = model(batch["input_ids"], document_ids=batch["document_ids"]).logits
    out["flex_vs_dense_max_rel"] = ((flex - dense).abs().max() / dense.abs().max()).item()

    q = torch.randn(2, 4, 256, 64, device=device, dtype=torch.bfloat16, requires_grad=True)
    ids = torch.zeros(2, 256, dtype=torch.long, device=device)
    ids[:, 200:] = -1  # padding: rows with nothing to attend to
    o = torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=document_mask(ids, flex=False))
    o.sum().backward()
    out["sdpa_padding_rows_zero"] = bool((o[:, :, 200:] == 0).all())
    out["sdpa_nan"] = bool(o.isnan().any() or q.grad.isnan().any())

    for flex in (True, False):  # compiled first: compilation itself may synchronise
        document_mask(batch["document_ids"], flex=flex)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for flex in (True, False):
            document_mask(batch["document_ids"], flex=flex)
        out["masks_without_host_sync"] = True
    except RuntimeError as e:
        out["masks_without_host_sync"] = f"no: {e}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
    print(json.dumps(out), flush=True)
    return out


def median_ms(args, device: torch.device, fn) -> float:
    times = []
    for _ in range(args.warmup + args.steps):
        with Timer(device) as t:
            fn()
        times.append(t.ms)
    return statistics.median(times[args.warmup :])


def bench_attention(args, device: torch.device) -> list[dict]:
    """Attention alone (forward + backward) at the preset's head shapes on document batches of
    ``args.batch * args.seq`` tokens for each length in ``args.attention_seqs``: SDPA causal (no documents,
    the floor), SDPA with the dense mask, FlexAttention; the masks' building timed apart (the block mask also
    with create_block_mask compiled)."""
    rows = []
    for S in args.attention_seqs:
        rows.append(attention_row(args, device, S))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def attention_row(args, device: torch.device, S: int) -> dict:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    config = CoEConfig.from_preset(args.preset, size=args.size)
    H, E, Ev = (
        config.num_attention_heads,
        config.qk_nope_head_dim + config.qk_rope_head_dim,
        config.v_head_dim,
    )
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    B = args.batch * args.seq // S
    rows_args = argparse.Namespace(**{**vars(args), "batch": B, "seq": S})
    ids = batches(rows_args, config.vocab_size, "documents", 1)[0]["document_ids"].to(device)
    q, k = (torch.randn(B, H, S, E, device=device, dtype=dtype, requires_grad=True) for _ in range(2))
    v = torch.randn(B, H, S, Ev, device=device, dtype=dtype, requires_grad=True)
    grad = torch.randn(B, H, S, Ev, device=device, dtype=dtype)
    sdpa, flex = F.scaled_dot_product_attention, torch.compile(flex_attention, dynamic=False)
    compiled_block_mask = torch.compile(create_block_mask)

    def same_document(b, h, qi, ki):
        return (ki <= qi) & (ids[b, qi] == ids[b, ki]) & (ids[b, qi] >= 0)

    dense = document_mask(ids, flex=False)
    row = {
        "seq": S,
        "batch": B,
        "build_dense_ms": median_ms(args, device, lambda: document_mask(ids, flex=False)),
        "build_block_ms": median_ms(args, device, lambda: document_mask(ids, flex=True)),
        "build_block_compiled_ms": median_ms(
            args, device, lambda: compiled_block_mask(same_document, B, None, S, S, device=device)
        ),
        "sdpa_causal_fwd_bwd_ms": median_ms(
            args, device, lambda: sdpa(q, k, v, is_causal=True).backward(grad)
        ),
        "sdpa_dense_fwd_bwd_ms": median_ms(
            args, device, lambda: sdpa(q, k, v, attn_mask=dense).backward(grad)
        ),
    }
    if device.type == "cuda":  # FlexAttention has no CPU backward
        block = document_mask(ids, flex=True)
        row["flex_fwd_bwd_ms"] = median_ms(
            args, device, lambda: flex(q, k, v, block_mask=block).backward(grad)
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="coe-2-4-64")
    parser.add_argument("--size", default="small")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--doc-len", type=lambda s: tuple(map(int, s.split(","))), default=(100, 400))
    parser.add_argument("--modes", nargs="*", default=["packed", "documents", "padded"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--attention-seqs", type=int, nargs="*", default=[], help="time the attention alone")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    results["torch"] = torch.__version__
    if args.check and device.type == "cuda":
        results["check"] = check(args, device)
    if args.attention_seqs:
        results["attention"] = bench_attention(args, device)
    if args.modes:
        results["steps"] = bench_steps(args, device)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
