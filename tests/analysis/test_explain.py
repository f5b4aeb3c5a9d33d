"""`coe explain`: token routes against the model's own routing output, the JSONL audit log, the terminal
table and the HTML grid (opened in a browser)."""

import html
import json

import pytest
import torch
from rich.console import Console

from coe import CoEForCausalLM
from coe.analysis.explain import (
    OTHER,
    PALETTE,
    Step,
    TokenRoute,
    expert_colours,
    explain,
    render_html,
    routes_table,
    to_records,
    write_html,
    write_jsonl,
)
from coe.cli import main
from coe.data import load_tokenizer
from coe.train.checkpoint import resolve_checkpoint
from tests.analysis.browser import assert_page_renders

TEXT = "Question: Ann has 3 apples & 12 <pears>.\nAnswer: 3 + 12 = <<3+12=15>>15\n#### 15"


@pytest.fixture(scope="module")
def coe_model(tiny_runs):
    weights = resolve_checkpoint(tiny_runs["coe-2-4-64"])  # the newest checkpoint's model/
    return CoEForCausalLM.from_pretrained(weights).eval(), load_tokenizer(weights)


def test_routes_are_the_models_routing(coe_model):
    model, tokenizer = coe_model
    routes = explain(model, tokenizer, TEXT)
    ids = tokenizer(TEXT, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model(ids, output_router_logits=True, use_cache=False)
    assert [r.token_id for r in routes] == ids[0].tolist()
    assert [r.position for r in routes] == list(range(ids.shape[1]))
    assert "".join(r.token for r in routes) == TEXT
    C = model.config.inner_iter
    for n, r in enumerate(routes):
        assert [(s.layer, s.iteration) for s in r.steps] == [(0, 1), (0, 2), (1, 1), (1, 2)]
        for index, s in enumerate(r.steps):
            experts, weights = out.selected_experts[index][n], out.routing_weights[index][n]
            chosen = dict(zip(experts.tolist(), weights.tolist(), strict=True))
            assert dict(zip(s.experts, s.weights, strict=True)) == pytest.approx(chosen)
            assert s.weights == sorted(s.weights, reverse=True)
            assert len(s.experts) == model.config.num_experts_per_tok
    assert C == 2


def test_audit_log_table_and_page(coe_model, tmp_path, chromium):
    model, tokenizer = coe_model
    routes = explain(model, tokenizer, TEXT)
    lines = write_jsonl(routes, tmp_path / "audit" / "routes.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == to_records(routes)
    first = json.loads(lines[0])
    assert set(first) == {"position", "token_id", "token", "steps"}
    assert set(first["steps"][0]) == {"layer", "iteration", "experts", "weights"}

    console = Console(record=True, width=200)
    console.print(routes_table(routes))
    text = console.export_text()
    assert "L0" in text and "it2" in text
    assert all(repr(r.token)[1:-1].strip() in text for r in routes)  # shown as text, never read as markup
    top = routes[0].steps[0]
    assert f"{top.experts[0]} {top.weights[0]:.3f}".replace(" 0.", " .") in text

    page = write_html(routes, tmp_path / "routes.html", title="routes <test>")
    content = page.read_text()
    assert content.count("<tr>") == len(routes) + 1  # header and one row per token
    assert html.escape("<<") in content and "<pears>" not in content  # escaped, not markup
    assert_page_renders(page, chromium, images=False)


def test_explain_command(tiny_runs, tmp_path, capsys):
    jsonl, page = tmp_path / "a.jsonl", tmp_path / "a.html"
    assert (
        main(
            [
                "explain",
                str(tiny_runs["moe-8-64"]),
                "Ann has 3 apples.",
                "--jsonl",
                str(jsonl),
                "--html",
                str(page),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "L0" in out and str(jsonl) in out and str(page) in out
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert records and all(len(r["steps"]) == 2 for r in records)  # two MoE layers, C = 1
    assert all(len(s["experts"]) == 8 for r in records for s in r["steps"])


def test_empty_text_is_rejected(coe_model):
    model, tokenizer = coe_model
    with pytest.raises(ValueError, match="empty"):
        explain(model, tokenizer, "")


def _route(position: int, steps: list[tuple[int, int, list[int]]]) -> TokenRoute:
    """A token's route of (layer, iteration, experts), the first expert with weight 0.75 and the rest 0.25."""
    return TokenRoute(
        position,
        position,
        f"t{position}",
        [Step(a, t, e, [0.75] + [0.25] * (len(e) - 1)) for a, t, e in steps],
    )


def test_grid_colours_each_layers_most_used_experts_and_marks_experts_chosen_again():
    # Layer 0: expert 40 chosen 3 times, 3, 4 and 41 twice, 1, 2, 5-9 once (ties: the smaller id first), so
    # 40, 3, 4, 41, 1, 2, 5 and 6 are coloured and 7-9 grey. Layer 1 counts on its own.
    routes = [
        _route(0, [(0, 1, [40, 41]), (0, 2, [40, 1]), (1, 1, [3, 40])]),
        _route(1, [(0, 1, [2, 3]), (0, 2, [41, 40]), (1, 1, [3, 5])]),
        _route(2, [(0, 1, [4, 5]), (0, 2, [6, 7]), (1, 1, [3, 9])]),
        _route(3, [(0, 1, [9, 8]), (0, 2, [3, 4]), (1, 1, [3, 9])]),
    ]
    colours = expert_colours(routes)
    assert list(colours[0]) == [40, 3, 4, 41, 1, 2, 5, 6] and list(colours[0].values()) == list(PALETTE)
    assert list(colours[1]) == [3, 9, 5, 40] and 7 not in colours[0]
    page = render_html(routes)
    # Outlined: a token's expert also chosen in the previous iteration of the same layer (token 0's 40; not
    # token 1's 41 and 40, which came after 2 and 3), never across layers or in a first iteration.
    assert page.count("class='e again'") == 1 + 1  # token 0's expert 40, and the legend's example
    assert "title='expert 40, gate weight 0.7500, chosen again" in page
    assert "is expert 16 with weight 0.24" in page and "layer 1: " in page
    grey = ",".join(str(int(OTHER[i : i + 2], 16)) for i in (1, 3, 5))
    assert f"style='background:rgba({grey},0.53)' title='expert 7," in page  # grey, paler: weight 1/3 of top
    assert "white-space:nowrap}table.grid th" not in page  # cells wrap: no horizontal scrolling
