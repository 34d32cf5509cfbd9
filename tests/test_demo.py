"""``make demo`` as a new user meets it: the demo process names the household member, serves
the console while it runs, and ends by itself when it has no terminal."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request

from tests.http_server import STREAMPROC

CONSOLE_LINE = re.compile(r"console: (http://127\.0\.0\.1:\d+/console/)")


def test_demo_names_joe_and_serves_the_console() -> None:
    proc = subprocess.Popen([*STREAMPROC, "demo", "--once", "--port", "0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    page = ""
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            lines.append(line)
            found = CONSOLE_LINE.search(line)
            if found and not page:
                with urllib.request.urlopen(found.group(1), timeout=10) as response:
                    page = response.read().decode()
            assert time.monotonic() < deadline, "".join(lines)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert page, f"no console URL printed:\n{out}"
    assert "front-door" in page and "household" in page  # the camera and the collection
    assert "joe is at front-door" in out
    assert re.search(r"identified: .*joe", out), out
