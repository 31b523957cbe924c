"""Calibrate the knob without test, then measure it on test: the honest version of "95% at 15%".

    python scripts/calibrate_heldout.py [--data ../shared/data] [--folds 5] [--goals 0.93,0.95,0.97]

Out-of-fold predictions on routerbench/train (each fold's router trained on the other folds plus
zeroeval, with the shipped recipe) stand in for fresh traffic; `llmroute calibrate`'s logic turns
each goal into a setting on them; the bundled artifact then routes routerbench/test with that
setting (blends split by prompt hash, as the router does). Calibrating on the artifact's own
training prompts instead would be far too optimistic (it has seen their outcomes). ≈12 min.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llmroute.learn import artifact
from llmroute.learn import calibrate as cal
from llmroute.learn.data import OutcomeTable, load_records
from llmroute.learn.evaluate_quick import STRONG
from llmroute.learn.train import out_of_fold

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--goals", default="0.93,0.95,0.97", help="fractions of gpt-4's quality to keep")
    args = parser.parse_args()
    shipped = artifact.load_default()
    train_records = load_records(args.data / "routerbench" / "train.jsonl")
    test_records = load_records(args.data / "routerbench" / "test.jsonl")
    extra = [r for n in ("math-l5", "crux") for r in load_records(args.data / "zeroeval" / f"{n}.jsonl")]
    models = tuple(m for m in OutcomeTable.of(test_records).models if m in shipped.models)
    train = OutcomeTable.of(train_records, models).complete()
    keep = set(train.prompts)
    train_records = [r for r in train_records if r.prompt in keep]
    p, est = out_of_fold(train_records, models, also=extra, folds=args.folds,
                         progress=lambda k, n: print(f"  fold {k}/{n}", flush=True))
    oof = OutcomeTable.of(train_records, models)
    top = models.index(STRONG)
    found = cal.settings(p, est, oof.quality, oof.cost, top)
    test = OutcomeTable.of(test_records, models).complete()
    p_test, est_test = shipped.select(models).predict_many(test.prompts, models)
    sq, sc = float(test.quality[:, top].mean()), float(test.cost[:, top].mean())
    for goal in (float(g) for g in args.goals.split(",")):
        setting = cal.for_quality(found, goal * float(oof.quality[:, top].mean()))
        if setting is None:
            print(f"keep {goal:.0%}: unreachable on the out-of-fold predictions")
            continue
        cost, quality = setting.realised(p_test, est_test, test.quality, test.cost, test.prompts)
        print(f"keep {goal:.0%} (calibrated out of fold: {setting.cost / float(oof.cost[:, top].mean()):.1%} "
              f"of the cost there): {setting.params()} -> on test {quality / sq:.2%} of gpt-4's quality "
              f"at {cost / sc:.1%} of its cost")


if __name__ == "__main__":
    main()
