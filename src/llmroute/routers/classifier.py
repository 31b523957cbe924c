"""The learned classifier router: predicts, per candidate model, the probability that its answer is
good, and picks the cheapest model likely enough (a quality target) or the best quality for the money
(a willingness to pay). Pure numpy at decision time; the trained artifact is loaded once, at build.

Every pool model gets a profile on day one, without outcomes of its own, and records where it came
from (`learn.provenance`): a policy alias, a `like:` pin, the artifact's own model (by name or under
another spelling), a prior from its catalog entry, else the typical profile of its tier.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, model_validator

from ..catalog import Catalog, ModelSpec
from ..chat import may_explore
from ..constraints import Candidates
from ..errors import ConfigProblem
from ..learn import artifact as artifacts
from ..learn.catalog_prior import CatalogPrior
from ..learn.model import ModelProfile, RouterModel
from ..learn.names import match_known
from ..learn.policy import Choice, blend_point, by_target, by_tradeoff, target_row, tradeoff_row
from ..learn.provenance import ProfileSource, SourcedProfile, day_one_profile, like_problem
from ..types import RouteRequest
from .base import BuildContext, RouterParams, RouterType, Verdict
from .figures import scores_and_ranked

if TYPE_CHECKING:  # learning online's code loads only when it is on
    from ..learn.online_hub import OnlineHub, Slot


class _Knob(RouterParams):
    """One setting of the policy knob: `quality_target` or `willingness_to_pay` (0.7 target if none)."""

    quality_target: float | None = Field(None, ge=0, le=1)
    willingness_to_pay: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_knob(self) -> _Knob:
        if self.quality_target is not None and self.willingness_to_pay is not None:
            raise ValueError("give `quality_target` or `willingness_to_pay`, not both")
        return self

    @property
    def target(self) -> float:
        """The quality target in force (0.7 when neither knob is given)."""
        return 0.7 if self.quality_target is None else self.quality_target

    def choose(self, p: np.ndarray, cost: np.ndarray) -> Choice:
        """This setting's pick."""
        if self.willingness_to_pay is not None:
            return by_tradeoff(p, cost, self.willingness_to_pay)
        return by_target(p, cost, self.target)

    def choose_row(self, p: list[float], cost: list[float]) -> Choice:
        """`choose` of one prompt given as Python floats (the same pick)."""
        if self.willingness_to_pay is not None:
            return tradeoff_row(p, cost, self.willingness_to_pay)
        return target_row(p, cost, self.target)

    def describe(self) -> str:
        return (f"λ={self.willingness_to_pay:g}" if self.willingness_to_pay is not None
                else f"target {self.target:.4g}")


class Blend(_Knob):
    """A second knob setting for a `share` of prompts: operating points between two settings (the
    cost–quality curve's convex hull, as `llmroute calibrate` finds them) become reachable."""

    share: float = Field(..., ge=0, le=1)


class StrongWeak(RouterParams):
    """RouteLLM's knob: only `strong` and `weak` are used; a prompt goes to `strong` when the
    predicted gain P(strong good) − P(weak good) exceeds `threshold` (`llmroute calibrate --strong
    --weak` turns a share of strong calls or a quality goal into it)."""

    strong: str
    weak: str
    threshold: float = Field(..., ge=-1, le=1)

    def choose(self, names: list[str], p: np.ndarray) -> tuple[Choice, str]:
        """The pick among `names` and why. When constraints leave only one of the pair, that one;
        when neither, the most likely candidate."""
        has_strong, has_weak = self.strong in names, self.weak in names
        if has_strong and has_weak:
            i, j = names.index(self.strong), names.index(self.weak)
            gain = float(p[i] - p[j])
            pick = i if gain > self.threshold else j
            return (Choice(pick, float(p[pick]), gain - self.threshold),
                    f"gain {gain:+.3f} vs threshold {self.threshold:+.3f}")
        if has_strong or has_weak:
            k = names.index(self.strong if has_strong else self.weak)
            return Choice(k, float(p[k]), 0.0), "only one of the pair is a candidate"
        k = int(np.argmax(p))
        return Choice(k, float(p[k]), 0.0), "neither of the pair is a candidate: the most likely"


