"""A real browser for the tests: headless Chromium driven over the DevTools protocol.

The protocol travels over a pair of pipes (``--remote-debugging-pipe``: the browser
reads commands from its file descriptor 3 and writes answers and events to 4,
each message JSON ended by a NUL byte), so no port is opened and nothing beyond
the standard library is needed.  :func:`find_browser` says where a browser is (or
None: the tests that need one skip).
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

__all__ = ["find_browser", "Browser"]

#: Executables tried in order (``PPP_BROWSER`` first, if set).
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Flags for a quiet, isolated headless run (no sandbox: CI containers run as root).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe")

#: Longest wait for one answer of the browser, seconds (a guard against a hung browser,
#: not a limit on how fast anything must be).
PATIENCE = 300.0


def find_browser():
    """Path of a Chromium-like browser, or None."""
    names = [os.environ["PPP_BROWSER"]] if os.environ.get("PPP_BROWSER") else []
    for name in [*names, *CANDIDATES]:
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless browser with one page; use as a context manager.

    Attributes
    ----------
    events : list of dict
        Every event the page sent (``method``, ``params``), in order.
    """

    def __init__(self, executable):
        self._profile = tempfile.TemporaryDirectory(prefix="ppp-browser-")
        commands_r, self._commands = os.pipe()
        self._answers, answers_w = os.pipe()

        def child():        # the browser's fd 3 reads our commands, fd 4 writes its answers
            a, b = os.dup(commands_r), os.dup(answers_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            preexec_fn=child, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_r)
        os.close(answers_w)
        self._buffer = b""
        self._id = 0
        self.events = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=self.session)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self._send("Browser.close", {}, None)
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        for fd in (self._commands, self._answers):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    # ------------------------------------------------------------ protocol
    def _send(self, method, params, session):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._id

    def _next(self):
        """The next message from the browser."""
        deadline = time.monotonic() + PATIENCE
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                raise TimeoutError(f"the browser sent nothing for {PATIENCE:.0f} s")
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                raise RuntimeError(f"the browser closed its pipe (exit code {self.proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, session=None, **params):
        """Send a command; its result (events that arrive meanwhile go to :attr:`events`)."""
        wanted = self._send(method, params, session)
        while True:
            message = self._next()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event):
        """Wait for the page's next ``event`` (e.g. ``Page.loadEventFired``)."""
        while True:
            message = self._next()
            if "method" in message:
                self.events.append(message)
                if message["method"] == event:
                    return message

    # ------------------------------------------------------------ the page
    def open(self, url):
        """Load ``url`` and wait until it (images included) has loaded."""
        self.call("Page.navigate", session=self.session, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-able)."""
        result = self.call("Runtime.evaluate", session=self.session, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list:
        """The page's console errors, uncaught exceptions and failed loads, as text."""
        self.evaluate("1")            # let pending events arrive
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                                     for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                found.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                found.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        return found

    def screenshot(self, path, width=1280):
        """Save a PNG of the whole page at ``width`` CSS pixels."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride", session=self.session, width=width,
                  height=height, deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", session=self.session, format="png",
                         captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
