"""coe.export: the remote code equals the library's source, and an export loads in a process where coe cannot
be imported, giving the library's logits and greedy tokens."""

import ast
import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from coe import CoEConfig, CoEForCausalLM
from coe.cli import main
from coe.data.tokenizer import train_bpe
from coe.export import ALLOWED_PACKAGES, AUTO_MAP, add_safetensors_metadata, export, flat_name, remote_code

PROMPTS = ["1 + 2 = 3\n4 + 5 =", "7 + 1 ="]
NEW_TOKENS = 12


def test_remote_code_is_the_library_source_with_relative_imports():
    files = remote_code()
    assert {"configuration_coe.py", "modeling_coe.py"} <= files.keys()
    for name, text in files.items():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert f"{node.module}.py" in files, f"{name} imports .{node.module}, not in the export"
            elif isinstance(node, ast.ImportFrom | ast.Import):
                tops = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                for top in (t.split(".")[0] for t in tops):
                    assert top in ALLOWED_PACKAGES or top in sys.stdlib_module_names, f"{name}: {top}"
    # Line for line the library's file: only its `from coe.x import` lines differ, each made relative.
    import coe.nn.attention

    library = open(coe.nn.attention.__file__, encoding="utf-8").read().splitlines()
    exported = files[f"{flat_name('coe.nn.attention')}.py"].splitlines()[1:]  # after the generated-by line
    changed = [(a, b) for a, b in zip(library, exported, strict=True) if a != b]
    assert changed and all(a.startswith("from coe.") and b.startswith("from .") for a, b in changed)
    assert (
        "from coe.config import Attention, CoEConfig",
        "from .configuration_coe import Attention, CoEConfig",
    ) in (changed)


def test_an_import_remote_code_cannot_carry_is_refused(monkeypatch):
    import coe.export

    real = coe.export._source
    monkeypatch.setattr(
        coe.export, "_source", lambda m: real(m) + ("\nimport yaml\n" if m == "coe.nn.mlp" else "")
    )
    with pytest.raises(ValueError, match=r"coe\.nn\.mlp imports yaml"):
        remote_code()


def test_metadata_is_merged_into_the_header_and_the_tensors_are_unchanged(tmp_path):
    from safetensors.torch import save_file

    tensors = {"a": torch.randn(3, 5), "b": torch.arange(7, dtype=torch.int64)}
    file = tmp_path / "w.safetensors"
    save_file(tensors, file, metadata={"format": "pt"})
    add_safetensors_metadata(file, {"model_type": "coe"})
    with safe_open(file, "pt") as f:
        assert f.metadata() == {"format": "pt", "model_type": "coe"}
    loaded = load_file(file)
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    (size,) = struct.unpack("<Q", file.read_bytes()[:8])
    assert size % 8 == 0


@pytest.fixture(scope="module", params=["mla", "gqa"])
def checkpoint(tmp_path_factory, request):
    """A tiny random CoE (2 iterations; MLA or GQA) with a BPE tokenizer, saved as a checkpoint directory."""
    torch.manual_seed(0)
    tokenizer = train_bpe([f"{a} + {b} = {a + b}\n" for a in range(20) for b in range(20)], vocab_size=300)
    config = CoEConfig.from_preset(
        "coe-2-4-64", size="tiny", vocab_size=len(tokenizer), num_hidden_layers=2, attention=request.param
    )
    model = CoEForCausalLM(config)
    with torch.no_grad():  # a random model's logits are nearly flat: spread them so greedy tokens are stable
        model.lm_head.weight.mul_(20)
    path = tmp_path_factory.mktemp("export") / "ckpt"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# Run with -I (no PYTHONPATH, no user site) from another directory; sys.path entries that hold a coe package
