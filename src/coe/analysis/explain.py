"""The routing path of every token of a text: for each MoE layer and iteration, the chosen experts and their
gate weights. As records (one per token, the JSONL audit log), a rich table for the terminal and an HTML
page with a token x (layer, iteration) grid.

Shapes: L MoE layers, C iterations, T tokens, K experts chosen per token.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from coe.analysis.html import escape, page
from coe.analysis.recorder import RoutingRecord, RoutingRecorder
from coe.evaluate import eval_mode

GOLDEN_ANGLE = 137.508  # degrees: consecutive expert ids get far-apart hues


@dataclass
class Step:
    """The routing of one token at one (layer, iteration)."""

    layer: int  # decoder-layer index
    iteration: int  # 1-based
    experts: list[int]  # the K chosen experts, largest gate weight first
    weights: list[float]  # their gate weights


@dataclass
class TokenRoute:
    """One token and its routing path through every MoE layer and iteration."""

    position: int
    token_id: int
    token: str  # the token's own decoded text
    steps: list[Step]  # layer-major, iteration-minor


def token_routes(record: RoutingRecord, tokenizer) -> list[TokenRoute]:
    """One TokenRoute per recorded token (in recorded order), decoded with ``tokenizer``."""
    C, T = record.num_iterations, record.num_tokens
    order = record.weights.argsort(dim=-1, descending=True, stable=True)  # (L, C, T, K) largest weight first
    experts = record.experts.gather(-1, order).permute(2, 0, 1, 3).tolist()  # (T, L, C, K)
    weights = record.weights.gather(-1, order).permute(2, 0, 1, 3).tolist()
    texts = tokenizer.batch_decode([[max(int(i), 0)] for i in record.token_ids])
    return [
        TokenRoute(
            position=int(record.positions[n]),
            token_id=int(record.token_ids[n]),
            token=texts[n],
            steps=[
                Step(layer, t + 1, experts[n][i][t], weights[n][i][t])
                for i, layer in enumerate(record.layers)
                for t in range(C)
            ],
        )
        for n in range(T)
    ]


@torch.no_grad()
def explain(model, tokenizer, text: str) -> list[TokenRoute]:
    """The routing path of every token of ``text`` through ``model`` (one forward, in eval mode)."""
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
    if ids.numel() == 0:
        raise ValueError("text is empty: there are no tokens to explain")
    with eval_mode(model), RoutingRecorder(model, max_tokens=None) as recorder:
        model(ids.to(next(model.parameters()).device), use_cache=False)
    return token_routes(recorder.record(), tokenizer)


def to_records(routes: list[TokenRoute]) -> list[dict[str, Any]]:
    """Plain dicts, one per token: position, token_id, token, steps [{layer, iteration, experts, weights}]."""
    return [asdict(r) for r in routes]


def write_jsonl(routes: list[TokenRoute], path: str | Path) -> Path:
    """The audit log: one JSON object per token and line (see :func:`to_records`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in to_records(routes)))
    return path


def visible(token: str) -> str:
    """A token's text with its whitespace made visible (space as a middle dot, newline and tab as arrows)."""
    return token.replace(" ", "\u00b7").replace("\n", "\u21b5").replace("\t", "\u2192") or "\u2205"


def _columns(routes: list[TokenRoute]) -> list[tuple[int, int]]:
    return [(s.layer, s.iteration) for s in routes[0].steps] if routes else []


def routes_table(routes: list[TokenRoute], *, digits: int = 3):
    """A rich Table: one row per token, one column per (layer, iteration) whose cell lists the chosen experts
    as ``expert .weight``, one per line, largest weight first. Cells fold rather than cut when narrow."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=True)
    table.add_column("pos", justify="right")
    table.add_column("token", overflow="fold")
    for layer, t in _columns(routes):
        table.add_column(f"L{layer}\nit{t}", overflow="fold")
    width = max((len(str(e)) for r in routes for s in r.steps for e in s.experts), default=1)

    def cell(step: Step) -> str:
        return "\n".join(
            f"{e:>{width}} {f'{w:.{digits}f}'.removeprefix('0')}"
            for e, w in zip(step.experts, step.weights, strict=True)
        )

    for r in routes:
        cells = [cell(s) for s in r.steps]
        table.add_row(str(r.position), Text(repr(r.token)[1:-1]), *cells)  # Text: "[b]" is not markup
    return table


def _chip(expert: int, weight: float, top: float) -> str:
    hue = (expert * GOLDEN_ANGLE) % 360
    alpha = 0.25 + 0.75 * weight / top if top > 0 else 1.0  # stronger colour for a larger gate weight
    return (
        f"<span class='e' style='background:hsla({hue:.0f},70%,60%,{alpha:.2f})' "
        f"title='expert {expert}, weight {weight:.4f}'>{expert}<small>{weight:.2f}</small></span>"
    )


def render_html(routes: list[TokenRoute], *, title: str = "Routing paths") -> str:
    """A page with the text (tokens outlined) and the token x (layer, iteration) grid of chosen experts,
    each shown as its id and gate weight, coloured by expert."""
    columns = _columns(routes)
    head = "".join(f"<th>layer {layer}<br>iteration {t}</th>" for layer, t in columns)
    rows = []
    for r in routes:
        cells = "".join(
            "<td>"
            + "".join(_chip(e, w, max(s.weights)) for e, w in zip(s.experts, s.weights, strict=True))
            + "</td>"
            for s in r.steps
        )
        rows.append(
            f"<tr><td>{r.position}</td><td class='t'>{escape(visible(r.token))}</td>"
            f"<td>{r.token_id}</td>{cells}</tr>"
        )
    text = "".join(
        f"<span class='tok' title='position {r.position}'>{escape(r.token)}</span>" for r in routes
    )
    return page(
        title,
        f"<p>{len(routes)} tokens. Each cell lists the experts chosen at that layer and "
        "iteration, largest gate weight first, as <i>expert</i><small> weight</small>; a colour is "
        "an expert (the same in every column), its strength the weight.</p>"
        f"<div class='text'>{text}</div><h2>Routing grid</h2>"
        f"<table class='grid'><tr><th>pos</th><th>token</th><th>id</th>{head}</tr>{''.join(rows)}"
        "</table>",
    )


def write_html(routes: list[TokenRoute], path: str | Path, *, title: str = "Routing paths") -> Path:
    """The page of :func:`render_html` written to ``path`` (its folder made if need be); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(routes, title=title))
    return path
