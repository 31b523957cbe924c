"""Vendor LiteLLM's public price map into the package, keeping only chat-capable models (and,
in a file of their own, the embedding models' input prices: they are never routed).

Run: python scripts/vendor_prices.py [SOURCE_JSON]
(default source: ../shared/data/prices/model_prices_and_context_window.json)
Writes src/llmroute/data/prices.json; provenance is in src/llmroute/data/PROVENANCE.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "prices" / "model_prices_and_context_window.json"
TARGET = ROOT / "src" / "llmroute" / "data" / "prices.json"
EMBEDDING_TARGET = ROOT / "src" / "llmroute" / "data" / "embedding_prices.json"
MODES = {"chat", "completion", "responses"}
KEEP = {
    "litellm_provider": "provider",
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "cache_creation_input_token_cost": "cache_write",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "prompt_cache_min_tokens": "cache_min_tokens",
    "max_input_tokens": "context_window",
    "max_output_tokens": "max_output_tokens",
    "supports_function_calling": "tools",
    "supports_vision": "vision",
    "supports_response_schema": "json",
}


def main(source: Path) -> None:
    raw = json.loads(source.read_text())
    out: dict[str, dict[str, object]] = {}
    for name, entry in sorted(raw.items()):
        if name == "sample_spec" or not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        slim = {short: entry[key] for key, short in KEEP.items() if entry.get(key) is not None}
        if "context_window" not in slim and isinstance(entry.get("max_tokens"), int):
            slim["context_window"] = entry["max_tokens"]
        out[name] = slim
    TARGET.write_text(json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {len(out)} models to {TARGET.relative_to(ROOT)}")
    embedding = {name: {"provider": entry.get("litellm_provider"),
                        "input": entry["input_cost_per_token"]}
                 for name, entry in sorted(raw.items())
                 if isinstance(entry, dict) and entry.get("mode") == "embedding"
                 and entry.get("input_cost_per_token") is not None}
    EMBEDDING_TARGET.write_text(json.dumps(embedding, separators=(",", ":"), sort_keys=True)
                                + "\n")
    print(f"wrote {len(embedding)} embedding models to {EMBEDDING_TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
