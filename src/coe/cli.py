"""The ``coe`` command: parses arguments, calls the library.

    coe presets                                   list the paper's configurations
    coe train [--config run.yaml] [--steps N ...] train (or resume) one model
    coe eval CHECKPOINT                           validation loss and exact-match accuracy
    coe generate CHECKPOINT "prompt"|-            greedy (or sampled) continuation (--prompt_file F)
    coe compare [--experiment cpu|paper|F.yaml]  the main job: train several presets, one report
    coe analyze CHECKPOINT [--tokens N --out DIR] routing report: load, co-selection, paths, specialisation
    coe explain CHECKPOINT "text" [--jsonl F]     the routing path of every token of a text
    coe convert SRC DST [--to coe|reference]      reference / DeepSeek-V2 checkpoints in and out
    coe export CHECKPOINT DIR                     a Hub-ready directory that loads without coe installed
    coe lm-eval --model_args pretrained=CKPT ...  lm-evaluation-harness, its own options (coe.lm_eval)

``--help`` on each explains every option; ``coe train`` and ``coe compare`` take ``--print_config``. What each
command does is in ``coe.commands``; this module imports it (and torch with it) only for a command that needs
it, so that ``coe --help`` and ``coe presets`` start at once.

Every failure the user can act on ends the same way: one line ``coe <command>: error: <file>: <reason>`` (or
the bad option and what is allowed) on stderr and exit status 2; a command line the parser rejects adds a
second line, where to find the options; a non-finite loss exits with 3, SIGINT / SIGTERM with 130. A traceback
means a bug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

from coe.presets import list_presets

set_parsing_settings(docstring_parse_attribute_docstrings=True)

EXIT_BAD_INPUT, EXIT_NON_FINITE, EXIT_INTERRUPTED = 2, 3, 130


def cmd_presets() -> None:
    """List the named configurations of the paper."""
    from rich.console import Console
    from rich.table import Table

    table = Table("preset", "description")
    for name, description in list_presets().items():
        table.add_row(name, description)
    Console().print(table)


# Each command and its line in `coe --help`.
COMMANDS = {
    "presets": "list the paper's configurations",
    "train": "train one model",
    "eval": "validation loss and accuracy of a checkpoint",
    "generate": "continue a prompt with a checkpoint",
    "convert": "convert checkpoints between formats",
    "analyze": "routing report of a checkpoint over validation tokens",
    "explain": "the routing path of every token of a text",
    "compare": "train MoE and CoE side by side, one report",
    "export": "a checkpoint as a Hub-ready directory (loads without coe)",
    "lm-eval": "lm-evaluation-harness on a checkpoint (lm_eval's options)",
}


def build_parser(command: str | None = None) -> ArgumentParser:
    """The parser of `coe`, with the options of ``command`` only: the other commands are listed, without
    options (building a command's options imports the configuration it names, and with it torch). None: no
    command's options, as ``coe --help`` needs. Parse errors raise ``argparse.ArgumentError``; ``main``
    reports them."""
    parser = ArgumentParser(prog="coe", description=__doc__.split("\n\n")[0], exit_on_error=False)
    subcommands = parser.add_subcommands(dest="command")
    for name, help_ in COMMANDS.items():
        sub = _command_parser(name) if name == command else ArgumentParser(exit_on_error=False)
        subcommands.add_subcommand(name, sub, help=help_)
    return parser


def _command_parser(command: str) -> ArgumentParser:
    if command == "presets":
        return ArgumentParser(description=cmd_presets.__doc__, exit_on_error=False)
    from coe.compare import CompareConfig
    from coe.train.config import TrainConfig

    if command == "train":
        train = ArgumentParser(
            description="Train (or resume with --checkpoint.resume true) one model; every option "
            "can also come from a YAML file given with --config.",
            exit_on_error=False,
        )
        train.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options")
        train.add_class_arguments(TrainConfig, None)
        return train
    if command == "compare":
        compare = ArgumentParser(
            description="The main job: train several presets on the same data, seeds and "
            "token budget, then write report.md / report.html with loss curves. "
            "--experiment picks the experiment (cpu, the default; paper; or a "
            "YAML file); the other options override it.",
            exit_on_error=False,
        )
        compare.add_argument(
            "--experiment",
            action=ActionConfigFile,
            help="the experiment: a shipped one (cpu, the default; paper) or a YAML file of these options "
            "(it may start from a shipped one with 'base: paper'); it applies first, whatever its place on "
            "the command line. --config FILE: a YAML file of options applied on top of it.",
        )
        compare.add_class_arguments(CompareConfig, None)
        return compare
    from coe import commands  # the other commands' options are their functions' arguments (torch with them)

    fn = getattr(commands, f"cmd_{command}")
    sub = ArgumentParser(description=fn.__doc__, exit_on_error=False)
    if command == "generate":  # the prompt: positional but optional (--prompt_file instead)
        sub.add_function_arguments(fn, None, as_positional=True, skip={"prompt"})
        sub.add_argument(
            "prompt",
            nargs="?",
            default=None,
            help="the text to continue; \\n, \\t and \\\\ in it are a newline, a tab and a backslash; - "
            "reads it from standard input",
        )
    else:
        sub.add_function_arguments(fn, None, as_positional=True)
    return sub


def legacy_flags(command: str) -> dict[str, str]:
    """Renamed options of ``command``: old flag -> new flag (the old ones still work, with a deprecation
    message)."""
    if command == "train":
        from coe.train.config import LEGACY_NAMES

        return LEGACY_NAMES
    if command == "compare":  # and --scale NAME: --experiment, see upgrade_argv
        from coe.experiments import LEGACY_COMPARE_NAMES

        return LEGACY_COMPARE_NAMES
    if command == "eval":
        return {
            "batches": "eval.batches",
            "problems": "eval.accuracy_problems",
            "max_new_tokens": "eval.max_new_tokens",
            "device": "runtime.device",
        }
    return {"device": "runtime.device"}


LEGACY_COMMANDS = ("train", "compare", "eval", "generate", "analyze", "explain")


def upgrade_argv(argv: list[str]) -> list[str]:
    """The command line as the parser reads it: renamed flags in their new spelling (a deprecation warning
    for each), --config files' legacy keys upgraded and, for `coe compare`, the experiment (--experiment,
    the cpu one by default) first and --config files after it as overrides. Nothing after ``--`` is
    touched."""
    if not argv or argv[0] not in LEGACY_COMMANDS:
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
            from coe.experiments import legacy_scale

            experiment = legacy_scale(value) if flag == "--scale" else value
            continue
        out += ["--experiment" if command == "compare" else flag, _config_text(command, value)]
    if command == "compare":
        from coe.experiments import read_experiment

        out = ["--experiment", yaml.safe_dump(read_experiment(experiment), sort_keys=False), *out]
    return [command, *out, *tail]


def _new_spelling(command: str, arg: str) -> str:
    """``arg`` with a renamed flag of ``command`` in its new spelling (``--eval_every=2`` ->
    ``--eval.every=2``;
    ``--data.source`` of `coe compare` -> ``--train.data.source``)."""
    flag, eq, value = arg.partition("=")
    head, dot, rest = flag[2:].partition(".") if flag.startswith("--") else ("", "", "")
    renames = legacy_flags(command)
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
    from coe.experiments import read_yaml, upgrade_experiment
    from coe.train.config import upgrade_legacy

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
    command = argv[0] if argv and argv[0] in COMMANDS else None
    if command == "lm-eval":  # lm_eval parses its own options and reports their errors
        from coe.lm_eval import main as lm_eval_main

        try:
            lm_eval_main(argv[1:])
        except ModuleNotFoundError as e:
            if e.name != "lm_eval":
                raise
            print(f"coe lm-eval: error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return 0
    try:
        argv = upgrade_argv(argv)
        parser = build_parser(command)
        args = parser.parse_args(argv)
        ns = parser.instantiate(args)[command]  # builds the config dataclasses: their checks run here
        options = {k: getattr(ns, k) for k in ns.as_dict() if k not in ("config", "experiment", "__path__")}
        if command == "presets":
            cmd_presets()
        else:
            run_command(command, options)
    except BaseException as e:  # sorted by _failure; anything else is re-raised
        failure = _failure(e)
        if failure is None:
            raise
        code, message = failure
        prog = f"coe {command}" if command else "coe"
        print(f"{prog}: {message}", file=sys.stderr)
        if isinstance(e, argparse.ArgumentError):  # the options are in the help, not repeated here
            print(f"see `{prog} --help`", file=sys.stderr)
        return code
    return 0


def run_command(command: str, options: dict) -> None:
    """Run a command other than presets with its parsed options."""
    from coe import commands

    if command == "train":
        commands.cmd_train(commands.TrainConfig(**options))
    elif command == "compare":
        commands.cmd_compare(commands.CompareConfig(**options))
    else:
        getattr(commands, f"cmd_{command}")(**options)


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
    if isinstance(e, argparse.ArgumentError):  # jsonargparse's messages may span lines: one line here
        return EXIT_BAD_INPUT, "error: " + " ".join(line.strip() for line in str(e).splitlines())
    if isinstance(e, ValueError | yaml.YAMLError) or raised("safetensors", "SafetensorError"):
        return EXIT_BAD_INPUT, f"error: {e}"
    return None


if __name__ == "__main__":
    sys.exit(main())
