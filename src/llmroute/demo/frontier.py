"""Where a policy sits on the cost–quality plane, measured offline on the replay records.

The demo's prompts are RouterBench's test split: the bundled artifact is never trained on it, so its
predictions there are held out. They are split in two halves by a salted CRC-32 of the prompt
(`split_of`, independent of the blend's hash): the default policy's knob is tuned on the
`calibrate` half (`calibrate_default`, `scripts/calibrate_default.py`) and reported on the `report`
half. A policy is replayed through the real `Engine` (constraints, rules, classifier, chain), so the
point is the one the gateway would reach; quality and cost are the recorded outcome and cost of the
chain's first model.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..constraints import Candidates
from ..engine import Engine
from ..evaluate.metrics import CurvePoint, non_decreasing_convex_hull
from ..learn import calibrate as cal
from ..learn.policy import frontier, sweep_target, sweep_tradeoff
from ..reports.plane import LabFrontier, PlanePoint
from ..routers.base import Consult, Router
from ..routers.cascade import CascadeRouter
from ..routers.classifier import ClassifierRouter
from ..routers.rules import RulesRouter
from ..settings import RuleConfig, Settings
from ..types import RouteRequest

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Split = Literal["calibrate", "report"]
SPLIT_SALT = b"llmroute-split\0"


def split_of(text: str) -> Split:
    """The half a prompt belongs to: stable across processes, independent of `blend_point`."""
    even = zlib.crc32(SPLIT_SALT + text.encode("utf-8", "surrogatepass")) % 2 == 0
    return "calibrate" if even else "report"


def _recorded(record: Mapping[str, Any], models: Sequence[str]
              ) -> tuple[list[float], list[float]] | None:
    """A record's (outcomes, costs) over `models`, None when any of them is missing."""
    outcomes, costs = [], []
    for model in models:
        entry = record["models"].get(model) or {}
        outcome, cost = entry.get("outcome"), entry.get("cost_usd")
        if outcome is None or cost is None:
            return None
        outcomes.append(float(outcome))
        costs.append(float(cost))
    return outcomes, costs


@dataclass(frozen=True)
class Replayed:
    """Recorded quality Q[i, m] and cost C[i, m] (USD) of the pool models on the prompts that have
    both for every one of them."""

    models: tuple[str, ...]
    quality: F64
    cost: F64
    texts: tuple[str, ...]

    @classmethod
    def of_records(cls, records: Sequence[Mapping[str, Any]], models: Sequence[str]) -> Replayed:
        """From replay records (`{"prompt", "models": {name: {"outcome", "cost_usd"}}}`)."""
        rows = [(str(record["prompt"]), *found) for record in records
                if (found := _recorded(record, models)) is not None]
        m = len(models)
        return cls(tuple(models),
                   np.asarray([r[1] for r in rows], dtype=np.float64).reshape(-1, m),
                   np.asarray([r[2] for r in rows], dtype=np.float64).reshape(-1, m),
                   tuple(r[0] for r in rows))

    @property
    def n(self) -> int:
        """Number of prompts."""
        return len(self.texts)

    def where(self, keep: npt.NDArray[np.bool_]) -> Replayed:
        """The prompts where `keep` holds."""
        return Replayed(self.models, self.quality[keep], self.cost[keep],
                        tuple(t for t, k in zip(self.texts, keep, strict=True) if k))

    def split(self, half: Split) -> Replayed:
        """One half of the prompts (see `split_of`)."""
        return self.where(np.asarray([split_of(t) == half for t in self.texts], dtype=bool))

    def point(self, choice: I64, label: str) -> CurvePoint:
        """Mean recorded cost and quality when prompt i goes to model choice[i]."""
        rows = np.arange(self.n)
        return CurvePoint(float(self.cost[rows, choice].mean()),
                          float(self.quality[rows, choice].mean()), label)

    def single(self, model: str) -> CurvePoint:
        """Always `model`."""
        j = self.models.index(model)
        return CurvePoint(float(self.cost[:, j].mean()), float(self.quality[:, j].mean()), model)