class ClassifierParams(_Knob):
    """`artifact`: a trained router (default: the bundled one). The policy knob: `quality_target`
    (cheapest model whose predicted quality reaches it), `willingness_to_pay` (maximise predicted
    quality − λ · cost, λ in quality points per USD), or `strong_weak` (a strong/weak pair and a
    threshold on the predicted gain); `blend` applies another target/λ setting to a share of
    prompts, picked by a hash of the prompt (the same prompt always gets the same setting).
    `aliases` maps pool models to artifact models."""

    artifact: str | None = None
    blend: Blend | None = None
    strong_weak: StrongWeak | None = None
    aliases: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _pair_alone(self) -> ClassifierParams:
        if self.strong_weak is not None and (self.quality_target is not None or self.blend is not None
                                             or self.willingness_to_pay is not None):
            raise ValueError("`strong_weak` is a knob of its own: drop `quality_target`, "
                             "`willingness_to_pay` and `blend`")
        return self

    def knob_for(self, text: str) -> _Knob:
        """The knob setting for this prompt: `blend` for a stable `blend.share` of prompts."""
        if self.blend is not None and blend_point(text) < self.blend.share:
            return self.blend
        return self


def _priced(profile: ModelProfile, spec: ModelSpec) -> ModelProfile:
    if spec.input_per_m is None or spec.output_per_m is None:
        return profile
    return profile.with_prices(float(spec.input_per_m), float(spec.output_per_m))


def sourced_pool_profiles(model: RouterModel, catalog: Catalog, aliases: dict[str, str]
                          ) -> list[SourcedProfile]:
    """A profile for every pool model on the ladder, priced from the catalog, with its source (see
    `learn.provenance`). Models with no tier (only listed under `models:`) are not the classifier's
    to pick."""
    prior = CatalogPrior.fit(model)
    out = []
    for spec in catalog:
        if not spec.tier:
            continue
        sourced = day_one_profile(model, spec, alias=aliases.get(spec.name), prior=prior)
        out.append(SourcedProfile(_priced(sourced.profile, spec), sourced.source))
    return out


def pool_profiles(model: RouterModel, catalog: Catalog, aliases: dict[str, str]
                  ) -> list[ModelProfile]:
    """The profiles of `sourced_pool_profiles`, without their sources."""
    return [s.profile for s in sourced_pool_profiles(model, catalog, aliases)]


@dataclass(frozen=True)
class Online:
    """A classifier's part in learning online: the engine's hub (exploration share, random source)
    and this pool's slot (the live posterior)."""

    hub: OnlineHub
    slot: Slot


