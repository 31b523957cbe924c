"""Vendor the routerbench test split for the replay provider and `llmroute demo`.

Reads ../shared/data/routerbench/test.jsonl (outcome records with every model's real answer) and
writes, under src/llmroute/data/replay/:

- routerbench-test.jsonl.gz: one record per prompt (id, dataset, prompt, and per model its response
  text, outcome, recorded cost and output length), gzip-compressed JSON Lines;
- models.json: per model, USD per 1M input/output tokens fitted (least squares) to the recorded
  costs with llmroute's replay token estimate (about 4 characters a token), so that the catalog's cost
  of a replayed answer matches what the call really cost;
- PROVENANCE.md: where it came from, its licence note and how to rebuild it.

Usage: python scripts/vendor_replay.py [path/to/test.jsonl]
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from llmroute.providers.replay import approx_tokens, slim_record

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "routerbench" / "test.jsonl"
OUT = ROOT / "src" / "llmroute" / "data" / "replay"
DATA_NAME = "routerbench-test.jsonl.gz"


def fit_prices(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: USD per 1M input/output tokens that best reproduce the recorded costs."""
    names = sorted({m for r in records for m in r["models"]})
    fitted: dict[str, dict[str, Any]] = {}
    for model in names:
        rows, costs = [], []
        for r in records:
            entry = r["models"].get(model)
            if entry and entry["cost_usd"] is not None:
                rows.append([approx_tokens(len(r["prompt"])), approx_tokens(len(entry["response"]))])
                costs.append(entry["cost_usd"])
        x, y = np.array(rows, dtype=float), np.array(costs, dtype=float)
        solution = np.clip(np.linalg.lstsq(x, y, rcond=None)[0], 0, None) * 1e6
        prices = [float(f"{p:.3g}") for p in solution]
        predicted = x @ (np.array(prices) / 1e6)
        fitted[model] = {"input_per_m": prices[0], "output_per_m": prices[1],
                         "recorded_cost_usd": round(float(y.sum()), 6),
                         "priced_cost_usd": round(float(predicted.sum()), 6), "records": len(y)}
    return fitted


PROVENANCE = """# Replay data (routerbench test split)

- What: `{data}` — the 952 prompts of the RouterBench 0-shot test split (ARC-Challenge, MBPP,
  Winogrande) with, per model, the answer that model really gave, its outcome (0/1), the recorded
  cost of the call and the answer's length; `models.json` — per model, USD per 1M input/output tokens
  fitted to the recorded costs (≈4 characters a token), used by `llmroute demo` as catalog prices.
- Source: `routerbench/test.jsonl` of the project's shared data folder (sha256 {sha}): RouterBench
  (arXiv 2403.12031), 0-shot subset, as copied in shuhao02/RouterDC @0e63989c.
- Licence: no licence file in shuhao02/RouterDC; RouterBench's own dataset card is reported to state
  MIT. Kept here for the offline replay demo only.
- Rebuild: `.venv/bin/python scripts/vendor_replay.py [path/to/routerbench/test.jsonl]`.
"""


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    raw = source.read_bytes()
    records = [slim_record(json.loads(line)) for line in raw.decode("utf-8").splitlines() if line.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    with gzip.GzipFile(OUT / DATA_NAME, "wb", compresslevel=9, mtime=0) as handle:
        handle.write(lines.encode("utf-8"))
    models = {"source": DATA_NAME, "chars_per_token": 4, "models": fit_prices(records)}
    (OUT / "models.json").write_text(json.dumps(models, indent=2) + "\n", encoding="utf-8")
    sha = hashlib.sha256(raw).hexdigest()
    (OUT / "PROVENANCE.md").write_text(PROVENANCE.format(data=DATA_NAME, sha=sha), encoding="utf-8")
    size = (OUT / DATA_NAME).stat().st_size
    print(f"wrote {len(records)} records ({size / 1e6:.2f} MB) and {len(models['models'])} prices "
          f"to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
