"""The one style of configuration errors: the option's dotted name, the bad value and what is allowed."""

from __future__ import annotations

from typing import Any


def invalid(name: str, value: Any, allowed: str) -> ValueError:
    """``ValueError("name=value is invalid: allowed")``, e.g. ``optim.lr=-1.0 is invalid: must be > 0``."""
    return ValueError(f"{name}={value!r} is invalid: {allowed}")
