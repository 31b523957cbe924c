"""The fake upstream's OpenAI embeddings (`POST /v1/embeddings`): deterministic vectors (a
function of the text, the model and `dimensions`), float or base64 (little-endian float32, as
OpenAI sends them), and usage (characters // 4 + 1 per input, or the token arrays' lengths)."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

from llmroute.testing._wire import JsonObject
from llmroute.testing.behaviours import Error, bad_request

DEFAULT_DIMENSIONS = 8


def vector(text: str, model: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The unit-length vector the fake gives `text` on `model`."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{model}\0{counter}\0{text}".encode()).digest()
        values += [b / 127.5 - 1.0 for b in digest]
        counter += 1
    values = values[:dimensions]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    # rounded through float32, so that the base64 form decodes to the same numbers
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in values]


def _inputs(value: Any) -> list[str | list[int]] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(type(t) is int for t in value):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str | list) for v in value):
        return list(value)
    return None


def validate(body: JsonObject | None) -> Error | None:
    """OpenAI's 400s for a missing model or input."""
    if body is None or not isinstance(body.get("model"), str):
        return bad_request("you must provide a model parameter", param="model")
    if _inputs(body.get("input")) is None:
        return bad_request("'input' must be a string or an array", param="input")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return bad_request("encoding_format must be float or base64", param="encoding_format")
    return None


def embeddings(body: JsonObject, model: str) -> JsonObject:
    """The answer to a valid request."""
    inputs = _inputs(body.get("input")) or []
    dimensions = body.get("dimensions")
    size = dimensions if type(dimensions) is int and dimensions > 0 else DEFAULT_DIMENSIONS
    data: list[JsonObject] = []
    tokens = 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += len(item) // 4 + 1 if isinstance(item, str) else len(item)
        values = vector(text, model, size)
        encoded: Any = values
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
