"""The rules router: a decision table of conditions -> tier from config; first matching rule wins."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from pydantic import Field

from ..constraints import Candidates
from ..errors import ConfigProblem
from ..settings import RuleConfig
from ..types import RouteRequest, estimate_tokens
from .base import BuildContext, RouterParams, RouterType, Verdict, tier_problem

CODE_FENCE = "```"


class RulesParams(RouterParams):
    """Parameters: an optional rules table (default: the top-level `rules:`), the tier and
    confidence used when no rule matches."""

    rules: tuple[RuleConfig, ...] | None = None
    default_tier: str = "medium"
    default_confidence: float = Field(0.5, ge=0.0, le=1.0)


#: Punctuation becomes a space before splitting into words; `_`, `+` and `#` stay word characters
#: so that `snake_case`, `c++` and `c#` are words.
_SEPARATORS = str.maketrans({c: " " for c in string.punctuation if c not in "_+#"})
#: The same for any text: every character that is not a letter, digit, `_`, `+` or `#` separates.
_NON_WORD = re.compile(r"[^\w+#]+")


def words_of(text: str) -> list[str]:
    """Lower-case words of `text`: the tokenisation both keywords and prompts go through.
    Non-ASCII punctuation (`code…`, `code’s`, `«code»`) separates words too."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered.translate(_SEPARATORS).split()
    return _NON_WORD.sub(" ", lowered).split()


class ScopedText:
    """One text a rule looks at, with its word views computed lazily and at most once per request.

    Keyword tests cost one pass over the text in total (a set of the words that are also keywords),
    not one pass per keyword, so large keyword tables stay cheap on long prompts.
    """

    def __init__(self, raw: str, vocabulary: frozenset[str]):
        self.raw = raw
        self._vocabulary = vocabulary

    @cached_property
    def words(self) -> list[str]:
        """The text's words, lower-case."""
        return words_of(self.raw)

    @cached_property
    def present(self) -> frozenset[str]:
        """Which of the table's keyword words occur in the text."""
        return self._vocabulary.intersection(self.words)

    @cached_property
    def joined(self) -> str:
        """The words joined by single spaces and padded, for whole-phrase search."""
        return f" {' '.join(self.words)} "

    def has(self, keyword: tuple[str, ...]) -> bool:
        """True when the keyword (a word, or a phrase of several) occurs as whole words."""
        if keyword[0] not in self.present:
            return False
        return len(keyword) == 1 or f" {' '.join(keyword)} " in self.joined


def _word_count_at_most(text: str, limit: int) -> int:
    """The number of words, counting no further than limit + 1 (cheap on long texts)."""
    return len(text.split(None, limit + 1))


Check = Callable[[ScopedText, RouteRequest], str | None]


@dataclass(frozen=True)
class CompiledRule:
    """A rule turned into a list of checks; each returns a description when it holds, else None."""

    name: str
    tier: str
    confidence: float
    scope: str
    checks: tuple[Check, ...]

    def match(self, request: RouteRequest, texts: dict[str, ScopedText],
              vocabulary: frozenset[str]) -> list[str] | None:
        """Descriptions of every condition when all hold, else None."""
        text = texts.get(self.scope)
        if text is None:
            raw = request.last_user_text if self.scope == "last_user" else request.user_text
            text = texts[self.scope] = ScopedText(raw, vocabulary)
        found: list[str] = []
        for check in self.checks:
            hit = check(text, request)
            if hit is None:
                return None
            found.append(hit)
        return found


def keyword_tuple(keyword: str) -> tuple[str, ...]:
    """A keyword as the words it is made of (`"Stack-Trace"` -> `("stack", "trace")`)."""
    return tuple(words_of(keyword))


def _keyword_checks(rule: RuleConfig) -> list[Check]:
    checks: list[Check] = []
    if rule.keywords:
        words = tuple(kw for kw in map(keyword_tuple, rule.keywords) if kw)

        def any_kw(text: ScopedText, _req: RouteRequest) -> str | None:
            return next((f"keyword '{' '.join(w)}'" for w in words if text.has(w)), None)

        checks.append(any_kw)
    if rule.all_keywords:
        all_words = tuple(kw for kw in map(keyword_tuple, rule.all_keywords) if kw)

        def all_kw(text: ScopedText, _req: RouteRequest) -> str | None:
            ok = all(text.has(w) for w in all_words)
            return f"all keywords {[' '.join(w) for w in all_words]}" if ok else None

        checks.append(all_kw)
    if rule.regex:
        patterns = tuple(re.compile(p, re.IGNORECASE) for p in rule.regex)

        def regex(text: ScopedText, _req: RouteRequest) -> str | None:
            return next((f"regex /{p.pattern}/" for p in patterns if p.search(text.raw)), None)

        checks.append(regex)
    return checks


