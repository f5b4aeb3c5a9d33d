"""A routing report directory: ``analysis.json`` (every number), PNG figures and ``report.html`` showing them
together; and :func:`analyze_checkpoint`, which runs a checkpoint over validation tokens and writes one.

    out_dir/analysis.json   the summary (coe.analysis.summary.summarize) plus where it came from
    out_dir/<figure>.png    load, coselection, reselection, entropy_gates, specialisation, paths
    out_dir/report.html     tables of the headline numbers and the figures, self-contained but for the PNGs
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from coe.analysis.figures import FIGURES
from coe.analysis.html import escape, page, table
from coe.analysis.recorder import collect_routing
from coe.analysis.summary import summarize
from coe.analysis.tokens import token_kinds

REPORT_FILE, JSON_FILE = "report.html", "analysis.json"

CAPTIONS = {
    "load": "Tokens per expert for each (layer, iteration): max/mean (1 = balanced), coefficient of "
    "variation and experts no token chose.",
    "coselection": "Iteration t -> t+1: left, the probability that a token which chose expert i in "
    "iteration t chooses expert j in iteration t+1 (each row sums to K); right, the same as "
    "the ratio to what independent choices with the same loads would give, with a "
    "pseudo-count of 1 token so that sparse cells do not dominate (red: chosen together more "
    "often than independently, up to 8x; white: as often or less). Columns are ordered by "
    "hierarchical clustering of who chooses them, rows by where their most frequent successor "
    "sits, and the tick labels are expert ids: a diagonal means experts hand their tokens on "
    "to preferred successors.",
    "reselection": "Left: the share of chosen experts that are chosen again in the next iteration; right: "
    "the share of tokens that choose again at least one of their experts. Grey: the rate "
    "expected if the two iterations chose independently with their observed loads.",
    "entropy_gates": "Left: entropy of each token's router scores (log N is uniform, 0 is one expert); "
    "right: the gate weights of the chosen experts.",
    "specialisation": "Which experts each kind of token goes to, as the ratio of (kind, expert) pairs to "
    "what independence would give (red: the expert gets more of this kind than its share).",
    "paths": "Distinct routing paths (the ordered sequence of expert sets over the iterations) actually "
    "used, their effective number (exp of the path entropy) and the distinct expert sets with order "
    "dropped, against the tokens analysed.",
}


def _fmt(value: Any) -> str:
    """A table cell's text: numbers to a few significant digits, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1e5 or (value and abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"
    if isinstance(value, int) and abs(value) >= 1e6:
        return f"{value:.3g}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return table(header, [[_fmt(c) for c in row] for row in rows])


def render_html(summary: dict[str, Any], figures: dict[str, str], *, title: str) -> str:
    """The report page: the model and data, notes, headline tables, then each figure with its caption.
    figures: figure name -> file name relative to the page."""
    m, paths = summary["model"], summary["expert_paths"]
    intro = (
        f"<p>{summary['tokens']:,} tokens; MoE layers {m['layers']}; C = {m['iterations']} "
        f"iteration(s), N = {m['experts']} routed experts, K = {m['top_k']} chosen per iteration. "
        f"Possible paths through a layer: C(N,K)^C = {escape(_fmt(paths['possible']))}; matched MoE "
        f"choosing K&middot;C at once: C(N,KC) = {escape(_fmt(paths['possible_moe_matched']))}. Every "
        f"number is in <a href='{JSON_FILE}'>{JSON_FILE}</a>.</p>"
    )
    parts = [intro]
    parts += [f"<p class='note'>{escape(note)}</p>" for note in summary["notes"]]
    parts.append("<h2>Per layer and iteration</h2>")
    parts.append(
        _table(
            [
                "layer",
                "iteration",
                "max/mean load",
                "load CV",
                "unused experts",
                "router entropy (nats)",
                "mean gate weight",
                "top-1 gate share",
            ],
            [
                [
                    layer["layer"],
                    it["iteration"],
                    it["load"]["max_over_mean"],
                    it["load"]["cv"],
                    len(it["load"]["unused_experts"]),
                    it["router_entropy"]["mean"],
                    it["gate_weights"]["mean"],
                    it["gate_weights"]["top1_share"],
                ]
                for layer in summary["layers"]
                for it in layer["iterations"]
            ],
        )
    )
    transitions = [
        [
            layer["layer"],
            f"{t + 1} -> {t + 2}",
            tr["expert_reselection"],
            tr["expert_reselection_expected"],
            tr["token_reselection"],
            tr["token_reselection_expected"],
        ]
        for layer in summary["layers"]
        for t, tr in enumerate(layer["transitions"])
    ]
    if transitions:
        parts.append("<h2>Re-selection between iterations</h2>")
        parts.append(
            _table(
                [
                    "layer",
                    "iterations",
                    "experts chosen again",
                    "expected if independent",
                    "tokens re-choosing any",
                    "expected if independent",
                ],
                transitions,
            )
        )
    parts.append("<h2>Routing paths</h2>")
    parts.append(
        _table(
            [
                "layer",
                "distinct paths",
                "effective paths",
                "distinct expert sets",
                "observable at most",
                "possible",
            ],
            [
                [
                    layer["layer"],
                    layer["paths"]["distinct"],
                    layer["paths"]["effective"],
                    layer["paths"]["distinct_expert_sets"],
                    layer["paths"]["observable_at_most"],
                    layer["paths"]["possible"],
                ]
                for layer in summary["layers"]
            ],
        )
    )
    parts.append("<h2>Figures</h2>")
    for name, file in figures.items():
        parts.append(
            f"<figure><img src='{escape(file)}' alt='{escape(name)}'>"
            f"<figcaption>{escape(CAPTIONS[name])}</figcaption></figure>"
        )
    return page(title, "\n".join(parts))