# (the editable install's src/) are removed, and the child checks that `import coe` fails before loading.
CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "coe").exists()]
    try:
        import coe
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit(f"coe is importable: {coe.__file__}")
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    export, prompts, new_tokens, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    model = AutoModelForCausalLM.from_pretrained(export, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(export, trust_remote_code=True)
    result = {"class": f"{type(model).__module__}.{type(model).__name__}", "tokens": []}
    tensors = {}
    with torch.no_grad():
        for i, prompt in enumerate(prompts):
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            tensors[f"logits{i}"] = model(ids).logits.contiguous()
            out_ids = model.generate(ids, max_new_tokens=new_tokens, do_sample=False)
            result["tokens"].append(out_ids[0].tolist())
    generator = pipeline("text-generation", model=export, trust_remote_code=True)
    generated = generator(prompts[0], max_new_tokens=new_tokens, do_sample=False)
    result["pipeline"] = generated[0]["generated_text"]
    result["coe_loaded"] = any(name == "coe" or name.startswith("coe.") for name in sys.modules)
    save_file(tensors, out + ".safetensors")
    Path(out + ".json").write_text(json.dumps(result))
    """
)


def test_an_export_loads_without_coe_and_computes_what_the_library_does(checkpoint, tmp_path):
    out = export(checkpoint, tmp_path / "export")
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP and config["model_type"] == "coe"
    assert not [p for p in out.iterdir() if p.suffix in (".pt", ".bin", ".pkl", ".pth")]
    assert not (out / "dcp").exists()
    with safe_open(out / "model.safetensors", "pt") as f:
        assert f.metadata()["model_type"] == "coe" and f.metadata()["format"] == "pt"
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] is not None

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env |= {"HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    child = tmp_path / "child"
    child.mkdir()
    args = [
        sys.executable,
        "-I",
        "-c",
        CHILD,
        str(out),
        json.dumps(PROMPTS),
        str(NEW_TOKENS),
        str(child / "r"),
    ]
    done = subprocess.run(args, cwd=child, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((child / "r.json").read_text())
    assert result["class"].startswith("transformers_modules.") and result["class"].endswith(".CoEForCausalLM")
    assert not result["coe_loaded"]

    from coe.data import load_tokenizer

    model = CoEForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer = load_tokenizer(checkpoint)
    theirs = load_file(child / "r.safetensors")
    with torch.no_grad():
        for i, prompt in enumerate(PROMPTS):
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            torch.testing.assert_close(theirs[f"logits{i}"], model(ids).logits, rtol=1e-5, atol=1e-5)
            ours = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
            assert result["tokens"][i] == ours[0].tolist()
    assert result["tokens"][0][-NEW_TOKENS:] != result["tokens"][0][-NEW_TOKENS - 1 : -1]  # not one token
    expected = tokenizer.decode(result["tokens"][0], skip_special_tokens=True)
    assert result["pipeline"] == expected


def test_coe_export_of_a_run_has_its_data_and_metrics_in_the_model_card(tmp_path, capsys):
    from tests.test_cli import TINY

    run = tmp_path / "run"
    assert main(["train", "--out_dir", str(run), *TINY]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert main(["export", str(run), str(tmp_path / "export")]) == 0
    card = (tmp_path / "export" / "README.md").read_text()
    assert "synthetic" in card and "trust_remote_code=True" in card
    assert f"| val_loss | {summary['val_loss']:.4g} |" in card
    assert (tmp_path / "export" / "tokenizer.json").is_file()
    assert not list((tmp_path / "export").rglob("*.pt")) and not (tmp_path / "export" / "dcp").exists()
    model = CoEForCausalLM.from_pretrained(tmp_path / "export")
    assert model.config.auto_map == AUTO_MAP

    with safe_open(tmp_path / "export" / "model.safetensors", "pt") as f:
        assert f.metadata()["source"] == "step-00000002"  # the checkpoint's name, not that of its model/

    # The checkpoint's model/ (what a user uploads) exports the same, its run found above it.
    assert (
        main(["export", str(run / "checkpoints" / "step-00000002" / "model"), str(tmp_path / "again")]) == 0
    )
    assert (tmp_path / "again" / "README.md").read_text() == card
    capsys.readouterr()
    assert main(["export", str(run), str(tmp_path / "export")]) == 2  # dst exists: one line, no traceback
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("coe export: error:") and "overwrite" in err[0]
