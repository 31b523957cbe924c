"""The decision's cheaper hot path gives exactly what the code it replaced gave: the same verdicts
(tier, models, confidence and P(good) scores bit for bit) and the same reason text, byte for byte.

The references below are the replaced code, kept verbatim: `f"{x:.2f}"` / `round(x, 4)` (now
`figures`), the classifier's numpy decision and string building (now Python floats from the kernel,
`round4`/`two_places` and the settings' texts formatted once), the cascade's `dataclasses.replace`
(now `Verdict.with_reason`) and the rules' default reason (now formatted at build)."""

from __future__ import annotations

import dataclasses
import math
import random
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helpers import load_yaml, no_candidates
from llmroute.constraints import Candidates
from llmroute.engine import Engine
from llmroute.learn.data import json_lines, prompt_of
from llmroute.learn.policy import Choice
from llmroute.routers.base import Verdict
from llmroute.routers.cascade import CascadeRouter, Stage
from llmroute.routers.classifier import ClassifierRouter
from llmroute.routers.figures import round4, scores_and_ranked, three_places, two_places
from llmroute.routers.rules import RulesRouter
from llmroute.settings import RuleConfig
from llmroute.types import RouteRequest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


# --- the number formats ------------------------------------------------------------------------

_UNIT_FLOATS = st.floats(0.0, 1.0) | st.integers(0, 20_000).map(lambda k: k / 20_000)

def _edges() -> list[float]:
    """Every two- and four-place step of [0, 1], its halves, and their neighbouring floats."""
    out = [0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, 5e-324, -5e-324, 1e-300, 1.0000000000000002,
           2.5, -0.125, 1e300]
    for k in range(20_001):
        for x in (k / 20_000, k / 200):
            lo, hi = math.nextafter(x, 0.0), math.nextafter(x, 2.0)
            out += [x, lo, hi, math.nextafter(lo, 0.0), math.nextafter(hi, 2.0)]
    return out


def test_the_formats_on_every_step_half_and_neighbour() -> None:
    for x in _edges():
        assert two_places(x) == f"{x:.2f}", x
        assert _bits(round4(x)) == _bits(round(x, 4)) or (math.isnan(x) and math.isnan(round4(x))), x


def test_the_formats_on_random_probabilities() -> None:
    rng = random.Random(17)
    for _ in range(200_000):
        x = rng.random()
        assert two_places(x) == f"{x:.2f}"
        assert _bits(round4(x)) == _bits(round(x, 4))
        assert two_places(round4(x)) == f"{round(x, 4):.2f}"


@given(st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=3000, deadline=None)
@example(0.125)
@example(0.005)
@example(0.00005)
def test_the_formats_on_any_float(x: float) -> None:
    assert two_places(x) == f"{x:.2f}"
    got, want = round4(x), round(x, 4)
    assert type(got) is float
    assert _bits(got) == _bits(want) or (math.isnan(got) and math.isnan(want))


def _old_scores(names: list[str], values: list[float]) -> tuple[dict[str, float], str]:
    scores = {n: round(q, 4) for n, q in zip(names, values, strict=True)}
    return scores, ", ".join(f"{n} {q:.2f}" for n, q in scores.items())


def test_scores_and_ranked_on_every_step_half_and_neighbour() -> None:
    values = _edges()
    for start in range(0, len(values), 7):
        chunk = values[start:start + 7]
        names = [f"m{i}" for i in range(len(chunk))]
        got, want = scores_and_ranked(names, chunk), _old_scores(names, chunk)
        assert got[1] == want[1]
        assert [_bits(v) for v in got[0].values()] == [_bits(v) for v in want[0].values()] or any(
            math.isnan(v) for v in chunk)
        assert list(got[0]) == list(want[0])


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats() | _UNIT_FLOATS), max_size=8))
@settings(max_examples=2000, deadline=None)
def test_scores_and_ranked_on_any_row(row: list[tuple[str, float]]) -> None:
    names, values = [n for n, _ in row], [q for _, q in row]     # names may repeat
    got, want = scores_and_ranked(names, values), _old_scores(names, values)
    assert got[1] == want[1]
    assert repr(got[0]) == repr(want[0])


# --- the cascade: `with_reason` and the judge's texts ------------------------------------------

