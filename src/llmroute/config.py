"""Load and check a configuration: YAML file + embedded defaults + env overrides -> validated Settings.

`load()` returns Settings or raises ConfigError listing every problem (a config with errors never
half-starts); `check()` returns every problem (errors and warnings) with its key path and a hint.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from . import config_text
from . import settings as s
from .aliases import alias_problems
from .cache.problems import response_cache_problems
from .catalog import Catalog, bundled_prices, resolve_model
from .config_repair import beyond, without_refused
from .deployments import deployment_name
from .embeddings_config import embedding_problems
from .errors import ConfigError, ConfigProblem
from .providers.azure_auth import azure_problems
from .providers.bedrock_auth import bedrock_problems
from .routers import default_registry
from .routers.base import BuildContext, Registry, validate_spec
from .routers.rules import check_rules

CONFIG_ENV = "LLMROUTE_CONFIG"
DEFAULT_FILE = "llmroute.yaml"


@dataclass(frozen=True)
class Checked:
    """The outcome of reading a configuration: settings (None when invalid) and all problems."""

    source: str
    settings: s.Settings | None
    problems: tuple[ConfigProblem, ...]

    @property
    def errors(self) -> tuple[ConfigProblem, ...]:
        """Only the problems that make the configuration unusable."""
        return tuple(p for p in self.problems if p.severity == "error")


def find_config(path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The file to read: the argument, else $LLMROUTE_CONFIG, else ./llmroute.yaml if present."""
    if path is not None:
        return Path(path)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else None


def check(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
          registry: Registry | None = None) -> Checked:
    """Read, merge and validate a configuration, collecting every problem instead of stopping."""
    env = os.environ if environ is None else environ
    file = find_config(path, env)
    source = str(file) if file else "embedded defaults"
    try:
        raw = _raw_config(file, env)
    except (OSError, ValueError) as exc:
        return Checked(source, None, (ConfigProblem("", str(exc)),))
    try:
        settings = s.Settings.model_validate(raw)
    except ValidationError as exc:
        refused = _structural_problems(exc)
        rest = without_refused(raw, s.Settings)  # the rest checked too: every problem at once
        more = [] if rest is None else semantic_problems(rest, registry or default_registry(), env)
        return Checked(source, None, tuple(refused + beyond(more, refused)))
    problems = semantic_problems(settings, registry or default_registry(), env)
    ok = not any(p.severity == "error" for p in problems)
    return Checked(source, settings if ok else None, tuple(problems))


def load(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
         registry: Registry | None = None) -> s.Settings:
    """Validated Settings, or ConfigError listing every error."""
    checked = check(path, environ=environ, registry=registry)
    if checked.settings is None:
        raise ConfigError(list(checked.errors), checked.source)
    return checked.settings


def _raw_config(file: Path | None, env: Mapping[str, str]) -> dict[str, Any]:
    defaults = config_text.parse_yaml(config_text.default_config_text(), "embedded defaults")
    user = config_text.parse_yaml(file.read_text(encoding="utf-8"), str(file)) if file else {}
    return config_text.apply_env_overrides(config_text.merge_over_defaults(defaults, user), env)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field's type (`X`, `X | None`, `dict[str, X]`, `tuple[X, ...]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys valid where the unknown key at `loc` sits (for "did you mean" hints)."""
    model: type[BaseModel] = s.Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:  # a list index or a table key (a model or tier name)
            continue
        inner = _model_in(field.annotation)
        if inner is None:
            break
        model = inner
    return sorted(model.model_fields)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _structural_problems(exc: ValidationError) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path, hint = _format_loc(loc), ""
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "remove it"
            problems.append(ConfigProblem(path, "unknown key", hint))
            continue
        if err["type"] == "missing":
            hint = "this key is required"
        elif "input" in err and err["type"] != "value_error":
            hint = f"got {type(err['input']).__name__} {str(err['input'])[:40]!r}"
        problems.append(ConfigProblem(path, err["msg"], hint))
    return problems


def _model_problem(name: str, path: str, configured: Sequence[str] = ()) -> ConfigProblem:
    """An unknown model, with a "did you mean" near match: first among the models this config
    already names (a typo of one of them), then the bundled price list."""
    near = difflib.get_close_matches(name, [n for n in configured if n != name], n=1, cutoff=0.8)
    close = difflib.get_close_matches(name, list(bundled_prices()), n=3, cutoff=0.6)
    define = "define it under `models:` with its prices"
    hint = f"close names: {', '.join(close)}; or {define}" if close else define
    guess = near[0] if near else close[0] if close else None
    hint = f"did you mean {guess!r}? {hint}" if guess else hint
    return ConfigProblem(path, f"model {name!r} is not in the catalog", hint)


def _tier_problems(settings: s.Settings) -> list[ConfigProblem]:
    problems = []
    use_bundled = settings.catalog.bundled_prices
    configured = [*settings.models, *(m for t in settings.tiers.values()
                                      for m in (t.model, *t.fallbacks))]
    for tier_name, tier in settings.tiers.items():
        names = [("model", tier.model)] + [(f"fallbacks[{i}]", m) for i, m in
                                           enumerate(tier.fallbacks)]
        for key, name in names:
            if resolve_model(name, settings.models.get(name), use_bundled) is None:
                problems.append(_model_problem(name, f"tiers.{tier_name}.{key}", configured))
    for name, model in settings.models.items():
        if model.tier is not None and model.tier not in settings.tiers:
            problems.append(ConfigProblem(f"models.{name}.tier", f"unknown tier {model.tier!r}",
                                          f"tiers are: {', '.join(settings.tiers)}"))
    return problems


