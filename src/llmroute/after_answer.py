"""An answered request's bookkeeping that its answer need not wait for (issue 17): limits settled,
the follower and observer told, the response cache's copy kept, run in tasks of their own that the
gateway's `aclose` waits for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from .cache.response import Probe, ResponseCache
from .control.admission import Admission
from .control.limits import Ticket
from .outcome import Outcome

log = logging.getLogger("llmroute.gateway")
JSON = dict[str, Any]


class AfterAnswer:
    """The gateway's work after an answer, and the tasks still doing it."""

    def __init__(self, admission: Admission, cache: ResponseCache):
        self.admission = admission
        self.cache = cache
        self._tasks: set[asyncio.Task[None]] = set()

    def settle_later(self, ticket: Ticket, outcome: Outcome) -> None:
        """Settle a stream's limits in a task of its own (a stream's end may be a cancellation,
        which would cut an await short)."""
        if not ticket.meters:
            return
        self.spawn(self.admission.settle(ticket, outcome))

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in a task of its own, which `aclose` waits for; its failure is logged."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("work after an answer failed", exc_info=exc)

    async def finish(self, ticket: Ticket, outcome: Outcome, tell: Callable[[], None] | None,
                     probe: Probe, response: JSON) -> None:
        """An answered request's bookkeeping: limits settled, the follower and observer told,
        the cache's copy kept (an identical request meanwhile waits for it: the probe still
        leads the key's flight)."""
        try:
            await self.admission.settle(ticket, outcome)
        finally:
            if tell is not None:
                tell()
            await self.cache.keep(probe, response, outcome)

    async def aclose(self) -> None:
        """Wait for the work still running."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