def test_with_reason_is_replace_on_every_field() -> None:
    # A new field must be copied by `with_reason`: this list makes adding one fail here first.
    assert [f.name for f in dataclasses.fields(Verdict)] == [
        "tier", "confidence", "reason", "router", "scores", "models", "explored", "latent"]
    verdict = Verdict("complex", 0.75, "why", "r", {"m": 0.5}, ("m", "n"), True, "abc")
    assert verdict.with_reason("other") == dataclasses.replace(verdict, reason="other")
    plain = Verdict("simple", 0.1, "why", "r")
    assert plain.with_reason("x") == dataclasses.replace(plain, reason="x")


@dataclasses.dataclass(frozen=True)
class _Generated:
    """Verdict's fields with the `__init__` dataclasses generates (the reference)."""

    tier: str
    confidence: float
    reason: str
    router: str
    scores: Mapping[str, float] = dataclasses.field(default_factory=dict)
    models: tuple[str, ...] = ()
    explored: bool = False
    latent: str | None = None


@given(st.text(max_size=5), st.floats(), st.text(max_size=5), st.text(max_size=5),
       st.none() | st.dictionaries(st.text(max_size=3), st.floats(0, 1), max_size=3),
       st.none() | st.tuples(st.text(max_size=3)), st.none() | st.booleans(),
       st.none() | st.text(max_size=3))
@settings(max_examples=300, deadline=None)
def test_verdicts_init_is_the_generated_one(tier: str, confidence: float, reason: str, router: str,
                                            scores: dict[str, float] | None, models: tuple[str] | None,
                                            explored: bool | None, latent: str | None) -> None:
    given_ = {k: v for k, v in (("scores", scores), ("models", models), ("explored", explored),
                                ("latent", latent)) if v is not None}
    got = Verdict(tier, confidence, reason, router, **given_)  # type: ignore[arg-type]
    want = _Generated(tier, confidence, reason, router, **given_)  # type: ignore[arg-type]
    assert list(vars(got).items()) == list(vars(want).items()) or math.isnan(confidence)
    assert repr(got) == repr(want).replace("_Generated", "Verdict")
    assert [(f.name, f.default, f.default_factory) for f in dataclasses.fields(Verdict)] == [
        (f.name, f.default, f.default_factory) for f in dataclasses.fields(_Generated)]
    assert Verdict("t", 0.5, "r", "x").scores is not Verdict("t", 0.5, "r", "x").scores
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.tier = "other"  # type: ignore[misc]


class Stub:
    def __init__(self, name: str, confidence: float, tier: str):
        self.name = name
        self.verdict = Verdict(tier, confidence, f"{name} says {tier}", name, {tier: confidence},
                               (f"{tier}-model",), confidence > 0.5, None)

    def decide(self, request: RouteRequest, candidates: object) -> Verdict:
        return self.verdict


def _old_cascade(stages: list[tuple[Stub, float]], fallback: str) -> Verdict:
    """The cascade's walk and judge as they were (`replace`, every number formatted per call)."""
    trace: tuple[str, ...] = ()
    for index, (stub, threshold) in enumerate(stages):
        verdict = stub.verdict
        note = f"{verdict.router} {verdict.confidence:.2f}"
        if verdict.confidence >= threshold:
            passed = f"; after {'; '.join(trace)}" if trace else ""
            reason = f"stage {index + 1} ({note} ≥ {threshold:.2f}): {verdict.reason}{passed}"
            return dataclasses.replace(verdict, reason=reason)
        trace = (*trace, f"{note} < {threshold:.2f} for '{verdict.tier}'")
    why = "; ".join(trace)
    return Verdict(fallback, 0.0, f"no stage confident ({why}); fallback tier '{fallback}'", "cascade")


_UNIT = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.005, 0.125, 0.695, 0.7, 1.0]))


@given(st.lists(st.tuples(_UNIT, _UNIT, st.sampled_from(["simple", "medium", "complex"])),
                min_size=1, max_size=4))
@settings(max_examples=500, deadline=None)
def test_the_cascade_judges_and_words_as_before(stages: list[tuple[float, float, str]]) -> None:
    stubs = [(Stub(f"s{i}", conf, tier), threshold) for i, (conf, threshold, tier) in enumerate(stages)]
    router = CascadeRouter([Stage(stub, threshold) for stub, threshold in stubs], "medium")  # type: ignore[arg-type]
    got = router.decide(RouteRequest.from_prompt("hello"), no_candidates())
    want = _old_cascade(stubs, "medium")
    assert got == want and repr(got) == repr(want)