def verdicts(router: Router, engine: Engine, texts: Sequence[str]) -> list[str]:
    """The first model of the chain `engine` builds from `router`'s verdict, per prompt (a router
    that asks an LLM is not replayable offline: ValueError)."""
    out = []
    for text in texts:
        request = RouteRequest.from_prompt(text)
        found = engine.candidates(request)
        verdict = router.decide(request, found)
        if isinstance(verdict, Consult):
            raise ValueError(f"router {router.name!r} consults an LLM: not replayable offline")
        out.append(engine.chain(verdict, found)[1][0])
    return out


def policy_choice(engine: Engine, policy: str, table: Replayed) -> I64:
    """The model index the named policy sends each prompt to."""
    _, router = engine.router(policy)
    index = {m: j for j, m in enumerate(table.models)}
    return np.asarray([index[m] for m in verdicts(router, engine, table.texts)], dtype=np.int64)


def classifier_of(router: Router) -> ClassifierRouter | None:
    """The policy's classifier: itself, or the first classifier stage of a cascade."""
    if isinstance(router, ClassifierRouter):
        return router
    if isinstance(router, CascadeRouter):
        return next((s.router for s in router.stages if isinstance(s.router, ClassifierRouter)),
                    None)
    return None


def predictions(classifier: ClassifierRouter, table: Replayed) -> tuple[F64, F64]:
    """The classifier's P(good) and expected cost, N × M over the table's models."""
    return classifier.model.predict_many(table.texts, list(table.models))


def classifier_curve(p: F64, est: F64, table: Replayed) -> list[CurvePoint]:
    """Every operating point of both knobs on the table (the hull of these is the lab's curve)."""
    points = []
    for knob, sweep in (("target", sweep_target), ("λ", sweep_tradeoff)):
        for pt in frontier(sweep(p, est, table.quality, table.cost)):
            points.append(CurvePoint(pt.cost, pt.quality, f"classifier@{knob}={pt.param:.6g}"))
    return points


def hull_gap(point: CurvePoint, curve: Sequence[CurvePoint]) -> float:
    """How far `point` lies below the hull of `curve` (and itself) at its cost, in quality units
    (0: on the hull)."""
    hull = non_decreasing_convex_hull([*curve, point])
    costs = np.asarray([h.cost for h in hull])
    qualities = np.asarray([h.quality for h in hull])
    return float(np.interp(point.cost, costs, qualities)) - point.quality


def before_classifier(router: Router, engine: Engine, table: Replayed
                      ) -> tuple[npt.NDArray[np.bool_], I64]:
    """Which prompts a cascade's stages before its classifier decide (confidence ≥ the stage's
    threshold), and the model index each of those goes to (0 elsewhere)."""
    decided = np.zeros(table.n, dtype=bool)
    choice = np.zeros(table.n, dtype=np.int64)
    if not isinstance(router, CascadeRouter):
        return decided, choice
    index = {m: j for j, m in enumerate(table.models)}
    for i, text in enumerate(table.texts):
        request = RouteRequest.from_prompt(text)
        found = engine.candidates(request)
        for stage in router.stages:
            if isinstance(stage.router, ClassifierRouter):
                break
            verdict = stage.router.decide(request, found)
            if isinstance(verdict, Consult):
                raise ValueError(f"stage {stage.router.name!r} consults an LLM: not replayable")
            if verdict.confidence >= stage.threshold:
                decided[i] = True
                choice[i] = index[engine.chain(verdict, found)[1][0]]
                break
    return decided, choice


# --- rules: which ones are precise ---------------------------------------------------------------


@dataclass(frozen=True)
class RuleCheck:
    """One rule on the prompts where it is the first to match: how often its tier was the one the
    prompt needed (the cheapest tier whose primary model reaches the best quality of the tier
    primaries), and its picks against the classifier's on the same prompts."""

    name: str
    tier: str
    fired: int
    precision: float
    rule: CurvePoint
    classifier: CurvePoint


