"""N SwiGLU experts as stacked weights, with several backends behind one interface.

Shapes: T tokens, D hidden, F expert intermediate, N experts, K choices per token, M = T * K.
Weights: ``gate_up_proj`` (N, 2F, D) holding gate rows then up rows, ``down_proj`` (N, D, F), the layout of
transformers' DeepseekV2 experts.

- "loop": a plain Python loop over experts with boolean indexing. Slow and host-synchronising; the ground
  truth that tests compare against.
- "grouped": sort token copies by expert, one grouped matmul per projection, un-permute and a weighted sum
  over each token's K copies. No host synchronisation. On the CPU the routing weight scales the F-wide hidden
  state and the copies are added into their tokens in one pass (``sum_copies``), which saves four passes over
  the (M, D) copies that the gather-only combine makes: a layer's forward + backward at the CPU experiment's
  sizes on one thread, 53 instead of 68 ms for MoE(8/64), 56 instead of 60 ms for CoE-2(4/64)
  (benchmarks/cpu_main_job.py, fastest of 9, 2026-12-02). The matmuls stay grouped: at those sizes (2048
  tokens, 63 experts of 128 x 64) torch's CPU grouped_mm runs as fast as one batched matmul over padded groups
  (~100 GFLOP/s on a core, measured), so padding buys nothing, and it costs up to N times the copies when the
  routing is unbalanced (3.4x slower at a max / mean load of 3.8).
- "gather": for the few tokens of a decoding step. Each of the M token copies gathers its expert's weights
  (``index_select`` on the stacked weights) and two batched matmuls run over the copies; no sort, no grouped
  matmul over all N experts (most of them empty at M of a few dozen). It reads M expert weights instead of
  at most N, so it loses as M grows.
- "adaptive" (the default): per call, from shapes, device, dtype and grad mode alone (no host
  synchronisation), the backend measured fastest there. "gather" up to :data:`GATHER_MAX_COPIES` token copies
  T * K (on the CPU only while those copies' weights stay within :data:`GATHER_MAX_BYTES_CPU`); on a GPU, for
  inference in a 16-bit dtype, "dense" up to :data:`DENSE_MAX_TOKENS` tokens once the copies are expected to
  reach at least :data:`DENSE_MIN_REACHED` of the experts; "grouped" otherwise, which is where training
  batches land. With expert parallelism it is "grouped".
- "dense": every expert on every token, each output weighted by the token's routing weight for that expert
  (0 where not chosen): one plain matmul over all experts' gate and up rows, one batched matmul over their
  down projections. N / K times the FLOPs of the chosen experts, but each weight is read once in one
  well-shaped pass and nothing is sorted: for decoding batches of a few dozen tokens, whose copies reach
  nearly every expert anyway (4 choices of 63 by 64 tokens reach 98.5% of them), on a GPU where such a step
  is bound by reading the weights. On a CPU, which is compute-bound there, it is slower than "grouped".

With expert parallelism (``shard`` set by :func:`coe.nn.expert_parallel.shard_experts`) the grouped backend
holds only its rank's chunk of experts and exchanges token copies with the other ranks around the matmuls.
``shard_experts`` takes the grouped and adaptive backends (adaptive is grouped on a shard), and neither gather
nor dense ever runs with a shard set.

The weights are read only inside ``Experts.forward``: an adapter that reparametrises them for the duration of
the module's call (peft's LoRA with ``target_parameters=["experts.gate_up_proj", "experts.down_proj"]``)
reaches every backend. A CoE layer's C calls share one cast of the weights through ``cache``.

Under torch.compile and torch.export every backend traces without data-dependent shapes: the grouped matmul
falls back to :func:`tiled_grouped_mm` for the dtypes that torch's grouped_mm cannot trace (its tracing rule
takes bf16 only), and the loop runs every token through every expert with a zero weight where not chosen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from coe.config import ExpertBackend
from coe.nn.dispatch import combine, permute, sort_by_expert, sorted_weights, sum_copies
from coe.nn.expert_parallel import ExpertShard, local_tensor, return_to_senders, send_to_experts

# torch >= 2.10 exposes the public name; older releases only the private op (it also runs on the CPU).
_grouped_mm = getattr(F, "grouped_mm", None) or torch._grouped_mm


def tracing() -> bool:
    """Whether torch.compile or torch.export is tracing the caller."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def grouped_mm(x: torch.Tensor, w: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Row block e of x times w[e]. x: (M, I); w: (N, I, O); offsets: (N,) int32 cumulative -> (M, O).

    The kernels take float32, bfloat16 and float16 and need 16-byte-aligned row strides; sizes that are not
    (small test models) are zero-padded, which leaves the product unchanged. Shapes are static, so this costs
    nothing at paper sizes. float64 (checks), and any dtype but bf16 while tracing, take
    :func:`tiled_grouped_mm`.
    """
    if x.dtype == torch.float64 or (x.dtype != torch.bfloat16 and tracing()):
        return tiled_grouped_mm(x, w, offsets)
    align = 16 // x.element_size()
    I, O = w.shape[1], w.shape[2]
    pad_i, pad_o = -I % align, -O % align
    if pad_i or pad_o:
        x, w = F.pad(x, (0, pad_i)), F.pad(w, (0, pad_o, 0, pad_i))
        return _grouped_mm(x, w, offs=offsets)[:, :O]
    return _grouped_mm(x, w, offs=offsets)


def tiled_grouped_mm(x: torch.Tensor, w: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """:func:`grouped_mm` for any dtype and device, with static shapes: each expert's rows are padded to whole
    tiles of R rows, and one batched matmul multiplies every tile by its expert's weight. x: (M, I);
    w: (N, I, O); offsets: (N,) int32 cumulative -> (M, O).

    The number of tiles has a bound that depends on shapes only, sum_e ceil(M_e / R) <= (M + N (R - 1)) / R,
    so nothing synchronises with the host and tracing sees no data-dependent size. R is about M / 2N (a power
    of two up to 64): the padding then at most doubles the rows, and about 3N expert weights are gathered
    instead of one per row.
    """
    M, N = x.shape[0], w.shape[0]
    R = min(64, 1 << (max(1, M // (2 * N)).bit_length() - 1)) if isinstance(M, int) else 16
    tiles = (M + min(M, N) * (R - 1)) // R if isinstance(M, int) else (M + N * (R - 1)) // R
    ends = offsets.long()
    rows_e = torch.diff(ends, prepend=ends.new_zeros(1))  # (N,) rows of each expert
    tiles_e = (rows_e + R - 1) // R  # (N,)
    tile_ends = tiles_e.cumsum(0)  # (N,)
    row = torch.arange(M, device=x.device)
    expert = torch.searchsorted(ends, row, right=True)  # (M,) the expert of each row
    dest = (tile_ends - tiles_e)[expert] * R + row - (ends - rows_e)[expert]  # (M,) row in the tiled layout
    x_tiled = x.new_zeros(tiles * R, x.shape[1]).index_copy(0, dest, x)
    tile_expert = torch.searchsorted(tile_ends, torch.arange(tiles, device=x.device), right=True)
    w_tiled = w.index_select(0, tile_expert.clamp_max(N - 1))  # (tiles, I, O); unused tiles hold zero rows
    y = torch.bmm(x_tiled.view(tiles, R, -1), w_tiled)  # (tiles, R, O)
    return y.view(tiles * R, -1).index_select(0, dest)


GATHER_MAX_COPIES = 32
"""Most token copies M = T * K for which "adaptive" takes "gather" (inclusive).

