"""The shipped router on held-out public prompts (issue 13): original MMLU, per-prompt outcomes of
gpt-4-1106-preview and Mixtral-8x7B-Instruct from lm-sys/RouteLLM's repository.

    python -m llmroute.learn.public_eval [--data bench/data/routellm-mmlu] [--artifact PATH] [--json FILE]

* Data: `bench/data/routellm-mmlu/mmlu_<subject>.csv` (see that folder's README for provenance and
  checks), columns `prompt,mixtral-8x7b-instruct-v0.1,gpt-4-1106-preview` with True/False per prompt.
  None of these prompts is in the shared training data (MMLU was kept out of it for evaluation), so
  the bundled artifact has never seen them.
* Router: the bundled default artifact (`artifact.load_default`), or `--artifact`. Score = P(strong
  good) − P(weak good) (`policy.strong_scores`), as in `transfer`.
* Per group (math subjects / the others / all) and per subject: APGR of the router
  (`transfer.tie_averaged_apgr`), the random 5–95% band (`evaluate_quick.random_band`), the
  prompt-length router's APGR (`transfer.length_scores`).
* Quality within 15% / 30% of always-gpt-4's cost: the CSVs carry no costs, so each prompt's cost per
  model is the artifact's own estimate (its per-character prices × prompt length and predicted answer
  length) — a price-list estimate, not a bill. Router and length-only: the best point among "send the
  k highest-scored prompts to gpt-4" whose estimated cost is within the budget; random: the expected
  quality of the random share that spends the budget.
* Default operating point: the default policy's classifier knob (`willingness_to_pay` λ from the
  packaged default.yaml) applied to this pair — per prompt argmax of P(good) − λ·cost over the two
  models (`policy.by_tradeoff_many`). The shipped default routes among its own tier models, not this
  pair, so this is the same knob on this pair, not the gateway's own decision.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ..config_text import default_config_text, parse_yaml
from . import artifact, policy
from .data import DataError
from .evaluate_quick import random_band
from .model import RouterModel
from .transfer import length_scores, tie_averaged_apgr

F64 = npt.NDArray[np.float64]

STRONG: Final = "gpt-4-1106-preview"
WEAK: Final = "mistralai/mixtral-8x7b-instruct-v0.1"
#: CSV column → model name in the artifact.
COLUMNS: Final[Mapping[str, str]] = {"gpt-4-1106-preview": STRONG, "mixtral-8x7b-instruct-v0.1": WEAK}
HEADER: Final = ("prompt", "mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview")
MATH_SUBJECTS: Final = frozenset({"abstract_algebra", "college_mathematics", "elementary_mathematics",
                                  "high_school_mathematics", "high_school_statistics"})
BUDGETS: Final = (0.15, 0.30)
DEFAULT_DATA: Final = Path("bench/data/routellm-mmlu")
HONESTY: Final = ("held-out public prompts: the bundled artifact was never trained on these MMLU prompts "
                  "(MMLU is kept out of the shared training data)")
_BOOL: Final[Mapping[str, float]] = {"True": 1.0, "False": 0.0}


@dataclass(frozen=True)
class Outcomes:
    """Prompts of one or more subjects with the strong and weak model's 0/1 outcomes."""

    prompts: tuple[str, ...]
    q_strong: F64
    q_weak: F64

    def __len__(self) -> int:
        return len(self.prompts)

    @staticmethod
    def concat(parts: Sequence[Outcomes]) -> Outcomes:
        """All `parts` in order, as one set."""
        return Outcomes(tuple(p for part in parts for p in part.prompts),
                        np.concatenate([part.q_strong for part in parts]) if parts else np.zeros(0),
                        np.concatenate([part.q_weak for part in parts]) if parts else np.zeros(0))