def first_rule(rules: Sequence[RuleConfig], texts: Sequence[str]) -> list[str | None]:
    """The name of the first rule matching each prompt (None: none does)."""
    empty = Candidates((), ())
    singles = [RulesRouter((rule,), "simple", 0.0) for rule in rules]
    out: list[str | None] = []
    for text in texts:
        request = RouteRequest.from_prompt(text)
        hit = next((r.rules[0].name for r in singles if r.decide(request, empty).confidence > 0), None)
        out.append(hit)
    return out


def needed_tiers(table: Replayed, primaries: Mapping[str, str]) -> list[str]:
    """Per prompt, the cheapest tier (ladder order of `primaries`) whose primary model's recorded
    quality equals the best among the primaries."""
    tiers = list(primaries)
    cols = np.asarray([table.models.index(primaries[t]) for t in tiers])
    q = table.quality[:, cols]
    first = np.argmax(q >= q.max(axis=1, keepdims=True), axis=1)
    return [tiers[int(k)] for k in first]


def rule_checks(rules: Sequence[RuleConfig], engine: Engine, table: Replayed,
                classifier_choice: I64) -> list[RuleCheck]:
    """Every rule's precision and its head-to-head with the classifier (rules that never fire on the
    table are listed with `fired` 0)."""
    primaries = {t: engine.settings.tiers[t].model for t in engine.settings.tier_names}
    needed = needed_tiers(table, primaries)
    hits = first_rule(rules, table.texts)
    out = []
    for rule in rules:
        mask = np.asarray([h == rule.name for h in hits], dtype=bool)
        fired = int(mask.sum())
        if not fired:
            nothing = CurvePoint(0.0, 0.0, rule.name)
            out.append(RuleCheck(rule.name, rule.tier, 0, float("nan"), nothing, nothing))
            continue
        sub = table.where(mask)
        pick = np.full(fired, table.models.index(primaries[rule.tier]), dtype=np.int64)
        right = sum(n == rule.tier for n, k in zip(needed, mask, strict=True) if k)
        out.append(RuleCheck(rule.name, rule.tier, fired, right / fired,
                             sub.point(pick, rule.name),
                             sub.point(classifier_choice[mask], "classifier")))
    return out


# --- calibration: the default's knob on one half ------------------------------------------------


@dataclass(frozen=True)
class DefaultCalibration:
    """The classifier stage's setting that makes the whole policy (the rules' prompts included)
    keep `goal` of the reference's quality at the least cost, on the calibration prompts."""

    calibration: cal.Calibration
    goal: float
    point: CurvePoint


def calibrate_default(p: F64, est: F64, table: Replayed, decided: npt.NDArray[np.bool_],
                      decided_choice: I64, reference: str, goal: float,
                      knobs: Sequence[cal.Knob] = ("willingness_to_pay",), single: bool = True,
                      ) -> DefaultCalibration | None:
    """Tune the classifier for the prompts the rules leave (`~decided`) so that the mean quality over
    all prompts reaches `goal` × the reference's (None when no setting does). `single`: the
    cheapest one setting that reaches it (the upper end of the blend `llmroute calibrate` would
    write), so the default stays one readable number."""
    ref = table.models.index(reference)
    rest = ~decided
    n, n_rest = table.n, int(rest.sum())
    rows = np.arange(n)
    fixed_q = float(table.quality[rows, decided_choice][decided].sum())
    fixed_c = float(table.cost[rows, decided_choice][decided].sum())
    wanted = goal * float(table.quality[:, ref].mean())
    found = [s for s in cal.settings(p[rest], est[rest], table.quality[rest], table.cost[rest], ref)
             if s.knob in knobs]
    if not n_rest:
        return None
    setting = cal.for_quality(found, (wanted * n - fixed_q) / n_rest)
    if setting is None:
        return None
    if single and setting.blend is not None:
        setting = cal.Calibration(setting.blend)
    point = CurvePoint((fixed_c + setting.cost * n_rest) / n, (fixed_q + setting.quality * n_rest) / n,
                       "default (expected)")
    return DefaultCalibration(setting, goal, point)