def test_the_rules_default_reason_is_the_same_text() -> None:
    rule = RuleConfig(name="code", tier="complex", has_code=True, confidence=0.9)
    for tier in ("simple", "medium", "complex"):
        verdict = RulesRouter((rule,), tier, 0.4).decide(RouteRequest.from_prompt("hi"), no_candidates())
        assert verdict.reason == f"no rule matched; default tier '{tier}'"
        assert repr(verdict) == repr(Verdict(tier, 0.4, f"no rule matched; default tier '{tier}'", "rules"))


@dataclasses.dataclass(frozen=True)
class _GeneratedChoice:
    index: int
    confidence: float
    margin: float


@given(st.integers(), st.floats(), st.floats())
@settings(max_examples=200, deadline=None)
def test_choice_is_the_generated_dataclass(index: int, confidence: float, margin: float) -> None:
    got, want = Choice(index, confidence, margin), _GeneratedChoice(index, confidence, margin)
    assert list(vars(got).items()) == list(vars(want).items())
    assert repr(got) == repr(want).replace("_GeneratedChoice", "Choice")
    assert [f.name for f in dataclasses.fields(Choice)] == ["index", "confidence", "margin"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.index = 1  # type: ignore[misc]


# --- the classifier ----------------------------------------------------------------------------

def _old_classifier(router: ClassifierRouter, request: RouteRequest, found: Candidates) -> Verdict:
    """The classifier's decision as it was: `predict`'s arrays, the numpy-row policies, `round` and
    `:.2f` per pool model and the knob described per call."""
    names = [n for n in found.names() if n in router.tiers]
    text = request.last_user_text
    prediction = router.model.predict(text, names)
    pair = router.params.strong_weak
    if pair is not None:
        choice, why = pair.choose(names, prediction.p_good)
        setting = f"strong/weak: {why}"
    else:
        knob = router.params.knob_for(text)
        choice = knob.choose(prediction.p_good, prediction.expected_cost)
        setting = knob.describe() + (" (blend)" if knob is not router.params else "")
    chosen = names[choice.index]
    values = np.asarray(prediction.p_good, dtype=np.float64).tolist()
    scores = {n: round(q, 4) for n, q in zip(names, values, strict=True)}
    ranked = ", ".join(f"{n} {q:.2f}" for n, q in scores.items())
    reason = f"classifier P(good): {ranked}; chose {chosen} ({setting})"
    return Verdict(router.tiers[chosen], choice.confidence, reason, router.name, scores, (chosen,))


CONFIG = """
routing: {default_policy: a}
policies:
  a: {router: classifier, quality_target: 0.7}
  b: {router: classifier, quality_target: 0.85}
  c: {router: classifier, quality_target: 0.0}
  d: {router: classifier, willingness_to_pay: 26.64}
  e: {router: classifier, willingness_to_pay: 0.0}
  f: {router: classifier, willingness_to_pay: 1000}
  g: {router: classifier, quality_target: 0.6, blend: {share: 0.5, willingness_to_pay: 50}}
  h: {router: classifier, willingness_to_pay: 5, blend: {share: 0.3, quality_target: 0.8}}
  i: {router: classifier, strong_weak: {strong: openai/gpt-4.1, weak: openai/gpt-4o-mini, threshold: 0.02}}
"""
HANDMADE = ["", " ", "?", "hi", "Translate 'good morning' into French, please.", "2+2=?",
            "Write a Python function that parses ISO 8601 dates; include unit tests.",
            "```python\nimport os\n```", "東京の人口は何人ですか？", "😀 emoji 🚀", "x" * 5000,
            "Prove that there are infinitely many primes.\n\nThen explain why, step by step."]


def _prompts() -> list[str]:
    texts = list(HANDMADE)
    rng = random.Random(3)
    for name in ("llmrouter/test.jsonl", "mmlu-pro/test.jsonl", "routerbench/test.jsonl"):
        path = DATA / name
        if not path.exists():
            continue
        for i, (_, obj) in enumerate(json_lines(path)):
            if i >= 80:
                break
            prompt = prompt_of(obj)
            texts += [prompt, prompt[: rng.randint(1, 400)]]
    return texts


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine(load_yaml(tmp_path_factory.mktemp("cfg"), CONFIG))


def _subsets(found: Candidates, rng: random.Random) -> list[Candidates]:
    """The eligible pool, and random parts of it (constraints leave fewer candidates)."""
    out = [found]
    for _ in range(2):
        kept = tuple(s for s in found.models if rng.random() < 0.6)
        out.append(Candidates(kept, found.tiers))
    return out


def test_the_classifier_decides_and_words_as_before(engine: Engine) -> None:
    rng = random.Random(11)
    checked = 0
    for prompt in _prompts():
        request = RouteRequest.from_prompt(prompt)
        for found in _subsets(engine.candidates(request), rng):
            for name in "abcdefghi":
                router = engine.policies[name]
                assert isinstance(router, ClassifierRouter)
                got = router.decide(request, found)
                if not [n for n in found.names() if n in router.tiers]:
                    assert got.reason == "classifier: no candidate is known to the model"
                    continue
                want = _old_classifier(router, request, found)
                assert got == want and repr(got) == repr(want), prompt
                assert _bits(got.confidence) == _bits(want.confidence)
                checked += 1
    assert checked > 1000


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_the_classifier_on_any_text(engine: Engine, text: str) -> None:
    request = RouteRequest.from_prompt(text)
    found = engine.candidates(request)
    for name in "adgi":
        router = engine.policies[name]
        assert isinstance(router, ClassifierRouter)
        got, want = router.decide(request, found), _old_classifier(router, request, found)
        assert repr(got) == repr(want)


def test_predict_rows_are_predicts_numbers(engine: Engine) -> None:
    router = engine.policies["a"]
    assert isinstance(router, ClassifierRouter)
    names = list(router.tiers)
    for prompt in _prompts()[:60]:
        rows = router.model.predict_rows(prompt, names)
        if rows is None:                          # the kernel is not built: nothing to compare
            pytest.skip("the C kernel is not built")
        prediction = router.model.predict(prompt, names)
        p, cost = rows
        assert [_bits(v) for v in p] == [_bits(v) for v in prediction.p_good.tolist()]
        assert [_bits(v) for v in cost] == [_bits(v) for v in prediction.expected_cost.tolist()]


# --- the engine's chain ------------------------------------------------------------------------

def _old_chain(engine: Engine, verdict: Verdict, found: Candidates) -> tuple[str, tuple[str, ...], str]:
    """`Engine.chain` as it was: the ladder, walks and listings read from the settings per call."""
    from llmroute.engine import tier_order

    names = {spec.name: spec for spec in found.models}
    preferred = [m for m in verdict.models if m in names]
    ladder = engine.settings.tier_names
    start = verdict.tier if verdict.tier in ladder else ladder[-1]
    for tier in tier_order(start, ladder):
        table = engine.settings.tiers[tier]
        listed = [m for m in (table.model, *table.fallbacks) if m in names]
        tier_models = listed + [n for n, spec in names.items() if spec.tier == tier and n not in listed]
        models = tuple(dict.fromkeys([*preferred, *tier_models]))
        if models:
            note = "" if tier == verdict.tier else (
                f"; no eligible model in tier '{verdict.tier}', using tier '{tier}'")
            return tier, models, note
        preferred = []
    raise AssertionError("no eligible model")


def test_the_engines_chain_is_as_before(engine: Engine) -> None:
    rng = random.Random(5)
    request = RouteRequest.from_prompt("hello")
    found = engine.candidates(request)
    pool = [spec.name for spec in found.models] + ["not/a-model"]
    for _ in range(3000):
        kept = Candidates(tuple(s for s in found.models if rng.random() < 0.5), found.tiers)
        if not kept.models:
            continue
        tier = rng.choice([*engine.settings.tier_names, "unknown"])
        models = tuple(rng.sample(pool, rng.randint(0, 3)))
        verdict = Verdict(tier, 0.5, "r", "x", models=models)
        assert engine.chain(verdict, kept) == _old_chain(engine, verdict, kept)


def test_three_places_on_every_step_half_and_neighbour() -> None:
    """`three_places` (the answer's confidence header, issue 17 cut17d) is `:.3f` on every
    thousandth of [0, 1], its halves (k/2000) and their neighbouring floats, outside [0, 1], and
    on random probabilities."""
    edges = [0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, 5e-324, 1.0000000000000002, 2.5,
             -0.125, 1e300]
    for k in range(2_001):
        x = k / 2_000
        lo, hi = math.nextafter(x, 0.0), math.nextafter(x, 2.0)
        edges += [x, lo, hi, math.nextafter(lo, 0.0), math.nextafter(hi, 2.0)]
    rng = random.Random(3)
    for x in [*edges, *(rng.random() for _ in range(100_000))]:
        assert three_places(x) == f"{x:.3f}", x