def parse_csv(text: str, where: str = "<text>") -> Outcomes:
    """One RouteLLM MMLU responses CSV; `DataError` on a wrong header, row width or outcome."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or tuple(rows[0]) != HEADER:
        raise DataError(f"{where}: header must be {','.join(HEADER)}, got {rows[0] if rows else 'nothing'}")
    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 3 or row[1] not in _BOOL or row[2] not in _BOOL:
            raise DataError(f"{where}: record {line} is not prompt,True|False,True|False: {row[:1]}…")
        prompts.append(row[0])
        weak.append(_BOOL[row[1]])
        strong.append(_BOOL[row[2]])
    return Outcomes(tuple(prompts), np.asarray(strong), np.asarray(weak))


def load_dir(folder: Path) -> dict[str, Outcomes]:
    """subject → outcomes for every `mmlu_<subject>.csv` in `folder`, by subject name."""
    files = sorted(folder.glob("mmlu_*.csv"))
    if not files:
        raise DataError(f"{folder}: no mmlu_<subject>.csv files")
    return {f.stem.removeprefix("mmlu_"): parse_csv(f.read_text(encoding="utf-8"), str(f)) for f in files}


def groups(subjects: Mapping[str, Outcomes]) -> dict[str, Outcomes]:
    """`math`, `non-math` and `all`, then each subject (`subject:<name>`); empty groups left out."""
    math = [o for s, o in subjects.items() if s in MATH_SUBJECTS]
    other = [o for s, o in subjects.items() if s not in MATH_SUBJECTS]
    named = {"math": math, "non-math": other, "all": list(subjects.values())}
    out = {name: Outcomes.concat(parts) for name, parts in named.items() if parts}
    out.update({f"subject:{s}": o for s, o in subjects.items()})
    return out


def default_lambda() -> float:
    """The default policy's classifier `willingness_to_pay` in the packaged default.yaml."""
    config = parse_yaml(default_config_text(), "default.yaml")
    for stage in config["policies"]["default"].get("stages", []):
        if stage.get("router") == "classifier" and "willingness_to_pay" in stage:
            return float(stage["willingness_to_pay"])
    raise DataError("default.yaml: the default policy has no classifier stage with willingness_to_pay")


# ---------------------------------------------------------------- scoring


def budget_quality(scores: F64, qs: F64, qw: F64, cs: F64, cw: F64, budget: float) -> float | None:
    """Best mean quality of "the k highest-scored prompts go strong" with total cost ≤ `budget` × the
    cost of sending all to strong; None when even k = 0 costs more."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    cost = cw.sum() + np.concatenate([[0.0], np.cumsum((cs - cw)[order])])
    quality = (qw.sum() + np.concatenate([[0.0], np.cumsum((qs - qw)[order])])) / len(qs)
    ok = cost <= budget * cs.sum() + 1e-12
    return float(quality[ok].max()) if ok.any() else None


def random_budget_quality(qs: F64, qw: F64, cs: F64, cw: F64, budget: float) -> float | None:
    """Expected quality of routing a random share to strong that spends `budget` × all-strong's cost."""
    gap = float(cs.sum() - cw.sum())
    share = (budget * float(cs.sum()) - float(cw.sum())) / gap if gap > 0 else 1.0
    if share < 0:
        return None
    share = min(share, 1.0)
    return float(qw.mean() + share * (qs.mean() - qw.mean()))


@dataclass(frozen=True)
class GroupResult:
    """One row of the table."""

    name: str
    n: int
    q_strong: float
    q_weak: float
    router_apgr: float | None
    random_low: float | None
    random_high: float | None
    length_apgr: float | None
    router_quality: tuple[float | None, ...]      # at each of `BUDGETS`
    length_quality: tuple[float | None, ...]
    random_quality: tuple[float | None, ...]
    default_share: float                          # share routed to strong at the default λ
    default_quality: float
    default_cost: float                           # fraction of all-strong's estimated cost


def _apgr(scores: F64, qs: F64, qw: F64) -> float | None:
    """Tie-averaged APGR, None where strong and weak are tied (APGR undefined)."""
    return None if float(qs.mean()) == float(qw.mean()) else tie_averaged_apgr(scores, qs, qw)


