"""Property tests of the config loader: whatever YAML document or mapping a user writes (and
whatever `LLMROUTE__` overrides the environment holds), `llmroute.config.load` returns Settings or
raises a ConfigError listing problems with paths, never another exception; `check` agrees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmroute.config import check, load
from llmroute.errors import ConfigError
from llmroute.settings import Settings

SECTIONS = ["models", "tiers", "rules", "policies", "routing", "catalog", "providers",
            "resilience", "server", "keys", "ledger", "state", "control", "limits",
            "experiments", "alerts", "learning", "nonsense"]
KEYS = ["model", "fallbacks", "router", "type", "base_url", "name", "hash", "tier", "port",
        "max_body_bytes", "max_messages", "header_timeout_s", "deadline_s", "enabled", "url",
        "stages", "threshold", "window", "scope", "amount_usd", "default_policy", "keywords",
        "retry", "max_attempts", "cooldown", "input_per_m", "context_window", "arms", "x"]
SCALARS = (st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=True)
           | st.text(max_size=10) | st.sampled_from(["fake/a", "simple", "rules", "openai",
                                                    "http://x", "1e3", "-1", "inf", "~"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner,
                                        max_size=4), max_leaves=10)
DOCUMENTS = st.dictionaries(st.sampled_from(SECTIONS), VALUES, max_size=4)
ENVIRON = st.dictionaries(
    st.sampled_from(["LLMROUTE__SERVER__PORT", "LLMROUTE__SERVER__MAX_MESSAGES",
                     "LLMROUTE__RESILIENCE__DEADLINE_S", "LLMROUTE__LEDGER__ENABLED",
                     "LLMROUTE__ROUTING__DEFAULT_POLICY", "LLMROUTE__NOPE", "LLMROUTE__",
                     "LLMROUTE__TIERS__SIMPLE__MODEL"]),
    st.text(max_size=6) | st.sampled_from(["1", "true", "[1, 2]", "{a: 1}", "-3", ""]),
    max_size=2)
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz") / "llmroute.yaml"


def outcome(path: Path, environ: dict[str, str]) -> Settings | ConfigError:
    """What `load` gives: Settings, or the ConfigError (any other exception fails the test)."""
    try:
        loaded = load(path, environ=environ)
    except ConfigError as exc:
        assert exc.problems and all(p.message for p in exc.problems), exc
        assert check(path, environ=environ).settings is None
        return exc
    assert isinstance(loaded, Settings)
    return loaded


@FUZZ
@given(text=st.text(max_size=80) | st.sampled_from(
    ["{", "tiers: [", "- a\n- b", ": :", "!!python/object:os.system x", "a: &x [*x]", "\t",
     "server:\n  port: 99999", "keys: {}", "---\n---\n", "null", "0"]))
def test_any_text_is_settings_or_a_config_error(config_file: Path, text: str) -> None:
    config_file.write_text(text, encoding="utf-8")
    outcome(config_file, {})


@FUZZ
@given(document=DOCUMENTS, environ=ENVIRON)
def test_any_document_is_settings_or_a_config_error(config_file: Path, document: dict[str, Any],
                                                    environ: dict[str, str]) -> None:
    config_file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    outcome(config_file, environ)


def test_a_wrong_input_limit_is_a_config_error_naming_it(config_file: Path) -> None:
    config_file.write_text("server: {max_messages: 0, header_timeout_s: -1}\n")
    error = outcome(config_file, {})
    assert isinstance(error, ConfigError)
    assert {p.path for p in error.problems} >= {"server.max_messages", "server.header_timeout_s"}


def test_a_recursive_yaml_alias_is_a_config_error(config_file: Path) -> None:
    # found by the fuzzing above: it used to end in a RecursionError
    config_file.write_text("tiers: &x\n  simple: [*x]\n")
    error = outcome(config_file, {})
    assert isinstance(error, ConfigError) and "alias" in str(error)
