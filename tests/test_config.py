"""Tests of configuration loading: finding the file, defaults, merge rules, env overrides, and every
kind of problem `check` reports (with its key path and hint) and `load` refuses."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pydantic
import pytest

from helpers import check_yaml, default_settings, load_yaml, write_yaml
from llmroute import config
from llmroute.config_text import apply_env_overrides, merge_over_defaults
from llmroute.errors import ConfigError, ConfigProblem, LLMRouteError

THREE_TIERS = """
tiers:
  simple: {model: openai/gpt-4o-mini}
  medium: {model: openai/gpt-4.1-mini}
  complex: {model: anthropic/claude-sonnet-4-5}
"""


def problem_at(checked: config.Checked, path: str) -> ConfigProblem:
    found = [p for p in checked.problems if p.path == path]
    assert found, f"no problem at {path!r}; got {[str(p) for p in checked.problems]}"
    assert len(found) == 1, found
    return found[0]


def paths(checked: config.Checked) -> set[str]:
    return {p.path for p in checked.problems}


# --- finding and reading the file ------------------------------------------------------------------

def test_an_empty_file_gives_the_embedded_defaults(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "")
    assert checked.problems == ()
    assert checked.settings == default_settings()
    bare = check_yaml(tmp_path, "", environ={})
    # Without the providers' key variables, the only problems are warnings saying so.
    assert bare.errors == ()
    assert {p.path for p in bare.problems} == {"providers.openai.api_key_env",
                                               "providers.anthropic.api_key_env"}
    settings = checked.settings
    assert settings.tier_names == ("simple", "medium", "complex")
    assert settings.tiers["simple"].model == "openai/gpt-4o-mini"
    assert settings.routing.default_policy == "default"
    assert set(settings.policies) == {"default", "learned", "rules", "cheap", "quality", "random"}
    assert [r.name for r in settings.rules] == [
        "code-block", "code-words", "reasoning-words", "tool-use", "short"]


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config.find_config(None, {}) is None
    write_yaml(tmp_path, "")
    assert config.find_config(None, {}) == Path("llmroute.yaml")
    env = {"LLMROUTE_CONFIG": "/etc/llmroute/prod.yaml"}
    assert config.find_config(None, env) == Path("/etc/llmroute/prod.yaml")
    assert config.find_config("mine.yaml", env) == Path("mine.yaml")


def test_no_file_anywhere_means_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    checked = config.check(None, environ={})
    assert checked.source == "embedded defaults"
    assert checked.settings == default_settings()


def test_the_local_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_yaml(tmp_path, "routing: {expected_output_tokens: 99}")
    settings = config.load(None, environ={})
    assert settings.routing.expected_output_tokens == 99


def test_the_file_named_by_env_is_read(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "routing: {expected_output_tokens: 77}", "other.yaml")
    checked = config.check(None, environ={"LLMROUTE_CONFIG": str(path)})
    assert checked.source == str(path)
    assert checked.settings is not None
    assert checked.settings.routing.expected_output_tokens == 77


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    checked = config.check(missing, environ={})
    assert checked.settings is None
    assert len(checked.errors) == 1
    assert "nope.yaml" in checked.errors[0].message
    with pytest.raises(ConfigError):
        config.load(missing, environ={})


# --- YAML syntax -----------------------------------------------------------------------------------

def test_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "routing:\n  default_policy: cheap\n expected_output_tokens: 3\n")
    assert checked.settings is None
    (only,) = checked.problems
    assert only.path == ""
    assert "llmroute.yaml: invalid YAML at line 3" in only.message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "- a\n- b\n")
    (only,) = checked.problems
    assert "the top level must be a mapping, got list" in only.message
    assert str(only).startswith("<root>: ")


# --- merge rules -----------------------------------------------------------------------------------

def test_merge_tables_replace_and_settings_sections_merge_by_key() -> None:
    defaults = {"routing": {"a": 1, "b": 2}, "tiers": {"x": 1, "y": 2}, "rules": [1, 2],
                "policies": {"p": 1}, "models": {"m": 1}, "catalog": {"bundled_prices": True}}
    user = {"routing": {"b": 3}, "tiers": {"z": 9}, "rules": [7], "policies": {"q": 2},
            "models": {"n": 1}}
    merged = merge_over_defaults(defaults, user)
    assert merged == {"routing": {"a": 1, "b": 3}, "tiers": {"z": 9}, "rules": [7],
                      "policies": {"q": 2}, "models": {"n": 1},
                      "catalog": {"bundled_prices": True}}
    assert defaults["routing"] == {"a": 1, "b": 2}  # inputs untouched


def test_a_settings_section_is_merged_over_the_defaults(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, "routing: {expected_output_tokens: 100}")
    assert settings.routing.expected_output_tokens == 100
    assert settings.routing.default_policy == "default"  # kept from the defaults


def test_the_tier_table_is_replaced_wholesale(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, THREE_TIERS)
    assert settings.tiers["simple"].fallbacks == ()
    assert settings.tiers["medium"].fallbacks == ()


def test_replacing_tiers_with_other_names_reports_every_dangling_reference(
    tmp_path: Path,
) -> None:
    checked = check_yaml(tmp_path, """
        tiers:
          cheap: {model: openai/gpt-4o-mini}
          smart: {model: anthropic/claude-sonnet-4-5}
    """)
    assert checked.settings is None
    # the default rules and policies still name simple/medium/complex
    assert {"rules[0].tier", "rules[2].tier", "rules[4].tier",
            "policies.default.fallback_tier", "policies.rules.default_tier",
            "policies.quality.tier"} <= paths(checked)
    assert problem_at(checked, "rules[0].tier").hint == "tiers are: cheap, smart"


def test_the_rules_table_is_replaced_entirely(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, """
        rules:
          - {name: only, tier: complex, keywords: [banana]}
    """)
    assert [r.name for r in settings.rules] == ["only"]
    assert load_yaml(tmp_path, "rules: []").rules == ()


def test_the_policy_table_is_replaced_entirely(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "policies:\n  mine: {router: fixed, tier: simple}\n")
    problem = problem_at(checked, "routing.default_policy")
    assert problem.message == "unknown policy 'default'"
    assert problem.hint == "policies are: mine"
    settings = load_yaml(tmp_path, """
        policies:
          mine: {router: fixed, tier: simple}
        routing: {default_policy: mine}
    """)
    assert list(settings.policies) == ["mine"]


def test_model_prices_from_yaml_are_exact(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, """
        models:
          openai/gpt-4o-mini: {input_per_m: 0.1, output_per_m: 0.3}
    """)
    assert settings.models["openai/gpt-4o-mini"].input_per_m == Decimal("0.1")
    assert settings.models["openai/gpt-4o-mini"].output_per_m == Decimal("0.3")


# --- env overrides ---------------------------------------------------------------------------------

def test_env_overrides_keys_with_yaml_typed_values(tmp_path: Path) -> None:
    env = {
        "LLMROUTE__ROUTING__DEFAULT_POLICY": "cheap",
        "LLMROUTE__ROUTING__EXPECTED_OUTPUT_TOKENS": "128",
        "LLMROUTE__TIERS__SIMPLE__FALLBACKS": "[openai/gpt-4.1, anthropic/claude-haiku-4-5]",
    }
    settings = load_yaml(tmp_path, "", environ=env)
    assert settings.routing.default_policy == "cheap"
    assert settings.routing.expected_output_tokens == 128
    assert settings.tiers["simple"].fallbacks == ("openai/gpt-4.1", "anthropic/claude-haiku-4-5")
    assert settings.tiers["simple"].model == "openai/gpt-4o-mini"  # siblings kept


def test_env_beats_the_file(tmp_path: Path) -> None:
    text = "routing: {expected_output_tokens: 100}"
    settings = load_yaml(tmp_path, text, environ={"LLMROUTE__ROUTING__EXPECTED_OUTPUT_TOKENS": "5"})
    assert settings.routing.expected_output_tokens == 5


def test_env_boolean_and_the_consequences_are_checked(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "", environ={"LLMROUTE__CATALOG__BUNDLED_PRICES": "false"})
    # without the snapshot the default tiers name models nobody defined
    problem = problem_at(checked, "tiers.simple.model")
    assert problem.message == "model 'openai/gpt-4o-mini' is not in the catalog"
    assert "models:" in problem.hint


def test_unrelated_env_vars_are_ignored(tmp_path: Path) -> None:
    env = {"LLMROUTE_CONFIGX": "x", "LLMROUTE__": "oops", "HOME": "/root",
           "llmroute__routing__default_policy": "cheap"}
    assert load_yaml(tmp_path, "", environ=env) == default_settings()


def test_env_override_to_an_unknown_key_is_reported(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "", environ={"LLMROUTE__ROUTING__DEFAULT_POLCY": "cheap"})
    problem = problem_at(checked, "routing.default_polcy")
    assert problem.message == "unknown key"
    assert problem.hint == "did you mean 'default_policy'?"


def test_env_value_that_is_not_yaml_stays_a_string(tmp_path: Path) -> None:
    # `*odd*` is a YAML alias syntax error; it must be reported as config, not crash check()
    checked = check_yaml(tmp_path, "", environ={"LLMROUTE__ROUTING__DEFAULT_POLICY": "*odd*"})
    assert problem_at(checked, "routing.default_policy").message == "unknown policy '*odd*'"


def test_apply_env_overrides_does_not_mutate_its_input() -> None:
    raw = {"routing": {"default_policy": "default"}}
    out = apply_env_overrides(raw, {"LLMROUTE__ROUTING__DEFAULT_POLICY": "cheap",
                                    "LLMROUTE__NEW__DEEP__KEY": "1", "LLMROUTE__EMPTY": ""})
    assert raw == {"routing": {"default_policy": "default"}}
    assert out == {"routing": {"default_policy": "cheap"}, "new": {"deep": {"key": 1}},
                   "empty": ""}


def test_process_environment_is_used_when_environ_is_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMROUTE__ROUTING__EXPECTED_OUTPUT_TOKENS", "42")
    settings = config.load(write_yaml(tmp_path, ""))
    assert settings.routing.expected_output_tokens == 42
    assert load_yaml(tmp_path, "").routing.expected_output_tokens == 256  # environ={} isolates


# --- structural problems: unknown keys, wrong types, missing keys -----------------------------------

@pytest.mark.parametrize(
    ("text", "path", "hint"),
    [
        ("tierz: {}", "tierz", "did you mean 'tiers'?"),
        ("routing: {defualt_policy: x}", "routing.defualt_policy", "did you mean 'default_policy'?"),
        ("models:\n  acme/x: {teir: simple}", "models.acme/x.teir", "did you mean 'tier'?"),
        ("routing: {zzqqxx: 1}", "routing.zzqqxx", "remove it"),
        ("tiers:\n  simple: {model: openai/gpt-4o-mini, fallback: []}",
         "tiers.simple.fallback", "did you mean 'fallbacks'?"),
        ("rules:\n  - {name: a, tier: simple, keyword: [x]}", "rules[0].keyword",
         "did you mean 'keywords'?"),
        # suggestions come from the keys valid at that place, not from every section
        ("modls: {}", "modls", "did you mean 'models'?"),
        ("catalog: {bundled_price: false}", "catalog.bundled_price",
         "did you mean 'bundled_prices'?"),
    ],
)
def test_unknown_keys(tmp_path: Path, text: str, path: str, hint: str) -> None:
    checked = check_yaml(tmp_path, text)
    assert checked.settings is None
    problem = problem_at(checked, path)
    assert problem.message == "unknown key"
    assert problem.hint == hint
    assert problem.severity == "error"


@pytest.mark.parametrize(
    ("text", "path", "message_part", "hint"),
    [
        ("routing: {expected_output_tokens: lots}", "routing.expected_output_tokens",
         "valid integer", "got str 'lots'"),
        ("routing: {expected_output_tokens: 0}", "routing.expected_output_tokens",
         "greater than 0", "got int '0'"),
        ("models:\n  acme/x: {input_per_m: -1}", "models.acme/x.input_per_m",
         "greater than or equal to 0", "got int '-1'"),
        ("models:\n  acme/x: {input_per_m: cheap}", "models.acme/x.input_per_m",
         "valid decimal", "got str 'cheap'"),
        ("models:\n  acme/x: {capabilities: [tools, telepathy]}", "models.acme/x.capabilities[1]",
         "'tools', 'vision' or 'json'", "got str 'telepathy'"),
        ("catalog: {bundled_prices: maybe}", "catalog.bundled_prices", "valid boolean",
         "got str 'maybe'"),
        ("rules:\n  - {name: a, tier: simple, min_words: -1}", "rules[0].min_words",
         "greater than or equal to 0", "got int '-1'"),
        ("rules:\n  - {name: a, tier: simple, max_words: 3, scope: all}", "rules[0].scope",
         "'last_user' or 'user'", "got str 'all'"),
        ("rules:\n  - {name: a, tier: simple, max_words: 3, confidence: 1.5}",
         "rules[0].confidence", "less than or equal to 1", "got float '1.5'"),
    ],
)
def test_wrong_types_and_values(
    tmp_path: Path, text: str, path: str, message_part: str, hint: str
) -> None:
    problem = problem_at(check_yaml(tmp_path, text), path)
    assert message_part in problem.message
    assert problem.hint == hint


def test_missing_keys(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, """
        tiers:
          simple: {fallbacks: [openai/gpt-4o-mini]}
        rules:
          - {name: ok, tier: simple, max_words: 3}
          - {tier: simple}
        policies:
          default: {tier: simple}
    """)
    for path in ("tiers.simple.model", "rules[1].name", "policies.default.router"):
        problem = problem_at(checked, path)
        assert problem.message == "Field required"
        assert problem.hint == "this key is required"


def test_at_least_one_tier(tmp_path: Path) -> None:
    problem = problem_at(check_yaml(tmp_path, "tiers: {}"), "tiers")
    assert "at least one tier is required" in problem.message


def test_every_structural_problem_is_reported_at_once(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, """
        routing: {expected_output_tokens: 0, foo: 1}
        models:
          acme/x: {teir: simple, input_per_m: abc}
    """)
    assert paths(checked) == {"routing.expected_output_tokens", "routing.foo",
                              "models.acme/x.teir", "models.acme/x.input_per_m"}


# --- semantic problems: models, tiers, rules, policies ----------------------------------------------

def test_tier_naming_a_model_the_catalog_lacks(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, """
        tiers:
          simple: {model: openai/gpt-4o-mini, fallbacks: [anthropic/claude-haiku-4-5, gpt-4o-mni]}
          medium: {model: zzz-unheard-of}
          complex: {model: anthropic/claude-sonnet-4-5}
    """)
    assert checked.settings is None
    typo = problem_at(checked, "tiers.simple.fallbacks[1]")
    assert typo.message == "model 'gpt-4o-mni' is not in the catalog"
    assert "gpt-4o-mini" in typo.hint
    assert typo.hint.startswith("did you mean 'gpt-4o-mini'? close names: ")
    assert typo.hint.endswith("; or define it under `models:` with its prices")
    unknown = problem_at(checked, "tiers.medium.model")
    assert unknown.hint == "define it under `models:` with its prices"


def test_a_model_defined_in_config_satisfies_a_tier_but_warns_when_unpriced(
    tmp_path: Path,
) -> None:
    checked = check_yaml(tmp_path, THREE_TIERS.replace("openai/gpt-4.1-mini", "acme/house") + """
