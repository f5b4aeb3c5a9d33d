"""The ``coe`` command: parses arguments, calls the library.

    coe presets                                   list the paper's configurations
    coe train [--config run.yaml] [--steps N ...] train (or resume) one model
    coe eval CHECKPOINT                           validation loss and exact-match accuracy
    coe generate CHECKPOINT "prompt"              greedy (or sampled) continuation
    coe compare [--experiment cpu|paper|F.yaml]  the main job: train several presets, one report
    coe analyze CHECKPOINT [--tokens N --out DIR] routing report: load, co-selection, paths, specialisation
    coe explain CHECKPOINT "text" [--jsonl F]     the routing path of every token of a text
    coe convert SRC DST [--to coe|reference]      reference / DeepSeek-V2 checkpoints in and out

``--help`` on each explains every option; ``coe train`` and ``coe compare`` take ``--print_config``.

Every failure the user can act on ends the same way: one line ``coe <command>: error: <file>: <reason>`` (or
the bad option and what is allowed) on stderr and exit status 2; a non-finite loss exits with 3, SIGINT /
SIGTERM with 130. A traceback means a bug.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

from coe.checks import invalid
from coe.compare import CompareConfig
from coe.data import DataSpec
from coe.experiments import LEGACY_COMPARE_NAMES, legacy_scale, read_experiment, read_yaml, upgrade_experiment
from coe.presets import list_presets
from coe.train.config import LEGACY_NAMES, EvalSpec, RuntimeSpec, TrainConfig, upgrade_legacy

set_parsing_settings(docstring_parse_attribute_docstrings=True)

EXIT_BAD_INPUT, EXIT_NON_FINITE, EXIT_INTERRUPTED = 2, 3, 130


def only_used(command: str, section: str, spec: Any, used: tuple[str, ...]) -> None:
    """The options of a shared section that ``command`` does not use keep their defaults: one given anyway
    fails rather than being ignored."""
    default = type(spec)()
    for option in dataclasses.fields(spec):
        value = getattr(spec, option.name)
        if option.name not in used and value != getattr(default, option.name):
            raise invalid(f"{section}.{option.name}", value, f"coe {command} does not use it")


def resolve_checkpoint(path: str) -> Path:
    """A checkpoint directory, or a run directory (its newest checkpoint)."""
    from coe.train.checkpoint import latest_checkpoint

    p = Path(path)
    if (p / "config.json").is_file():
        return p
    latest = latest_checkpoint(p)
    if latest is None:
        from coe.checks import FileError

        raise FileError(path, "no config.json and no checkpoints: neither a checkpoint nor a run directory")
    return latest


def open_checkpoint(checkpoint: str, runtime: RuntimeSpec):
    """``(path, model, tokenizer, device)`` of a checkpoint (or a run directory's newest): the model in
    float32 and eval mode on the resolved device."""
    import torch

    from coe.data import load_tokenizer
    from coe.device import configure_threads, resolve_device
    from coe.modeling import CoEForCausalLM

    path = resolve_checkpoint(checkpoint)
    dev = resolve_device(runtime.device)
    configure_threads(runtime.threads)
    model = CoEForCausalLM.from_pretrained(path, dtype=torch.float32).to(dev).eval()
    return path, model, load_tokenizer(path), dev


def cmd_presets() -> None:
    """List the named configurations of the paper."""
    from rich.console import Console
    from rich.table import Table

    table = Table("preset", "description")
    for name, description in list_presets().items():
        table.add_row(name, description)
    Console().print(table)


def cmd_train(cfg: TrainConfig) -> None:
    from coe.train.trainer import train

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
) -> None:
    """Validation loss and exact-match accuracy of a checkpoint (or the newest one of a run directory).

    Args:
        checkpoint: a checkpoint directory, or a run directory (its newest checkpoint is used)
        data: where the validation and held-out documents come from (the training split is not used)
        eval: validation batches, held-out problems and generation length (eval.every is not used)
        runtime: the device, precision and CPU threads (the rest is not used)
        seq_len: tokens per validation sequence
        batch_size: sequences per validation batch
    """
    import json

    from coe.data import load_splits, pack_documents, validation_batches
    from coe.device import autocast_dtype
    from coe.evaluate import exact_match, validation_loss
    from coe.train.data import held_out_problems

    only_used("eval", "eval", eval, ("batches", "accuracy_problems", "max_new_tokens"))
    only_used("eval", "runtime", runtime, ("device", "precision", "threads"))
    only_used("eval", "data", data, tuple(f.name for f in dataclasses.fields(data) if f.name != "tokenizer"))
    path, model, tokenizer, dev = open_checkpoint(checkpoint, runtime)
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
            model, tokenizer, held_out, max_new_tokens=eval.max_new_tokens, amp_dtype=amp
        )
        result["accuracy_problems"] = len(held_out)
    print(json.dumps(result, indent=2))


def cmd_generate(
    checkpoint: str,
    prompt: str,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    runtime: RuntimeSpec = RuntimeSpec(),
) -> None:
    """Continue ``prompt`` with a checkpoint: greedy when temperature is 0, sampled otherwise.

    Args:
        checkpoint: a checkpoint directory, or a run directory (its newest checkpoint is used)
        prompt: the text to continue
        max_new_tokens: tokens to generate at most
        temperature: 0 for greedy decoding, > 0 to sample at this temperature
        runtime: the device and CPU threads (the rest is not used)
    """
    if not prompt:
        raise invalid("prompt", prompt, "must not be empty: the model continues a text")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise invalid("max_new_tokens", max_new_tokens, "must be a positive integer")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise invalid("temperature", temperature, "must be finite and >= 0 (0: greedy)")
    only_used("generate", "runtime", runtime, ("device", "threads"))
    _, model, tokenizer, dev = open_checkpoint(checkpoint, runtime)
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(dev)
    sample = temperature > 0
    out = model.generate(
        ids,
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        temperature=temperature if sample else None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
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
        checkpoint: a checkpoint directory, or a run directory (its newest checkpoint is used)
        data: where the validation documents come from (the training split is not used)
        tokens: validation tokens to analyse
        seq_len: tokens per sequence fed to the model
        batch_size: sequences per forward
        out: the report directory
        runtime: the device and CPU threads (the rest is not used)
    """
    from coe.analysis.report import analyze_checkpoint
    from coe.device import configure_threads, resolve_device

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
        checkpoint: a checkpoint directory, or a run directory (its newest checkpoint is used)
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

    report = compare(cfg)
    print(f"report: {report} and {report.with_suffix('.html')}")


def cmd_convert(
    src: str,
    dst: str,
    to: Literal["coe", "reference"] = "coe",
    max_shard_size: str = "5GB",
    overwrite: bool = False,
) -> None:
    """Convert a checkpoint directory: the reference CoE format or transformers' DeepSeek-V2 format into this
    library's ("coe"), or this library's into the reference format ("reference"). Tensors are streamed one
    at a time, so paper-size checkpoints convert in little memory.

    Args:
        src: the checkpoint directory to read
        dst: the directory to write (written atomically)
        to: "coe" (this library's format) or "reference" (the reference code's)
        max_shard_size: largest safetensors shard written, e.g. "5GB"
        overwrite: replace dst if it exists
    """
    from coe.convert import convert

    print(f"wrote {convert(src, dst, to=to, max_shard_size=max_shard_size, overwrite=overwrite)}")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="coe", description=__doc__.split("\n\n")[0])
    commands = parser.add_subcommands(dest="command")

    presets = ArgumentParser(description=cmd_presets.__doc__)
    commands.add_subcommand("presets", presets, help="list the paper's configurations")

    train = ArgumentParser(
        description="Train (or resume with --checkpoint.resume true) one model; every option "
        "can also come from a YAML file given with --config."
    )
    train.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options")
    train.add_class_arguments(TrainConfig, None)
    commands.add_subcommand("train", train, help="train one model")

    for name, fn, help_ in (
        ("eval", cmd_eval, "validation loss and accuracy of a checkpoint"),
        ("generate", cmd_generate, "continue a prompt with a checkpoint"),
        ("convert", cmd_convert, "convert checkpoints between formats"),
        ("analyze", cmd_analyze, "routing report of a checkpoint over validation tokens"),
        ("explain", cmd_explain, "the routing path of every token of a text"),
    ):
        sub = ArgumentParser(description=fn.__doc__)
        sub.add_function_arguments(fn, None, as_positional=True)
        commands.add_subcommand(name, sub, help=help_)

    compare = ArgumentParser(
        description="The main job: train several presets on the same data, seeds and "
        "token budget, then write report.md / report.html with loss curves. "
        "--experiment picks the experiment (cpu, the default; paper; or a "
        "YAML file); the other options override it."
    )
    compare.add_argument(
        "--experiment",
        action=ActionConfigFile,
        help="the experiment: a shipped one (cpu, the default; paper) or a YAML file of these options (it "
        "may start from a shipped one with 'base: paper'); it applies first, whatever its place on the "
        "command line. --config FILE: a YAML file of options applied on top of it.",
    )
    compare.add_class_arguments(CompareConfig, None)
    commands.add_subcommand("compare", compare, help="train MoE and CoE side by side, one report")
    return parser