KNOB_KEYS = ("quality_target", "willingness_to_pay", "blend", "strong_weak")


def with_classifier_params(spec: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A policy spec (a classifier, or a cascade with a classifier stage) with that classifier's
    knob replaced by `params` (other keys, e.g. a stage's threshold, kept)."""

    def knobbed(stage: Mapping[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in stage.items() if k not in KNOB_KEYS}, **params}

    if spec.get("router") == "classifier":
        return knobbed(spec)
    stages = [knobbed(st) if st.get("router") == "classifier" else dict(st)
              for st in spec.get("stages", ())]
    return {**spec, "stages": stages}


def relative(point: CurvePoint, reference: CurvePoint) -> tuple[float, float]:
    """(cost, quality) of `point` as fractions of the reference's."""
    return point.cost / reference.cost, point.quality / reference.quality


def describe(point: CurvePoint, reference: CurvePoint) -> str:
    """'95.3% of <reference>'s quality at 14.2% of its cost'."""
    cost, quality = relative(point, reference)
    return f"{quality:.1%} of {reference.label}'s quality at {cost:.1%} of its cost"



# --- the demo's lab frontier --------------------------------------------------------------------

#: What the lab's points are measured on.
MEASURED_ON = ("RouterBench test prompts replayed offline, each with every pool model's recorded "
               "outcome and cost (held out: the router artifact is never trained on them)")


def lab_frontier(settings: Settings, records: Sequence[Mapping[str, Any]], policy: str,
                 reference: str) -> LabFrontier:
    """The lab's points on these records: every single model, the hull of the policy's classifier
    over every knob setting, and the policy replayed through the Engine on all prompts and on each
    half (`split_of`: its knob is tuned on `calibrate`, reported on `report`)."""
    engine = Engine(settings)
    pool = [spec.name for spec in engine.catalog if spec.tier]
    table = Replayed.of_records(records, pool)
    points = [PlanePoint(m, "lab-model", pt.cost, pt.quality, table.n, "always this model")
              for m in pool if table.n for pt in (table.single(m),)]
    if not table.n:
        return LabFrontier(MEASURED_ON, reference, ())
    _, router = engine.router(policy)
    classifier = classifier_of(router)
    if classifier is not None:
        p, est = predictions(classifier, table)
        points += [PlanePoint(pt.label, "lab-curve", pt.cost, pt.quality, table.n,
                              "hull vertex; knob chosen on these prompts")
                   for pt in non_decreasing_convex_hull(classifier_curve(p, est, table))]
    choice = policy_choice(engine, policy, table)
    halves: tuple[tuple[str, str, npt.NDArray[np.bool_]], ...] = (
        ("all prompts", "every prompt", np.ones(table.n, dtype=bool)),
        ("held-out half", "the half the default's knob was not tuned on",
         np.asarray([split_of(t) == "report" for t in table.texts], dtype=bool)))
    for label, note, mask in halves:
        if mask.any():
            sub = table.where(mask)
            pt, ref = sub.point(choice[mask], policy), sub.single(reference)
            points.append(PlanePoint(f"{policy} ({label})", "lab-policy", pt.cost, pt.quality,
                                     sub.n, note, (ref.cost, ref.quality)))
    return LabFrontier(f"{MEASURED_ON}; {table.n} prompts", reference, tuple(points))


def curve_quality_at(frontier: LabFrontier, cost: float) -> float | None:
    """The lab curve's quality at `cost` (None without a curve or below its cheapest point)."""
    hull = frontier.of_kind("lab-curve")
    if not hull or cost < hull[0].cost_usd:
        return None
    return float(np.interp(cost, [h.cost_usd for h in hull], [h.quality for h in hull]))


def best_single_within(frontier: LabFrontier, cost: float) -> PlanePoint | None:
    """The best single model (lab) costing at most `cost`."""
    within = [p for p in frontier.of_kind("lab-model") if p.cost_usd <= cost]
    return max(within, key=lambda p: p.quality, default=None)
