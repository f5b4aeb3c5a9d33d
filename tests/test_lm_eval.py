"""coe.lm_eval: lm-evaluation-harness's command line on a coe checkpoint and on its export, a tiny local
multiple-choice task end to end, its accuracy checked against log-likelihoods computed here."""

import json

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM
from coe.data.tokenizer import train_bpe
from coe.lm_eval import resolve_model_args

PROBLEMS = [(1, 2), (2, 3), (4, 1), (3, 3), (5, 2), (6, 1)]

TASK = """\
task: coe_tiny_sums
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
"""


def test_a_run_directory_becomes_its_newest_checkpoint(tmp_path):
    run = tmp_path / "run"
    for step in ("step-00000002", "step-00000004"):
        for part, file in (("training", "trainer_state.pt"), ("model", "config.json")):
            (run / "checkpoints" / step / part).mkdir(parents=True)
            (run / "checkpoints" / step / part / file).touch()
    newest = run / "checkpoints" / "step-00000004" / "model"  # the weights, which the hf model reads
    assert resolve_model_args(["--model_args", f"pretrained={run},dtype=float32", "--tasks", "x"]) == [
        "--model_args",
        f"pretrained={newest},dtype=float32",
        "--tasks",
        "x",
        "--model",
        "hf",
    ]
    assert resolve_model_args(["run", f"--model_args=dtype=float32,pretrained={run}", "--model", "hf"]) == [
        "run",
        f"--model_args=dtype=float32,pretrained={newest}",
        "--model",
        "hf",
    ]
    checkpoint = ["-a", f"pretrained={newest}", "max_length=64", "-M", "hf"]
    assert resolve_model_args(checkpoint) == checkpoint
    assert resolve_model_args(["-a", f"pretrained={newest.parent}", "-M", "hf"]) == [
        "-a",
        f"pretrained={newest}",
        "-M",
        "hf",
    ]
    assert resolve_model_args(["ls", "tasks"]) == ["ls", "tasks"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer = train_bpe([f"{a} + {b} = {a + b}\n" for a in range(10) for b in range(10)], vocab_size=300)
    config = CoEConfig.from_preset("coe-2-4-64", size="tiny", vocab_size=len(tokenizer), num_hidden_layers=2)
    model = CoEForCausalLM(config)
    with torch.no_grad():  # spread a random model's logits, so that no choice ties
        model.lm_head.weight.mul_(20)
    path = tmp_path_factory.mktemp("lm_eval") / "ckpt"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def expected_accuracy(checkpoint, docs) -> float:
    """Accuracy by the summed log-likelihood of each choice after its question, as lm_eval defines ``acc``
    (the continuation's tokens: those of "question choice" after the question's own)."""
    from coe.data import load_tokenizer

    model = CoEForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer = load_tokenizer(checkpoint)
    right = 0
    for doc in docs:
        scores = []
        for choice in doc["choices"]:
            context = tokenizer(doc["question"]).input_ids
            whole = tokenizer(f"{doc['question']} {choice}").input_ids  # lm_eval's target_delimiter: " "
            with torch.no_grad():
                logp = model(torch.tensor([whole])).logits[0].log_softmax(-1)
            scores.append(sum(logp[i - 1, whole[i]].item() for i in range(len(context), len(whole))))
        right += max(range(len(scores)), key=scores.__getitem__) == doc["answer"]
    return right / len(docs)


@pytest.mark.parametrize("exported", [False, True], ids=["checkpoint", "export"])
def test_a_local_task_runs_end_to_end(checkpoint, tmp_path, monkeypatch, exported):
    pytest.importorskip("lm_eval")
    from coe.cli import main

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    docs = [
        {"question": f"{a} + {b} =", "choices": [str(a + b), str(a + b + 1), str(a + b + 3)], "answer": 0}
        for a, b in PROBLEMS
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny.yaml").write_text(TASK.format(data=tmp_path / "data.jsonl"))
    model = checkpoint
    model_args = f"pretrained={model},dtype=float32"
    if exported:
        from coe.export import export

        model = export(checkpoint, tmp_path / "export")
        model_args = f"pretrained={model},dtype=float32,trust_remote_code=True"
    argv = ["lm-eval", "--model_args", model_args, "--tasks", "coe_tiny_sums", "--include_path"]
    argv += [
        str(tmp_path / "tasks"),
        "--device",
        "cpu",
        "--batch_size",
        "1",
        "--output_path",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 0
    (results,) = (tmp_path / "out").rglob("results_*.json")
    scores = json.loads(results.read_text())["results"]["coe_tiny_sums"]
    assert scores["acc,none"] == pytest.approx(expected_accuracy(checkpoint, docs))
