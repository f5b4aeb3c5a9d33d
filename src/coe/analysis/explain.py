"""The routing path of every token of a text: for each MoE layer and iteration, the chosen experts and their
gate weights. As records (one per token, the JSONL audit log), a rich table for the terminal and an HTML
page with a token x (layer, iteration) grid.

Shapes: L MoE layers, C iterations, T tokens, K experts chosen per token.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from coe.analysis.html import escape, page
from coe.analysis.recorder import RoutingRecord, RoutingRecorder
from coe.evaluate import eval_mode

# The colours of a layer's most used experts in the page's grid (tab10 without its grey and olive: eight hues
# told apart at a glance); the other experts are grey. Dozens of hues cannot be told apart, and an expert id
# names a different expert in every layer, so colours are given per layer.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
OTHER = "#9a9a9a"


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


def _weight(weight: float, digits: int = 3) -> str:
    """A gate weight without its leading zero: ".024"."""
    return f"{weight:.{digits}f}".removeprefix("0")


def expert_colours(routes: list[TokenRoute]) -> dict[int, dict[int, str]]:
    """layer -> expert -> colour for the ``len(PALETTE)`` experts of each layer that the most (token,
    iteration) choices of ``routes`` went to (ties: the smaller id first)."""
    counts: dict[int, Counter] = {}
    for r in routes:
        for s in r.steps:
            counts.setdefault(s.layer, Counter()).update(s.experts)
    return {
        layer: {
            e: colour
            for (e, _), colour in zip(sorted(c.items(), key=lambda x: (-x[1], x[0])), PALETTE, strict=False)
        }
        for layer, c in counts.items()
    }


def routes_table(routes: list[TokenRoute], *, digits: int = 3):
    """A rich Table: one row per token, one column per (layer, iteration) whose cell lists the chosen experts
    as ``expert .weight``, one per line, largest weight first. Cells fold rather than cut when narrow."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        show_lines=True,
        caption="cells: the chosen experts as 'expert .weight' (e.g. '16 .024': expert 16, gate weight "
        "0.024), largest weight first",
    )
    table.add_column("pos", justify="right")
    table.add_column("token", overflow="fold")
    for layer, t in _columns(routes):
        table.add_column(f"L{layer}\nit{t}", overflow="fold")
    width = max((len(str(e)) for r in routes for s in r.steps for e in s.experts), default=1)

    def cell(step: Step) -> str:
        return "\n".join(
            f"{e:>{width}} {_weight(w, digits)}" for e, w in zip(step.experts, step.weights, strict=True)
        )

    for r in routes:
        cells = [cell(s) for s in r.steps]
        table.add_row(str(r.position), Text(repr(r.token)[1:-1]), *cells)  # Text: "[b]" is not markup
    return table


def _chip(expert: int, weight: float, top: float, colour: str | None, again: bool) -> str:
    hex_colour = colour or OTHER
    alpha = 0.3 + 0.7 * weight / top if top > 0 else 1.0  # paler for a smaller gate weight
    rgb = ",".join(str(int(hex_colour[i : i + 2], 16)) for i in (1, 3, 5))
    chosen = ", chosen again (also in the previous iteration)" if again else ""
    return (
        f"<span class='e{' again' if again else ''}' style='background:rgba({rgb},{alpha:.2f})' "
        f"title='expert {expert}, gate weight {weight:.4f}{chosen}'>{expert}<small>{_weight(weight, 2)}"
        "</small></span>"
    )


def _legend(colours: dict[int, dict[int, str]]) -> str:
    """Per layer, its coloured experts."""
    rows = "".join(
        f"<div>layer {layer}: "
        + " ".join(f"<span class='e' style='background:{c}'>{e}</span>" for e, c in colours[layer].items())
        + f" <span class='e' style='background:{OTHER}'>&hellip;</span> others</div>"
        for layer in sorted(colours)
    )
    return f"<div class='legend'>{rows}</div>"


def render_html(routes: list[TokenRoute], *, title: str = "Routing paths") -> str:
    """A page with the text (tokens outlined) and the token x (layer, iteration) grid of chosen experts,
    each shown as its id and gate weight; per layer its most used experts in distinct colours
    (:func:`expert_colours`), the others grey, and an outline where a token chose an expert again."""
    columns = _columns(routes)
    colours = expert_colours(routes)
    head = "".join(f"<th>layer {layer}<br>it. {t}</th>" for layer, t in columns)
    rows = []
    for r in routes:
        cells, previous = [], {}
        for s in r.steps:
            before = previous.get(s.layer, set()) if s.iteration > 1 else set()
            cells.append(
                "<td class='c'>"
                + "".join(
                    _chip(e, w, max(s.weights), colours[s.layer].get(e), e in before)
                    for e, w in zip(s.experts, s.weights, strict=True)
                )
                + "</td>"
            )
            previous[s.layer] = set(s.experts)
        rows.append(
            f"<tr><td>{r.position}</td><td class='t'>{escape(visible(r.token))}</td>"
            f"<td>{r.token_id}</td>{''.join(cells)}</tr>"
        )
    text = "".join(
        f"<span class='tok' title='position {r.position}'>{escape(r.token)}</span>" for r in routes
    )
    return page(
        title,
        f"<p>{len(routes)} tokens. Each cell lists the experts chosen at that layer and iteration, largest "
        "gate weight first, as the expert's id and its gate weight without the leading zero: "
        f"{_chip(16, 0.24, 0.24, PALETTE[0], False)} is expert 16 with weight 0.24. Colour: per layer, the "
        f"{len(PALETTE)} experts this text's tokens chose most often (the same colour in every iteration of "
        "the layer: one expert), the others grey; paler: a smaller weight than the token's largest. "
        f"{_chip(16, 0.24, 0.24, PALETTE[0], True)} outlined: the token chose that expert in the previous "
        "iteration of the layer too.</p>"
        + _legend(colours)
        + f"<div class='text'>{text}</div><h2>Routing grid</h2>"
        f"<table class='grid'><tr><th>pos</th><th>token</th><th>id</th>{head}</tr>{''.join(rows)}"
        "</table>",
    )


def write_html(routes: list[TokenRoute], path: str | Path, *, title: str = "Routing paths") -> Path:
    """The page of :func:`render_html` written to ``path`` (its folder made if need be); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(routes, title=title))
    return path
