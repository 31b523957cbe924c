"""Save and load a trained `RouterModel` as a versioned artifact: `<name>.npz` + `<name>.json`.

The `.npz` holds only plain numeric arrays (no pickle; written with fixed zip timestamps so equal
models give equal bytes); the `.json` holds the format version, the featurizer's name and config,
the models (names, tiers), the arrays file's SHA-256 and training metadata. Loading fails loudly
(`ArtifactError`) on a format-version, featurizer or shape mismatch, or a mismatched pair of files.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import LLMRouteError
from .features import featurizer_from
from .model import RouterModel

FORMAT = "llmroute-router"
FORMAT_VERSION = 1
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_HALF = frozenset({"projection", "featurizer.idf"})   # stored as float16 to stay small
_MODEL_ARRAYS = ("projection", "latent_mean", "abilities", "biases", "lengths", "length_biases",
                 "input_prices", "output_prices")


class ArtifactError(LLMRouteError, ValueError):
    """A router artifact cannot be used by this code (the message says why and what to do)."""


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    base = p.with_suffix("") if p.suffix in {".npz", ".json"} else p
    return base.with_suffix(".npz"), base.with_suffix(".json")


def _npz_bytes(arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            body = io.BytesIO()
            np.lib.format.write_array(body, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            archive.writestr(info, body.getvalue())
    return buffer.getvalue()


def model_arrays(model: RouterModel) -> dict[str, npt.NDArray[Any]]:
    """Every array of `model` under its artifact key (float16 where precision allows)."""
    arrays: dict[str, npt.NDArray[Any]] = {k: getattr(model, k) for k in _MODEL_ARRAYS}
    arrays.update({f"featurizer.{k}": v for k, v in model.featurizer.state().items()})
    return {k: np.asarray(v, dtype=_dtype(k, v)) for k, v in arrays.items()}


def _dtype(key: str, value: npt.NDArray[Any]) -> np.dtype[Any]:
    """float16 for `_HALF`; a featurizer's own bytes (uint8) and float16 arrays keep their type."""
    kept = np.asarray(value).dtype
    if key in _HALF:
        return np.dtype(np.float16)
    if key.startswith("featurizer.") and kept in (np.dtype(np.uint8), np.dtype(np.float16)):
        return kept
    return np.dtype(np.float32)


def arrays_bytes(model: RouterModel) -> bytes:
    """The `.npz` file `save` writes for `model` (the same bytes for the same arrays)."""
    return _npz_bytes(model_arrays(model))


def save(model: RouterModel, path: str | Path, training: Mapping[str, Any] | None = None) -> Path:
    """Write `<path>.npz` and `<path>.json`; returns the JSON's path."""
    npz_path, json_path = _paths(path)
    blob = arrays_bytes(model)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "featurizer": {"name": model.featurizer.name, "config": model.featurizer.config()},
        "latent": {"skills": int(model.projection.shape[1]), "dense": model.featurizer.dense_dim},
        "models": [{"name": m, "tier": t} for m, t in zip(model.models, model.tiers, strict=True)],
        "arrays": {"file": npz_path.name, "sha256": hashlib.sha256(blob).hexdigest()},
        "training": dict(training or {}),
    }
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    npz_path.write_bytes(blob)
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return json_path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The artifact's JSON metadata, with its format checked."""
    _, json_path = _paths(path)
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read router artifact metadata {json_path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{json_path} is not a {FORMAT} artifact")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{json_path}: router artifact format version {meta.get('format_version')!r}, but this "
            f"llmroute reads version {FORMAT_VERSION}; rebuild it (make router-artifact)")
    return meta


def _check_featurizer(meta: Mapping[str, Any], expect: str | None, where: Path) -> None:
    name = meta["featurizer"]["name"]
    if expect is not None and name != expect:
        raise ArtifactError(f"{where}: artifact featurizer {name!r}, expected {expect!r}")


def _arrays(npz_path: Path, sha256: str) -> dict[str, npt.NDArray[Any]]:
    try:
        blob = npz_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read router arrays {npz_path}: {exc}") from exc
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise ArtifactError(f"{npz_path} does not match its metadata (SHA-256 differs): "
                            "the .npz and .json come from different builds")
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: _served(k, data[k]) for k in data.files}


def _served(key: str, stored: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """An array as the router serves it: the projection (the artifact's bulk, 65,536 rows) and a
    featurizer's bytes as stored, the rest as float32. A float16 projection stays float16 (half
    the memory of float32; issue 6's idle RSS): the rows a prompt gathers are widened at use,
    exactly, so the latent vectors are the float32 array's, bit for bit."""
    if stored.dtype == np.uint8 or (key == "projection" and stored.dtype == np.float16):
        stored.setflags(write=False)
        return stored
    return np.asarray(stored, dtype=np.float32)


def load(path: str | Path, expect_featurizer: str | None = None) -> RouterModel:
    """Load an artifact written by `save` (either file's path, or the path without suffix)."""
    npz_path, json_path = _paths(path)
    meta = read_metadata(json_path)
    _check_featurizer(meta, expect_featurizer, json_path)
    arrays = _arrays(npz_path, meta["arrays"]["sha256"])
    state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("featurizer.")}
    try:
        feat = featurizer_from(meta["featurizer"]["name"], meta["featurizer"]["config"], state)
        model = RouterModel(featurizer=feat, models=tuple(m["name"] for m in meta["models"]),
                            tiers=tuple(m.get("tier", "") for m in meta["models"]),
                            **{k: arrays[k] for k in _MODEL_ARRAYS})
    except ImportError as exc:                       # e.g. the `embed` extra is not installed
        raise ArtifactError(f"{json_path}: this router artifact needs featurizer "
                            f"{meta['featurizer']['name']!r}, which cannot be loaded here: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{json_path}: unusable router artifact: {exc}") from exc
    _check_shapes(model, json_path)
    return model


def _check_shapes(model: RouterModel, where: Path) -> None:
    m, d, k = len(model.models), model.latent_dim, model.projection.shape[1]
    want = {"projection": (model.featurizer.sparse_dim, k), "latent_mean": (k,), "abilities": (m, d),
            "biases": (m,), "lengths": (m, d), "length_biases": (m,), "input_prices": (m,),
            "output_prices": (m,)}
    for key, shape in want.items():
        if getattr(model, key).shape != shape:
            raise ArtifactError(f"{where}: array {key!r} has shape {getattr(model, key).shape}, "
                                f"expected {shape} for this featurizer and {m} models")


def default_path() -> Path:
    """Where the bundled default artifact lives (`llmroute/data/router.json`)."""
    return Path(str(resources.files("llmroute").joinpath("data/router.json")))


def load_default() -> RouterModel:
    """Load the bundled default artifact (`ArtifactError` if it is missing or stale)."""
    return load(default_path())
