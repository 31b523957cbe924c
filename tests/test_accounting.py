"""Ledger entries built from a request's outcome: text stored only when asked, through the
redaction hook; costs against the baseline."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator, Mapping
from decimal import Decimal

import pytest

from helpers import default_settings
from llmroute.accounting import Accountant, load_redactor, prompt_text
from llmroute.catalog import Catalog
from llmroute.errors import UnknownModelError
from llmroute.settings import LedgerConfig
from llmroute.types import Usage


def install_redactor() -> str:
    module = types.ModuleType("acme_redact")
    module.scrub = lambda text: re.sub(r"\d{4}-\d{4}-\d{4}-\d{4}", "[card]", text)  # type: ignore[attr-defined]
    sys.modules["acme_redact"] = module
    return "acme_redact:scrub"


def test_prompt_text_flattens_messages() -> None:
    body = {"messages": [{"role": "system", "content": "be brief"},
                         {"role": "user", "content": [{"type": "text", "text": "hi"},
                                                      {"type": "image_url", "image_url": {}}]}]}
    assert prompt_text(body) == "system: be brief\nuser: hi"


def test_text_is_stored_only_when_enabled_and_always_redacted() -> None:
    catalog = Catalog.from_settings(default_settings())
    body = {"messages": [{"role": "user", "content": "my card is 1234-5678-9012-3456"}]}
    off = Accountant(catalog, "openai/gpt-4.1", LedgerConfig(store_text=False, redact=install_redactor()))
    entry = off.entry(request_id="req_1", started=0.0, now=1.5, outcome=None,
                      error=UnknownModelError("nope"), body=body, key_name="team", stream=False,
                      response="x")
    assert entry.prompt_text is None and entry.response_text is None
    assert (entry.status, entry.http_status, entry.error_code) == ("error", 404, "model_not_found")
    assert entry.latency_s == 1.5 and entry.key_name == "team"
    on = Accountant(catalog, "openai/gpt-4.1", LedgerConfig(store_text=True, redact=install_redactor()))
    stored = on.entry(request_id="req_2", started=0.0, now=0.1, outcome=None, error=None, body=body,
                      key_name=None, stream=False, response="card 1111-2222-3333-4444 ok")
    assert stored.prompt_text == "user: my card is [card]"
    assert stored.response_text == "card [card] ok"


def test_baseline_cost_uses_the_baseline_models_prices() -> None:
    catalog = Catalog.from_settings(default_settings())
    accountant = Accountant(catalog, "openai/gpt-4.1", LedgerConfig())
    # gpt-4.1: $2 in / $8 out per 1M tokens: 1,000 in + 500 out = 0.002 + 0.004
    assert accountant.baseline_cost(Usage(1000, 500)) == Decimal("0.006")
    assert accountant.baseline_cost(None) is None


def test_a_bad_redaction_hook_fails_loudly() -> None:
    with pytest.raises(ModuleNotFoundError):
        load_redactor("no_such_module_xyz:scrub")
    assert load_redactor(None) is None


class _Meta(Mapping[str, object]):
    """A mapping that is not a dict (the metadata's ABC check path)."""

    def __init__(self, **values: object) -> None:
        self._values = values

    def __getitem__(self, key: str) -> object:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@pytest.mark.parametrize(("extra", "user", "session"), [
    ({}, None, None),
    ({"user": "u-1"}, "u-1", None),
    ({"user": 42, "metadata": None}, None, None),
    ({"metadata": {"session_id": "s-1"}}, None, "s-1"),
    ({"metadata": {"session_id": 7}}, None, "7"),
    ({"metadata": {"session_id": ""}}, None, None),
    ({"metadata": {}}, None, None),
    ({"metadata": _Meta(session_id="s-2")}, None, "s-2"),
    ({"metadata": ["session_id"]}, None, None),
    ({"metadata": "session_id"}, None, None),
])
def test_user_and_session_read_from_the_body(extra: dict[str, object], user: str | None,
                                             session: str | None) -> None:
    """The body's `user` (text only) and `metadata.session_id` (any mapping; as text) in the
    entry (issue 17, cpu17b: a dict or no metadata at all skips the Mapping ABC check)."""
    accountant = Accountant(Catalog.from_settings(default_settings()), "openai/gpt-4.1", LedgerConfig())
    entry = accountant.entry(request_id="r", started=0.0, now=0.1, outcome=None, error=None,
                             body={"messages": [], **extra}, key_name=None, stream=False)
    assert (entry.user, entry.session) == (user, session)
    assert entry.attempts == () and entry.upstream_latency_s is None
