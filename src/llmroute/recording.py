"""A finished request's ledger entry, handed over in two parts (issue 17): to the recorder at once
(the ledger: its write-ahead log append is part of the answer's durability), and to the follower
(metrics, the request log) and the observer (traces) by a callable the gateway calls now or once
the answer is sent."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .accounting import Accountant, attempts_of
from .chat import ChatRequest
from .errors import LLMRouteError
from .ledger.entry import LedgerEntry
from .observe import Finished, Observer
from .outcome import Outcome, Principal

log = logging.getLogger("llmroute.gateway")
Recorder = Callable[[LedgerEntry], None]


def record_entry(accountant: Accountant, recorder: Recorder | None, follower: Recorder | None,
                 observer: Observer | None, req: ChatRequest, principal: Principal,
                 outcome: Outcome | None, error: LLMRouteError | None, *, request_id: str,
                 started: float, stream: bool, ttft_s: float | None = None,
                 response: str | None = None) -> Callable[[], None] | None:
    """Build the request's entry and hand it to `recorder` now; return what hands it to
    `follower` and `observer` (None: nobody to tell). Never raises into the request: a failure
    is logged."""
    if recorder is None and follower is None and observer is None:
        return None
    try:
        now = time.monotonic()
        entry = accountant.entry(
            request_id=request_id, started=started, now=now, outcome=outcome, error=error,
            body=req.body, key_name=principal.name, stream=stream, ttft_s=ttft_s,
            response=response)
        if recorder is not None:
            recorder(entry)
    except Exception:  # accounting must never break serving; the failure is logged
        log.exception("could not record request %s in the ledger", request_id,
                      extra={"request_id": request_id})
        return None
    if follower is None and observer is None:
        return None

    def tell() -> None:
        try:
            if follower is not None:
                follower(entry)
            if observer is not None:
                observer.finished(Finished(entry, tuple(attempts_of(outcome, error)), started,
                                           now, req.body, response))
        except Exception:  # metrics and traces must never break serving either
            log.exception("could not report request %s", request_id,
                          extra={"request_id": request_id})

    return tell
