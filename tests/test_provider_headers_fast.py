"""An OpenAI-compatible deployment without per-request auth sends the shared header constants
(no `_auth` coroutine and merge per request, issue 17 orch17); one whose `_auth` adds headers
still merges them. Either way the headers handed to the transport are what the merge gave."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from llmroute.providers.http import Reply
from llmroute.providers.openai_compat import JSON_HEADERS, SSE_HEADERS, OpenAICompatProvider
from llmroute.settings_upstream import ProviderConfig


class _Http:
    def __init__(self) -> None:
        self.sent: list[Mapping[str, str] | None] = []

    async def post_checked(self, path: str, payload: bytes, headers: Mapping[str, str] | None,
                           **options: Any) -> Reply:
        self.sent.append(headers)
        return Reply(200, {}, b'{"ok": true}')


class _Signed(OpenAICompatProvider):
    async def _auth(self, model: str) -> Mapping[str, str]:
        return {"authorization": f"Bearer for-{model}"}


def _sent(provider: OpenAICompatProvider) -> Mapping[str, str] | None:
    http = _Http()
    provider.http = http  # type: ignore[assignment]
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert asyncio.run(provider.complete(body, "up")) == {"ok": True}
    return http.sent[0]


def test_no_auth_sends_what_the_merge_gave() -> None:
    provider = OpenAICompatProvider("p", ProviderConfig(base_url="http://x"), "key")
    assert provider._no_auth
    sent = _sent(provider)
    assert sent == {**JSON_HEADERS, **asyncio.run(provider._auth("up"))}
    assert JSON_HEADERS == {"content-type": "application/json"}  # the constant is not changed
    assert SSE_HEADERS == {"content-type": "application/json", "accept": "text/event-stream"}


def test_an_auth_override_is_still_merged() -> None:
    provider = _Signed("p", ProviderConfig(base_url="http://x"), None)
    assert not provider._no_auth
    assert _sent(provider) == {"content-type": "application/json", "authorization": "Bearer for-up"}