def _unpriced_warnings(catalog: Catalog) -> list[ConfigProblem]:
    return [
        ConfigProblem(f"models.{spec.name}", "model has no price: its cost will show as unpriced",
                      "set input_per_m and output_per_m", severity="warning")
        for spec in catalog if not spec.priced
    ]


def _serving_warnings(settings: s.Settings, catalog: Catalog,
                      environ: Mapping[str, str]) -> list[ConfigProblem]:
    """Models no `providers:` entry serves, and used providers whose key env var is not set."""
    problems = []
    used: set[str] = set()
    for spec in catalog:
        name = deployment_name(spec, settings)
        used.add(name)
        if name not in settings.providers:
            problems.append(ConfigProblem(
                f"models.{spec.name}", f"no `providers:` entry {name!r} serves this model: the "
                "gateway cannot call it", f"add providers.{name}, or set `deployment:` on the "
                "model", severity="warning"))
    for name, provider in settings.providers.items():
        if name in used and provider.api_key_env and not environ.get(provider.api_key_env):
            problems.append(ConfigProblem(
                f"providers.{name}.api_key_env", f"env var {provider.api_key_env} is not set: "
                "calls to this provider will carry no API key", severity="warning"))
        if name in used and provider.type == "bedrock":
            problems += bedrock_problems(name, provider, environ)
        if name in used and provider.type == "azure":
            problems += azure_problems(name, provider, environ)
    return problems


def semantic_problems(settings: s.Settings, registry: Registry,
                      environ: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    """Problems a schema cannot see: unknown models and tiers, bad router specs, unpriced models,
    models no provider serves."""
    catalog = Catalog.from_settings(settings)
    ctx = BuildContext(settings.tier_names, catalog, settings.rules, registry, "")
    problems = _tier_problems(settings) + _unpriced_warnings(catalog)
    problems += _serving_warnings(settings, catalog, os.environ if environ is None else environ)
    problems += check_rules(settings.rules, ctx, "rules")
    for name, spec in settings.policies.items():
        problems += validate_spec(spec.model_dump(), ctx, f"policies.{name}")[1]
    if settings.routing.default_policy not in settings.policies:
        problems.append(ConfigProblem("routing.default_policy",
                                      f"unknown policy {settings.routing.default_policy!r}",
                                      f"policies are: {', '.join(settings.policies)}"))
    baseline = settings.routing.baseline_model
    if baseline is not None and catalog.get(baseline) is None:
        problems.append(_model_problem(baseline, "routing.baseline_model"))
    problems += response_cache_problems(settings)
    problems += embedding_problems(settings.embeddings, settings.providers)
    pool = {*settings.models, *(m for t in settings.tier_names for m in settings.tier_models(t))}
    problems += alias_problems(settings.model_aliases, pool, settings.tier_names,
                               list(settings.policies))
    # two classifier policies check the same `models:` entries: say each problem once
    return list(dict.fromkeys(problems + _control_problems(settings) + _learning_problems(settings)))


def _learning_problems(settings: s.Settings) -> list[ConfigProblem]:
    """Learning online needs the ledger (feedback and each request's prompt latent live there) and
    a classifier policy to learn for."""
    learning = settings.learning
    if not learning.online and learning.explore == 0:
        return []
    problems = []
    if learning.online and not settings.ledger.enabled:
        problems.append(ConfigProblem("learning.online", "learning online needs the ledger",
                                      "set ledger.enabled: true, or learning.online: false"))
    if not any(_uses_classifier(spec.model_dump()) for spec in settings.policies.values()):
        problems.append(ConfigProblem("learning", "no policy uses the classifier: nothing learns "
                                      "or explores", "add a `classifier` policy (or a cascade "
                                      "with a classifier stage)", severity="warning"))
    return problems


def _uses_classifier(spec: object) -> bool:
    """Whether a policy spec is, or nests, a classifier router."""
    if isinstance(spec, dict):
        return spec.get("router") == "classifier" or any(_uses_classifier(v) for v in spec.values())
    if isinstance(spec, list | tuple):
        return any(_uses_classifier(v) for v in spec)
    return False


def _control_problems(settings: s.Settings) -> list[ConfigProblem]:
    """Limits and experiments naming policies that do not exist, and repeated names."""
    from .control.experiments import validate

    policies = settings.policies
    hint = f"policies are: {', '.join(policies)}"
    problems = [ConfigProblem(f"{path}.downgrade_to", f"unknown policy {limit.downgrade_to!r}", hint)
                for path, limit in _allowances(settings)
                if limit.downgrade_to is not None and limit.downgrade_to not in policies]
    names = [limit.name for limit in settings.limits]
    problems += [ConfigProblem(f"limits[{i}].name", f"limit name {name!r} is used twice",
                               "each limit needs its own name (it names the counter)")
                 for i, name in enumerate(names) if name in names[:i]]
    for i, experiment in enumerate(settings.experiments):
        problems += validate(experiment, policies, f"experiments[{i}]")
    return problems


def _allowances(settings: s.Settings) -> list[tuple[str, s.Allowance]]:
    out: list[tuple[str, s.Allowance]] = [(f"limits[{i}]", c) for i, c in enumerate(settings.limits)]
    for i, key in enumerate(settings.keys):
        out += [(f"keys[{i}].limits[{j}]", a) for j, a in enumerate(key.limits)]
    return out
