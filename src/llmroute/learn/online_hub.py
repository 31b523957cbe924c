"""Learning online in the gateway (issue 13): the live posterior the classifier routers predict
with, and how one feedback becomes one update. Pure: no I/O (the learner in
`control/online_sync.py` reads the ledger and the shared state and calls `apply` / `load`).

An `OnlineHub` is built by the engine when `learning.online` or `learning.explore` is set, and
handed to every classifier router through the build context. Each router registers a `Slot`: its
pool's `OnlineProfiles` (keyed by artifact and pool, so two classifier policies over the same
artifact and pool share one posterior). Routers read the slot's current profiles on each decision;
`load` swaps them for a published state (an atomic reference change on the event loop).

Feedback to quality: task success is 1 or 0; a rating r of 1–5 is (r − 1) / 4; when both are given,
success decides. The rater, for its budget per model (`OnlineProfiles.budget`: a minority voice),
is the request's user, else its gateway key's name; a rater in `trusted` is not capped (as an
anonymous one).
The prompt latent travels in the ledger as float16, base64 (`encode_latent`): ~90 characters.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .abilities import prior
from .model import RouterModel
from .online import (
    ABILITY_VAR,
    RATER_CAP,
    RATER_FLOOR,
    RATER_SHARE,
    Exploration,
    OnlineProfiles,
    prior_covariance,
    shared_for,
)
from .online_explore import Pending, RegretBudget, TrafficMean

F64 = npt.NDArray[np.float64]


def encode_latent(z: npt.ArrayLike) -> str:
    """A prompt latent as compact text: float16 little-endian, base64."""
    return base64.b64encode(np.asarray(z, dtype="<f2").tobytes()).decode("ascii")


def decode_latent(text: str) -> F64:
    """The inverse of `encode_latent` (`ValueError` on text that is not one)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"not an encoded latent: {exc}") from None
    if len(raw) % 2:
        raise ValueError("not an encoded latent: odd length")
    return np.frombuffer(raw, dtype="<f2").astype(np.float64)


def quality_of(rating: int | None, success: bool | None) -> float | None:
    """Feedback as a quality in [0, 1] (see the module docstring); None when there is neither."""
    if success is not None:
        return 1.0 if success else 0.0
    if rating is not None:
        return (rating - 1) / 4.0
    return None


@dataclass
class Slot:
    """One pool's live posterior (its routers read `profiles`; `OnlineHub.load` replaces it)."""

    key: str
    profiles: OnlineProfiles
    rows: dict[str, int] = field(default_factory=dict)
    #: this replica's explorations of the pool's models whose feedback has not arrived
    pending: Pending = field(default_factory=Pending)
    #: this replica's conservative-exploration budget for the pool (`learning.explore_regret`)
    budget: RegretBudget = field(default_factory=RegretBudget)
    #: this replica's typical prompt of the pool (`learning.explore_at: traffic`)
    traffic: TrafficMean = field(default_factory=TrafficMean)

    def __post_init__(self) -> None:
        self.rows = {name: i for i, name in enumerate(self.profiles.models)}

    def replace(self, profiles: OnlineProfiles) -> None:
        """Serve `profiles` from now on (same models, same latent size, else `ValueError`); the
        updates it holds beyond the current ones release as many pending explorations per model."""
        if profiles.models != self.profiles.models or profiles.dim != self.profiles.dim:
            raise ValueError(f"online state for {self.key!r} does not match its pool")
        new = profiles.n_updates - self.profiles.n_updates
        self.profiles = profiles
        for name, n in zip(profiles.models, new.tolist(), strict=True):
            if n > 0:
                self.pending.release(name, int(n))

    def p_good(self, z: npt.ArrayLike, names: Sequence[str]) -> F64:
        """P(good) of `names` at latent `z` from the posterior means."""
        return self.profiles.p_good(z, [self.rows[n] for n in names])

    def p_upper(self, z: npt.ArrayLike, names: Sequence[str], optimism: float) -> F64:
        """P(good) of `names` at latent `z` with `learning.optimism`'s bonus for the less known
        (`OnlineProfiles.p_upper`): what the greedy choice compares when it is set."""
        return self.profiles.p_upper(z, optimism, [self.rows[n] for n in names])

    def thompson(self, z: npt.ArrayLike, names: Sequence[str], rng: np.random.Generator) -> F64:
        """One Thompson draw of P(good) of `names` at latent `z`."""
        return self.profiles.thompson(z, rng, [self.rows[n] for n in names])

    def beat_probability(self, z: npt.ArrayLike, names: Sequence[str], incumbent: int) -> F64:
        """Each of `names`' posterior probability of beating `names[incumbent]` at latent `z`."""
        return self.profiles.beat_probability(z, incumbent, [self.rows[n] for n in names])

    @property
    def learnt(self) -> float:
        """Feedbacks the served posterior has learnt (all models)."""
        return float(self.profiles.n_updates.sum())


