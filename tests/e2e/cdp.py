"""Drive headless Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe): no websocket
library, no network port. Enough of CDP to open a page, pick files in an <input type=file>, read the
page and take a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.chromium import FLAGS

DUMP_ONLY = ("--virtual-time-budget", "--enable-logging", "--v=")  # for --dump-dom runs, not a live page
PAGE_FLAGS = tuple(flag for flag in FLAGS if not flag.startswith(DUMP_ONLY))


class Browser:
    """One headless Chromium and one page in it; commands block until their answer comes."""

    def __init__(self, executable: str, user_data_dir: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        shell = f'exec "$0" "$@" 3<&{to_browser_read} 4>&{from_browser_write}'
        self.process = subprocess.Popen(
            ["bash", "-c", shell, executable, *PAGE_FLAGS, "--remote-debugging-pipe",
             f"--user-data-dir={user_data_dir}", "--window-size=1200,900", "about:blank"],
            pass_fds=(to_browser_read, from_browser_write),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session: bool = False) -> dict:
        """Send one command (to the page's session when `session`) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float | None = None) -> dict[str, Any]:
        """The first not-yet-seen `event` of the page (waiting for it)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, seen in enumerate(self.events):
                if seen.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression on the page."""
        arguments = {"expression": expression, "returnByValue": True}
        result = self.call("Runtime.evaluate", arguments, session=True)
        return result["result"].get("value")

    def choose_files(self, selector: str, files: list[Path]) -> None:
        """Pick `files` in the file input `selector`, as a user would (its change event fires)."""
        root = self.call("DOM.getDocument", session=True)["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector}, session=True)["nodeId"]
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(f) for f in files]}, session=True)

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page."""
        arguments = {"format": "png", "captureBeyondViewport": True}
        data = self.call("Page.captureScreenshot", arguments, session=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)