One ``Experts.forward`` of the small preset's widths (63 experts, D 128, F 64), float32, inference mode, one
thread, random routing; ms, fastest of 20 (benchmarks/expert_decode.py; 2026-12-02, Intel Xeon, 2 cores
shared with other work, torch 2.13 CPU). CoE-like is one of a layer's C = 2 calls.

| shape | T | copies | gather ms | grouped ms | gather / grouped |
|---|---|---|---|---|---|
| MoE-like, K = 8 | 1 | 8 | 0.105 | 0.319 | 0.33 |
| MoE-like, K = 8 | 8 | 64 | 0.889 | 0.624 | 1.43 |
| MoE-like, K = 8 | 64 | 512 | 23.3 | 1.26 | 18.6 |
| MoE-like, K = 8 | 2048 | 16384 | 924 | 16.2 | 57 |
| CoE-like, K = 4 | 1 | 4 | 0.069 | 0.301 | 0.23 |
| CoE-like, K = 4 | 8 | 32 | 0.446 | 0.515 | 0.87 |
| CoE-like, K = 4 | 64 | 256 | 4.23 | 0.948 | 4.46 |
| CoE-like, K = 4 | 2048 | 8192 | 462 | 9.07 | 51 |

Gather reads one expert's weights per copy, grouped at most each expert once plus a fixed cost per call (on
the CPU torch's grouped_mm visits all N groups, empty ones too); in a finer sweep the two cross between 32
copies (gather / grouped 0.96 at K = 8, 0.90 at K = 4) and 64 (1.43 and 1.42), whatever K. On one H200
(paper widths D 1024, F 704, bfloat16, torch 2.11, 2026-12-03; table at :data:`DENSE_MAX_TOKENS`) gather /
grouped is 0.60 at 32 copies (K = 4) and 1.00 at 64 (K = 8), and gather beats dense at 32 copies (0.166
against 0.190 ms) but not at 64 (0.286 against 0.196): 32 is on the fast side on both machines.
"""

GATHER_MAX_BYTES_CPU = 4 * 2**20
"""On the CPU "adaptive" gathers only while the copies' expert weights (M times 3 * D * F elements in the
matmul dtype) stay within these bytes: gathering copies them. At the small preset's widths 32 float32 copies
are 3.1 MB (gather wins, table above); at paper widths one float32 expert is 8.7 MB, and gather loses at every
size, 2.2x at one token with K = 4 (35 MB) and 5.1x with K = 8 (2026-12-03, 2 threads, torch 2.13,
benchmarks/results/cpu-expert-dense-2026-12-03.txt). A GPU reads gathered weights at HBM speed: no such limit
there.
"""

DENSE_MAX_TOKENS = 128
"""Most tokens T for which "adaptive" takes "dense" on a GPU, above gather's copies (inclusive).

