"""The local stack for end-to-end tests: one per session, on free ports, over real HTTP.

``stack`` starts ``python -m infra.local.stack`` in its own process group, waits until its
stack file names it and ``/health`` answers, and at the end stops the whole group, whatever
happened in between. ``stack.token(user_id, groups)`` mints a bearer token it accepts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.identity import mint_for_stack
from infra.local.stack import stack_file_for

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 180.0


@dataclass
class LocalStackUnderTest:
    port: int
    stack_file: Path
    data: dict[str, Any]
    log_path: Path

    @property
    def api_url(self) -> str:
        return str(self.data["api_url"])

    @property
    def moto_url(self) -> str:
        return str(self.data["moto_url"])

    @property
    def env(self) -> dict[str, str]:
        return dict(self.data["env"])

    def url(self, path: str) -> str:
        return f"{self.api_url}{path}"

    def token(self, user_id: str, groups: list[str] | tuple[str, ...] = ()) -> str:
        """A bearer token (without the "Bearer " prefix) for this stack's identity provider."""
        return mint_for_stack(self.stack_file, user_id, list(groups))

    def auth(self, user_id: str, *groups: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, groups)}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @contextlib.contextmanager
    def store_in_this_process(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """This process's store pointed at the stack's emulated AWS (to seed or read data the
        API has no route for), and back to the test's own afterwards."""
        from chalicelib.settings import get_settings
        from chalicelib.store import tables

        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        tables.reset()
        try:
            yield
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
            tables.reset()


def free_ports(count: int) -> list[int]:
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _stack_file_of(process: subprocess.Popen[bytes], path: Path) -> dict[str, Any] | None:
    """The stack file, once the stack we started has written it (not a stale one)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("pid") == process.pid else None


def _healthy(api_url: str) -> bool:
    try:
        return requests.get(f"{api_url}/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the stack's group (the stack and every child), then SIGKILL what is left."""
    group = process.pid  # start_new_session made the stack its group's leader
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@contextlib.contextmanager
def running_stack(log_dir: Path, *options: str) -> Iterator[LocalStackUnderTest]:
    """A local stack on free ports started with ``options``, ready once ``/health`` says
    200; its whole process group is stopped on the way out, whatever happened."""
    port, moto_port = free_ports(2)
    log_path = log_dir / "stack.log"
    path = stack_file_for(port)
    command = [sys.executable, "-m", "infra.local.stack", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--moto-port", str(moto_port), *options],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        data = None
        while data is None or not _healthy(data["api_url"]):
            if process.poll() is not None:
                pytest.fail(f"the local stack exited ({process.returncode}):\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"the local stack was not ready in time:\n{_tail(log_path)}")
            time.sleep(0.25)
            data = data or _stack_file_of(process, path)
        yield LocalStackUnderTest(port=port, stack_file=path, data=data, log_path=log_path)
    finally:
        _stop_process_group(process)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackUnderTest]:
    # Tests drive the warehouse through the API; the carrier moves quickly.
    options = ("--warehouse-delay", "0", "--carrier-step", "1")
    with running_stack(tmp_path_factory.mktemp("stack"), *options) as started:
        yield started


def _tail(path: Path, lines: int = 80) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
