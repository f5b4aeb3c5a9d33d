"""Exact-match scoring: each sequence stops at the end of its answer (fewer decode steps, the first answer
scored), batched, with a progress bar when asked; the fast decode path gives the eager dynamic cache's
answers."""

import pytest
import torch
from torch._dynamo.utils import counters
from transformers import CompileConfig
from transformers.modeling_outputs import CausalLMOutputWithPast

import coe.evaluate
from coe import CoEConfig, CoEForCausalLM
from coe.data.tokenizer import train_bpe
from coe.evaluate import answer_end, exact_match, validation_loss

CORPUS = [
    "Question: Ann has 3 boxes of 4 pens. How many pens?\nAnswer: 3*4=12\n#### 12",
    "Question: Tom had 9 apples and ate 2. How many are left?\nAnswer: 9-2=7\n#### 7",
] * 20


class ScriptedModel(CoEForCausalLM):
    """Emits a fixed continuation per row, whatever the prompt: row b's n-th new token is ``scripts[b][n]``
    (then the last token again and again). Counts its forwards: per batch one prefill (the prompt), then one
    per decode step (one token)."""

    def __init__(self, config, scripts: list[list[int]]):
        super().__init__(config)
        self.scripts, self.forwards, self.step = scripts, 0, 0

    def forward(self, input_ids=None, past_key_values=None, **kwargs):
        self.step = 0 if input_ids.shape[1] > 1 else self.step + 1  # new tokens generated so far
        self.forwards += 1
        step = self.step
        logits = torch.full((*input_ids.shape, self.config.vocab_size), -1e4)
        for b, script in enumerate(self.scripts[: input_ids.shape[0]]):
            logits[b, -1, script[min(step, len(script) - 1)]] = 0.0
        return CausalLMOutputWithPast(logits=logits, past_key_values=past_key_values)


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe(CORPUS, vocab_size=300)


def scripted(tokenizer, texts: list[str]) -> ScriptedModel:
    config = CoEConfig.from_preset("moe-8-64", size="tiny", vocab_size=len(tokenizer))
    scripts = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    return ScriptedModel(config, scripts).eval()


def test_decoding_stops_at_the_end_of_each_answer(tokenizer):
    # Row 0 answers 7 early, then runs on into another answer (scored before: 9, the last "####");
    # row 1 answers later; the garbage would go on until max_new_tokens.
    garbage = "\nQuestion: 1+1\nAnswer: 2\n#### 9\n" + "pens apples boxes " * 20
    texts = [" 9-2=7\n#### 7" + garbage, " 3*4=12 and 12/2=6 and 6+1=7\n#### 7\n" + garbage]
    problems = [("How many are left?", "9-2=7\n#### 7"), ("How many pens?", "#### 8")]
    model = scripted(tokenizer, texts)
    accuracy, samples = exact_match(model, tokenizer, problems, max_new_tokens=120, progress=False)
    assert [s.predicted for s in samples] == ["7", "7"] and [s.reference for s in samples] == ["7", "8"]
    assert accuracy == 0.5
    assert samples[0].generated == " 9-2=7\n#### 7"
    assert samples[1].generated == " 3*4=12 and 12/2=6 and 6+1=7\n#### 7"
    # One prefill and a decode step per token of the longer answer (its "#### 7" is complete once the
    # newline after it is seen), far fewer than max_new_tokens.
    longest = len(tokenizer(texts[1].split("#### 7")[0] + "#### 7\n").input_ids)
    assert model.forwards <= longest + 1 < 120
    assert tokenizer.padding_side == "right"  # restored

    # Without an answer end, decoding runs to max_new_tokens.
    model = scripted(tokenizer, ["pens apples boxes " * 30])
    _, (sample,) = exact_match(model, tokenizer, problems[:1], max_new_tokens=25, progress=False)
    assert model.forwards == 25 and sample.predicted is None


def test_decoding_runs_batched_and_shows_progress(tokenizer, capsys):
    model = scripted(tokenizer, [" 9-2=7\n#### 7\n"] * 5)
    problems = [("How many are left?", "#### 7")] * 5
    accuracy, samples = exact_match(model, tokenizer, problems, batch_size=2, progress=True)
    assert accuracy == 1.0 and len(samples) == 5
    err = capsys.readouterr().err
    assert "exact match" in err and "5/5" in err and "problem" in err
    exact_match(scripted(tokenizer, [" #### 7\n"]), tokenizer, problems[:1], progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="batch_size=0"):
        exact_match(model, tokenizer, problems, batch_size=0)


# Problems whose prompts differ in length (left padding in every batch of 4).
PROBLEMS = [
    ("Ann has 3 boxes of 4 pens. How many pens?", "#### 12"),
    ("Tom had 9 apples and ate 2. How many are left?", "#### 7"),
    ("Tom had 9 pens. How many?", "#### 9"),
    ("Ann has boxes", "#### 3"),
    ("How many apples?", "#### 7"),
    ("Ann ate 4 apples and had 9 boxes of 3 pens and 12 apples. How many are left?", "#### 4"),
]