One ``Experts.forward`` at paper widths (63 experts, D 1024, F 704), bfloat16, inference mode, random routing;
ms, fastest of 20 (python benchmarks/expert_decode.py --device cuda --size paper --dtype bfloat16 --tokens
...; one NVIDIA H200, torch 2.11, 2026-12-03, two runs; benchmarks/results/h200-expert-dense-2026-12-03/,
rows up to 128 tokens from its dense.txt, above from adaptive.txt).

| shape | T | copies | gather ms | grouped ms | dense ms | dense / grouped |
|---|---|---|---|---|---|---|
| MoE-like, K = 8 | 8 | 64 | 0.286 | 0.285 | 0.196 | 0.69 |
| MoE-like, K = 8 | 32 | 256 | 0.724 | 0.320 | 0.200 | 0.63 |
| MoE-like, K = 8 | 64 | 512 | 1.301 | 0.318 | 0.199 | 0.62 |
| MoE-like, K = 8 | 128 | 1024 | 2.485 | 0.318 | 0.226 | 0.71 |
| MoE-like, K = 8 | 256 | 2048 | 4.968 | 0.458 | 0.403 | 0.88 |
| MoE-like, K = 8 | 512 | 4096 | 9.753 | 0.506 | 0.578 | 1.14 |
| CoE-like, K = 4 | 8 | 32 | 0.166 | 0.276 | 0.190 | 0.69 |
| CoE-like, K = 4 | 32 | 128 | 0.433 | 0.302 | 0.198 | 0.66 |
| CoE-like, K = 4 | 64 | 256 | 0.724 | 0.316 | 0.200 | 0.63 |
| CoE-like, K = 4 | 128 | 512 | 1.302 | 0.314 | 0.220 | 0.70 |
| CoE-like, K = 4 | 256 | 1024 | 2.482 | 0.300 | 0.319 | 1.06 |
| CoE-like, K = 4 | 512 | 2048 | 4.868 | 0.315 | 0.544 | 1.73 |

