"""chain-of-experts: Chain-of-Experts and MoE language models for PyTorch.

``import coe`` is light (no torch, no transformers): the public names load on first use, so that ``coe
--help`` and ``coe presets`` start in a fraction of a second. CoE registers with transformers' Auto classes as
soon as both sides are loaded, whichever comes first: ``import coe`` then ``AutoModelForCausalLM
.from_pretrained("a-coe-checkpoint")`` works without touching a coe class.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from typing import Any

from coe.lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "CoECausalLMOutput": "coe.modeling",
    "CoEConfig": "coe.config",
    "CoEForCausalLM": "coe.modeling",
    "CoEModel": "coe.modeling",
    "list_presets": "coe.presets",
}

# The model's module and the module of transformers that holds AutoModelForCausalLM: when the second of
# the two has loaded, CoE is registered.
_MODELING, _AUTO = "coe.modeling", "transformers.models.auto.modeling_auto"


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
__all__ = sorted(_LAZY)


def _register() -> None:
    """Register CoEConfig and CoEForCausalLM with transformers' AutoConfig and AutoModelForCausalLM."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from coe.config import CoEConfig
    from coe.modeling import CoEForCausalLM

    AutoConfig.register(CoEConfig.model_type, CoEConfig, exist_ok=True)
    AutoModelForCausalLM.register(CoEConfig, CoEForCausalLM, exist_ok=True)


def _after_load(name: str) -> None:
    if name == _MODELING:
        _register()
    elif _MODELING not in sys.modules:  # else coe.modeling is loaded or loading, and registers when done
        importlib.import_module(_MODELING)


class _Then(importlib.abc.Loader):
    """A module's own loader, then ``_after_load`` once the module has run."""

    def __init__(self, loader: importlib.abc.Loader, name: str):
        self.loader, self.name = loader, name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        _after_load(self.name)

    def __getattr__(self, attr: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self.loader, attr)


class _RegisterWithTransformers(importlib.abc.MetaPathFinder):
    """Finds coe.modeling and transformers' auto-model module as the other finders do, with a loader that
    registers CoE after them (a post-import hook: registering in ``import coe`` would import both)."""

    def find_spec(self, name, path, target=None):
        if name not in (_MODELING, _AUTO):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Then(spec.loader, name)
                return spec
        return None


if _AUTO in sys.modules:  # transformers' Auto classes came first
    _register()
elif not any(type(finder).__name__ == _RegisterWithTransformers.__name__ for finder in sys.meta_path):
    # (by name: a re-imported coe defines the class anew)
    sys.meta_path.insert(0, _RegisterWithTransformers())
