"""A minimal headless-Chromium driver for tests: the DevTools protocol over
``--remote-debugging-pipe`` (JSON messages separated by NUL bytes on file descriptors
3 and 4), so no websocket client, selenium or network port is needed.

    with Browser() as b:
        b.open(Path("trace.html"))
        b.click("#next")
        b.eval("document.title")
        b.screenshot(Path("shot.png"))
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
]


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page, driven through the DevTools protocol."""

    def __init__(self, binary: str = CHROMIUM, width: int = 1280, height: int = 900,
                 timeout: float = 30.0) -> None:
        self.binary, self.width, self.height, self.timeout = binary, width, height, timeout
        self._id = 0
        self._buf = b""
        self.session: str | None = None

    # --- process -------------------------------------------------------------------------
    def __enter__(self) -> Browser:
        self.profile = tempfile.mkdtemp(prefix="constrained-chromium-")
        to_child_r, self._to_child = os.pipe()  # we write commands; chromium reads fd 3
        self._from_child, from_child_w = os.pipe()  # chromium writes fd 4; we read
        # the child's ends on high numbers first, so moving them onto 3 and 4 cannot clobber one another
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 20)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 20)

        def setup() -> None:  # in the child, before exec: the pipe ends on fds 3 and 4 (inheritable)
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=setup)  # our other fds are close-on-exec: nothing else leaks
        for fd in (to_child_r, from_child_w, hi_r, hi_w):
            os.close(fd)
        os.set_blocking(self._from_child, True)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.session = None
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- protocol ------------------------------------------------------------------------
    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events in between are dropped)."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" not in self._buf:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise BrowserError(f"no answer to {method} (chromium exit code {self.proc.poll()})")
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise BrowserError(f"chromium closed the pipe while waiting for {method}")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    # --- page helpers --------------------------------------------------------------------
    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression!r} threw: {r['exceptionDetails'].get('exception', {})}")
        return r["result"].get("value")

    def open(self, path: Path, query: str = "") -> None:
        self.call("Page.navigate", url=path.resolve().as_uri() + query)
        self.wait_for("document.readyState === 'complete' && !!document.body")

    def wait_for(self, expression: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.eval(expression):
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real mouse click (pressed + released) at the centre of ``selector``."""
        js = ("(() => { const e = document.querySelector(" + json.dumps(selector) + "); if (!e) return null;"
              " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
              " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        box = self.eval(js)
        if box is None:
            raise BrowserError(f"no element {selector!r}")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def key(self, key: str, code: str, key_code: int) -> None:
        """Press and release one key (``"ArrowRight", "ArrowRight", 39``)."""
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=key_code)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def require() -> None:
    """In a test: skip, saying why, where headless Chromium cannot run, except under CI
    (``CI=true``), where the test fails instead: CI must run the browser tests, never skip them."""
    why = available()
    if why is None:
        return
    import pytest  # noqa: PLC0415

    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true but the browser tests cannot run: {why}", pytrace=False)
    pytest.skip(why)


def available() -> str | None:
    """None when headless Chromium can run here, else why not."""
    if not Path(CHROMIUM).exists():
        return (f"{CHROMIUM} is missing: install Debian's chromium package "
                "(apt-get install -y chromium chromium-driver) to run the browser tests")
    return None