Dense reads every expert once in two plain matmuls where grouped reads nearly as many after a sort and a
grouped-GEMM set-up; its N / K times the FLOPs grow with T while grouped stays flat, and the two cross
between 128 and 256 tokens (the MoE-like grouped times of the second run sit 0.42-0.54 ms against 0.29-0.32 in
the first, so its 0.88 at 256 is uncertain). Dense's arithmetic intensity is about T FLOPs a weight byte in
bf16, whatever the widths, so the crossover in T should hold at other widths (the H200's bf16 ridge is about
200 FLOPs a byte); in float32 it would come far earlier, hence bf16 / fp16 only.
"""

DENSE_MIN_REACHED = 0.5
"""Least expected share of the N experts that a call's copies reach (:func:`expected_reach`) for "adaptive"
to take "dense" (which reads all N). In the table above dense beat grouped at 41%
(K = 4, T = 8 of 63 experts) and 66% (K = 8, T = 8); with many experts and few tokens (DeepSeek-V2's 160,
K = 6, T = 6 reach 20%) dense would read several times what grouped reads.
"""


def expected_reach(num_experts: int, k: int, tokens: int) -> float:
    """The expected share of ``num_experts`` experts reached by ``tokens`` tokens that choose ``k`` distinct
    experts each under uniform routing: 1 - (1 - k / N) ** T (each expert is missed by a token with
    probability 1 - k / N, independently across tokens)."""
    return 1 - (1 - k / num_experts) ** tokens


def gather(w: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """w[idx] for w (N, I, O), copied in w's memory order: matmul_weights' stacks are transposed views of the
    (N, O, I) parameters, and index_select through that view copies 2.6x slower on the CPU (63 experts of
    128 x 128, 64 rows, measured). bmm takes the transposed result as it is."""
    return w.transpose(1, 2).index_select(0, idx).transpose(1, 2)


def gathered_swiglu(
    x: torch.Tensor,
    topk_idx: torch.Tensor,
    topk_weight: torch.Tensor,
    w_gate_up: torch.Tensor,
    w_down: torch.Tensor,
) -> torch.Tensor:
    """``sum_k w_tk * expert_e(x_t)`` with each copy's expert weights gathered: x (T, D); topk_idx and
    topk_weight (T, K); w_gate_up (N, D, 2F), w_down (N, F, D) in x's dtype -> (T, D) float32 (or float64).

    The copies of a token are added in float32 at least, as ``sum_copies`` does."""
    T, K = topk_idx.shape
    idx_M = topk_idx.reshape(-1)
    x_M1D = x.unsqueeze(1).expand(T, K, x.shape[-1]).reshape(T * K, 1, -1)  # copy t*K+k of token t
    gate, up = torch.bmm(x_M1D, gather(w_gate_up, idx_M)).chunk(2, dim=-1)  # (M, 1, F) each
    hidden_M1F = F.silu(gate) * up * topk_weight.reshape(T * K, 1, 1).to(x.dtype)
    y_M1D = torch.bmm(hidden_M1F, gather(w_down, idx_M))
    return y_M1D.view(T, K, -1).sum(1, dtype=torch.promote_types(x.dtype, torch.float32))


def dense_swiglu(
    x: torch.Tensor,
    topk_idx: torch.Tensor,
    topk_weight: torch.Tensor,
    w_gate_up: torch.Tensor,
    w_down: torch.Tensor,
) -> torch.Tensor:
    """``sum_k w_tk * expert_e(x_t)`` with every expert run on every token: x (T, D); topk_idx and topk_weight
    (T, K); w_gate_up (N, D, 2F), w_down (N, F, D) in x's dtype, as :meth:`Experts.matmul_weights` gives
    them -> (T, D) float32 (or float64).

    An expert's output is weighted by the sum of the token's weights for it (repeats allowed, as in
    "gather") and is exactly 0 where the token did not choose it, even if the unchosen expert overflowed. Each
    expert's output is rounded to x's dtype, and the experts are added in float32 at least, as the other
    backends do."""
    T, D = x.shape
    N, F2 = w_gate_up.shape[0], w_gate_up.shape[2]
    # The parameters' own (N, 2F, D) layout, so that all experts' gate and up rows are one (N * 2F, D) matrix.
    gate_up = F.linear(x, w_gate_up.transpose(1, 2).reshape(N * F2, D)).view(T, N, F2)
    gate, up = gate_up.chunk(2, dim=-1)  # (T, N, F) each
    weight = topk_weight.new_zeros(T, N).scatter_add(1, topk_idx, topk_weight)  # (T, N)
    chosen = torch.zeros(T, N, dtype=torch.bool, device=x.device).scatter(1, topk_idx, True)
    hidden = torch.where(chosen.unsqueeze(-1), F.silu(gate) * up * weight.unsqueeze(-1).to(x.dtype), 0)
    y_NTD = torch.bmm(hidden.transpose(0, 1), w_down)  # (N, T, F) @ (N, F, D)
    return y_NTD.sum(0, dtype=torch.promote_types(x.dtype, torch.float32))


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    # grouped_mm is not on autocast's list: follow autocast by hand so bf16 training runs bf16 matmuls.
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def swiglu(
    xs: torch.Tensor,
    w_gate_up: torch.Tensor,
    w_down: torch.Tensor,
    offsets: torch.Tensor,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Each row block of xs through its expert: xs (M, D) grouped by ``offsets`` (N,); w_gate_up (N, D, 2F),
    w_down (N, F, D); ``scale`` (M, 1) multiplies each row's hidden state (the routing weight) -> (M, D)."""
    gate, up = grouped_mm(xs, w_gate_up, offsets).chunk(2, dim=-1)  # (M, F) each
    hidden = F.silu(gate) * up
    return grouped_mm(hidden if scale is None else hidden * scale, w_down, offsets)


