"""How far one rater moves a model on the bundled artifact's prior (issue 13): 1,000 zeros from one
rater under the cap alone (`rater_floor` 10, `rater_share` 0: the rule before the budget) and under
the budget (the defaults), alone and after honest raters; markdown tables on stdout.

    .venv/bin/python bench/rater_influence.py

Pure computation on `OnlineProfiles` (no gateway): the numbers `tests/learn/test_online_raters.py`
bounds. The first three models of the artifact; "honest" raters report one outcome each, drawn at
a real rate of 0.8 (seeded)."""

from __future__ import annotations

import numpy as np

from llmroute.learn import artifact
from llmroute.learn.model import RouterModel
from llmroute.learn.online import OnlineProfiles

PROMPTS = ("What is the capital of France?",
           "Solve 3x^2 - 12x + 9 = 0 step by step for a beginner.",
           "Write a Python function that merges two sorted lists.")
CAP_ALONE = {"rater_floor": 10.0, "rater_share": 0.0}


def alone(router: RouterModel) -> None:
    print("| prompt | shared term | P(good) model 0 / 1 at the start | after 1,000 zeros from one rater: "
          "cap alone (before) | budget (now) | one zero from one honest rater |")
    print("|---|---|---|---|---|---|")
    for prompt in PROMPTS:
        z = np.asarray(router.latent(prompt), dtype=np.float64)
        for shared in (0.0, 0.25):
            def start(shared: float = shared, **kw: float) -> OnlineProfiles:
                return OnlineProfiles.from_router(router, router.models[:3], shared=shared, **kw)
            p0 = start().p_good(z)
            cells = []
            for kw in (CAP_ALONE, {}):
                state = start(**kw)
                for _ in range(1000):
                    state.update(router.models[0], z, 0.0, rater="troll")
                p = state.p_good(z)
                cells.append(f"{p[0]:.2f} / {p[1]:.2f}")
            one = start(rater_floor=1.0)
            one.update(router.models[0], z, 0.0, rater="one")
            p = one.p_good(z)
            print(f"| {prompt[:40]} | {shared} | {p0[0]:.2f} / {p0[1]:.2f} | {cells[0]} | {cells[1]} | "
                  f"{p[0]:.2f} / {p[1]:.2f} |")


def among_honest(router: RouterModel) -> None:
    print("| honest raters first | their weight: before / now | P(good) after them: before / now | "
          "after the 1,000 zeros: cap alone | budget | the troll's weight: cap alone / budget |")
    print("|---|---|---|---|---|---|")
    z = np.asarray(router.latent(PROMPTS[0]), dtype=np.float64)
    for honest in (0, 10, 50, 200, 1000):
        rows = []
        for kw in (CAP_ALONE, {}):
            rng = np.random.default_rng(honest)
            state = OnlineProfiles.from_router(router, router.models[:1], shared=0.0, **kw)
            for i in range(honest):
                state.update(router.models[0], z, float(rng.random() < 0.8), rater=f"user{i}")
            before, weight = float(state.p_good(z)[0]), float(state.model_weight[0])
            carried = sum(state.update(router.models[0], z, 0.0, rater="troll") for _ in range(1000))
            rows.append((before, weight, float(state.p_good(z)[0]), carried))
        (b0, w0, a0, c0), (b1, w1, a1, c1) = rows
        print(f"| {honest} | {w0:.1f} / {w1:.1f} | {b0:.3f} / {b1:.3f} | {a0:.3f} | {a1:.3f} | "
              f"{c0:.2f} / {c1:.2f} |")


def main() -> None:
    router = artifact.load_default()
    alone(router)
    print()
    among_honest(router)


if __name__ == "__main__":
    main()