def write_report(
    out_dir: str | Path,
    summary: dict[str, Any],
    *,
    title: str = "Routing analysis",
    figures: Sequence[str] | None = None,
    source: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> Path:
    """Write analysis.json, the figures (all of :data:`coe.analysis.figures.FIGURES`, or those named) and
    report.html into ``out_dir``. ``source`` (checkpoint, data, ...) is saved beside the summary.
    ``progress``: a progress bar over the figures (None: on a terminal only). Returns the path of
    report.html."""
    from tqdm.auto import tqdm

    unknown = sorted(set(figures or ()) - set(FIGURES))
    if unknown:
        raise ValueError(f"figures {unknown} are unknown: choose from {', '.join(FIGURES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # One line, no indentation: the co-selection matrices would otherwise put every count on its own line.
    (out / JSON_FILE).write_text(json.dumps(_finite({"source": source or {}, **summary}), allow_nan=False))
    drawn = {}
    names = tqdm(
        list(figures or FIGURES),
        desc="figures",
        unit="figure",
        disable=None if progress is None else not progress,
    )
    for name in names:
        path = FIGURES[name](summary, out / f"{name}.png")
        if path is not None:
            drawn[name] = path.name
    (out / REPORT_FILE).write_text(render_html(summary, drawn, title=title))
    return out / REPORT_FILE


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None: JSON has no NaN (a model with broken
    weights still gets a valid file)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def analyze_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    data=None,
    tokens: int = 4096,
    seq_len: int = 256,
    batch_size: int = 8,
    device: str = "cpu",
    figures: Sequence[str] | None = None,
    progress: bool | None = None,
    description: str = "routing",
) -> Path:
    """Run a checkpoint over ``tokens`` validation tokens, record its routing and write the report.

    Args:
        checkpoint: a model directory (config.json, weights, tokenizer files), or a checkpoint ``coe train``
            wrote (``step-N``, whose ``model/`` is read)
        out_dir: the report directory
        data: a DataSpec whose validation split is used (None: the synthetic math generator's); the training
            split is never generated
        tokens: tokens to analyse (fewer when the validation split is shorter)
        seq_len: tokens per sequence fed to the model
        batch_size: sequences per forward
        device: where the model runs (a name such as "cpu" or a torch.device)
        figures: figure names to draw (None: all)
        progress: progress bars over the forwards and the figures (None: on a terminal only)
        description: the label of the forwards' progress bar

    Returns the path of report.html.
    """
    import torch
    from tqdm.auto import tqdm

    from coe.data import DataSpec, load_splits, load_tokenizer, pack_documents
    from coe.layout import weights_dir
    from coe.modeling import CoEForCausalLM

    if tokens < 1 or seq_len < 1 or batch_size < 1:
        raise ValueError(f"tokens={tokens}, seq_len={seq_len} and batch_size={batch_size} must be positive")
    data = replace(data or DataSpec(), synthetic_train=1)  # only the validation split is read
    checkpoint = weights_dir(Path(checkpoint))
    model = CoEForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).to(device)
    tokenizer = load_tokenizer(checkpoint)
    validation = load_splits(data).validation
    if not validation:
        raise ValueError(f"the validation split of {data.source!r} is empty: there is nothing to analyse")
    # Padding would be recorded as routed text: a run trained on padded rows is analysed on its documents
    # packed without padding, attention within each document (what its real tokens saw).
    packing = "packed" if data.packing == "packed" else "documents"
    dataset = pack_documents(tokenizer, validation, min(seq_len, tokens), packing=packing)
    sequences = min(len(dataset), -(-tokens // dataset.seq_len))
    starts = range(0, sequences, batch_size)
    bar = tqdm(
        total=len(starts), desc=description, unit="batch", disable=None if progress is None else not progress
    )

    def batches():
        for s in starts:
            bar.update()  # counted as it goes in: the batch that fills the record ends the loop
            yield dataset.batch(range(s, min(s + batch_size, sequences)))

    with bar:
        record = collect_routing(model, batches(), max_tokens=tokens)
    summary = summarize(record, token_kinds(record.token_ids, tokenizer))
    source = {
        "checkpoint": str(checkpoint),
        "data": str(data.val_source or data.source),
        "split": "validation",
        "seq_len": dataset.seq_len,
    }
    return write_report(
        out_dir,
        summary,
        title=f"Routing analysis: {checkpoint}",
        figures=figures,
        source=source,
        progress=progress,
    )