def evaluate_predictions(name: str, data: Outcomes, p: F64, est: F64, lam: float,
                         budgets: Sequence[float] = BUDGETS) -> GroupResult:
    """Score `data` from the router's P(good) `p` and estimated cost `est` (columns: strong, weak)."""
    scores = policy.strong_scores(p[:, 0], p[:, 1])
    qs, qw, cs, cw = data.q_strong, data.q_weak, est[:, 0], est[:, 1]
    lengths = length_scores(data.prompts)
    tied = float(qs.mean()) == float(qw.mean())
    low, high = (None, None) if tied else random_band(qs, qw)
    to_strong = policy.by_tradeoff_many(p, est, lam) == 0
    return GroupResult(
        name=name, n=len(data), q_strong=float(qs.mean()), q_weak=float(qw.mean()),
        router_apgr=_apgr(scores, qs, qw), random_low=low, random_high=high,
        length_apgr=_apgr(lengths, qs, qw),
        router_quality=tuple(budget_quality(scores, qs, qw, cs, cw, b) for b in budgets),
        length_quality=tuple(budget_quality(lengths, qs, qw, cs, cw, b) for b in budgets),
        random_quality=tuple(random_budget_quality(qs, qw, cs, cw, b) for b in budgets),
        default_share=float(to_strong.mean()),
        default_quality=float(np.where(to_strong, qs, qw).mean()),
        default_cost=float(np.where(to_strong, cs, cw).sum() / cs.sum()))


def evaluate(name: str, data: Outcomes, model: RouterModel, lam: float,
             budgets: Sequence[float] = BUDGETS) -> GroupResult:
    """Score `data` with `model` (strong vs weak) as described in the module docstring."""
    p, est = model.predict_many(data.prompts, [STRONG, WEAK])
    return evaluate_predictions(name, data, p, est, lam, budgets)


# ---------------------------------------------------------------- output


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def table_lines(results: Sequence[GroupResult], lam: float, budgets: Sequence[float] = BUDGETS) -> list[str]:
    """The results as a markdown table, with the honesty statement on top."""
    heads = " | ".join(f"quality at {b:.0%} of gpt-4's cost (router / length / random)" for b in budgets)
    lines = [f"_{HONESTY}_", "",
             f"| group | n | gpt-4 / mixtral accuracy | router APGR | random 5–95% | length-only APGR "
             f"| {heads} "
             f"| default λ={lam:g}: share to gpt-4, quality, cost |",
             "|---|---|---|---|---|---|" + "---|" * len(budgets) + "---|"]
    for r in results:
        band = "—" if r.random_low is None else f"{r.random_low:.3f}–{_fmt(r.random_high)}"
        at = " | ".join(f"{_fmt(a)} / {_fmt(b)} / {_fmt(c)}" for a, b, c in
                        zip(r.router_quality, r.length_quality, r.random_quality, strict=True))
        lines.append(f"| {r.name} | {r.n} | {r.q_strong:.3f} / {r.q_weak:.3f} | {_fmt(r.router_apgr)} "
                     f"| {band} | {_fmt(r.length_apgr)} | {at} "
                     f"| {r.default_share:.1%}, {r.default_quality:.3f}, {r.default_cost:.1%} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--artifact", type=Path, default=None,
                        help="router artifact (default: the bundled one)")
    parser.add_argument("--json", type=Path, default=None, help="write every result here as JSON")
    args = parser.parse_args(argv)
    try:
        subjects = load_dir(args.data)
        model = artifact.load_default() if args.artifact is None else artifact.load(args.artifact)
        lam = default_lambda()
    except (DataError, artifact.ArtifactError) as exc:
        raise SystemExit(f"public_eval: {exc}") from exc
    missing = [m for m in (STRONG, WEAK) if m not in model.models]
    if missing:
        raise SystemExit(f"public_eval: the artifact does not know {', '.join(missing)}")
    results = [evaluate(name, data, model, lam) for name, data in groups(subjects).items()]
    where = artifact.default_path() if args.artifact is None else args.artifact
    print(f"artifact: {where}; subjects: {', '.join(subjects)}", file=sys.stderr)
    print("\n".join(table_lines(results, lam)))
    if args.json is not None:
        payload = {"honesty": HONESTY, "artifact": str(where), "lambda": lam, "budgets": list(BUDGETS),
                   "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
