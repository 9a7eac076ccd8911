"""Names of a package imported from their modules when first used (PEP 562)."""

from __future__ import annotations

import importlib
import sys


def exports(package: str, names: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for ``package``, where ``names`` maps each name to its module."""

    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__
