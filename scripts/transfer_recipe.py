"""Leave-one-source-out transfer (`llmroute.learn.transfer`) of an artifact recipe, not the default one.

    python scripts/transfer_recipe.py [--data ../shared/data] [--routerbench-weight W] [--others-weight O]
        [--dense-l2 L] [--v2-dense-l2 L2] [--offset-l2 D] [--served-offset-l2 S] [--tasks] [--ceiling]
        [--only routerbench,zeroeval] [--json FILE]

`python -m llmroute.learn.transfer --no-tasks --no-ceiling` trains every split with the default
`TrainConfig`; this runs the same splits (each source held out, trained on the others, the same
honest removal of shared questions, the same table) with the recipe's source weights and dense
penalties, to check a recipe chosen for the bundled artifact does not cost transfer. RouterBench's
weight only matters where RouterBench is on the training side. `--tasks` adds the leave-one-task-out
splits and `--ceiling` the in-source ceiling (trained by `transfer.default_trainer` on halves of the
held-out set), so that with the bundled recipe's options this prints transfer's whole table for the
shipped artifact (`--others-weight 0.5`, `build_router_artifact.OTHERS_WEIGHT`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from llmroute.learn import blas, transfer
from llmroute.learn.data import OutcomeTable
from llmroute.learn.features import DENSE_NAMES_V2
from llmroute.learn.model import RouterModel
from llmroute.learn.sources import SourcedRecord, link_contained_questions, load_sources, source_weights
from llmroute.learn.train import TrainConfig, fit_router

REPO = Path(__file__).resolve().parent.parent


def recipe_config(routerbench: float, others: float, dense_l2: float, v2: float | None,
                  offset_l2: float = TrainConfig.offset_l2,
                  served_offset_l2: float | None = TrainConfig.served_offset_l2) -> TrainConfig:
    """The training config of a recipe (the rest of `TrainConfig` at its defaults)."""
    return TrainConfig(dense_l2=dense_l2, source_weights=source_weights(routerbench, others),
                       dense_l2_by_name={} if v2 is None else dict.fromkeys(DENSE_NAMES_V2, v2),
                       offset_l2=offset_l2, served_offset_l2=served_offset_l2)


def parse_offsets(fields: Sequence[str]) -> tuple[float, float | None]:
    """A recipe string's optional tail `[OFF[/SERVED]]` -> (offset_l2, served_offset_l2), each by
    default TrainConfig's; SERVED `-`: no refit."""
    offset = float(fields[0]) if fields else TrainConfig.offset_l2
    if len(fields) < 2:
        return offset, TrainConfig.served_offset_l2
    return offset, None if fields[1] == "-" else float(fields[1])


def recipe_trainer(config: TrainConfig) -> transfer.Trainer:
    """The joint fit with `config` on a split's training records (each record's source kept)."""
    def trainer(records: Sequence[SourcedRecord]) -> RouterModel:
        return fit_router(OutcomeTable.of(r.record for r in records), config,
                          sources=[r.source for r in records])
    return trainer


def main() -> None:
    """Run the leave-one-source-out splits with the recipe and print transfer's table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--routerbench-weight", type=float, default=1.0)
    parser.add_argument("--others-weight", type=float, default=1.0)
    parser.add_argument("--dense-l2", type=float, default=TrainConfig.dense_l2)
    parser.add_argument("--v2-dense-l2", type=float, default=None)
    parser.add_argument("--offset-l2", type=float, default=TrainConfig.offset_l2)
    parser.add_argument("--served-offset-l2", type=float, default=TrainConfig.served_offset_l2)
    parser.add_argument("--tasks", action="store_true", help="add the leave-one-task-out splits")
    parser.add_argument("--ceiling", action="store_true", help="add the in-source ceiling")
    parser.add_argument("--only", default="", help="comma-separated held-out sources to run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    config = recipe_config(args.routerbench_weight, args.others_weight, args.dense_l2, args.v2_dense_l2,
                           args.offset_l2, args.served_offset_l2)
    sources = link_contained_questions(load_sources(args.data))
    splits = transfer.loso_splits(sources) + (transfer.loto_splits(sources) if args.tasks else [])
    only = [s for s in args.only.split(",") if s]
    splits = [s for s in splits if not only or s.source in only]
    ceiling = transfer.default_trainer if args.ceiling else None
    started = time.monotonic()
    results = transfer.run(splits, recipe_trainer(config), ceiling=ceiling,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"recipe: {config.source_weights or 'weights 1'}, dense_l2 {config.dense_l2:g}, "
          f"v2 dense_l2 {args.v2_dense_l2}, offset_l2 {config.offset_l2:g}, served offset_l2 "
          f"{config.served_offset_l2}; {len(splits)} splits in {time.monotonic() - started:.0f} s")
    print("\n".join(transfer.table_lines(results)))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "meets_target": r.meets_target} for r in results],
                                        indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    blas.pin()  # the same fits on any x86-64 machine (learn/blas.py)
    main()
