"""Delivering alerts: to the log (logger `llmroute.alerts`, WARNING) and to each configured webhook
(a generic JSON body with every field, or a Slack-compatible `{"text", "blocks"}` one), with
retries and exponential backoff on transport errors, timeouts, 408/425/429 and 5xx answers.

Webhook URLs often hold a token (Slack's do): only their scheme and host are ever logged or shown,
and header values (read from env vars) never are.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .alerts import Alert
from .alerts_config import AlertsConfig, DeliveryRetry, WebhookConfig

if TYPE_CHECKING:  # imported when the first alert is posted: ~12 MiB of RSS a gateway without
    import aiohttp  # webhooks (or before its first alert) does not need to hold

log = logging.getLogger("llmroute.alerts")
_RETRY_STATUSES = frozenset({408, 425, 429})
_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def safe_url(url: str) -> str:
    """`scheme://host[:port]` of a URL: what may be shown of it."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


@dataclass(frozen=True)
class Outcome:
    """How delivering one alert to one destination went."""

    target: str
    ok: bool
    tries: int = 1
    error: str | None = None


@dataclass(frozen=True)
class Receipt:
    """An alert and how it went at every destination."""

    alert: Alert
    outcomes: tuple[Outcome, ...]

    @property
    def delivered(self) -> bool:
        """True when every destination took it."""
        return all(o.ok for o in self.outcomes)


class _Failed(Exception):
    """One try failed; `retry` says whether another may succeed, `retry_after` how long to wait."""

    def __init__(self, reason: str, *, retry: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry = retry
        self.retry_after = retry_after


def json_body(alert: Alert) -> dict[str, object]:
    """The generic webhook body: every field of the alert."""
    return {"source": "llmroute", **alert.to_dict()}


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(alert: Alert) -> dict[str, object]:
    """A Slack-compatible body (incoming webhooks; Mattermost and others read `text`)."""
    head = f"{_EMOJI.get(alert.severity, '')} [{alert.severity}] {alert.rule}: {alert.message}"
    section = (f"*{alert.severity.upper()}* · `{_mrkdwn(alert.rule)}` · {_mrkdwn(alert.subject)}\n"
               f"{_mrkdwn(alert.message)}")
    context = f"llmroute · {alert.kind} · {alert.ts.isoformat()}"
    return {"text": _mrkdwn(head.strip()),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": section}},
                       {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}]}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None


class Webhook:
    """One configured webhook, its URL and headers read from the environment."""

    def __init__(self, config: WebhookConfig, environ: Mapping[str, str]) -> None:
        self.config = config
        self.url = config.url or environ.get(config.url_env or "", "")
        self.missing: list[str] = [] if self.url else [config.url_env or "url"]
        self.headers: dict[str, str] = {}
        for header, var in config.headers_env.items():
            if var in environ:
                self.headers[header] = environ[var]
            else:
                self.missing.append(var)
        where = safe_url(self.url) if self.url else f"${config.url_env}"
        self.label = f"{config.format} webhook {where}"

    def body(self, alert: Alert) -> dict[str, object]:
        return slack_body(alert) if self.config.format == "slack" else json_body(alert)

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
        parts = urlsplit(self.url)
        for secret in (self.url, parts.path, parts.query):
            if len(secret) > 1:
                text = text.replace(secret, "…")
        return text

    async def post(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        """One try; raises `_Failed`."""
        import aiohttp

        if self.missing:
            raise _Failed(f"env var(s) not set: {', '.join(self.missing)}", retry=False)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        try:
            async with session.post(self.url, json=self.body(alert), headers=self.headers,
                                    timeout=timeout, allow_redirects=False) as response:
                await response.read()
                status, headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            retry = not isinstance(exc, (aiohttp.InvalidURL, ValueError))
            raise _Failed(self._describe(exc), retry=retry) from None
        if 200 <= status < 300:
            return
        retry = status in _RETRY_STATUSES or status >= 500
        raise _Failed(f"HTTP {status}", retry=retry, retry_after=_retry_after(headers))


async def with_retries(attempt: Callable[[], Awaitable[None]], retry: DeliveryRetry,
                       sleep: Callable[[float], Awaitable[None]], target: str) -> Outcome:
    """Call `attempt` until it succeeds, fails for good, or `retry.attempts` tries are spent,
    waiting `backoff_s * 2**n` (at most `max_backoff_s`, at least a webhook's `Retry-After` up to
    that cap) between tries."""
    for n in range(1, retry.attempts + 1):
        try:
            await attempt()
            return Outcome(target, True, n)
        except _Failed as exc:
            if not exc.retry or n == retry.attempts:
                return Outcome(target, False, n, str(exc))
            delay = retry.backoff_s * 2 ** (n - 1)
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            await sleep(min(delay, retry.max_backoff_s))
    raise AssertionError("unreachable: attempts >= 1")


class Delivery:
    """Sends alerts to the log and the configured webhooks; one HTTP session, closed by `aclose`."""

    def __init__(self, config: AlertsConfig, *, environ: Mapping[str, str] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.config = config
        env = os.environ if environ is None else environ
        self.webhooks = tuple(Webhook(w, env) for w in config.webhooks)
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "llmroute-alerts"})
        return self._session

    async def deliver(self, alert: Alert) -> Receipt:
        """Log the alert (when enabled) and post it to every webhook at once."""
        outcomes: list[Outcome] = []
        if self.config.log:
            log.warning("alert [%s] %s (%s): %s", alert.severity, alert.rule, alert.subject,
                        alert.message)
            outcomes.append(Outcome("log", True))
        sent = await asyncio.gather(*(self._post(hook, alert) for hook in self.webhooks))
        return Receipt(alert, (*outcomes, *sent))

    async def deliver_all(self, alerts: Sequence[Alert]) -> list[Receipt]:
        """Deliver several alerts concurrently."""
        return list(await asyncio.gather(*(self.deliver(a) for a in alerts)))

    async def _post(self, hook: Webhook, alert: Alert) -> Outcome:
        outcome = await with_retries(lambda: hook.post(self._http(), alert), self.config.retry,
                                     self._sleep, hook.label)
        if not outcome.ok:
            log.error("alert %s not delivered to %s after %d tries: %s", alert.rule, outcome.target,
                      outcome.tries, outcome.error)
        return outcome

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
