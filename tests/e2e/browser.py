"""A headless Chromium driven over the DevTools protocol on a pipe: stdlib only, no WebDriver.

`Browser.open(path, javascript=...)` loads a local file and returns a `Page` with the DOM as the
browser holds it after its scripts ran (or with scripting disabled), a PNG screenshot, every
console message and uncaught exception, and the time from navigation to the load event and to
the first painted frames. Chromium's own ``--dump-dom``/``--screenshot`` flags print nothing
when JavaScript is disabled (they run a script to read the page), hence the protocol.

Chromium is Debian's ``chromium`` package (``make test`` installs it when missing); set
``GRAPHPERF_CHROMIUM`` to use another binary. Start flags follow issue 7: headless, no sandbox
(CI runs as root), no GPU, no background networking, a fresh profile directory per browser.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

__all__ = ["Browser", "Page", "chromium_path", "FLAGS"]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium_path() -> Optional[str]:
    """The browser binary: $GRAPHPERF_CHROMIUM, else chromium on PATH, else None."""
    env = os.environ.get("GRAPHPERF_CHROMIUM")
    if env:
        return env
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Page:
    dom: str
    screenshot_png: bytes
    console: list[dict[str, Any]] = field(default_factory=list)  # {"type": "error"|"log"|..., "text": ...}
    exceptions: list[str] = field(default_factory=list)
    load_s: float = 0.0  # navigate -> load event, wall clock
    painted_s: float = 0.0  # navigate -> two animation frames after load (layout and paint done)
    result: Any = None  # the value of `script`, when one was given

    @property
    def problems(self) -> list[str]:
        """Uncaught exceptions and console errors/warnings: a clean page has none."""
        return self.exceptions + [f"console.{m['type']}: {m['text']}" for m in self.console
                                  if m["type"] in ("error", "warning", "assert")]


class Browser:
    """One Chromium process; use as a context manager. Not thread-safe."""

    def __init__(self, exe: Optional[str] = None, timeout_s: float = 60.0):
        exe = exe or chromium_path()
        if not exe:
            raise FileNotFoundError("chromium not found: `make test` installs it (apt-get install chromium "
                                    "chromium-driver), or set GRAPHPERF_CHROMIUM")
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="graphperf-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def child_fds():  # the protocol pipe is fd 3 (commands in) and fd 4 (replies out)
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        args = [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=child_fds, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = to_browser_w
        self._in = from_browser_r
        self._buf = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []

    # -- protocol ---------------------------------------------------------------------------

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"chromium did not answer within {self.timeout_s:g} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _wait_event(self, method: str) -> dict[str, Any]:
        for i, ev in enumerate(self._events):
            if ev.get("method") == method:
                return self._events.pop(i)
        deadline = time.monotonic() + self.timeout_s
        while True:
            ev = self._read(deadline)
            if ev.get("method") == method:
                return ev
            self._events.append(ev)

    # -- pages ------------------------------------------------------------------------------

    def open(self, path: str | Path, *, javascript: bool = True, width: int = 1400, height: int = 1000,
             full_page: bool = True, script: Optional[str] = None) -> Page:
        """Load a local file in a fresh tab and collect what a test needs (see `Page`).

        `script`, a JavaScript expression, is evaluated after the load (as a user would act: clicks)
        and before the DOM and the screenshot are taken; its JSON value lands in `Page.result`.
        """
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=s)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=s)
        if not javascript:
            self.send("Emulation.setScriptExecutionDisabled", {"value": True}, session=s)
        self._events.clear()
        t0 = time.perf_counter()
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=s)
        self._wait_event("Page.loadEventFired")
        load_s = time.perf_counter() - t0
        if javascript:  # two animation frames after load: style, layout and paint are done
            self.send("Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame(() => "
                                           "requestAnimationFrame(() => r(1))))", "awaitPromise": True}, session=s)
        painted_s = time.perf_counter() - t0  # without scripts: the screenshot below forces the paint
        result = None
        if script is not None:
            reply = self.send("Runtime.evaluate", {"expression": script, "returnByValue": True}, session=s)
            if "exceptionDetails" in reply:
                raise RuntimeError(f"script failed: {reply['exceptionDetails']}")
            result = reply["result"].get("value")
        root = self.send("DOM.getDocument", {"depth": -1}, session=s)["root"]["nodeId"]
        dom = self.send("DOM.getOuterHTML", {"nodeId": root}, session=s)["outerHTML"]
        shot: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics", session=s)["cssContentSize"]
            shot.update(captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": min(size["height"], 16000), "scale": 1})
        png = base64.b64decode(self.send("Page.captureScreenshot", shot, session=s)["data"])
        page = Page(dom=dom, screenshot_png=png, load_s=load_s, painted_s=painted_s, result=result)
        for ev in self._events:
            p = ev.get("params", {})
            if ev.get("method") == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                page.console.append({"type": p.get("type"), "text": text})
            elif ev.get("method") == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                page.exceptions.append(f"{d.get('text')} {d.get('exception', {}).get('description', '')}".strip())
            elif ev.get("method") == "Log.entryAdded":
                e = p.get("entry", {})
                page.console.append({"type": e.get("level"), "text": f"{e.get('source')}: {e.get('text')}"})
        self._events.clear()
        self.send("Target.closeTarget", {"targetId": target})
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for a test module's pages; fails (never skips) when Chromium is missing."""
    if not chromium_path():
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium "
                    "chromium-driver); or set GRAPHPERF_CHROMIUM to a Chromium binary")
    with Browser() as b:
        yield b
