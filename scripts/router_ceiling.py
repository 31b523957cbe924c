"""How far can a router get on routerbench/test with the signal this data holds? Three ceilings.

    python scripts/router_ceiling.py [--data ../shared/data] [--folds 5] [--skip-crossfit]

1. Cross-fitted on test itself: the shipped recipe trained on train + zeroeval + 4/5 of test,
   predicting the held-out fifth (five times). An in-distribution ceiling for the featurizer and
   model, not a result: it uses test outcomes, so it says what more same-distribution data could do.
2. Per-task oracle: knowing each prompt's dataset and each model's mean quality on it in test.
3. Answer-aware cascades: call a set of cheap models, keep their answer when they all agree, else
   pay for gpt-4 too (multiple-choice datasets, whose recorded answers can be compared).

4. Answer-aware verifier: the per-dataset best cheap model answers first; a table learned on train
   (P(correct | dataset, model, shape of the answer: its letter and format, or code/no code and
   length) escalates to gpt-4 when the answer looks weak.

Every line reports where the issue's targets fall: quality at 15% / 30% of gpt-4's cost and the
cost needed for 95% / 100% of its quality. Needs the `dev` extra (scikit-learn, scipy).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from llmroute.learn import policy
from llmroute.learn.data import OutcomeTable, load_records
from llmroute.learn.evaluate_quick import STRONG
from llmroute.learn.policy import CurvePoint
from llmroute.learn.train import out_of_fold

REPO = Path(__file__).resolve().parent.parent
EXPENSIVE = (STRONG, "claude-v1", "claude-v2")


def targets(label: str, points: list[CurvePoint], sc: float, sq: float) -> str:
    """One line: the issue's four numbers on a frontier."""
    front = policy.frontier(points)
    return (f"{label:44s} q@15% {policy.quality_within(front, 0.15 * sc) / sq * 100:5.1f}%  "
            f"q@30% {policy.quality_within(front, 0.30 * sc) / sq * 100:5.1f}%  "
            f"95% needs {policy.cost_for(front, 0.95 * sq) / sc * 100:5.1f}%  "
            f"100% needs {policy.cost_for(front, sq) / sc * 100:5.1f}% of gpt-4's cost")


def per_task_points(table: OutcomeTable) -> list[CurvePoint]:
    """The λ sweep of a router that knows each dataset's per-model mean quality and cost on test."""
    datasets = np.asarray(table.datasets)
    p, est = np.zeros_like(table.quality), np.zeros_like(table.cost)
    for d in set(table.datasets):
        rows = datasets == d
        p[rows], est[rows] = table.quality[rows].mean(axis=0), table.cost[rows].mean(axis=0)
    return policy.sweep_tradeoff(p, est, table.quality, table.cost)


def letter(response: str) -> str:
    """The option letter a multiple-choice answer starts with (else the stripped text)."""
    found = re.search(r"[A-E]", response.replace("['", "").strip()[:6])
    return found.group(0) if found else response.strip()


def agreement_points(raw: list[dict[str, object]], models: tuple[str, ...], dataset: str
                     ) -> tuple[list[tuple[float, float, tuple[str, ...]]], float, float]:
    """(cost per prompt, quality, cheap set) of every agree-or-escalate cascade of 1–3 cheap models
    on one dataset, and gpt-4's own cost and quality there."""
    rows = [r for r in raw if r["dataset"] == dataset]
    q = {m: np.asarray([r["outcomes"][m] for r in rows]) for m in models}  # type: ignore[index]
    c = {m: np.asarray([r["cost_usd"][m] for r in rows]) for m in models}  # type: ignore[index]
    ans = {m: [letter(r["responses"][m]) for r in rows] for m in models}  # type: ignore[index]
    cheap = [m for m in models if m not in EXPENSIVE]
    out = []
    for k in (1, 2, 3):
        for group in itertools.combinations(cheap, k):
            agree = np.asarray([len({ans[m][i] for m in group}) == 1 for i in range(len(rows))])
            cost = sum(c[m] for m in group) + np.where(agree, 0.0, c[STRONG])
            quality = np.where(agree, q[group[0]], q[STRONG])
            out.append((float(cost.mean()), float(quality.mean()), group))
    return out, float(c[STRONG].mean()), float(q[STRONG].mean())


