"""`RouteRequest.from_messages` with its string-content fast path and no set built when nothing
is required (issue 17, orch17) gives what the per-message `_content_of` walk gave."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.types import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    RouteRequest,
    _content_of,
    estimate_tokens,
)


class Text(str):
    """A str subclass: not the fast path's exact type."""


def _old(messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Any] | None = None,
         response_format: Mapping[str, Any] | None = None) -> RouteRequest:
    """`from_messages` as it was (the parts routers read)."""
    msgs = tuple(messages)
    user_parts: list[str] = []
    last_user = ""
    chars = images = attachments = 0
    for message in msgs:
        content = _content_of(message.get("content"))
        chars += len(content.text)
        images += content.images
        attachments += content.attachments
        if message.get("role") == "user":
            user_parts.append(content.text)
            last_user = content.text
        if message.get("tool_calls"):
            chars += len(json.dumps(message["tool_calls"]))
    tokens = estimate_tokens(chars) + MESSAGE_OVERHEAD_TOKENS * len(msgs) + 3 + IMAGE_TOKENS * images
    if tools:
        tokens += estimate_tokens(len(json.dumps(list(tools))))
    requires = set()
    if tools:
        requires.add("tools")
    if images:
        requires.add("vision")
    if response_format and response_format.get("type") == "json_schema":
        requires.add("json")
    return RouteRequest(msgs, "\n".join(user_parts), last_user, tokens, None, images, attachments,
                        bool(tools), frozenset(requires))


_PART = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=10)),
    st.just({"type": "image_url", "image_url": {"url": "x"}}),
    st.just({"type": "file", "file": {}}),
    st.just({"type": "input_audio"}), st.just("loose"), st.just({"type": "text", "text": 3}))
_CONTENT = st.one_of(st.none(), st.text(max_size=20), st.text(max_size=5).map(Text),
                     st.lists(_PART, max_size=3), st.just(7))
_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": _CONTENT},
    optional={"tool_calls": st.just([{"id": "c", "function": {"name": "f"}}])})


@settings(max_examples=400, deadline=None)
@given(messages=st.lists(_MESSAGE, max_size=5), tools=st.booleans(),
       response_format=st.one_of(st.none(), st.just({}), st.just({"type": "json_schema"}),
                                 st.just({"type": "json_object"})))
def test_the_fast_path_gives_what_the_walk_gave(messages: list[dict[str, Any]], tools: bool,
                                                response_format: dict[str, Any] | None) -> None:
    listed = [{"type": "function", "function": {"name": "f"}}] if tools else None
    new = RouteRequest.from_messages(messages, tools=listed, response_format=response_format)
    old = _old(messages, tools=listed, response_format=response_format)
    assert new == old
    assert type(new.requires) is frozenset and type(new.user_text) is str
