"""Experiment config: sticky, stable, weighted assignment; the ledger label; the kill switch and end
date; validation; reading experiments from settings."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from llmroute.control.experiments import (
    ExperimentConfig,
    arm_label,
    assign,
    experiments_of,
    is_active,
    parse_arm_label,
    unit_fraction,
    validate,
)


def experiment(**changes: Any) -> ExperimentConfig:
    fields: dict[str, Any] = {
        "name": "cheap-vs-default", "control": "base",
        "arms": {"base": {"policy": "default", "weight": 1}, "cheap": {"policy": "cheap", "weight": 3}},
    }
    return ExperimentConfig.model_validate({**fields, **changes})


def test_unit_fraction_is_sha256_of_name_and_unit() -> None:
    digest = hashlib.sha256(b"cheap-vs-default:bob").digest()
    assert unit_fraction("cheap-vs-default", "bob") == int.from_bytes(digest[:8], "big") / 2**64
    assert unit_fraction("cheap-vs-default", "bob") == pytest.approx(0.1079243, abs=1e-7)


def test_assignment_is_pinned_by_the_hash() -> None:
    # fractions: bob 0.108, user-2 0.419, alice 0.520, user-3 0.693, user-1 0.990;
    # weights 1:3 put base on [0, 0.25) and cheap on [0.25, 1)
    exp = experiment()
    assert {u: assign(exp, u) for u in ("bob", "user-2", "alice", "user-1")} == {
        "bob": "base", "user-2": "cheap", "alice": "cheap", "user-1": "cheap"}
    even = experiment(arms={"base": {"policy": "default"}, "cheap": {"policy": "cheap"}})
    assert (assign(even, "user-2"), assign(even, "alice")) == ("base", "cheap")


def test_assignment_is_the_same_in_another_process() -> None:
    units = [f"user-{i}" for i in range(50)]
    here = [assign(experiment(), u) for u in units]
    code = ("from llmroute.control.experiments import ExperimentConfig, assign\n"
            "e = ExperimentConfig.model_validate({'name': 'cheap-vs-default', 'control': 'base', "
            "'arms': {'base': {'policy': 'default', 'weight': 1}, "
            "'cheap': {'policy': 'cheap', 'weight': 3}}})\n"
            f"print(','.join(assign(e, u) for u in {units!r}))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "12345"}).stdout.strip().split(",")
    assert there == here


def test_weights_set_the_proportions_and_shadow_arms_get_none() -> None:
    exp = experiment(arms={"base": {"policy": "default", "weight": 2},
                           "cheap": {"policy": "cheap", "weight": 1},
                           "mid": {"policy": "mid", "weight": 1},
                           "ghost": {"policy": "llm", "weight": 5, "shadow": True}})
    counts = Counter(assign(exp, f"unit-{i}") for i in range(40_000))
    assert set(counts) == {"base", "cheap", "mid"}
    for arm, share in {"base": 0.5, "cheap": 0.25, "mid": 0.25}.items():
        assert counts[arm] / 40_000 == pytest.approx(share, abs=0.01)
        assert exp.share(arm) == share
    assert exp.share("ghost") == 0.0 and exp.served_arms == ("base", "cheap", "mid")


def test_other_experiments_split_independently() -> None:
    a, b = experiment(), experiment(name="other")
    together = Counter((assign(a, f"u{i}"), assign(b, f"u{i}")) for i in range(8000))
    # independent hashes: P(base, base) = 1/4 · 1/4
    assert together[("base", "base")] / 8000 == pytest.approx(1 / 16, abs=0.01)


def test_labels() -> None:
    assert arm_label("cheap-vs-default", "cheap") == "cheap-vs-default:cheap"
    assert parse_arm_label("cheap-vs-default:cheap") == ("cheap-vs-default", "cheap")
    for bad in (None, "", "no-colon", ":arm", "exp:"):
        assert parse_arm_label(bad) is None


def test_kill_switch_and_end_date() -> None:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    assert is_active(experiment(), now)
    assert not is_active(experiment(enabled=False), now)
    ends = experiment(ends="2025-03-01T00:00:00")  # naive: read as UTC
    assert ends.ends == now and not is_active(ends, now)
    assert is_active(ends, now - timedelta(seconds=1))


@pytest.mark.parametrize(("changes", "message"), [
    ({"control": "nope"}, "control 'nope' is not one of the arms"),
    ({"arms": {"base": {"policy": "default"}}}, "at least two arms"),
    ({"arms": {"base": {"policy": "d"}, "a:b": {"policy": "c"}}}, "no ':'"),
    ({"arms": {"base": {"policy": "d", "shadow": True}, "b": {"policy": "c"}}}, "shadow"),
    ({"arms": {"base": {"policy": "d", "weight": 0}, "b": {"policy": "c"}}}, "greater than 0"),
    ({"name": "a:b"}, "pattern"),
    ({"surprise": 1}, "Extra inputs"),
])
def test_invalid_configs(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        experiment(**changes)


def test_validate_names_unknown_policies() -> None:
    problems = validate(experiment(), {"default"}, "experiments[0]")
    assert [(p.path, p.message) for p in problems] == [
        ("experiments[0].cheap-vs-default.arms.cheap.policy", "unknown policy 'cheap'")]
    assert validate(experiment(), {"default", "cheap"}) == []


def test_experiments_of_reads_lists_mappings_and_nothing() -> None:
    exp = experiment()
    assert experiments_of(SimpleNamespace()) == {}
    assert experiments_of(SimpleNamespace(experiments=(exp,))) == {"cheap-vs-default": exp}
    raw = {"x": {"control": "base", "arms": {"base": {"policy": "d"}, "b": {"policy": "c"}}}}
    assert experiments_of(SimpleNamespace(experiments=raw))["x"].control == "base"
    with pytest.raises(ValueError, match="invalid"):
        experiments_of(SimpleNamespace(experiments={"x": {"control": "base", "arms": {}}}))
