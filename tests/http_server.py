"""A real ``streamproc serve`` process for tests that drive it with external AWS clients.

The clients (AWS CLI, AWS SDK for JavaScript) are processes of their own, so the server
must be one too: it is started as a user starts it, found through the one line it prints
once listening, and stopped with SIGTERM as a service manager would.

Use in a test module::

    from tests.http_server import aws_env, serve_fixture

    server_url = serve_fixture()          # a module-scoped fixture named "server_url"

    def test_something(server_url: ServerUrl) -> None: ...
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ROOT", "ServerUrl", "aws_env", "serve_fixture", "start_server", "stop_server"]

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).parent / "streamproc"
#: As a user starts it: the console script (``-m`` where it is not installed as one).
STREAMPROC = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "streamproc.cli.main"]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
_URL_LINE = re.compile(
    r"^streamproc: Rekognition API at (?P<url>http://\S+) \(.*\); metrics at (?P<metrics>\S+)$"
)


class ServerUrl(str):
    """The endpoint URL, carrying the server's log so failures can show what it said."""

    process: subprocess.Popen[bytes]
    stderr_path: Path
    metrics_url: str

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's stderr, for assertion messages."""
        return _tail(self.stderr_path, lines)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def aws_env(**extra: str) -> dict[str, str]:
    """The environment for an AWS client: dummy credentials and nothing from the user's ~/.aws.

    Without --auth the server accepts any signature, but the clients refuse to send an
    unsigned request, so they need some credentials; a developer's own profile, endpoint
    or retry settings must not leak into the test.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        # One attempt: a server error must show up, not be hidden by the clients' retries.
        AWS_MAX_ATTEMPTS="1",
        AWS_PAGER="",
    )
    env.update(extra)
    return env


def start_server(store: Path, log_dir: Path, *args: str) -> ServerUrl:
    """Start ``streamproc serve`` on a free loopback port and wait for its URL line."""
    stdout_path = log_dir / "serve.stdout"
    stderr_path = log_dir / "serve.stderr"
    command = [
        *STREAMPROC, "serve", "--host", "127.0.0.1", "--port", "0", "--store", str(store), *args
    ]
    # Files rather than pipes: nothing has to drain them while the tests run.
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        match = next(
            (m for line in stdout_path.read_text(errors="replace").splitlines()
             if (m := _URL_LINE.match(line))),
            None,
        )
        if match:
            url = ServerUrl(match["url"])
            url.process, url.stderr_path, url.metrics_url = proc, stderr_path, match["metrics"]
            return url
        if proc.poll() is not None or time.monotonic() > deadline:
            why = (
                f"exited with status {proc.returncode}"
                if proc.poll() is not None
                else f"printed no URL line within {START_TIMEOUT_S:.0f} s"
            )
            stop_server(proc)
            pytest.fail(
                f"streamproc serve {why}\ncommand: {' '.join(command)}\n"
                f"stdout:\n{_tail(stdout_path, 20)}\nstderr (tail):\n{_tail(stderr_path, 40)}",
                pytrace=False,
            )
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then SIGKILL; the exit status after SIGTERM, or None if it had to be killed."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def serve_fixture(name: str = "server_url", *args: str) -> Callable[..., Any]:
    """A module-scoped fixture ``name``: one server (own store) for the module's tests.

    Extra ``args`` go to ``streamproc serve`` (e.g. ``"--auth", FILE``). Teardown fails
    the module if the server does not exit cleanly on SIGTERM, as the contract promises.
    """

    @pytest.fixture(scope="module", name=name)
    def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerUrl]:
        base = tmp_path_factory.mktemp("serve")
        (base / "store").mkdir()
        url = start_server(base / "store", base, *args)
        try:
            yield url
        finally:
            status = stop_server(url.process)
        if status != 0:
            what = "ignored SIGTERM and was killed" if status is None else f"exited {status}"
            pytest.fail(
                f"streamproc serve {what} after SIGTERM\nstderr (tail):\n{url.log_tail()}",
                pytrace=False,
            )

    return _server


def photo(path: str) -> bytes:
    """A test photo's bytes (``faces/joe_biden/1.jpg``, relative to tests/data)."""
    return (ROOT / "tests" / "data" / path).read_bytes()


def boto3_client(url: str, key: str = "test", secret: str = "test", **config: Any) -> Any:
    """boto3's own rekognition client pointed at ``url``: one attempt, no retries."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "rekognition", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, **config),
    )
