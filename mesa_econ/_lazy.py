"""Public names imported on first access (PEP 562), shared by the package ``__init__``s.

Importing a submodule (the ``mesa-econ`` command's router, config, scenarios) then does not
import Mesa and torch through a package's ``__init__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(namespace: dict[str, Any], table: Mapping[str, str]) -> tuple[
        Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` resolving ``table`` (name → module).

    Args:
        namespace: the module's ``globals()``; a resolved name is cached there.
        table: public name → the module that defines it.
    """
    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
