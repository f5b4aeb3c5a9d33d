"""Exact-match scoring: each sequence stops at the end of its answer (fewer decode steps, the first answer
scored), batched, with a progress bar when asked."""

import pytest
import torch
from transformers.modeling_outputs import CausalLMOutputWithPast

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
