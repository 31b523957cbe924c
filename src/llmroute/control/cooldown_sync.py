"""Cooldowns shared by replicas: a background task that publishes the breakers this process opened
to the shared state and holds the ones other replicas opened. The request path never waits on it:
breakers stay in-process, and the sync runs every `interval_s` (so a replica hears of another's
cooldown within about that long). An unreachable state is skipped (routing fails open)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..breakers import Cooldowns
from .state import SharedState, StateUnavailable

log = logging.getLogger("llmroute.cooldowns")


class CooldownSync:
    """Publishes and adopts open breakers through the shared state."""

    def __init__(self, cooldowns: Cooldowns, state: SharedState, *, interval_s: float = 0.5):
        self.cooldowns = cooldowns
        self.state = state
        self.interval_s = interval_s
        self._published: dict[str, float] = {}  # model -> the open_for_s last published
        self._task: asyncio.Task[None] | None = None

    async def once(self) -> None:
        """One exchange: publish newly opened breakers, then hold every shared cooldown."""
        for model, breaker in self.cooldowns.snapshot().items():
            if breaker.state != "open":
                self._published.pop(model, None)
                continue
            if breaker.open_for_s > self._published.get(model, 0.0):
                await self.state.open_cooldown(model, breaker.open_for_s)
            self._published[model] = breaker.open_for_s
        for model, seconds in (await self.state.cooldowns()).items():
            self.cooldowns.hold(model, seconds)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(StateUnavailable):
                await self.once()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Run in the background until `aclose`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop the background task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
