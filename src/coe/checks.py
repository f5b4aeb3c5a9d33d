"""The one style of configuration errors (the option's dotted name, the bad value and what is allowed), the
one style of errors in files (the file, then what is wrong with it), and configuration sections built from
mappings such as YAML files give."""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any


def invalid(name: str, value: Any, allowed: str) -> ValueError:
    """``ValueError("name=value is invalid: allowed")``, e.g. ``optim.lr=-1.0 is invalid: must be > 0``."""
    return ValueError(f"{name}={value!r} is invalid: {allowed}")


class FileError(ValueError):
    """A file that cannot be used as it is (truncated, missing, not what it should hold): the message is
    ``"<file>: <reason>"``, and ``file`` names it."""

    def __init__(self, file: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = str(file)
        self.reason = reason


def from_dict(cls: type, mapping: Any, *, name: str = "") -> Any:
    """The dataclass ``cls`` built from ``mapping``, nested dataclasses from nested mappings. A key that is
    not an option fails with the options there are; ``name`` is the section's dotted name for messages."""
    if not isinstance(mapping, dict):
        raise invalid(name or cls.__name__, mapping, f"must be a mapping of {cls.__name__}'s options")
    hints = typing.get_type_hints(cls)
    options = [f.name for f in dataclasses.fields(cls)]
    for key in mapping:
        if key not in options:
            where = f"{name}.{key}" if name else key
            raise invalid(where, mapping[key], f"not an option; the options here are: {', '.join(options)}")
    kwargs = {}
    for key, value in mapping.items():
        kind = _dataclass_of(hints[key])
        nested = kind is not None and isinstance(value, dict)
        kwargs[key] = from_dict(kind, value, name=f"{name}.{key}" if name else key) if nested else value
    return cls(**kwargs)


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass a field's type names (``X`` or ``X | None``), else None."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None