models:
  acme/house: {context_window: 8000, deployment: openai}
""")
    assert checked.errors == ()
    assert checked.settings is not None  # warnings do not block
    warning = problem_at(checked, "models.acme/house")
    assert warning.severity == "warning"
    assert "unpriced" in warning.message
    assert warning.hint == "set input_per_m and output_per_m"


def test_a_priced_config_model_gives_no_warning(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, THREE_TIERS.replace("openai/gpt-4.1-mini", "acme/house") + """
models:
  acme/house: {input_per_m: 0.5, output_per_m: 1.5, deployment: openai}
""")
    assert checked.problems == ()


def test_model_entry_naming_an_unknown_tier(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "models:\n  openai/gpt-4o: {tier: giant}\n")
    problem = problem_at(checked, "models.openai/gpt-4o.tier")
    assert problem.message == "unknown tier 'giant'"
    assert problem.hint == "tiers are: simple, medium, complex"


def test_rule_problems(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, """
        rules:
          - {name: a, tier: huge, keywords: [x]}
          - {name: b, tier: simple, regex: ["ok", "(unclosed"]}
          - {name: c, tier: simple, keywords: [fine, "", "?!"], all_keywords: ["  "]}
          - {name: d, tier: simple}
    """)
    assert problem_at(checked, "rules[0].tier").message == "unknown tier 'huge'"
    regex = problem_at(checked, "rules[1].regex[1]")
    assert regex.message.startswith("invalid regex:")
    assert "Python `re` syntax" in regex.hint
    assert problem_at(checked, "rules[2].keywords[1]").message == "empty keyword"
    assert problem_at(checked, "rules[2].keywords[2]").message == "empty keyword"  # no words
    assert problem_at(checked, "rules[2].all_keywords[0]").message == "empty keyword"
    catch_all = problem_at(checked, "rules[3]")
    assert catch_all.severity == "warning"
    assert "matches every request" in catch_all.message
    assert len(checked.errors) == 5


def test_a_catch_all_rule_alone_is_only_a_warning(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, "rules:\n  - {name: all, tier: simple}\n")
    assert settings.rules[0].name == "all"


@pytest.mark.parametrize(
    ("policy", "path", "message_part", "hint_part"),
    [
        ("{router: nope}", "policies.p.router", "unknown router 'nope'",
         "registered routers: cascade, classifier, fixed, llm, random, rules"),
        ("{router: rules, bogus: 1}", "policies.p.bogus", "Extra inputs",
         "unknown parameter for this router"),
        ("{router: rules, default_tier: huge}", "policies.p.default_tier", "unknown tier 'huge'",
         "tiers are: simple, medium, complex"),
        ("{router: rules, default_confidence: 2}", "policies.p.default_confidence",
         "less than or equal to 1", "got int '2'"),
        ("{router: rules, rules: [{name: q, tier: simple, min_words: x}]}",
         "policies.p.rules[0].min_words", "valid integer", "got str 'x'"),
        ("{router: rules, rules: [{name: q, tier: nowhere, keywords: [a]}]}",
         "policies.p.rules[0].tier", "unknown tier 'nowhere'", "tiers are"),
        ("{router: fixed}", "policies.p", "exactly one of `tier` or `model`", ""),
        ("{router: fixed, tier: simple, model: openai/gpt-4o-mini}", "policies.p",
         "exactly one of `tier` or `model`", ""),
        ("{router: fixed, tier: huge}", "policies.p.tier", "unknown tier 'huge'", "tiers are"),
        ("{router: fixed, model: openai/gpt-4o}", "policies.p.model", "not in the pool",
         "fallbacks"),
        ("{router: random, weights: {simple: 1, huge: 2}}", "policies.p.weights.huge",
         "unknown tier 'huge'", "tiers are"),
        ("{router: random, weights: {simple: -1, medium: 2}}", "policies.p",
         "non-negative", ""),
        ("{router: random, weights: {simple: 0}}", "policies.p", "positive sum", ""),
        ("{router: llm, model: zzz-model}", "policies.p.model", "unknown model 'zzz-model'",
         "catalog"),
        ("{router: llm, model: openai/gpt-4o-mini, prompt: no placeholder}", "policies.p.prompt",
         "{prompt}", ""),
        ("{router: llm, model: openai/gpt-4o-mini, labels: {HARD: hard}}", "policies.p.labels.HARD",
         "unknown tier 'hard'", "tiers are"),
        ("{router: llm, model: openai/gpt-4o-mini, timeout_s: 0}", "policies.p.timeout_s",
         "greater than 0", "got int '0'"),
        ("{router: cascade, stages: []}", "policies.p.stages", "at least 1", ""),
        ("{router: cascade, stages: [{threshold: 0.5}]}", "policies.p.stages",
         "stage 0 needs a `router` key", ""),
        ("{router: cascade, stages: [{router: rules, threshold: 2}]}", "policies.p.stages",
         "threshold must be a number in [0, 1]", ""),
        ("{router: cascade, stages: [{router: rules}], fallback_tier: top}",
         "policies.p.fallback_tier", "unknown tier 'top'", "tiers are"),
        ("{router: cascade, stages: [{router: rules}, {router: llm, model: zzz-model}]}",
         "policies.p.stages[1].model", "unknown model 'zzz-model'", "catalog"),
        ("{router: cascade, stages: [{router: rules, default_tier: huge}]}",
         "policies.p.stages[0].default_tier", "unknown tier 'huge'", "tiers are"),
        ("{router: cascade, stages: [{router: nope}]}", "policies.p.stages[0].router",
         "unknown router 'nope'", "registered routers"),
    ],
)
def test_policy_problems(
    tmp_path: Path, policy: str, path: str, message_part: str, hint_part: str
) -> None:
    checked = check_yaml(tmp_path, f"policies:\n  p: {policy}\nrouting: {{default_policy: p}}\n")
    assert checked.settings is None
    problem = problem_at(checked, path)
    assert message_part in problem.message
    assert hint_part in problem.hint
    assert problem.severity == "error"


def test_every_valid_router_type_passes(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, """
        policies:
          default: {router: rules}
          f: {router: fixed, model: anthropic/claude-haiku-4-5}
          r: {router: random, weights: {simple: 3, complex: 1}, seed: 1}
          l: {router: llm, model: openai/gpt-4o-mini, labels: {EASY: simple, HARD: complex}}
          c: {router: cascade, stages: [{router: rules, threshold: 0.9}, {router: llm,
              model: openai/gpt-4o-mini}], fallback_tier: complex}
    """)
    assert set(settings.policies) == {"default", "f", "r", "l", "c"}
    assert settings.policies["r"].params == {"weights": {"simple": 3, "complex": 1}, "seed": 1}


def test_unknown_default_policy_and_baseline_model(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, """
        routing: {default_policy: nothere, baseline_model: zzz-unheard-of}
    """)
    policy = problem_at(checked, "routing.default_policy")
    assert policy.message == "unknown policy 'nothere'"
    assert policy.hint == "policies are: default, learned, rules, cheap, quality, random"
    assert problem_at(checked, "routing.baseline_model").message == (
        "model 'zzz-unheard-of' is not in the catalog")


def test_baseline_model_may_be_any_catalog_model(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, "routing: {baseline_model: openai/gpt-4o}")
    assert settings.routing.baseline_model == "openai/gpt-4o"


def test_every_semantic_problem_is_reported_at_once(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, """
        tiers:
          simple: {model: zzz-one}
          complex: {model: zzz-two}
        rules:
          - {name: a, tier: simple, regex: ["("]}
        policies:
          default: {router: fixed, tier: middle}
    """)
    assert paths(checked) == {"tiers.simple.model", "tiers.complex.model", "rules[0].regex[0]",
                              "policies.default.tier"}


# --- check vs load ---------------------------------------------------------------------------------

def test_check_collects_and_load_raises_with_the_errors_only(tmp_path: Path) -> None:
    text = """
        models:
          acme/spare: {}
        routing: {default_policy: nothere}
    """
    checked = check_yaml(tmp_path, text)
    assert checked.settings is None
    assert {p.severity for p in checked.problems} == {"error", "warning"}
    assert [p.path for p in checked.errors] == ["routing.default_policy"]
    with pytest.raises(ConfigError) as info:
        load_yaml(tmp_path, text)
    err = info.value
    assert isinstance(err, LLMRouteError)
    assert err.problems == list(checked.errors)
    assert err.source == str(tmp_path / "llmroute.yaml")
    assert "has 1 error(s)" in err.message
    assert "routing.default_policy: unknown policy 'nothere' (hint: policies are:" in err.message
    assert "acme/spare" not in err.message  # warnings are not errors


def test_load_returns_settings_when_only_warnings(tmp_path: Path) -> None:
    text = "models:\n  acme/spare: {}\n"
    checked = check_yaml(tmp_path, text)
    assert checked.errors == ()
    assert [(p.path, p.severity) for p in checked.problems] == [
        ("models.acme/spare", "warning"), ("models.acme/spare", "warning")]
    assert "no price" in checked.problems[0].message
    assert "no `providers:` entry 'acme'" in checked.problems[1].message
    assert load_yaml(tmp_path, text) == checked.settings


def test_problem_text() -> None:
    assert str(ConfigProblem("a.b", "bad", "fix it")) == "a.b: bad (hint: fix it)"
    assert str(ConfigProblem("", "bad")) == "<root>: bad"


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, "")
    with pytest.raises(pydantic.ValidationError):
        settings.routing = settings.routing  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        settings.routing.default_policy = "cheap"  # type: ignore[misc]


# --- learning online (issue 13) ---------------------------------------------------------------------

def test_learning_is_off_by_default(tmp_path: Path) -> None:
    learning = load_yaml(tmp_path, "").learning
    assert (learning.online, learning.explore) == (False, 0.0)
    assert learning.rater_cap > 0 and learning.prior_scale > 0


def test_exploration_above_five_percent_is_refused_with_its_path(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "learning: {online: true, explore: 0.2}\n")
    found = problem_at(checked, "learning.explore")
    assert "0.05" in found.message and "0.2" in found.hint
    assert checked.settings is None
    for bad in ("rater_cap: 0", "prior_scale: -1", "explore: -0.01", "reload_s: 0", "onlin: true",
                "forget: 0.5"):
        assert not check_yaml(tmp_path, f"learning: {{{bad}}}\n").settings, bad


def test_learning_online_needs_the_ledger(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, "ledger: {enabled: false}\nlearning: {online: true}\n")
    found = problem_at(checked, "learning.online")
    assert "ledger" in found.message and "ledger.enabled" in found.hint


def test_learning_without_a_classifier_is_a_warning(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, THREE_TIERS + """
policies:
  cheap: {router: fixed, tier: simple}
routing: {default_policy: cheap}
learning: {explore: 0.01}
""")
    assert problem_at(checked, "learning").severity == "warning"
    assert checked.settings is not None