class ClassifierRouter:
    """Decides with a trained predictor over the pool's models; learning online, with the
    posterior means of `online` (and, for a share of requests, a Thompson draw)."""

    def __init__(self, model: RouterModel, params: ClassifierParams, tiers: dict[str, str],
                 name: str = "classifier", sources: dict[str, ProfileSource] | None = None,
                 online: Online | None = None):
        self.name = name
        self.model = model
        self.params = params
        self.tiers = tiers
        self.sources = dict(sources or {})   # pool model -> where its profile came from
        self.online = online
        #: The knob settings' texts in the reason, formatted once (the params are frozen).
        self._setting = params.describe()
        self._blend_setting = None if params.blend is None else f"{params.blend.describe()} (blend)"
        #: `params.knob_for` and the knob's `choose_row`, read once (the params are frozen).
        self._blend = params.blend
        self._lam = params.willingness_to_pay
        self._target = params.target

    def decide(self, request: RouteRequest, candidates: Candidates) -> Verdict:
        """The cheapest likely-good candidate (or the best value for the money)."""
        tiers = self.tiers
        names = [spec.name for spec in candidates.models if spec.name in tiers]
        if not names:
            return Verdict(next(iter(self.tiers.values()), "medium"), 0.0,
                           "classifier: no candidate is known to the model", self.name)
        text = request.last_user_text
        if self.online is not None:
            return self._decide_online(self.online, request, names)
        rows = self.model.predict_rows(text, names)
        if rows is not None:              # the kernel's numbers as Python floats: no arrays
            p, cost = rows
            choice, setting = self._choose_row(text, names, p, cost)
            return self._verdict(names, p, choice, setting)
        prediction = self.model.predict(text, names)
        choice, setting = self._choose(text, names, prediction.p_good, prediction.expected_cost)
        return self._verdict(names, _floats(prediction.p_good), choice, setting)

    def _setting_of(self, knob: _Knob) -> str:
        if knob is self.params:
            return self._setting
        return self._blend_setting or f"{knob.describe()} (blend)"

    def _choose(self, text: str, names: list[str], p: np.ndarray, cost: np.ndarray
                ) -> tuple[Choice, str]:
        pair = self.params.strong_weak
        if pair is not None:
            choice, why = pair.choose(names, p)
            return choice, f"strong/weak: {why}"
        knob = self.params.knob_for(text)
        return knob.choose(p, cost), self._setting_of(knob)

    def _choose_row(self, text: str, names: list[str], p: list[float], cost: list[float]
                    ) -> tuple[Choice, str]:
        """`_choose` of one prompt given as Python floats (the same pick and text)."""
        pair = self.params.strong_weak
        if pair is not None:
            choice, why = pair.choose(names, np.asarray(p, dtype=np.float64))
            return choice, f"strong/weak: {why}"
        blend = self._blend
        if blend is not None and blend_point(text) < blend.share:     # `knob_for`'s test
            return blend.choose_row(p, cost), self._setting_of(blend)
        lam = self._lam
        if lam is not None:
            return tradeoff_row(p, cost, lam), self._setting
        return target_row(p, cost, self._target), self._setting

    def _verdict(self, names: list[str], values: list[float], choice: Choice, setting: str, *,
                 explored: bool = False, latent: str | None = None) -> Verdict:
        """The verdict; scores are `round(q, 4)` and the reason shows them `:.2f` (`figures`: the
        same floats and text)."""
        chosen = names[choice.index]
        scores, ranked = scores_and_ranked(names, values)
        reason = f"classifier P(good): {ranked}; chose {chosen} ({setting})"
        return Verdict(self.tiers[chosen], choice.confidence, reason, self.name, scores, (chosen,),
                       explored, latent)

    def _decide_online(self, online: Online, request: RouteRequest, names: list[str]) -> Verdict:
        """Predict with the posterior means (choose with `learning.optimism`'s bonus for the
        less-known models when set: `Slot.p_upper`); with probability `explore` (unless the request is
        marked not to), choose on a Thompson draw instead, among the candidates the exploration
        strategy leaves (by default all but the means' own choice), drawn at the prompt or, with
        the "traffic" scope, at the pool's typical prompt."""
        text = request.last_user_text
        z = self.model.latent(text)
        _, cost, _ = self.model.predict_latent(z, len(text), names)
        slot = online.slot
        p = slot.p_good(z, names)
        exploration = online.hub.exploration
        explorable = exploration.share > 0 and may_explore(request.metadata)
        typical = exploration.at == "traffic"
        if typical and exploration.share > 0:
            slot.traffic.add(z)
        # the prompt scope draws before the coin (its random stream is the one measured before)
        draw = slot.thompson(z, names, online.hub.rng) if explorable and not typical else p
        explored = exploration.explores(online.hub.rng, explorable, slot.learnt)
        optimism = online.hub.optimism
        if optimism > 0:   # the greedy choice on the optimistic P(good); scores stay the means
            choice, setting = self._choose(text, names, slot.p_upper(z, names, optimism), cost)
            setting = f"{setting}; optimism {optimism:g} sd"
        else:
            choice, setting = self._choose(text, names, p, cost)
        slot.budget.count()
        source = p
        if explored:
            at = slot.traffic.at(z) if typical else z
            ref = slot.p_good(at, names) if typical else p
            if typical:
                draw = slot.thompson(at, names, online.hub.rng)
            picked = self._challenger(online, text, names, at, ref, draw, cost, choice.index)
            if picked is None:     # none within the bounds or the budget, or all at their cap
                explored = False
            else:
                choice, sub_setting = picked
                source = draw
                scope = ", at the traffic's typical prompt" if typical else ""
                setting = f"{sub_setting}; explored: Thompson draw ({exploration.strategy}{scope})"
        from ..learn.online_hub import encode_latent  # loaded by the hub already

        latent = encode_latent(z) if online.hub.store_latent else None
        return self._verdict(names, _floats(source), choice, setting, explored=explored,
                             latent=latent)

    def _challenger(self, online: Online, text: str, names: list[str], at: np.ndarray,
                    ref: np.ndarray, draw: np.ndarray, cost: np.ndarray, incumbent: int
                    ) -> tuple[Choice, str] | None:
        """The explored choice: the best `draw` (P(good) drawn at latent `at`, `ref` the means
        there) among the challengers the strategy, the bounds, the regret budget and the pending
        cap leave (charged to the budget and held as pending); None when none is left."""
        slot, exploration = online.slot, online.hub.exploration
        now = time.monotonic()
        beat = slot.beat_probability(at, names, incumbent) if exploration.beat > 0 else None
        rest = exploration.open_challengers(np.arange(len(names)), incumbent, ref, beat, slot.budget)
        rest = slot.pending.open(rest, names, now)
        if len(rest) == 0:
            return None
        sub, sub_setting = self._choose(text, [names[i] for i in rest], draw[rest], cost[rest])
        choice = Choice(int(rest[sub.index]), sub.confidence, sub.margin)
        slot.budget.charge(incumbent, choice.index, ref)
        slot.pending.hold(names[choice.index], now)
        return choice, sub_setting