def answer_shape(record: dict[str, Any], model: str) -> tuple[object, ...]:
    """What the verifier sees of an answer: its first characters' shape, or for code its form and size."""
    text = str(record["responses"][model])
    if record["dataset"] == "mbpp":
        return (record["dataset"], model, "```" in text or "def " in text, min(len(text) // 400, 5))
    return (record["dataset"], model, re.sub(r"[a-z]", "a", text[:8]))


def verifier_points(train: list[dict[str, Any]], test: list[dict[str, Any]]) -> list[CurvePoint]:
    """Answer with the dataset's best-value cheap model (chosen on train), escalate to gpt-4 when
    the train-estimated P(correct | answer shape) is below a threshold; one point per threshold."""
    seen: dict[tuple[object, ...], list[float]] = {}
    for r in train:
        for m in r["outcomes"]:
            if m in r.get("responses", {}):
                seen.setdefault(answer_shape(r, m), []).append(float(r["outcomes"][m]))
    first = {}
    for d in {r["dataset"] for r in train}:
        rows = [r for r in train if r["dataset"] == d]
        cheap = {m for m in rows[0]["outcomes"] if m not in EXPENSIVE}
        first[d] = max(cheap, key=lambda m: float(np.mean([r["outcomes"].get(m, 0.0) for r in rows])))
    points = []
    for tau in np.linspace(0, 1, 41):
        q = c = 0.0
        for r in test:
            m = first[r["dataset"]]
            hits = seen.get(answer_shape(r, m), [])
            p_ok = (sum(hits) + 1) / (len(hits) + 2)
            c += r["cost_usd"][m]
            if p_ok < tau:
                q, c = q + r["outcomes"][STRONG], c + r["cost_usd"][STRONG]
            else:
                q += r["outcomes"][m]
        points.append(CurvePoint(float(tau), c / len(test), q / len(test)))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip-crossfit", action="store_true", help="skip the slow ceiling 1 (≈11 min)")
    args = parser.parse_args()
    test_path = args.data / "routerbench" / "test.jsonl"
    models = OutcomeTable.of(load_records(test_path)).models
    complete = OutcomeTable.of(load_records(test_path), models).complete()
    keep = set(complete.prompts)
    test = [r for r in load_records(test_path) if r.prompt in keep]
    table = OutcomeTable.of(test, models)
    j = models.index(STRONG)
    sc, sq = float(table.cost[:, j].mean()), float(table.quality[:, j].mean())
    print(f"routerbench/test: {len(test)} prompts; gpt-4 quality {sq:.3f} at ${sc * 1000:.3f} per 1,000")
    print(targets("per-task oracle (dataset means on test)", per_task_points(table), sc, sq))
    if not args.skip_crossfit:
        train = [r for n in ("routerbench/train.jsonl", "zeroeval/math-l5.jsonl", "zeroeval/crux.jsonl")
                 for r in load_records(args.data / n)]
        p, est = out_of_fold(test, models, also=train, folds=args.folds,
                             progress=lambda k, n: print(f"  fold {k}/{n}", flush=True))
        points = (policy.sweep_tradeoff(p, est, table.quality, table.cost)
                  + policy.sweep_target(p, est, table.quality, table.cost))
        print(targets(f"cross-fitted on test ({args.folds} folds)", points, sc, sq))
    raw = [json.loads(line) for line in test_path.read_text().splitlines() if line.strip()]
    raw = [r for r in raw if r["prompt"] in keep]
    train_raw = [json.loads(line) for line in (args.data / "routerbench" / "train.jsonl").read_text()
                 .splitlines() if line.strip()]
    train_raw = [r for r in train_raw if all(m in r["outcomes"] and m in r.get("cost_usd", {})
                                             and m in r.get("responses", {}) for m in models)]
    print(targets("answer-shape verifier (learned on train)", verifier_points(train_raw, raw), sc, sq))
    for dataset in ("arc-challenge", "winogrande"):
        cascades, c4, q4 = agreement_points(raw, models, dataset)
        cheapest = min((c for c, q, _ in cascades if q >= q4), default=float("nan"))
        best_c, best_q, best_group = max(cascades, key=lambda t: (t[1], -t[0]))
        print(f"agree-or-escalate cascades on {dataset}: gpt-4 {q4:.3f} at ${c4 * 1000:.2f}/1k; "
              f"best {best_q:.3f} at ${best_c * 1000:.2f}/1k ({', '.join(best_group)}); "
              f"cheapest reaching gpt-4's quality: "
              + ("none" if np.isnan(cheapest) else f"${cheapest * 1000:.2f}/1k ({cheapest / c4 * 100:.0f}%)"))


if __name__ == "__main__":
    main()
