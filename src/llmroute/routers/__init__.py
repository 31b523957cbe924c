"""Routers: one protocol (`base.Router`) and a registry of router types built from config."""

from __future__ import annotations

from . import cascade, classifier, llm, rules
from .base import Registry, Router, RouterType, Verdict
from .baselines import FIXED, RANDOM

BUILTIN_TYPES: tuple[RouterType, ...] = (
    rules.ROUTER_TYPE,
    llm.ROUTER_TYPE,
    cascade.ROUTER_TYPE,
    classifier.ROUTER_TYPE,
    FIXED,
    RANDOM,
)


def default_registry() -> Registry:
    """A fresh registry holding the built-in router types (add your own with `register`)."""
    return Registry({t.name: t for t in BUILTIN_TYPES})


__all__ = ["BUILTIN_TYPES", "Registry", "Router", "RouterType", "Verdict", "default_registry"]
