"""Learning online across replicas (issue 13): one learner applies feedback, every replica serves
its posterior.

The feedback of record is the ledger's (whichever way it came: `POST /v1/feedback`,
`llmroute feedback`, `llmroute.feedback()`). Each `reload_s`, a replica's `OnlineSync.tick`:

- tries the lease `online-learner` in the shared state. The holder (one replica at a time) reads the
  feedback given since its cursor (`Store.rated`: one indexed query, feedback on requests that kept
  a prompt latent, up to `LAG_S` ago so that a transaction still committing is not skipped), applies
  it in that order (the ADF step is order-dependent: one writer keeps it one order) and publishes
  the posterior with its cursor and a version under `online:state`, the version alone under
  `online:version`;
- otherwise reads `online:version` and, when it moved, loads the published posterior.

A replica that takes the lease first loads the published state, so it resumes at the last cursor
(feedback applied by a learner that died before publishing is applied again, once). Nothing here
runs per request: requests read the hub's current posterior, a reference swapped by `load`. The
shared state being down only delays learning (each failure is logged once by `Watched`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from ..learn.online_hub import Feedback, OnlineHub, quality_of
from ..ledger.rated import Cursor, Rated
from ..ledger.store import Store, StoreError
from ..settings import Raters
from .state import SharedState, StateUnavailable

log = logging.getLogger("llmroute.online")
LEASE = "online-learner"
STATE_KEY = "online:state"
VERSION_KEY = "online:version"
#: Feedback younger than this is left for the next poll (its transaction may still commit).
LAG_S = 1.0
#: Feedback rows read per query.
PAGE = 500


def feedback_of(row: Rated, raters: Raters = "user") -> Feedback | None:
    """The update one ledger row asks for (None without a model or a usable value); its rater is
    the row's user, else its key (`raters="user"`), or always its key (`raters="key"`)."""
    quality = quality_of(row.user_rating, row.task_success)
    if row.model is None or quality is None:
        return None
    rater = row.key_name if raters == "key" else row.user or row.key_name
    return Feedback(row.model, row.latent, quality, rater)


class OnlineSync:
    """A replica's share of learning online (see the module docstring)."""

    def __init__(self, hub: OnlineHub, store: Store, state: SharedState, *, reload_s: float,
                 holder: str | None = None, lag_s: float = LAG_S, raters: Raters = "user"):
        self.hub = hub
        self.raters: Raters = raters
        self.store = store
        self.state = state
        self.reload_s = reload_s
        self.holder = holder or uuid.uuid4().hex
        self.lag_s = lag_s
        self.version = 0
        self.cursor: Cursor | None = None
        self.leading = False
        self.applied = 0
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> None:
        """One round: learn and publish (the lease holder) or reload (everyone else)."""
        if await self.state.lead(LEASE, self.holder, max(3 * self.reload_s, 5.0)):
            if not self.leading:
                await self.reload(force=True)
                self.leading = True
            if await self.learn():
                await self.publish()
            return
        self.leading = False
        await self.reload()

    async def learn(self) -> int:
        """Apply every feedback given since the cursor (up to `lag_s` ago); how many rows."""
        until = datetime.now(UTC) - timedelta(seconds=self.lag_s)
        done = 0
        while True:
            rows = await self.store.rated(until, self.cursor, PAGE)
            for row in rows:
                feedback = feedback_of(row, self.raters)
                if feedback is not None:
                    self.hub.apply(feedback)
                self.cursor = row.cursor
            done += len(rows)
            if len(rows) < PAGE:
                self.applied += done
                return done
            await asyncio.sleep(0)  # a long backlog yields to requests between pages

    async def publish(self) -> None:
        """Write the posterior, cursor and next version for the other replicas."""
        self.version += 1
        cursor = None if self.cursor is None else [self.cursor[0].isoformat(), self.cursor[1]]
        document = json.dumps({"version": self.version, "cursor": cursor, "slots": self.hub.state()})
        await self.state.set_text(STATE_KEY, document)
        await self.state.set_text(VERSION_KEY, str(self.version))

    async def reload(self, *, force: bool = False) -> bool:
        """Load the published posterior when its version moved (or `force`); True when loaded."""
        if not force:
            published = await self.state.get_text(VERSION_KEY)
            if published is None or int(published) == self.version:
                return False
        text = await self.state.get_text(STATE_KEY)
        if text is None:
            return False
        document = json.loads(text)
        self.hub.load(document.get("slots") or {})
        self.version = int(document.get("version") or 0)
        cursor = document.get("cursor")
        self.cursor = None if cursor is None else (datetime.fromisoformat(cursor[0]), str(cursor[1]))
        return True

    def start(self) -> None:
        """Run `tick` every `reload_s` in the background until `aclose`."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except (StateUnavailable, StoreError) as exc:  # an outage delays learning, no more
                log.debug("online learning paused: %s", exc)
            except Exception:
                log.exception("online learning round failed")
            await asyncio.sleep(self.reload_s)

    async def aclose(self) -> None:
        """Stop the background rounds."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