# Renamed options of each command: old flag -> new flag (the old ones still work, with a deprecation message).
LEGACY_FLAGS = {
    "train": LEGACY_NAMES,
    "compare": LEGACY_COMPARE_NAMES,  # and --scale NAME: --experiment, see upgrade_argv
    "eval": {
        "batches": "eval.batches",
        "problems": "eval.accuracy_problems",
        "max_new_tokens": "eval.max_new_tokens",
        "device": "runtime.device",
    },
    "generate": {"device": "runtime.device"},
    "analyze": {"device": "runtime.device"},
    "explain": {"device": "runtime.device"},
}


def upgrade_argv(argv: list[str]) -> list[str]:
    """The command line as the parser reads it: renamed flags in their new spelling (a deprecation warning
    for each), --config files' legacy keys upgraded and, for `coe compare`, the experiment (--experiment,
    the cpu one by default) first and --config files after it as overrides. Nothing after ``--`` is
    touched."""
    if not argv or argv[0] not in LEGACY_FLAGS:
        return argv
    command, args = argv[0], list(argv[1:])
    tail = args[args.index("--") :] if "--" in args else []
    args = [_new_spelling(command, arg) for arg in args[: len(args) - len(tail)]]
    experiment = "cpu"
    out = []
    while args:
        flag, eq, value = args.pop(0).partition("=")
        if flag not in ("--config", "--experiment", "--scale") or not (eq or args):
            out.append(flag + eq + value)
            continue
        value = value if eq else args.pop(0)
        if command == "compare" and flag in ("--experiment", "--scale"):
            experiment = legacy_scale(value) if flag == "--scale" else value
            continue
        out += ["--experiment" if command == "compare" else flag, _config_text(command, value)]
    if command == "compare":
        out = ["--experiment", yaml.safe_dump(read_experiment(experiment), sort_keys=False), *out]
    return [command, *out, *tail]


