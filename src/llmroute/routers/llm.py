"""LLM-as-router: a cheap model labels the request SIMPLE / MEDIUM / COMPLEX.

The router only builds the classification call and reads the reply (the caller performs the call).
Replies are parsed robustly (case, punctuation, extra words); garbage, a timeout or an error give the
default tier at low confidence. Identical prompts are not re-classified within `cache_ttl_s`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from pydantic import Field, field_validator

from ..constraints import Candidates
from ..errors import ConfigProblem
from ..types import RouteRequest
from .base import (
    BuildContext,
    Consult,
    LLMCall,
    Outcome,
    RouterParams,
    RouterType,
    Verdict,
    tier_problem,
)

DEFAULT_PROMPT = """You are a router that sends each request to the cheapest capable model.
Classify how hard the user's request is to answer well:
SIMPLE - greetings, facts, short lookups, simple rewrites or formatting.
MEDIUM - multi-step explanations, summaries, everyday maths, moderate analysis.
COMPLEX - code, proofs, deep reasoning, long or ambiguous multi-part tasks.
Answer with exactly one word: SIMPLE, MEDIUM or COMPLEX.

Request:
{prompt}"""


class LLMParams(RouterParams):
    """Parameters of the LLM router."""

    model: str
    prompt: str = DEFAULT_PROMPT
    labels: dict[str, str] = Field(
        default_factory=lambda: {"SIMPLE": "simple", "MEDIUM": "medium", "COMPLEX": "complex"})
    default_tier: str = "medium"
    timeout_s: float = Field(2.0, gt=0)
    max_tokens: int = Field(8, gt=0)
    temperature: float = Field(0.0, ge=0, le=2)
    confidence: float = Field(0.8, ge=0, le=1)
    default_confidence: float = Field(0.3, ge=0, le=1)
    max_prompt_chars: int = Field(4000, gt=0)
    cache_ttl_s: float = Field(300.0, ge=0)
    cache_size: int = Field(10_000, ge=0)

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, prompt: str) -> str:
        if "{prompt}" not in prompt:
            raise ValueError("the prompt template must contain {prompt}")
        return prompt


def parse_label(reply: str, labels: Mapping[str, str]) -> str | None:
    """The label in a classifier's reply: the leading word if it is a label, else the only label
    mentioned; None when there is none or several different ones."""
    words = re.findall(r"\w+", reply.upper())
    known = {label.upper(): label for label in labels}
    if words and words[0] in known:
        return known[words[0]]
    found = {known[w] for w in words if w in known}
    return found.pop() if len(found) == 1 else None


class LLMRouter:
    """Asks a cheap model for the request's difficulty; caches answers per prompt."""

    def __init__(self, params: LLMParams, clock: Callable[[], float] = time.monotonic,
                 name: str = "llm"):
        self.name = name
        self.params = params
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def decide(self, request: RouteRequest, candidates: Candidates) -> Outcome:
        """A cached label, or a consultation of the classifier model."""
        full = request.last_user_text
        text = full[-self.params.max_prompt_chars :]
        key = hashlib.blake2b(full.encode(), digest_size=16).hexdigest()
        cached = self._cached(key)
        if cached is not None:
            return self._verdict(cached, "cached classification")
        content = self.params.prompt.replace("{prompt}", text)
        call = LLMCall(self.params.model, ({"role": "user", "content": content},),
                       self.params.max_tokens, self.params.temperature, self.params.timeout_s)

        def resume(reply: str | None, error: str | None) -> Outcome:
            return self._read(key, reply, error)

        return Consult(call, resume)

    def _read(self, key: str, reply: str | None, error: str | None) -> Verdict:
        if reply is None:
            return self._default(f"classifier failed: {error or 'no reply'}")
        label = parse_label(reply, self.params.labels)
        if label is None:
            return self._default(f"unreadable classifier reply {reply[:40]!r}")
        self._remember(key, label)
        return self._verdict(label, f"classifier said {label}")

    def _verdict(self, label: str, why: str) -> Verdict:
        tier = self.params.labels[label]
        return Verdict(tier, self.params.confidence, f"{why} ({self.params.model})", self.name,
                       scores={label: 1.0})

    def _default(self, why: str) -> Verdict:
        return Verdict(self.params.default_tier, self.params.default_confidence,
                       f"{why}; default tier '{self.params.default_tier}'", self.name)

    def _cached(self, key: str) -> str | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, label = entry
        if self.clock() >= expires:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return label

    def _remember(self, key: str, label: str) -> None:
        if self.params.cache_size == 0 or self.params.cache_ttl_s == 0:
            return
        self._cache[key] = (self.clock() + self.params.cache_ttl_s, label)
        self._cache.move_to_end(key)
        while len(self._cache) > self.params.cache_size:
            self._cache.popitem(last=False)


def build(params: LLMParams, ctx: BuildContext) -> LLMRouter:
    """Factory for the registry."""
    return LLMRouter(params)


def check(params: LLMParams, ctx: BuildContext) -> list[ConfigProblem]:
    """The classifier model must be known; every label must map to a tier on the ladder."""
    problems: list[ConfigProblem] = []
    if ctx.catalog.get(params.model) is None:
        problems.append(ConfigProblem(f"{ctx.name}.model", f"unknown model {params.model!r}",
                                      "use a model from the catalog (`llmroute models --all`)"))
    for label, tier in params.labels.items():
        problems += tier_problem(tier, ctx, f"{ctx.name}.labels.{label}")
    problems += tier_problem(params.default_tier, ctx, f"{ctx.name}.default_tier")
    return problems


ROUTER_TYPE = RouterType("llm", LLMParams, build, check)
