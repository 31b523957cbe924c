"""Frozen dataclasses built without one `object.__setattr__` per field (issue 17).

A frozen dataclass's generated `__init__` stores each field through `object.__setattr__` (the
class's own `__setattr__` refuses): one call through a wrapper descriptor per field, a few hundred
instructions each. `quick_init` gives such a class an `__init__` with the same signature
(positional and keyword-only fields, defaults, default factories) that stores every field with one
update of the instance's `__dict__`, then calls `__post_init__` as the generated one does. Equality,
hashing, `repr`, `replace` and pickling are the dataclass's own and unchanged."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")
_FACTORY = object()  # a parameter's default that says "call the field's default_factory"


def quick_init(cls: type[T]) -> type[T]:
    """`cls` (a frozen dataclass without slots, InitVars or init=False fields) with the faster
    `__init__`; TypeError for any other class."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" in cls.__dict__:
        raise TypeError(f"quick_init needs a frozen dataclass without slots, not {cls.__name__}")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    generated = list(inspect.signature(cls.__init__).parameters)[1:]
    if any(not f.init for f in fields) or sorted(generated) != sorted(f.name for f in fields):
        raise TypeError(f"quick_init: {cls.__name__} has InitVars or init=False fields")
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    fill: list[str] = []
    for f in fields:
        param = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_d_{f.name}"] = f.default
            param += f"=_d_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_f_{f.name}"] = f.default_factory
            param += "=_FACTORY"
            fill.append(f"    if {f.name} is _FACTORY:\n        {f.name} = _f_{f.name}()\n")
        (keyword if f.kw_only else positional).append(param)
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    values = ", ".join(f"{f.name!r}: {f.name}" for f in fields)
    post = "    self.__post_init__()\n" if hasattr(cls, "__post_init__") else ""
    source = (f"def __init__({signature}) -> None:\n{''.join(fill)}"
              f"    self.__dict__.update({{{values}}})\n{post}")
    exec(source, namespace)  # the source is built from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy would refuse assigning to a method
    return cls