def _new_spelling(command: str, arg: str) -> str:
    """``arg`` with a renamed flag of ``command`` in its new spelling (``--eval_every=2`` ->
    ``--eval.every=2``;
    ``--data.source`` of `coe compare` -> ``--train.data.source``)."""
    flag, eq, value = arg.partition("=")
    head, dot, rest = flag[2:].partition(".") if flag.startswith("--") else ("", "", "")
    renames = LEGACY_FLAGS[command]
    # A renamed flat flag, or a renamed section's sub-option (only `data` of compare is a section).
    if head not in renames or (dot and head != "data"):
        return arg
    new = renames[head] + dot + rest
    logging.getLogger(__name__).warning("coe %s: --%s is deprecated, use --%s", command, flag[2:], new)
    return f"--{new}{eq}{value}"


def _config_text(command: str, value: str) -> str:
    """A --config file's options in today's spelling, as YAML text (a value that is not a file is left to the
    parser, which reports it or reads it as inline YAML)."""
    if not Path(value).is_file():
        return value
    mapping = read_yaml(value)
    upgraded = (
        upgrade_experiment(mapping, where=value)
        if command == "compare"
        else upgrade_legacy(mapping, where=value)
    )
    return yaml.safe_dump(upgraded, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    """Run a ``coe`` command; the exit status. The one error boundary: see the module's docstring."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    try:
        argv = upgrade_argv(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        ns = parser.instantiate(args)[command]  # builds the config dataclasses: their checks run here
        options = {k: getattr(ns, k) for k in ns.as_dict() if k not in ("config", "experiment", "__path__")}
        if command == "presets":
            cmd_presets()
        elif command == "train":
            cmd_train(TrainConfig(**options))
        elif command == "compare":
            cmd_compare(CompareConfig(**options))
        else:
            fn = {
                "eval": cmd_eval,
                "generate": cmd_generate,
                "convert": cmd_convert,
                "analyze": cmd_analyze,
                "explain": cmd_explain,
            }[command]
            fn(**options)
    except BaseException as e:  # sorted by _failure; anything else is re-raised
        failure = _failure(e)
        if failure is None:
            raise
        code, message = failure
        print(f"coe {command}: {message}", file=sys.stderr)
        return code
    return 0


def _failure(e: BaseException) -> tuple[int, str] | None:
    """The exit status and message of an error the user can act on; None for a bug (its traceback shows)
    and for SystemExit. Library modules are looked up only when already imported: `coe presets` does not
    import torch to report a bad option."""

    def raised(module: str, name: str) -> bool:
        cls = getattr(sys.modules.get(module), name, None)
        return isinstance(cls, type) and isinstance(e, cls)

    if isinstance(e, SystemExit):
        return None
    if raised("coe.train.trainer", "TrainingInterrupted"):
        return EXIT_INTERRUPTED, f"interrupted: {e}"
    if isinstance(e, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if raised("coe.train.checkpoint", "NonFiniteError"):
        return EXIT_NON_FINITE, f"error: {e}"
    if raised("torch.distributed.checkpoint.api", "CheckpointException"):
        first = next(iter(e.failures.values()), (None,))[0]  # the first rank's own exception
        return EXIT_BAD_INPUT, f"error: distributed checkpoint: {first if first is not None else e}"
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        return EXIT_BAD_INPUT, f"error: {where}{e.strerror or e}"
    if isinstance(e, ValueError | yaml.YAMLError) or raised("safetensors", "SafetensorError"):
        return EXIT_BAD_INPUT, f"error: {e}"
    return None


if __name__ == "__main__":
    sys.exit(main())
