"""Which upstream deployment serves each model, under which upstream name.

A model is served by the `providers:` entry named by its `deployment:` (config), else by its catalog
provider's name. The upstream name is `upstream_name:` if given, else the model's name without a
leading `<provider>/` (or an alias of it: `google/`) or `<deployment>/`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from .cache.breakpoints import AutoBreakpoints
from .catalog import PROVIDER_ALIASES, Catalog, ModelSpec
from .providers import Provider, build_provider
from .settings import Settings


def upstream_name(spec: ModelSpec, deployment: str, explicit: str | None) -> str:
    """The model name the upstream knows."""
    if explicit:
        return explicit
    prefix, _, rest = spec.name.partition("/")
    ours = prefix in (spec.provider, deployment) or PROVIDER_ALIASES.get(prefix) == spec.provider
    return rest if rest and ours else spec.name


def deployment_name(spec: ModelSpec, settings: Settings) -> str:
    """The `providers:` entry that serves a model."""
    config = settings.models.get(spec.name)
    return (config.deployment if config and config.deployment else None) or spec.provider


def auto_breakpoints(settings: Settings, served: Mapping[str, int | None]
                     ) -> AutoBreakpoints | None:
    """The automatic prompt-cache policy of a deployment serving `served` (upstream model ->
    its catalog minimum prefix); None when `cache.prompt.auto_breakpoints` is off."""
    config = settings.cache.prompt
    if not config.auto_breakpoints:
        return None
    return AutoBreakpoints(config, {model: minimum for model, minimum in served.items()
                                    if minimum is not None})


class Deployments:
    """Model name -> (provider adapter, upstream model name), for every servable pool model."""

    def __init__(self, routes: Mapping[str, tuple[Provider, str]], providers: Iterable[Provider],
                 missing: Mapping[str, str] | None = None):
        self._routes = dict(routes)
        self._providers = list(providers)
        self.missing = dict(missing or {})

    @classmethod
    def from_settings(cls, settings: Settings, catalog: Catalog,
                      environ: Mapping[str, str] | None = None) -> Deployments:
        """Build one adapter per `providers:` entry that some pool model uses."""
        env = os.environ if environ is None else environ
        served: dict[str, dict[str, int | None]] = {}   # deployment -> upstream -> min prefix
        upstreams: dict[str, tuple[str, str]] = {}      # model -> (deployment, upstream name)
        missing: dict[str, str] = {}
        for spec in catalog:
            name = deployment_name(spec, settings)
            if name not in settings.providers:
                missing[spec.name] = f"no `providers:` entry named {name!r}"
                continue
            model_config = settings.models.get(spec.name)
            explicit = model_config.upstream_name if model_config else None
            upstreams[spec.name] = (name, upstream_name(spec, name, explicit))
            served.setdefault(name, {})[upstreams[spec.name][1]] = spec.cache_min_tokens
        built = {name: build_provider(name, settings.providers[name], env,
                                      auto_breakpoints(settings, models))
                 for name, models in served.items()}
        routes = {model: (built[name], upstream) for model, (name, upstream) in upstreams.items()}
        return cls(routes, built.values(), missing)

    def __contains__(self, model: object) -> bool:
        return model in self._routes

    def names(self) -> list[str]:
        """Every servable model."""
        return list(self._routes)

    def get(self, model: str) -> tuple[Provider, str]:
        """The adapter and upstream name for a servable model (KeyError otherwise)."""
        return self._routes[model]

    async def aclose(self) -> None:
        """Close every adapter's connection pool."""
        for provider in self._providers:
            await provider.aclose()
