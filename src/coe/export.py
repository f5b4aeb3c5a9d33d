"""Hub-ready export: a checkpoint (or a run's newest) as a directory that loads anywhere with
``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)``, with no ``coe`` installed.

What the directory holds::

    config.json              the model's configuration, with ``auto_map`` naming the two classes below
    configuration_coe.py     coe/config.py          the library's own source files, generated at export time:
    modeling_coe.py          coe/modeling.py        their ``coe.*`` imports rewritten to relative imports of
    coe_nn_*.py, coe_*.py    what these import      the flat files beside them (transformers copies a remote-
                                                    code module's relative imports along with it)
    model.safetensors        the weights (float32 unless asked otherwise), with metadata naming the model
    tokenizer.json, ...      the run's tokenizer
    generation_config.json   end-of-text and padding tokens from the tokenizer
    README.md                the model card: configuration, training data, the run's metrics, how to load it

No optimizer state, no pickles. The generated modules import only torch, transformers, safetensors and the
standard library (checked on every export), so the remote code is exactly the library's code of that moment.
"""

from __future__ import annotations

import ast
import errno
import importlib.util
import json
import logging
import os
import re
import struct
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from coe.checks import FileError

log = logging.getLogger(__name__)

# The two modules transformers' auto_map names, and the flat file each library module becomes.
ROOTS = {"coe.config": "configuration_coe", "coe.modeling": "modeling_coe"}
AUTO_MAP = {
    "AutoConfig": "configuration_coe.CoEConfig",
    "AutoModelForCausalLM": "modeling_coe.CoEForCausalLM",
}
# Packages remote code may import besides the standard library: what a transformers install brings.
ALLOWED_PACKAGES = frozenset({"torch", "transformers", "safetensors"})
_FROM_COE = re.compile(r"^(\s*)from\s+coe(?:\.\w+)*\s+import\b")


def flat_name(module: str) -> str:
    """The file name (without .py) of library module ``module`` in an export: ``coe.nn.attention`` ->
    ``coe_nn_attention``, the two auto_map modules by transformers' convention."""
    return ROOTS.get(module) or module.replace(".", "_")


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ImportError(f"{module}: no Python source file to export")
    return Path(spec.origin).read_text(encoding="utf-8")


