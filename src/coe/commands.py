"""What each ``coe`` command does once its arguments are parsed (``coe.cli`` parses them and reports errors).

Apart from ``cli.py`` because these signatures name the configuration sections (and their defaults build
them), which import torch: ``coe --help`` and ``coe presets`` never load this module.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from coe.checks import invalid
from coe.compare import CompareConfig
from coe.data import DataSpec
from coe.train.config import EvalSpec, RuntimeSpec, TrainConfig


def only_used(command: str, section: str, spec: Any, used: tuple[str, ...]) -> None:
    """The options of a shared section that ``command`` does not use keep their defaults: one given anyway
    fails rather than being ignored."""
    default = type(spec)()
    for option in dataclasses.fields(spec):
        value = getattr(spec, option.name)
        if option.name not in used and value != getattr(default, option.name):
            raise invalid(f"{section}.{option.name}", value, f"coe {command} does not use it")


def open_checkpoint(checkpoint: str, runtime: RuntimeSpec, expert_backend: str | None = None):
    """``(path, model, tokenizer, device)`` of a checkpoint (or a run directory's newest): the model in
    float32 and eval mode on the resolved device; its experts on ``expert_backend`` when given (checked
    before the checkpoint is read), else on the backend its config saved (every backend computes the same
    outputs, to rounding)."""
    import torch

    from coe.config import ExpertBackend
    from coe.data import load_tokenizer
    from coe.device import configure_threads, resolve_device
    from coe.modeling import CoEForCausalLM
    from coe.train.checkpoint import resolve_checkpoint

    if expert_backend is not None and expert_backend not in tuple(ExpertBackend):
        allowed = ", ".join(repr(b.value) for b in ExpertBackend)
        raise invalid(
            "expert_backend", expert_backend, f"choose {allowed}, or leave it unset (the checkpoint's own)"
        )
    path = resolve_checkpoint(checkpoint)
    dev = resolve_device(runtime.device)
    configure_threads(runtime.threads)
    overrides = {} if expert_backend is None else {"expert_backend": expert_backend}
    model = CoEForCausalLM.from_pretrained(path, dtype=torch.float32, **overrides).to(dev).eval()
    return path, model, load_tokenizer(path), dev


def refuse_paper_size_on_cpu(model_size: str, device: str, option: str) -> None:
    """Stop a paper-size run that would land on the CPU only because CUDA is missing: the 780M-parameter
    model trains there for days. An explicit CPU device (``option``) runs it anyway."""
    import torch

    if model_size == "paper" and device == "auto" and not torch.cuda.is_available():
        raise invalid(
            option,
            device,
            "this machine has no CUDA device, and the paper-size model (780M parameters) would train on its "
            f"CPU for days; give --{option} cpu to do that anyway, or a smaller --model.size (small: CPU "
            "widths)",
        )


def cmd_train(cfg: TrainConfig) -> None:
    from coe.train.trainer import train

    refuse_paper_size_on_cpu(cfg.model.size, cfg.runtime.device, "runtime.device")
    result = train(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return
    s = result.summary
    acc = f", accuracy {100 * s['accuracy']:.1f}%" if "accuracy" in s else ""
    print(f"done: {result.run_dir} (validation loss {s['val_loss']:.4f}{acc})")


def cmd_eval(
    checkpoint: str,
    data: DataSpec = DataSpec(synthetic_train=1),
    eval: EvalSpec = EvalSpec(),
    runtime: RuntimeSpec = RuntimeSpec(),
    seq_len: int = 512,
    batch_size: int = 16,
    decode: str = "auto",
    expert_backend: str | None = None,
) -> None:
    """Validation loss and exact-match accuracy of a checkpoint (or the newest one of a run directory).

    Args:
        checkpoint: a checkpoint (step-N, its model/ or any model directory), or a run directory (its
            newest checkpoint is used)
        data: where the validation and held-out documents come from (the training split is not used)
        eval: validation batches, held-out problems and generation length (eval.every is not used)
        runtime: the device, precision and CPU threads (the rest is not used)
        seq_len: tokens per validation sequence
        batch_size: sequences per validation batch
        decode: how the accuracy's answers are decoded through generate(): "dynamic" (transformers' dynamic
            cache), "static" (a preallocated static cache), "compiled" (the static cache and a compiled
            decoding step), "auto": compiled on CUDA, static elsewhere (the greedy tokens are the same; bf16
            ties aside, docs/performance.md)
        expert_backend: the experts' backend for this command: "adaptive" (the fastest per call: gather,
            dense or grouped), "grouped", "gather", "dense" or "loop"; unset: the one the checkpoint saved
            (checkpoints made before 2026-12-03 saved "grouped", which decodes slower on a GPU). Every
            backend gives the same losses and tokens, to rounding
    """
    import json

    from coe.data import load_splits, pack_documents, validation_batches
    from coe.device import autocast_dtype
    from coe.evaluate import exact_match, validation_loss
    from coe.generation import decode_path
    from coe.train.data import held_out_problems

    only_used("eval", "eval", eval, ("batches", "accuracy_problems", "max_new_tokens"))
    only_used("eval", "runtime", runtime, ("device", "precision", "threads"))
    only_used("eval", "data", data, tuple(f.name for f in dataclasses.fields(data) if f.name != "tokenizer"))
    decode_path(decode, loop=False)  # a bad choice fails before the checkpoint is read
    path, model, tokenizer, dev = open_checkpoint(checkpoint, runtime, expert_backend)
    amp = autocast_dtype(runtime.precision, dev)
    splits = load_splits(data)
    result = {"checkpoint": str(path)}
    val = validation_batches(
        pack_documents(
            tokenizer, splits.validation, seq_len, packing=data.packing, pads_in_routing=data.pads_in_routing
        ),
        batch_size,
        max_batches=eval.batches,
    )
    result["val_loss"] = validation_loss(model, val, amp_dtype=amp)
    if not math.isfinite(result["val_loss"]):
        from coe.train.checkpoint import NonFiniteError

        raise NonFiniteError(f"{path}: the validation loss is {result['val_loss']} (non-finite weights?)")
    held_out = held_out_problems(splits, eval.accuracy_problems)
    if held_out:
        result["accuracy"], _ = exact_match(
            model, tokenizer, held_out, max_new_tokens=eval.max_new_tokens, amp_dtype=amp, decode=decode
        )
        result["accuracy_problems"] = len(held_out)
    print(json.dumps(result, indent=2))


ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def unescape(text: str) -> str:
    """``text`` with the escapes ``\\n``, ``\\t`` and ``\\\\`` turned into a newline, a tab and a backslash (a
    shell passes them literally inside double quotes); any other backslash stays as it is."""
    return re.sub(r"\\([nt\\])", lambda m: ESCAPES[m.group(1)], text)


def read_prompt(prompt: str | None, prompt_file: str | None) -> str:
    """The prompt of `coe generate`: the command line's (escapes decoded), standard input's for ``-``, or a
    file's (taken as it is)."""
    if (prompt is None) == (prompt_file is None):
        raise invalid("prompt_file", prompt_file, "give a prompt or --prompt_file, one of the two")
    if prompt_file is not None:
        text = Path(prompt_file).read_text(encoding="utf-8")
    elif prompt == "-":
        text = sys.stdin.read()
    else:
        text = unescape(prompt)
    if not text:
        raise invalid("prompt", text, "must not be empty: the model continues a text")
    return text