def random_model(tokenizer) -> CoEForCausalLM:
    """A tiny random model whose output rows for "####" and the newline are doubled in norm, so that some of
    its greedy answers end (answer_end: "####" ... newline) within 30 tokens, each at its own step."""
    torch.manual_seed(2)
    model = CoEForCausalLM(CoEConfig.from_preset("coe-2-4-64", size="tiny", vocab_size=len(tokenizer)))
    with torch.no_grad():
        model.lm_head.weight[tokenizer("####\n", add_special_tokens=False).input_ids] *= 2
    return model.eval()


@pytest.mark.parametrize("decode", ["static", "auto"])
def test_fast_decoding_gives_the_eager_dynamic_cache_answers(tokenizer, decode):
    """Greedy answers through the static cache equal the eager dynamic cache's text for text, with the
    stopping criterion ending rows at different steps and left-padded batches."""
    model = random_model(tokenizer)
    options = dict(max_new_tokens=30, batch_size=4, progress=False)
    expected = exact_match(model, tokenizer, PROBLEMS, decode="dynamic", **options)
    # The premise: answers end at different lengths, and some not within max_new_tokens (a finished
    # answer's text stops where answer_end found its end, which may need one more character to see).
    answers = expected[1]
    ended = [len(s.generated) for s in answers if answer_end(s.generated + " ") is not None]
    assert 0 < len(ended) < len(answers) and len(set(ended)) > 1, [s.generated for s in answers]
    assert exact_match(model, tokenizer, PROBLEMS, decode=decode, **options) == expected
    # and each answer is the one its prompt gets alone (the batches' left padding changes nothing)
    alone = dict(options, batch_size=1)
    assert exact_match(model, tokenizer, PROBLEMS, decode=decode, **alone) == expected


def test_decoding_runs_compiled_layers_uncompiled_and_restores_them(tokenizer):
    """The trainer's compiled decoder layers would trace a graph per layer and per prefill or decoding step
    against a cache: decoding runs them uncompiled (no graph traced) and leaves them compiled."""
    model = random_model(tokenizer)
    expected = exact_match(model, tokenizer, PROBLEMS, max_new_tokens=8, progress=False)
    torch._dynamo.reset()
    for layer in model.model.layers:
        layer.compile(backend="eager")
    compiled = [layer._compiled_call_impl for layer in model.model.layers]
    counters.clear()
    assert exact_match(model, tokenizer, PROBLEMS, max_new_tokens=8, progress=False) == expected
    assert counters["stats"]["unique_graphs"] == 0
    assert [layer._compiled_call_impl for layer in model.model.layers] == compiled


def test_compiled_decoding_is_traced_once_per_batch_size(tokenizer, monkeypatch):
    """The static cache is sized for the longest prompt of all problems, so the compiled decoding step keeps
    its shapes from one batch to the next although their prompt lengths differ (the longest comes last)."""
    graphs = []

    def backend(gm: torch.fx.GraphModule, example_inputs):
        graphs.append(gm)
        return gm.forward

    compile_config = CompileConfig(fullgraph=True, backend=backend, mode=None)
    compile_config._compile_all_devices = True  # transformers compiles on accelerators only by default
    monkeypatch.setattr(
        coe.evaluate,
        "decode_kwargs",
        lambda path, device: dict(cache_implementation="static", compile_config=compile_config),
    )
    torch._dynamo.reset()
    model = random_model(tokenizer)
    options = dict(max_new_tokens=8, batch_size=3, progress=False, decode="compiled")
    expected = exact_match(model, tokenizer, PROBLEMS, max_new_tokens=8, batch_size=3, progress=False)
    assert exact_match(model, tokenizer, PROBLEMS, **options) == expected
    assert len(graphs) == 1


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("3*4=12\n#### 12\nQuestion: more", len("3*4=12\n#### 12")),
        ("#### 1,080.50 dollars", len("#### 1,080.50")),
        ("#### $7\n", len("#### $7")),
        ("#### 12", None),  # the number may go on
        ("#### 7.", None),
        ("#### seven\nmore", len("#### seven\n")),
        ("3*4=12\nQuestion: Ann", len("3*4=12")),
        ("3*4=12 and so", None),
    ],
)
def test_answer_end(text, end):
    assert answer_end(text) == end


def test_validation_loss_shows_progress_when_asked(capsys):
    torch.manual_seed(0)
    model = CoEForCausalLM(CoEConfig.from_preset("coe-2-4-64", size="tiny", vocab_size=64))
    ids = torch.randint(0, 64, (2, 2, 9))
    batches = [{"input_ids": x[:, :-1], "labels": x[:, 1:]} for x in ids]
    quiet = validation_loss(model, batches, progress=False)
    assert capsys.readouterr().err == ""
    assert validation_loss(model, batches, progress=True) == quiet
    err = capsys.readouterr().err
    assert "validation loss" in err and "2/2" in err
    # The loss itself: the mean token cross-entropy of the model's logits.
    with torch.no_grad():
        logits = torch.cat([model(b["input_ids"]).logits for b in batches])
    labels = torch.cat([b["labels"] for b in batches])
    assert quiet == pytest.approx(
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten()).item()
    )
