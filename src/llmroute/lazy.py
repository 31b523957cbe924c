"""Public names imported on first use (PEP 562), for a package whose `__init__` must stay light:
`llmroute` (importing one module of the package should not load them all) and `llmroute.ledger`
(the ledger reader process imports the store, not the writer)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, namespace: dict[str, Any], exports: Mapping[str, tuple[str, str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module's `__getattr__` and `__dir__`: `exports` maps a public name to (submodule,
    attribute); the first use imports the submodule and keeps the value in `namespace`."""

    def get(name: str) -> Any:
        try:
            module, attribute = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f".{module}", package), attribute)
        namespace[name] = value  # once
        return value

    def names() -> list[str]:
        return sorted({*namespace, *exports})

    return get, names