def _coe_imports(tree: ast.AST, module: str) -> list[str]:
    """The library modules ``module`` imports, anywhere in it (functions included); ValueError for an import
    form that cannot become a relative import of a flat file."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "coe" for a in node.names):
            raise ValueError(
                f"{module} line {node.lineno}: `import coe...`; export needs `from coe.x import`"
            )
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "coe"
        ):
            if node.module == "coe":
                raise ValueError(f"{module} line {node.lineno}: `from coe import`; import from the module")
            found.append(node.module)
    return found


def remote_code() -> dict[str, str]:
    """The remote-code files of an export, name -> text: the library's config and modeling modules and every
    library module they import (transitively), their ``from coe.x.y import`` lines rewritten to ``from
    .coe_x_y import``. ValueError when a module imports a package other than torch, transformers, safetensors
    or the standard library (remote code must load where only transformers is installed)."""
    files: dict[str, str] = {}
    todo = list(ROOTS)
    while todo:
        module = todo.pop()
        name = flat_name(module)
        if f"{name}.py" in files:
            continue
        text = _source(module)
        tree = ast.parse(text)
        imported = set(_coe_imports(tree, module))
        todo += sorted(imported)
        for node in ast.walk(tree):
            top = None
            if isinstance(node, ast.Import):
                top = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = {node.module.split(".")[0]}
            for package in (top or set()) - {"coe", "__future__"}:
                if package not in ALLOWED_PACKAGES and package not in sys.stdlib_module_names:
                    raise ValueError(
                        f"{module} imports {package}: remote code may import only "
                        f"{', '.join(sorted(ALLOWED_PACKAGES))} and the standard library"
                    )
        lines = text.splitlines(keepends=True)
        for node in ast.walk(tree):  # by the AST's line numbers: a `from coe` inside a string stays as it is
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in imported:
                i = node.lineno - 1
                lines[i], n = _FROM_COE.subn(f"\\1from .{flat_name(node.module)} import", lines[i], count=1)
                if n != 1:
                    raise ValueError(
                        f"{module} line {node.lineno}: write `from {node.module} import` on one line"
                    )
        header = f"# Generated by coe.export from {module}; edit the library, not this file.\n"
        files[f"{name}.py"] = header + "".join(lines)
    return files


# ----------------------------------------------------------------------------------------- the export


def export(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    max_shard_size: int | str = "5GB",
    overwrite: bool = False,
) -> Path:
    """Write the checkpoint (or run directory) ``src`` as a Hub-ready directory ``dst`` (see the module's
    docstring), atomically: ``dst`` appears whole or not at all. Returns ``dst``."""
    from coe import __version__
    from coe.convert import atomic_directory
    from coe.data import load_tokenizer
    from coe.modeling import CoEForCausalLM
    from coe.train.checkpoint import checkpoint_of, resolve_checkpoint, run_of

    dst = Path(dst)
    if dst.exists() and any(dst.iterdir()) and not overwrite:  # said before the model loads
        why = "exists and is not empty (overwrite=True, `--overwrite true`, replaces it)"
        raise FileExistsError(errno.EEXIST, why, str(dst))
    checkpoint = resolve_checkpoint(src)  # the model directory: step-N/model of a training checkpoint
    source, run = checkpoint_of(checkpoint), run_of(checkpoint)
    code = remote_code()
    model = CoEForCausalLM.from_pretrained(checkpoint, dtype=dtype)
    tokenizer = load_tokenizer(checkpoint)
    config = model.config
    config.auto_map = dict(AUTO_MAP)
    config.architectures = [CoEForCausalLM.__name__]
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    generation = model.generation_config
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        generation.bos_token_id = tokenizer.bos_token_id
    metadata = {
        "format": "pt",
        "model_type": config.model_type,
        "architecture": CoEForCausalLM.__name__,
        "library": f"coe {__version__}",
        "source": source.name,
    }
    log.info("exporting %s to %s", checkpoint, dst)
    with atomic_directory(dst, overwrite) as tmp:
        model.save_pretrained(tmp, max_shard_size=max_shard_size)
        for file in sorted(tmp.glob("*.safetensors")):
            add_safetensors_metadata(file, metadata)
        tokenizer.save_pretrained(tmp)
        for name, text in code.items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / "README.md").write_text(model_card(model, run, source), encoding="utf-8")
        leftovers = [p.name for p in tmp.iterdir() if p.suffix in (".pt", ".bin", ".pkl", ".pth")]
        if leftovers:  # nothing pickled goes out: a reader of the directory must not run code from it
            raise FileError(tmp, f"pickled files in an export: {leftovers}")
    return dst


def add_safetensors_metadata(file: Path, metadata: dict[str, str]) -> None:
    """Merge ``metadata`` into the ``__metadata__`` of the safetensors ``file``'s header, streaming the
    tensor bytes (the file is rewritten beside itself, then renamed over it)."""
    with open(file, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        header["__metadata__"] = {**header.get("__metadata__", {}), **metadata}
        # The tensor data must start 8-byte aligned: pad the header with spaces, as safetensors does.
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        tmp = file.with_name(file.name + ".tmp")
        with open(tmp, "wb") as out:
            out.write(struct.pack("<Q", len(encoded)))
            out.write(encoded)
            while chunk := f.read(1 << 24):
                out.write(chunk)
    tmp.replace(file)


# ----------------------------------------------------------------------------------------- model card


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> dict[str, Any] | None:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return loaded if isinstance(loaded, dict) else None


def model_card(model, run: Path | None, checkpoint: Path) -> str:
    """The README.md of an export: the architecture, the training run's data and metrics (from the run
    directory's config.yaml and summary.json, when ``run`` has them) and how to load the model."""
    config = model.config
    total = sum(p.numel() for p in model.parameters())
    train = _read_yaml(run / "config.yaml") if run is not None else None
    summary = _read_json(run / "summary.json") if run is not None else None
    preset = (train or {}).get("model", {}).get("preset") or (summary or {}).get("preset")
    if config.inner_iter > 1:
        title, what = (
            "Chain-of-Experts language model",
            (
                f"A Chain-of-Experts causal language model: the experts of each MoE layer are applied C = "
                f"{config.inner_iter} times in sequence, each iteration routed anew."
            ),
        )
    else:
        title, what = "Mixture-of-experts language model", "A mixture-of-experts causal language model."
    title += f" ({preset})" if preset else ""
    rows = {
        "layers": config.num_hidden_layers,
        "hidden size": config.hidden_size,
        "attention": config.attention,
        "routed experts": config.n_routed_experts,
        "experts per token (K)": config.num_experts_per_tok,
        "shared experts": config.n_shared_experts,
        "iterations per MoE layer (C)": config.inner_iter,
        "vocabulary": config.vocab_size,
        "parameters": f"{total:,}",
    }
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [chain-of-experts, mixture-of-experts, custom_code]",
        "---",
        "",
        f"# {title}",
        "",
        what,
        "Trained with the `coe` library; the modeling code ships beside the weights, so it loads with",
        "transformers alone.",
        "",
        "## Architecture",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows.items()),
        "",
        "Every field is in `config.json`.",
        "",
        "## Training",
        "",
    ]
    if train is not None:
        data = train.get("data") or {}
        sources = data.get("source")
        sources = ", ".join(map(str, sources)) if isinstance(sources, list) else sources
        facts = {
            "data": sources,
            "steps": train.get("steps"),
            "batch size": train.get("batch_size"),
            "sequence length": train.get("seq_len"),
            "learning rate": (train.get("optim") or {}).get("lr"),
            "seed": train.get("seed"),
        }
        lines += [f"- {k}: {v}" for k, v in facts.items() if v is not None]
        lines += ["", "The run's full configuration (`config.yaml`):", "", "```yaml"]
        shown = {k: v for k, v in train.items() if k != "out_dir"}  # a path on the training machine
        lines += [yaml.safe_dump(shown, sort_keys=False).rstrip(), "```", ""]
    else:
        lines += [
            f"Exported from the checkpoint `{checkpoint.name}`; its run's configuration was not found.",
            "",
        ]
    if summary is not None:
        metrics = {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        lines += ["## Results", "", "From the run's `summary.json`:", "", "| metric | value |", "|---|---|"]
        lines += [
            f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()
        ]
        lines += [""]
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'model = AutoModelForCausalLM.from_pretrained("PATH_OR_REPO", trust_remote_code=True)',
        'tokenizer = AutoTokenizer.from_pretrained("PATH_OR_REPO", trust_remote_code=True)',
        'ids = tokenizer("Question: 2 + 3 = ?\\nAnswer:", return_tensors="pt").input_ids',
        "print(tokenizer.decode(model.generate(ids, max_new_tokens=32)[0]))",
        "```",
        "",
        "`trust_remote_code=True` runs `configuration_coe.py`, `modeling_coe.py` and the `coe_*.py` files",
        "they import, generated from the `coe` library's source; read them first. With `coe` installed,",
        "`import coe` registers the model type and the same directory loads without remote code.",
        "",
    ]
    return "\n".join(lines)