class Experts(nn.Module):
    """``y_t = sum_k w_tk * down_e(silu(gate_e(x_t)) * up_e(x_t))`` over the chosen experts
    e = topk_idx[t, k]."""

    def __init__(self, num_experts: int, hidden_size: int, intermediate_size: int, backend: str = "adaptive"):
        super().__init__()
        self.num_experts, self.intermediate_size = num_experts, intermediate_size
        self.backend = ExpertBackend(backend)
        self.gate_up_proj = nn.Parameter(torch.empty(num_experts, 2 * intermediate_size, hidden_size))
        self.down_proj = nn.Parameter(torch.empty(num_experts, hidden_size, intermediate_size))
        self.shard: ExpertShard | None = None  # expert parallelism: this rank's experts and their group

    def forward(
        self,
        x: torch.Tensor,
        topk_idx: torch.Tensor,
        topk_weight: torch.Tensor,
        cache: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """x: (T, D); topk_idx, topk_weight: (T, K) -> (T, D) in x's dtype.

        ``cache``: a dict the caller keeps for the calls of one forward (a CoE layer's C iterations); the
        weights cast for the matmuls are made on the first call and reused by the others, so that they are
        cast, and saved for the backward, once. The weights must not change between those calls."""
        if self.backend == ExpertBackend.LOOP:
            return self._loop(x, topk_idx, topk_weight)
        dtype = compute_dtype(x)
        weights = self.matmul_weights(dtype, cache)
        path = self._path(x, topk_idx, dtype)
        if path in (ExpertBackend.GATHER, ExpertBackend.DENSE):
            swiglu_of = gathered_swiglu if path == ExpertBackend.GATHER else dense_swiglu
            return swiglu_of(x.to(dtype), topk_idx, topk_weight, *weights).to(x.dtype)
        return self._grouped(x, topk_idx, topk_weight, weights, add_copies=x.device.type == "cpu")

    def matmul_weights(
        self, dtype: torch.dtype, cache: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two weight stacks in the matmul dtype, laid out for grouped_mm: (N, D, 2F) and (N, F, D), from
        ``cache`` when it holds them. With expert parallelism: this rank's n experts, (n, D, 2F) and
        (n, F, D)."""
        if cache is not None and dtype in cache:
            return cache[dtype]
        # Expert-parallel weights are DTensors; the matmuls take this rank's chunk (differentiably).
        gate_up, down = local_tensor(self.gate_up_proj), local_tensor(self.down_proj)
        weights = gate_up.to(dtype).transpose(1, 2), down.to(dtype).transpose(1, 2)
        if cache is not None:
            cache[dtype] = weights
        return weights

    def _path(self, x: torch.Tensor, topk_idx: torch.Tensor, dtype: torch.dtype) -> ExpertBackend:
        """The backend that runs this call: ``self.backend``, or for "adaptive" the one chosen from the call's
        shapes, device, matmul dtype and grad mode (see the module's docstring): nothing that needs a host
        sync or guards on data."""
        if self.shard is not None:  # a rank holds only its experts: the grouped exchange
            return ExpertBackend.GROUPED
        if self.backend != ExpertBackend.ADAPTIVE:
            return self.backend
        tokens, copies = topk_idx.shape[0], topk_idx.numel()
        gpu = x.device.type != "cpu"
        expert_bytes = 3 * self.gate_up_proj.shape[-1] * self.intermediate_size * dtype.itemsize
        if copies <= GATHER_MAX_COPIES and (gpu or copies * expert_bytes <= GATHER_MAX_BYTES_CPU):
            return ExpertBackend.GATHER
        # Dense was measured on a GPU for inference in bf16 (a float32 matmul has a fraction of the FLOP rate,
        # and a backward N / K times the FLOPs), and pays off where the copies reach most experts anyway.
        if (
            gpu
            and tokens <= DENSE_MAX_TOKENS
            and expected_reach(self.num_experts, topk_idx.shape[1], tokens) >= DENSE_MIN_REACHED
            and dtype.itemsize == 2
            and not torch.is_grad_enabled()
        ):
            return ExpertBackend.DENSE
        return ExpertBackend.GROUPED

    def _grouped(
        self,
        x: torch.Tensor,
        topk_idx: torch.Tensor,
        topk_weight: torch.Tensor,
        weights: tuple[torch.Tensor, torch.Tensor] | None = None,
        add_copies: bool = False,
    ) -> torch.Tensor:
        """``add_copies``: the CPU's way back to tokens (weights inside the expert, ``sum_copies``); else the
        gather-only ``combine``. Both are exact; tests run both on the CPU."""
        dtype = compute_dtype(x)
        w_gate_up, w_down = weights if weights is not None else self.matmul_weights(dtype)
        dispatch = sort_by_expert(topk_idx, self.num_experts)
        xs = permute(x.to(dtype), dispatch)  # (M, D)
        if add_copies and self.shard is None:
            ws = sorted_weights(topk_weight.to(dtype), dispatch)  # (M, 1)
            ys = swiglu(xs, w_gate_up, w_down, dispatch.offsets, scale=ws)  # (M, D), weighted
            return sum_copies(ys, dispatch, x.shape[0]).to(x.dtype)
        if self.shard is None:
            ys = swiglu(xs, w_gate_up, w_down, dispatch.offsets)  # (M, D)
        else:
            xr, exchange = send_to_experts(xs, dispatch.offsets, self.shard)  # (R, D) for this rank's experts
            ys = return_to_senders(swiglu(xr, w_gate_up, w_down, exchange.offsets), exchange, self.shard)
        return combine(ys, topk_weight, dispatch).to(x.dtype)

    def _loop(self, x: torch.Tensor, topk_idx: torch.Tensor, topk_weight: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape, device=x.device, dtype=torch.promote_types(x.dtype, torch.float32))
        dense = tracing()  # boolean indexing has data-dependent sizes, which tracing cannot follow
        for e in range(self.num_experts):
            if dense:  # every token through expert e, weighted by its gate for e (0 where e was not chosen)
                weight = (topk_weight * (topk_idx == e)).sum(-1, keepdim=True)  # (T, 1)
                out += self._expert(x, e).to(out.dtype) * weight
                continue
            token, k = torch.where(topk_idx == e)
            if token.numel() == 0:
                continue
            y = self._expert(x[token], e)  # (tokens of e, D)
            out.index_add_(0, token, y.to(out.dtype) * topk_weight[token, k].unsqueeze(-1))
        return out.to(x.dtype)

    def _expert(self, x: torch.Tensor, e: int) -> torch.Tensor:
        """Expert e on every row of x: (T, D) -> (T, D)."""
        gate, up = F.linear(x, self.gate_up_proj[e]).chunk(2, dim=-1)
        return F.linear(F.silu(gate) * up, self.down_proj[e])