def _floats(p: np.ndarray) -> list[float]:
    """One row of probabilities as Python floats (float64)."""
    values: list[float] = np.asarray(p, dtype=np.float64).tolist()
    return values


def _load(params: ClassifierParams, ctx: BuildContext) -> RouterModel:
    """The artifact, loaded once per build: the policies over the same file share its arrays."""
    key = params.artifact or ""
    model = ctx.artifacts.get(key)
    if model is None:
        model = artifacts.load(params.artifact) if params.artifact else artifacts.load_default()
        ctx.artifacts[key] = model
    return model


def build(params: ClassifierParams, ctx: BuildContext) -> ClassifierRouter:
    """Factory: load the artifact and give every pool model a profile (and, learning online, a
    posterior in the engine's hub, shared with every classifier over the same artifact and pool)."""
    model = _load(params, ctx)
    sourced = sourced_pool_profiles(model, ctx.catalog, params.aliases)
    tiers = {s.profile.name: s.profile.tier for s in sourced}
    pool = model.with_profiles([s.profile for s in sourced])
    online = None
    if ctx.online is not None and pool.models:
        online = Online(ctx.online, ctx.online.slot(params.artifact or "bundled", pool, model))
    return ClassifierRouter(pool, params, tiers, sources={s.profile.name: s.source for s in sourced},
                            online=online)


def check(params: ClassifierParams, ctx: BuildContext) -> list[ConfigProblem]:
    """The artifact must load; aliases and `like:` must name artifact models; every pool model
    needs a profile (known, catalog prior, or a tier known to the artifact)."""
    try:
        model = _load(params, ctx)
    except (OSError, artifacts.ArtifactError) as exc:
        where = params.artifact or "the bundled artifact"
        return [ConfigProblem(f"{ctx.name}.artifact", f"cannot load {where}: {exc}",
                              "rebuild it with `make router-artifact` or `llmroute train`")]
    problems = []
    for pool_name, known in params.aliases.items():
        if known not in model.models:
            problems.append(ConfigProblem(f"{ctx.name}.aliases.{pool_name}",
                                          f"the artifact has no model {known!r}",
                                          f"known: {', '.join(model.models)}"))
    pool = {spec.name for spec in ctx.catalog if spec.tier}
    if params.strong_weak is not None:
        for role in ("strong", "weak"):
            name = getattr(params.strong_weak, role)
            if name not in pool:
                problems.append(ConfigProblem(f"{ctx.name}.strong_weak.{role}",
                                              f"{name!r} is not a pool model (a catalog model with a tier)",
                                              f"pool: {', '.join(sorted(pool))}"))
    return problems + _pool_problems(model, ctx, params.aliases)


def _pool_problems(model: RouterModel, ctx: BuildContext, aliases: dict[str, str]
                   ) -> list[ConfigProblem]:
    """Every `like:` must name a known model; every pool model needs some profile."""
    problems = []
    prior = CatalogPrior.fit(model)
    known_tiers = set(model.tiers) - {""}
    for spec in ctx.catalog:
        if spec.like is not None:
            problem = like_problem(f"models.{spec.name}.like", spec.like, model.models)
            if problem is not None:
                problems.append(problem)
            continue
        if not spec.tier or spec.name in aliases or match_known(spec.name, model.models) is not None:
            continue
        if prior is not None and prior.profile(spec.name, spec) is not None:
            continue
        if spec.tier not in known_tiers:
            problems.append(ConfigProblem(f"{ctx.name}", f"model {spec.name} (tier {spec.tier!r}) "
                                          "is unknown to the artifact, has no priced catalog entry "
                                          "and its tier is unknown too",
                                          f"artifact tiers: {', '.join(sorted(known_tiers))}; "
                                          "add an alias or `like:` in models:"))
    return problems


ROUTER_TYPE = RouterType("classifier", ClassifierParams, build, check)
