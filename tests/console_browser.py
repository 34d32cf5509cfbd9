"""A real browser for the console tests: Debian's headless Chromium driven by Playwright.

Nothing downloads a browser: Playwright launches ``/usr/bin/chromium`` (the ``chromium``
Debian package, which ``.ci/system-deps.sh`` installs). Each page fixture records what the
browser logged as an error, and the test fails on any it did not expect. Screenshots go to
``test-artifacts/console/`` (kept by CI, ignored by git) so a person can look at the pages.

Also starts ``streamproc run`` as a user does, as a process, and finds its HTTP port in
what it logs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ARTIFACTS", "BrowserPage", "CHROMIUM", "RunningService", "start_run", "stop_run"]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("STREAMPROC_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "console"
#: As Chromium needs them on a machine with no network and no display (see the env notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]
_SCRIPT = Path(sys.executable).parent / "streamproc"
STREAMPROC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "streamproc.cli.main"]
_HTTP_LINE = re.compile(r"HTTP on (http://\S+?):? ")


class BrowserPage:
    """A Playwright page plus the errors its browser reported."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text}")

    def allow_error(self, pattern: str) -> None:
        """An error this test provokes on purpose (e.g. the 401 of a wrong sign-in)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event
    loop running on the main thread while it is open, which the asyncio tests of later
    modules cannot share."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: run .ci/system-deps.sh (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[BrowserPage]:
    """A fresh browser context (no cookies) per test; fails the test on unexpected errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    wrapped = BrowserPage(context.new_page())
    yield wrapped
    errors = wrapped.unexpected_errors()
    context.close()
    assert not errors, "the browser reported errors:\n" + "\n".join(errors)


class RunningService:
    """A ``streamproc run`` process and the URL of its HTTP server."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.proc = proc
        self.url = url
        self.log_path = log_path

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_run(deployment: Path, log_path: Path, timeout: float = 60.0) -> RunningService:
    """``streamproc run deployment`` with its log in ``log_path``; waits for the HTTP line."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*STREAMPROC, "run", str(deployment)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        found = _HTTP_LINE.search(text)
        if found:
            return RunningService(proc, found.group(1).rstrip(":"), log_path)
        if proc.poll() is not None:
            raise RuntimeError(f"streamproc run exited {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"streamproc run did not start its HTTP server:\n{log_path.read_text()}")


def stop_run(service: RunningService, timeout: float = 20.0) -> None:
    if service.proc.poll() is None:
        service.proc.send_signal(signal.SIGTERM)
        try:
            service.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(service.proc.pid, signal.SIGKILL)
            service.proc.wait(5)
            raise AssertionError(
                f"streamproc run did not stop on SIGTERM:\n{service.log_tail()}"
            ) from None


def copy_photo(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, dst_dir / src.name))
