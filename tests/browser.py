"""Headless Debian Chromium driven over its DevTools protocol (a websocket), for the browser tests.

No Selenium or Playwright and no browser download: the system's ``chromium`` (``.ci/chromium.sh``
installs Debian's package in CI) runs headless with a fresh profile, and :class:`Page` sends
DevTools commands over ``websocket-client``: navigate, evaluate JavaScript, wait until a
condition holds in the live page (no fixed sleeps: a condition and a timeout), take a screenshot.

>>> FLAGS[:2]
['--headless', '--no-sandbox']
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]


def chromium() -> str | None:
    """The system's Chromium (Debian's ``chromium``), or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with a fresh profile in ``profile``; :meth:`close` stops it."""

    def __init__(self, exe: str, profile: Path, *, width: int = 1600, height: int = 1000,
                 timeout: float = 120.0):
        self.profile = Path(profile)
        self.profile.mkdir(parents=True, exist_ok=True)
        self.log = (self.profile / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not start (log: {self.profile / 'chromium.log'})")
            time.sleep(0.2)
        self.port = int(port_file.read_text().split()[0])

    def new_page(self) -> Page:
        """A new tab, driven over its own websocket."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=60) as r:
            target = json.loads(r.read().decode())
        return Page(target["webSocketDebuggerUrl"])

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.log.close()


class Page:
    """One tab: DevTools commands sent and answered in order (events are skipped)."""

    def __init__(self, ws_url: str, timeout: float = 120.0):
        import websocket  # websocket-client (the dev extra)

        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def goto(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (``None`` when it throws)."""
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            return None
        return res.get("result", {}).get("value")

    def text(self) -> str:
        """What a user reads: the page's visible text."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_text(self, *needles: str, timeout: float = 120.0, poll: float = 0.5) -> str:
        """Poll until every ``needle`` is in the page's visible text; return the text.

        Raises ``TimeoutError`` with the end of the text the page showed instead.
        """
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(n in text for n in needles):
                time.sleep(poll)   # let the page finish drawing what it just rendered
                return self.text()
            time.sleep(poll)
        missing = [n for n in needles if n not in text]
        raise TimeoutError(f"page never showed {missing} within {timeout:.0f} s; it showed:\n{text[-3000:]}")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