def _size_checks(rule: RuleConfig) -> list[Check]:
    checks: list[Check] = []
    lo_t, hi_t, lo_w, hi_w = rule.min_tokens, rule.max_tokens, rule.min_words, rule.max_words
    if lo_t is not None or hi_t is not None:

        def tokens(text: ScopedText, _req: RouteRequest) -> str | None:
            n = estimate_tokens(len(text.raw))
            ok = (lo_t is None or n >= lo_t) and (hi_t is None or n <= hi_t)
            return f"~{n} tokens" if ok else None

        checks.append(tokens)
    if lo_w is not None or hi_w is not None:
        limit = max(lo_w or 0, hi_w or 0)

        def words(text: ScopedText, _req: RouteRequest) -> str | None:
            n = _word_count_at_most(text.raw, limit)
            ok = (lo_w is None or n >= lo_w) and (hi_w is None or n <= hi_w)
            return (f"{n} words" if n <= limit else f">{limit} words") if ok else None

        checks.append(words)
    return checks


def _flag_checks(rule: RuleConfig) -> list[Check]:
    flags: list[tuple[bool | None, str, Callable[[str, RouteRequest], bool]]] = [
        (rule.has_code, "code block", lambda raw, _r: CODE_FENCE in raw),
        (rule.has_tools, "tools", lambda _raw, r: r.has_tools),
        (rule.has_images, "images", lambda _raw, r: r.images > 0),
        (rule.has_attachments, "attachments", lambda _raw, r: r.attachments > 0),
    ]
    checks: list[Check] = []
    for wanted, label, test in flags:
        if wanted is None:
            continue

        def flag(text: ScopedText, req: RouteRequest, wanted: bool = wanted, label: str = label,
                 test: Callable[[str, RouteRequest], bool] = test) -> str | None:
            held = test(text.raw, req) == wanted
            return (f"has {label}" if wanted else f"no {label}") if held else None

        checks.append(flag)
    return checks


def compile_rule(rule: RuleConfig) -> CompiledRule:
    """Turn a config rule into checks, cheapest first (flags, size, then text search)."""
    checks = (*_flag_checks(rule), *_size_checks(rule), *_keyword_checks(rule))
    return CompiledRule(rule.name, rule.tier, rule.confidence, rule.scope, checks)


class RulesRouter:
    """First matching rule wins; no match gives the default tier at the default confidence."""

    def __init__(self, rules: tuple[RuleConfig, ...], default_tier: str,
                 default_confidence: float = 0.5, name: str = "rules"):
        self.name = name
        self.rules = tuple(compile_rule(rule) for rule in rules)
        self.default_tier = default_tier
        self.default_confidence = default_confidence
        #: What no match gives: the same verdict every time, made once (frozen; its `scores` empty).
        self._no_match = Verdict(default_tier, default_confidence,
                                 f"no rule matched; default tier '{default_tier}'", name)
        self.vocabulary = frozenset(
            words[0]
            for rule in rules
            for keyword in (*rule.keywords, *rule.all_keywords)
            if (words := keyword_tuple(keyword))
        )

    def decide(self, request: RouteRequest, candidates: Candidates) -> Verdict:
        """Walk the table; the first rule whose conditions all hold decides."""
        texts: dict[str, ScopedText] = {}
        for rule in self.rules:
            found = rule.match(request, texts, self.vocabulary)
            if found is not None:
                why = f"rule '{rule.name}' matched ({', '.join(found) or 'no conditions'})"
                return Verdict(rule.tier, rule.confidence, why, self.name)
        return self._no_match


def _rules_of(params: RulesParams, ctx: BuildContext) -> tuple[RuleConfig, ...]:
    return params.rules if params.rules is not None else ctx.rules


def build(params: RulesParams, ctx: BuildContext) -> RulesRouter:
    """Factory for the registry."""
    return RulesRouter(_rules_of(params, ctx), params.default_tier, params.default_confidence)


def check_rules(rules: tuple[RuleConfig, ...], ctx: BuildContext, path: str) -> list[ConfigProblem]:
    """Unknown tiers, invalid regular expressions, and rules that match everything."""
    problems: list[ConfigProblem] = []
    for i, rule in enumerate(rules):
        where = f"{path}[{i}]"
        problems += tier_problem(rule.tier, ctx, f"{where}.tier")
        for key in ("keywords", "all_keywords"):
            for j, word in enumerate(getattr(rule, key)):
                if not keyword_tuple(word):
                    problems.append(ConfigProblem(f"{where}.{key}[{j}]", "empty keyword",
                                                  "write a word or phrase (punctuation other "
                                                  "than _ + # is ignored)"))
        for j, pattern in enumerate(rule.regex):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(ConfigProblem(f"{where}.regex[{j}]", f"invalid regex: {exc}",
                                              "Python `re` syntax; quote it in YAML"))
        conditions = rule.model_dump(exclude={"name", "tier", "scope", "confidence"},
                                     exclude_defaults=True)
        if not conditions:
            problems.append(ConfigProblem(where, f"rule '{rule.name}' has no conditions and "
                                          "matches every request", "add a condition or use "
                                          "default_tier", severity="warning"))
    return problems


def check(params: RulesParams, ctx: BuildContext) -> list[ConfigProblem]:
    """Semantic checks of the parameters and of the rules table they use."""
    problems = tier_problem(params.default_tier, ctx, f"{ctx.name}.default_tier")
    if params.rules is not None:
        problems += check_rules(params.rules, ctx, f"{ctx.name}.rules")
    return problems


ROUTER_TYPE = RouterType("rules", RulesParams, build, check)
