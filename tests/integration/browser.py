"""Headless Chromium driven over the DevTools protocol: status, DOM and screenshot of a page.

`Browser()` starts Debian's `chromium` with a fresh profile; `visit(url)` loads a page (following
redirects, keeping cookies like a browser) and returns the HTTP status of the final document,
its DOM as Chromium built it, and optionally a PNG screenshot of the whole page. Only aiohttp
is needed.

`save_screenshot` keeps a test's screenshot in its tmp_path, and also in the folder named by
`SLAMON_SCREENSHOTS` when set: `SLAMON_SCREENSHOTS=docs` is how the README's images are made.
A plain test run leaves the working tree as it found it.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def save_screenshot(png: bytes | None, tmp_path: Path, name: str) -> Path:
    """Write a PNG screenshot to `tmp_path / name` (and to $SLAMON_SCREENSHOTS, if set)."""
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG screenshot"
    path = tmp_path / name
    path.write_bytes(png)
    if os.environ.get("SLAMON_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["SLAMON_SCREENSHOTS"]) / name)
    return path


@dataclass
class Visit:
    status: int | None  # of the final document, after redirects
    statuses: list[int]  # every document response, redirects included
    html: str
    screenshot: bytes | None = None


class Browser:
    def __init__(self, width: int = 1200, height: int = 900) -> None:
        binary = shutil.which("chromium") or CHROMIUM
        assert Path(binary).exists(), "chromium is not installed (scripts/setup installs it)"
        self.profile = Path(tempfile.mkdtemp(prefix="slamon-chromium-"))
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = self._devtools_port()

    def _devtools_port(self, timeout: float = 30.0) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"chromium exited with {self.process.returncode}"
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().splitlines()[0])
            time.sleep(0.1)
        raise AssertionError("chromium did not open its DevTools port")

    def visit(self, url: str, screenshot: bool = False) -> Visit:
        return asyncio.run(self._visit(url, screenshot))

    async def _visit(self, url: str, screenshot: bool) -> Visit:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{self.port}/json/list") as response:
                targets = await response.json()
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                return await _Session(ws).visit(url, screenshot)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Session:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    async def call(self, method: str, **params: Any) -> dict:
        number = next(self.ids)
        await self.ws.send_json({"id": number, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), timeout=30)
            if message.get("id") == number:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    async def until(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {method} in {timeout} s"
            self.events.append(await asyncio.wait_for(self.ws.receive_json(), timeout=remaining))

    async def visit(self, url: str, screenshot: bool) -> Visit:
        await self.call("Network.enable")
        await self.call("Page.enable")
        self.events.clear()
        await self.call("Page.navigate", url=url)
        await self.until("Page.loadEventFired")
        statuses = [int(e["params"]["redirectResponse"]["status"]) for e in self.events
                    if e.get("method") == "Network.requestWillBeSent"
                    and e["params"].get("type") == "Document"
                    and "redirectResponse" in e["params"]]
        documents = [int(e["params"]["response"]["status"]) for e in self.events
                     if e.get("method") == "Network.responseReceived"
                     and e["params"].get("type") == "Document"]
        result = await self.call("Runtime.evaluate", returnByValue=True,
                                 expression="document.documentElement.outerHTML")
        image = None
        if screenshot:  # the whole page, at the window's width
            metrics = await self.call("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = await self.call("Page.captureScreenshot", format="png",
                                   captureBeyondViewport=True, clip=clip)
            image = base64.b64decode(shot["data"])
        return Visit(documents[-1] if documents else None, statuses + documents,
                     result["result"]["value"], image)
