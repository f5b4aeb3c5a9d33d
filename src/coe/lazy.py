"""Names a package exposes but imports on first use, so that importing the package stays light (``coe`` and
``coe.data`` without torch or transformers: ``coe --help`` starts in a fraction of a second)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_attributes(
    package: str, where: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` (its ``__name__``, already in sys.modules
    while it runs) for the names of ``where`` (name -> the module that defines it). A name is imported on
    first use and kept in the package's namespace, so later lookups do not reach ``__getattr__``."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(where[name]), name)
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
