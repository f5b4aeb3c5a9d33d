"""Opening a local HTML page in headless Chromium, for tests: console errors, uncaught exceptions, failed
resource loads, whether every image decoded, and a screenshot.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL bytes, read on fd 3 and written on fd 4), so no port, websocket library or driver is needed.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    images: list[tuple[str, bool]] = field(default_factory=list)  # (src, decoded with a non-zero size)
    text_length: int = 0  # characters of visible text
    screenshot: bytes = b""  # PNG

    def distinct_colours(self) -> int:
        """Distinct RGB values of the screenshot (1 for a blank page)."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.screenshot)).convert("RGB")
        return len(image.getcolors(maxcolors=image.width * image.height))


class _Pipe:
    """The DevTools protocol over Chromium's debugging pipe: commands out, responses and events in."""

    def __init__(self, write_fd: int, read_fd: int, timeout: float) -> None:
        self.write_fd, self.read_fd, self.timeout = write_fd, read_fd, timeout
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the debugging pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._receive(deadline))


def check_page(
    path: Path, *, chromium: str, width: int = 1200, height: int = 900, timeout: float = 60.0
) -> PageCheck:
    """Load ``path`` in headless ``chromium`` and report what went wrong, which images decoded, and a
    screenshot of the first ``width`` x ``height`` pixels."""
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")

    # preexec_fn is unsafe only in a process with threads that hold locks while it forks; the test process
    # forks here from its main thread, and the function only duplicates descriptors.
    def wire_fds() -> None:  # in the child: its fd 3 reads our commands, its fd 4 carries its answers
        read = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)  # above 4, so the two dup2 cannot collide
        write = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.dup2(read, 3)
        os.dup2(write, 4)

    process = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        pass_fds=(3, 4),
        preexec_fn=wire_fds,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # its own process group: every helper process can be ended with it
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(to_chrome_w, from_chrome_r, timeout)
    result = PageCheck()
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            pipe.call(f"{domain}.enable", session=session)
        viewport = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        pipe.call("Emulation.setDeviceMetricsOverride", viewport, session=session)
        pipe.call("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired")
        images = pipe.call(
            "Runtime.evaluate",
            {
                "expression": "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && "
                "i.naturalWidth > 0])",
                "returnByValue": True,
            },
            session=session,
        )
        result.images = [tuple(x) for x in images["result"]["value"]]
        text = pipe.call(
            "Runtime.evaluate",
            {"expression": "document.body.innerText.length", "returnByValue": True},
            session=session,
        )
        result.text_length = text["result"]["value"]
        shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session=session)
        result.screenshot = base64.b64decode(shot["data"])
        pipe.call("Browser.close")
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        shutil.rmtree(profile, ignore_errors=True)
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            result.errors.append(
                "console: "
                + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
            )
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            result.errors.append(
                f"exception: {details.get('text')} {details.get('exception', {}).get('description', '')}"
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            result.errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
    return result


def assert_page_renders(page: Path, chromium: str, *, images: bool) -> PageCheck:
    """The page loads without console errors, exceptions or failed loads, shows text, every image decodes
    (and there are some, if ``images``), and its screenshot is not blank."""
    check = check_page(page, chromium=chromium)
    assert check.errors == [], check.errors
    assert all(ok for _, ok in check.images), check.images
    assert bool(check.images) == images, check.images
    assert check.text_length > 200
    assert check.distinct_colours() > 200  # text and colour, not an empty page
    return check