@dataclass(frozen=True)
class Feedback:
    """One feedback as the learner applies it."""

    model: str
    latent: str
    quality: float
    rater: str | None


class OnlineHub:
    """The engine's online-learning state: slots, the exploration share and its random source."""

    def __init__(self, *, explore: float = 0.0, rater_cap: float = RATER_CAP,
                 rater_floor: float = RATER_FLOOR, rater_share: float = RATER_SHARE,
                 trusted: Collection[str] = (), prior_scale: float = 1.0,
                 seed: int | None = None, store_latent: bool = True, forget: float = 0.0,
                 strategy: str = "challenger", ability_var: float = ABILITY_VAR,
                 shared: float | None = None, pending_cap: int = 0, pending_s: float = 30.0,
                 gap: float = 1.0, beat: float = 0.0, decay: float = 0.0, regret: float = 0.0,
                 at: str = "prompt", optimism: float = 0.0, shared_ability: float = 0.0):
        if not 0.0 <= optimism <= 3.0:
            raise ValueError(f"optimism must be in [0, 3], got {optimism}")
        self.exploration = Exploration(explore, strategy, gap, beat, decay, at)
        #: the greedy choice's bonus, in sd of each model's own logit term (`Slot.p_upper`)
        self.optimism = optimism
        self.regret = RegretBudget(regret).rate     # validated now, not at the first slot
        self.pending_cap = pending_cap
        self.pending_s = pending_s
        self.rater_cap = rater_cap
        self.rater_floor = rater_floor
        self.rater_share = rater_share
        self.trusted = frozenset(trusted)
        self.prior_scale = prior_scale
        self.ability_var = ability_var
        self.shared = shared_for(shared, explore)      # unset: on when exploring
        self.shared_ability = shared_ability
        self.forget = forget
        self.store_latent = store_latent
        self.rng = np.random.default_rng(seed)
        self.slots: dict[str, Slot] = {}

    def slot(self, artifact: str, pool: RouterModel, trained: RouterModel) -> Slot:
        """The slot of `pool`'s models (registered on first use): each starts at its day-one
        profile, with `online.prior_covariance` of the covariance of [ability, bias] over the
        `trained` artifact's known models, split between each model and the shared term."""
        key = f"{artifact}|{'|'.join(pool.models)}"
        found = self.slots.get(key)
        if found is None:
            means = np.hstack([pool.abilities, pool.biases[:, None]]).astype(np.float64)
            cov = prior_covariance(prior(trained)[1], self.prior_scale, self.ability_var)
            profiles = OnlineProfiles.starting(pool.models, means, cov, rater_cap=self.rater_cap,
                                               forget=self.forget, shared=self.shared,
                                               shared_ability=self.shared_ability,
                                               rater_floor=self.rater_floor,
                                               rater_share=self.rater_share)
            found = self.slots[key] = Slot(key, profiles,
                                           pending=Pending(self.pending_cap, self.pending_s),
                                           budget=RegretBudget(self.regret))
        return found

    def apply(self, feedback: Feedback) -> float:
        """Update every slot that knows the model and matches the latent's size (and release one of
        its pending explorations of the model); the weight carried (summed over slots; 0 when none
        applies or a cap is spent)."""
        try:
            z = decode_latent(feedback.latent)
        except ValueError:
            return 0.0
        carried = 0.0
        rater = None if feedback.rater in self.trusted else feedback.rater
        for slot in self.slots.values():
            if feedback.model in slot.rows and slot.profiles.dim == z.size + 1:
                carried += slot.profiles.update(feedback.model, z, feedback.quality, rater=rater)
                slot.pending.release(feedback.model)
        return carried

    def state(self) -> dict[str, object]:
        """Every slot's posterior, JSON-able."""
        return {key: slot.profiles.to_dict() for key, slot in self.slots.items()}

    def load(self, state: Mapping[str, object]) -> int:
        """Serve the posteriors in `state` (slots it lacks, or that no longer match their pool,
        keep theirs); how many slots were replaced."""
        replaced = 0
        for key, slot in self.slots.items():
            found = state.get(key)
            if not isinstance(found, Mapping):
                continue
            try:
                slot.replace(OnlineProfiles.from_dict(found))
            except ValueError:
                continue
            replaced += 1
        return replaced
