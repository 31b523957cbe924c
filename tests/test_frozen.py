"""`frozen.quick_init`: the same constructor as the frozen dataclass's generated one (signature,
defaults, factories, keyword-only fields, `__post_init__`, errors), storing the fields in one
update; and the hot path's classes that use it."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from llmroute.chat import ChatRequest
from llmroute.frozen import quick_init
from llmroute.ledger.entry import AttemptRecord
from llmroute.outcome import Plan
from llmroute.providers.http import Reply
from llmroute.resilience import Attempt
from llmroute.types import Usage


def _pair() -> tuple[type[Any], type[Any]]:
    def make() -> type[Any]:
        @dataclass(frozen=True)
        class Thing:
            name: str
            count: int = 0
            tags: list[str] = field(default_factory=list)
            label: str = field(default="x", kw_only=True)
            checked: list[str] = field(default_factory=list, kw_only=True)

            def __post_init__(self) -> None:
                if self.count < 0:
                    raise ValueError("count must not be negative")
                self.checked.append(self.name)

        return Thing

    return make(), quick_init(make())


def test_the_signature_is_the_generated_ones() -> None:
    plain, quick = _pair()
    ours = list(inspect.signature(quick.__init__).parameters.values())
    theirs = list(inspect.signature(plain.__init__).parameters.values())
    assert [(p.name, p.kind) for p in ours] == [(p.name, p.kind) for p in theirs]
    plain_defaults = [p.default for p in theirs if p.name in ("count", "label")]
    assert [p.default for p in ours if p.name in ("count", "label")] == plain_defaults == [0, "x"]


@pytest.mark.parametrize(("args", "kwargs"), [(("a",), {}), (("a", 2, ["t"]), {"label": "y"}),
                                              ((), {"name": "b", "count": 3})])
def test_it_builds_what_the_dataclass_builds(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    plain, quick = _pair()
    a, b = plain(*args, **kwargs), quick(*args, **kwargs)
    assert vars(a) == vars(b) and list(vars(a)) == list(vars(b))
    assert repr(a).split("(", 1)[1] == repr(b).split("(", 1)[1]
    assert b.checked == [b.name]  # __post_init__ ran
    assert quick("a").tags is not quick("a").tags  # a fresh default per instance
    assert dataclasses.replace(b, count=5).count == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.name = "z"


def test_the_same_errors() -> None:
    plain, quick = _pair()
    for cls in (plain, quick):
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls("a", 1, [], "positional label")
        with pytest.raises(TypeError):
            cls("a", nope=1)
        with pytest.raises(ValueError, match="negative"):
            cls("a", -1)


def test_only_frozen_dataclasses_without_slots() -> None:
    @dataclass
    class Mutable:
        x: int

    @dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    @dataclass(frozen=True)
    class NotInit:
        x: int
        y: int = field(default=0, init=False)

    for cls in (Mutable, Slotted, NotInit, int):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_the_hot_paths_classes_build_as_before() -> None:
    usage = Usage(3, 5, 1)
    assert pickle.loads(pickle.dumps(usage)) == usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
            usage.cache_write_tokens) == (3, 5, 1, 0)
    req = ChatRequest(model="auto", body={"messages": []})
    assert req.metadata == {} and req.metadata is not ChatRequest("auto", {}).metadata
    attempt = Attempt("m", 1, None, latency_s=0.5)
    assert AttemptRecord.from_attempt(attempt) == AttemptRecord("m", None, "", None, 0.5)
    assert Reply(200, {}, b"x").content == b"x"
    fields = {f.name for f in dataclasses.fields(Plan)}
    assert "chain" in fields and "__init__" in vars(Plan)


def test_the_decisions_choice_builds_as_before() -> None:
    """cut17e: `learn.policy.Choice` (one a routing decision) uses `quick_init`: the same fields
    in order, equality, hash, repr, frozenness and pickling as the dataclass's own constructor
    gave (rebuilt here from the same fields)."""
    from llmroute.learn.policy import Choice

    for cls, args in ((Choice, (2, 0.75, 0.125)),):
        names = [f.name for f in dataclasses.fields(cls)]
        fields = {"__annotations__": dict.fromkeys(names, object)}
        plain = dataclass(frozen=True)(type(cls.__name__, (), fields))
        quick, before = cls(*args), plain(*args)
        assert "__dict__" in cls.__init__.__code__.co_names  # quick_init's: one __dict__ update
        assert list(vars(quick).items()) == list(vars(before).items())
        assert repr(quick).split("(", 1)[1] == repr(before).split("(", 1)[1]
        assert quick == cls(*args) and pickle.loads(pickle.dumps(quick)) == quick
        with pytest.raises(dataclasses.FrozenInstanceError):
            quick.__setattr__(names[0], None)
    assert hash(Choice(2, 0.75, 0.125)) == hash((2, 0.75, 0.125))
    with pytest.raises(TypeError):
        Choice(1, 0.5)  # type: ignore[call-arg]
