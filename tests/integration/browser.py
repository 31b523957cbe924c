"""A real headless Chromium driven over the DevTools protocol (a websocket, aiohttp's client): open
the dashboard, log in through its form as a person would, wait for the live data, then read the
DOM and take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium")
#: The page has drawn live data: the status line says when it last updated.
UPDATED = "(document.getElementById('status') || {textContent: ''}).textContent.indexOf('Updated') === 0"


class DevTools:
    """One page's DevTools session: commands by id, events ignored."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        sent = next(self.ids)
        await self.ws.send_str(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads((await self.ws.receive(timeout=30)).data)
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        found = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return found["result"].get("value")

    async def holds(self, expression: str) -> bool:
        """The expression's truth; False while a navigation replaces the page under it."""
        try:
            return bool(await self.evaluate(f"!!({expression})"))
        except RuntimeError:  # "Execution context was destroyed": the next page is loading
            return False

    async def wait(self, expression: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not await self.holds(expression):
            if time.monotonic() > deadline:
                html = await self.evaluate("document.documentElement.outerHTML")
                raise AssertionError(f"timed out waiting for {expression}: {str(html)[-3000:]}")
            await asyncio.sleep(0.1)


def _port(profile: Path, proc: subprocess.Popen[bytes]) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("chromium did not open its DevTools port")
        time.sleep(0.05)
    return int(marker.read_text().splitlines()[0])


async def _logged_in(port: int, url: str, key: str, ready: str, screenshot: Path | None) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
            pages = [t for t in await answer.json() if t["type"] == "page"]
        async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            tools = DevTools(ws)
            await tools.call("Page.enable")
            # the viewport itself is 1280x900 (a headless window of that size has a smaller one)
            await tools.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                             deviceScaleFactor=1, mobile=False)
            await tools.call("Page.navigate", url=url)
            await tools.wait("document.getElementById('login')")  # no session: the login form
            await tools.evaluate(f"document.getElementById('key').value = {json.dumps(key)}; "
                                 "document.getElementById('login').requestSubmit()")
            await tools.wait(f"location.pathname === '/dashboard' && ({ready})")
            if screenshot is not None:
                shot = await tools.call("Page.captureScreenshot", format="png")
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            html: str = await tools.evaluate("document.documentElement.outerHTML")
            return html


def dashboard_dom(profile: Path, url: str, key: str, *, ready: str = UPDATED,
                  screenshot: Path | None = None) -> str:
    """Log in to the dashboard at `url` through its form, wait until the JS expression `ready`
    holds, and return the page's DOM (saving a 1280x900 screenshot to `screenshot`)."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,900",
               "--hide-scrollbars", "--remote-debugging-port=0", "about:blank"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(_logged_in(_port(profile, proc), url, key, ready, screenshot))
    finally:
        proc.kill()
        proc.wait(10)
