"""Who is looking at the dashboard: a session cookie (a person logged in through the form) or a
bearer key (a script). Keys never travel in URLs: `?key=` is refused.

`POST /dashboard/login` exchanges a key (form field `key`) for a session cookie (HttpOnly,
SameSite=Strict, path /dashboard, Secure over https); `POST /dashboard/logout` revokes it. Both
POSTs are checked against cross-site forgery by their Origin (else Referer) header, which a browser
sets and a page on another site cannot forge; the data GETs change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..control.state import StateUnavailable
from ..errors import (
    AuthenticationError,
    InvalidRequestError,
    LLMRouteError,
    PermissionDeniedError,
    UnavailableError,
)
from ..outcome import OPEN, Principal
from .auth import KeyRing, bearer, hash_key
from .sessions import COOKIE, Session, Sessions

#: A login form is a few hundred bytes; anything much larger is not one.
FORM_LIMIT = 4096
#: The page is /dashboard: relative links stay right behind a proxy that adds a path prefix.
HOME = "../dashboard"
PAGE_HEADERS = {
    "content-security-policy": ("default-src 'none'; script-src 'unsafe-inline'; "
                                "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


def key_in_url() -> LLMRouteError:
    """The refusal of `?key=`: a key in a URL stays in browser history and access logs."""
    return InvalidRequestError("Gateway keys are not accepted in URLs (they stay in browser "
                               "history and access logs): open /dashboard and log in with the "
                               "form, or send `Authorization: Bearer <key>`.", param="key",
                               code="key_in_url")


@dataclass(frozen=True)
class DashboardAccess:
    """The dashboard's view of the gateway keys and the sessions issued for them."""

    keys: KeyRing
    sessions: Sessions

    async def session(self, request: Request) -> Session | None:
        """The request's valid session, if any (503 when the shared state cannot say whether it
        was logged out)."""
        try:
            return await self.sessions.check(request.cookies.get(COOKIE), self.keys)
        except StateUnavailable:
            raise UnavailableError("Sessions cannot be checked right now (the shared state is "
                                   "unreachable); try again shortly.", code="state_unavailable",
                                   retry_after=1.0) from None

    async def principal(self, request: Request) -> Principal | None:
        """Who is asking: OPEN on an open gateway, the bearer key's principal (401 if wrong), the
        session's, or None (no credentials). `?key=` is a 400."""
        if "key" in request.query_params:
            raise key_in_url()
        if self.keys.open:
            return OPEN
        if bearer(request.headers) is not None:
            return self.keys.authenticate(request.headers)
        found = await self.session(request)
        return found.principal if found else None

    async def required(self, request: Request) -> Principal:
        """`principal`, or 401 when there are no credentials."""
        principal = await self.principal(request)
        if principal is None:
            raise AuthenticationError("Not logged in: open /dashboard and log in, or send "
                                      "`Authorization: Bearer <key>`.")
        return principal


def same_origin(request: Request) -> bool:
    """True when the browser says the request comes from a page of this origin."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("referer", "")
    return referer == own or referer.startswith(own + "/")


def cross_site() -> LLMRouteError:
    return PermissionDeniedError("Cross-site request refused: post this form from the gateway's "
                                 "own /dashboard page.", code="cross_site_request")


async def login(access: DashboardAccess, request: Request) -> Response:
    """`POST /dashboard/login`: a right key sets the session cookie and goes to the page; a wrong
    one shows the form again (401)."""
    if not same_origin(request):
        raise cross_site()
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > FORM_LIMIT:
            raise InvalidRequestError("The login form is too large.", status=413,
                                      code="request_too_large")
    key = (parse_qs(body.decode("utf-8", "replace")).get("key") or [""])[0].strip()
    if access.keys.open:
        return RedirectResponse(HOME, status_code=303)
    try:
        access.keys.principal(key or None)
    except AuthenticationError:
        return login_page("That key is not valid.", status=401, action="login")
    response = RedirectResponse(HOME, status_code=303, headers={"cache-control": "no-store"})
    response.set_cookie(COOKIE, access.sessions.issue(hash_key(key)),
                        max_age=int(access.sessions.ttl_s), path="/dashboard", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


async def logout(access: DashboardAccess, request: Request) -> Response:
    """`POST /dashboard/logout`: revoke the session on every replica and drop the cookie."""
    if not same_origin(request):
        raise cross_site()
    found = await access.session(request)
    if found is not None:
        try:
            await access.sessions.revoke(found)
        except StateUnavailable:
            raise UnavailableError("Cannot log out right now (the shared state is unreachable); "
                                   "try again shortly.", code="state_unavailable",
                                   retry_after=1.0) from None
    response = RedirectResponse(HOME, status_code=303, headers={"cache-control": "no-store"})
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


def login_page(message: str | None = None, status: int = 200,
               action: str = "dashboard/login") -> HTMLResponse:
    """The login form (the key goes in a POST body, never in a URL); `action` is relative to the
    page's URL (/dashboard, or /dashboard/login after a wrong key)."""
    note = f"<p class=err role=alert>{escape(message)}</p>" if message else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>llmroute dashboard: log in</title>
<meta name="referrer" content="same-origin"><style>
body{{font-family:system-ui,sans-serif;max-width:28em;margin:4em auto;padding:0 1em;color:#222}}
input{{font:inherit;width:100%;box-sizing:border-box;margin:.4em 0 .8em;padding:.4em}}
.err{{color:#b00020}}</style></head><body>
<h1>llmroute dashboard</h1>{note}
<form id="login" method="post" action="{action}">
<label for="key">Gateway key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
<p>An admin key sees the whole gateway; an application key sees only its own requests.</p>
</body></html>
"""
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