def cmd_generate(
    checkpoint: str,
    prompt: str | None = None,
    prompt_file: str | None = None,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    decode: str = "auto",
    runtime: RuntimeSpec = RuntimeSpec(),
    expert_backend: str | None = None,
) -> None:
    """Continue a prompt with a checkpoint: greedy when temperature is 0, sampled otherwise.

    Args:
        checkpoint: a checkpoint (step-N, its model/ or any model directory), or a run directory (its
            newest checkpoint is used)
        prompt: the text to continue; \\n, \\t and \\\\ in it are a newline, a tab and a backslash; "-" reads
            it from standard input
        prompt_file: read the text to continue from this file instead (as it is, no escapes)
        max_new_tokens: tokens to generate at most
        temperature: 0 for greedy decoding, > 0 to sample at this temperature
        decode: "dynamic" (transformers' dynamic cache), "static" (a preallocated static cache), "compiled"
            (the static cache and a compiled decoding step: fastest per token, after a compile of seconds
            to a minute), "auto": compiled on CUDA, static elsewhere; or "loop": not through generate() but
            coe.decoding.StepDecoder's loop (compiled steps on CUDA, eager elsewhere)
        runtime: the device and CPU threads (the rest is not used)
        expert_backend: the experts' backend: "adaptive" (the fastest per call), "grouped", "gather",
            "dense" or "loop"; unset: the one the checkpoint saved (before 2026-12-03: "grouped", slower for
            decoding on a GPU). The tokens are the same, bf16 ties aside
    """
    from coe.decoding import StepDecoder
    from coe.generation import DecodePath, decode_kwargs, decode_path

    prompt = read_prompt(prompt, prompt_file)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise invalid("max_new_tokens", max_new_tokens, "must be a positive integer")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise invalid("temperature", temperature, "must be finite and >= 0 (0: greedy)")
    only_used("generate", "runtime", runtime, ("device", "threads"))
    path = decode_path(decode)  # a bad choice fails before the checkpoint is read
    _, model, tokenizer, dev = open_checkpoint(checkpoint, runtime, expert_backend)
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(dev)
    sample = temperature > 0
    ends = dict(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    if path == DecodePath.LOOP:
        out = StepDecoder(model).generate(
            ids, max_new_tokens=max_new_tokens, do_sample=sample, temperature=temperature or 1.0, **ends
        )
    else:
        out = model.generate(
            ids,
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            **ends,
            **decode_kwargs(decode, dev),
        )
    print(prompt + tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def cmd_analyze(
    checkpoint: str,
    data: DataSpec = DataSpec(synthetic_train=1),
    tokens: int = 4096,
    seq_len: int = 256,
    batch_size: int = 8,
    out: str = "reports/routing",
    runtime: RuntimeSpec = RuntimeSpec(),
) -> None:
    """Routing analysis of a checkpoint over validation tokens: a report directory with analysis.json (every
    number), PNG figures and report.html (expert load, iteration-to-iteration co-selection and re-selection,
    routing paths, router entropy and gate weights, token-kind specialisation).

    Args:
        checkpoint: a checkpoint (step-N, its model/ or any model directory), or a run directory (its
            newest checkpoint is used)
        data: where the validation documents come from (the training split is not used)
        tokens: validation tokens to analyse
        seq_len: tokens per sequence fed to the model
        batch_size: sequences per forward
        out: the report directory
        runtime: the device and CPU threads (the rest is not used)
    """
    from coe.analysis.report import analyze_checkpoint
    from coe.device import configure_threads, resolve_device
    from coe.train.checkpoint import resolve_checkpoint

    only_used("analyze", "runtime", runtime, ("device", "threads"))
    only_used(
        "analyze", "data", data, tuple(f.name for f in dataclasses.fields(data) if f.name != "tokenizer")
    )
    path = resolve_checkpoint(checkpoint)
    configure_threads(runtime.threads)
    report = analyze_checkpoint(
        path,
        out,
        data=data,
        tokens=tokens,
        seq_len=seq_len,
        batch_size=batch_size,
        device=resolve_device(runtime.device),
    )
    print(f"report: {report} (numbers in {report.parent / 'analysis.json'})")


def cmd_explain(
    checkpoint: str,
    text: str,
    jsonl: str | None = None,
    html: str | None = None,
    runtime: RuntimeSpec = RuntimeSpec(),
) -> None:
    """The routing path of every token of a text: for each MoE layer and iteration, the chosen experts and
    their gate weights, printed as a table.

    Args:
        checkpoint: a checkpoint (step-N, its model/ or any model directory), or a run directory (its
            newest checkpoint is used)
        text: the text to route
        jsonl: also write the audit log here: one JSON record per token (id, text, position, and the experts
            and weights of every layer and iteration)
        html: also write an HTML page with the token x (layer, iteration) grid here
        runtime: the device and CPU threads (the rest is not used)
    """
    from rich.console import Console

    from coe.analysis.explain import explain, routes_table, write_html, write_jsonl

    only_used("explain", "runtime", runtime, ("device", "threads"))
    path, model, tokenizer, _ = open_checkpoint(checkpoint, runtime)
    routes = explain(model, tokenizer, text)
    Console().print(routes_table(routes))
    if jsonl:
        print(f"audit log: {write_jsonl(routes, jsonl)}")
    if html:
        print(f"page: {write_html(routes, html, title=f'Routing paths: {path}')}")


def cmd_compare(cfg: CompareConfig) -> None:
    from coe.compare import compare

    if not cfg.report_only:
        refuse_paper_size_on_cpu(cfg.train.model.size, cfg.train.runtime.device, "train.runtime.device")
    report = compare(cfg)
    print(f"report: {report} and {report.with_suffix('.html')}")


def cmd_convert(
    src: str,
    dst: str,
    to: Literal["coe", "reference"] = "coe",
    max_shard_size: str = "5GB",
    overwrite: bool = False,
) -> None:
    """Convert a checkpoint directory (or a run directory's newest checkpoint): the reference CoE format or
    transformers' DeepSeek-V2 format into this library's ("coe"), or this library's into the reference format
    ("reference"). Tensors are streamed one at a time, so paper-size checkpoints convert in little memory.

    Args:
        src: the checkpoint to read (step-N, its model/ or any model directory), or a run directory (its
            newest checkpoint is read)
        dst: the directory to write (written atomically)
        to: "coe" (this library's format) or "reference" (the reference code's)
        max_shard_size: largest safetensors shard written, e.g. "5GB"
        overwrite: replace dst if it exists
    """
    import contextlib

    from coe.checks import FileError
    from coe.convert import convert
    from coe.train.checkpoint import resolve_checkpoint

    with contextlib.suppress(FileError):  # src names no checkpoint: convert says what it lacks
        if (resolved := resolve_checkpoint(src)) != Path(src):
            print(f"converting {resolved}, the model of {src}")
            src = str(resolved)
    print(f"wrote {convert(src, dst, to=to, max_shard_size=max_shard_size, overwrite=overwrite)}")


def cmd_export(
    src: str,
    dst: str,
    dtype: Literal["float32", "bfloat16", "float16"] = "float32",
    max_shard_size: str = "5GB",
    overwrite: bool = False,
) -> None:
    """Write a checkpoint (or a run directory's newest) as a directory to share: config.json with auto_map,
    the modeling code beside it (generated from this library's source), safetensors weights, the tokenizer,
    generation_config.json and a model card. It loads with ``AutoModelForCausalLM.from_pretrained(DIR,
    trust_remote_code=True)`` where coe is not installed; no optimizer state, no pickles.

    Args:
        src: the checkpoint (step-N, its model/ or any model directory), or a run directory (its newest
            checkpoint is exported; the model card takes the run's configuration and summary.json)
        dst: the directory to write (written atomically)
        dtype: the weights' dtype in the export
        max_shard_size: largest safetensors shard written, e.g. "5GB"
        overwrite: replace dst if it exists
    """
    import torch

    from coe.export import export

    written = export(
        src, dst, dtype=getattr(torch, dtype), max_shard_size=max_shard_size, overwrite=overwrite
    )
    print(f"wrote {written}")
