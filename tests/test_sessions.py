"""Dashboard session lifetimes on a clock we move: a session lives at least its ttl, however the
login's instant falls within a second (the cookie carries whole seconds), and not past its expiry."""

from __future__ import annotations

import asyncio

import pytest

from llmroute.control.state_memory import MemoryState
from llmroute.server.auth import KeyRing, hash_key
from llmroute.server.sessions import Sessions
from llmroute.settings import KeyConfig

KEY = "lr-admin-key-4d1c"


@pytest.mark.parametrize("login_at", [100.0, 100.001, 100.5, 100.999])
@pytest.mark.parametrize("ttl", [1.0, 2.5])
def test_a_session_lives_at_least_its_ttl_and_no_more_than_a_second_beyond(
        login_at: float, ttl: float) -> None:
    now = [login_at]
    sessions = Sessions(b"s" * 32, ttl, MemoryState(clock=lambda: now[0]), clock=lambda: now[0])
    keys = KeyRing([KeyConfig(name="ops", hash=hash_key(KEY), role="admin")], {})
    cookie = sessions.issue(hash_key(KEY))

    def alive_at(t: float) -> bool:
        now[0] = t
        return asyncio.run(sessions.check(cookie, keys)) is not None

    assert alive_at(login_at + ttl - 1e-6)
    assert not alive_at(login_at + ttl + 1.0)
    expires = int(cookie.split(".")[1])
    assert login_at + ttl <= expires < login_at + ttl + 1
    assert alive_at(expires - 1e-6) and not alive_at(expires)
