"""lm-evaluation-harness on a coe checkpoint: ``coe lm-eval ARGS`` or ``python -m coe.lm_eval ARGS`` takes
lm_eval's own command line (``--model hf --model_args pretrained=PATH --tasks ...``) and runs it with coe's
model known to transformers' Auto classes, which is all its ``hf`` model needs.

``pretrained=`` may name a checkpoint (``step-N`` or its ``model/``, which is what is passed on), an export
(:mod:`coe.export`) or a run directory, whose newest checkpoint is taken. ``--model`` defaults to ``hf``.
lm_eval is an optional dependency (``pip install -e ".[lm-eval]"`` in the repository).
"""

from __future__ import annotations

import importlib.util
import re
import sys

_PRETRAINED = re.compile(r"(^|,)pretrained=([^,]+)")


def resolve_model_args(argv: list[str]) -> list[str]:
    """``argv`` with each ``pretrained=RUN_DIR`` or ``pretrained=CHECKPOINT`` of ``--model_args`` (``-a``)
    replaced by the model directory it holds (:func:`coe.train.checkpoint.resolve_checkpoint`: a run's newest
    checkpoint's ``model/``; key=value forms, a JSON mapping is passed on as it is), and ``--model hf`` added
    when no model is named."""
    from coe.checks import FileError
    from coe.train.checkpoint import resolve_checkpoint

    def resolve(match: re.Match) -> str:
        try:
            path = resolve_checkpoint(match.group(2))
        except FileError:  # not a local checkpoint or run: a Hub name, passed on as it is
            path = match.group(2)
        return f"{match.group(1)}pretrained={path}"

    out, in_model_args = [], False
    for arg in argv:
        if arg.startswith("-"):
            flag, eq, value = arg.partition("=")
            in_model_args = flag in ("--model_args", "-a") and not eq
            if flag in ("--model_args", "-a") and eq:
                arg = flag + eq + _PRETRAINED.sub(resolve, value)
        elif in_model_args:
            arg = _PRETRAINED.sub(resolve, arg)
        out.append(arg)
    evaluates = bool(out) and out[0] not in ("ls", "validate", "-h", "--help")
    if evaluates and not any(a.split("=")[0] in ("--model", "-M") for a in out):
        out += ["--model", "hf"]
    return out


def register() -> None:
    """Make coe's config and model classes known to AutoConfig and AutoModelForCausalLM (``import coe`` does
    it once both sides have loaded; this loads them)."""
    from transformers import AutoModelForCausalLM  # noqa: F401

    from coe.modeling import CoEForCausalLM  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Run lm_eval's command line (``lm-eval [run|ls|validate] ...``) with coe registered."""
    if importlib.util.find_spec("lm_eval") is None:
        raise ModuleNotFoundError(
            "coe lm-eval needs lm-evaluation-harness: pip install lm_eval (or the repository's extra: "
            "pip install -e '.[lm-eval]')",
            name="lm_eval",
        )
    from lm_eval.__main__ import cli_evaluate

    register()
    argv = resolve_model_args(list(sys.argv[1:] if argv is None else argv))
    saved = sys.argv
    sys.argv = ["lm-eval", *argv]  # lm_eval's parser reads sys.argv itself
    try:
        cli_evaluate()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
