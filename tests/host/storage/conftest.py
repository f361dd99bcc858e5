"""Fixtures for the storage probes: real processes with chosen names and argv.

A process is a small script (``#!/bin/sh`` or ``#!<this python>``) saved under the program's name
and started for real, so the kernel gives it that name and argv exactly as it does for the
wrapper scripts and Python entry points Chia and Lotus installs use. Its :class:`ProcessInfo` is
read back from the running process with psutil (pid, name, exe, cmdline, listening ports, remote
peers), the way the agent's own snapshot does.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]
import pytest

from minewatch.host.model import ProcessInfo

Spawn = Callable[..., ProcessInfo]


def process_info(pid: int) -> ProcessInfo:
    """What psutil reads about a running process, as a ProcessInfo."""
    proc = psutil.Process(pid)
    connections = proc.net_connections(kind="inet")
    listen = sorted({c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN})
    remote = tuple(
        (c.raddr.ip, c.raddr.port)
        for c in connections
        if c.raddr and c.status == psutil.CONN_ESTABLISHED
    )
    return ProcessInfo(
        pid=pid,
        name=proc.name(),
        exe=proc.exe(),
        cmdline=tuple(proc.cmdline()),
        username=proc.username(),
        listen_ports=tuple(listen),
        remote_endpoints=remote,
    )


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start ``name`` with ``args``; ``python`` is a script body that prints a line when ready.

    Shell stand-ins block in ``read`` (a builtin: no child process is left behind); Python ones
    block reading stdin after printing their ready line. All are ended after the test.
    """
    started: list[subprocess.Popen[bytes]] = []
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def _spawn(name: str, *args: str, python: str | None = None) -> ProcessInfo:
        script = bin_dir / name
        if python is None:
            script.write_text("#!/bin/sh\nread line\n")
        else:
            script.write_text(f"#!{sys.executable}\n{python}")
        script.chmod(0o755)
        proc = subprocess.Popen(
            [str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        if python is not None:
            assert proc.stdout is not None
            ready = proc.stdout.readline().decode().strip()
            if ready != "ready":
                pytest.skip(f"{name} stand-in could not start: {ready!r}")
        deadline = time.monotonic() + 10
        while str(script) not in psutil.Process(proc.pid).cmdline():
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not exec in time")
            time.sleep(0.01)
        return process_info(proc.pid)

    yield _spawn
    for proc in started:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="session")
def unprivileged_uid() -> int | None:
    """A uid to drop to when the tests run as root (permissions do not bind root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


def run_unprivileged(task: Callable[[], Any], uid: int | None) -> Any:
    """Run ``task`` in a forked child that first drops root (when there is root to drop).

    The agent must work without root and say what it could not see; this runs the real code
    under the real kernel permission checks. ``task`` returns something JSON can carry.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        status = 1
        try:
            os.close(read_end)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            os.write(write_end, json.dumps(task()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged task failed"
    return json.loads(payload)


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A temporary directory others may enter (pytest's own tmp_path is private to its user)."""
    base = Path(tempfile.mkdtemp(prefix="minewatch-storage-"))
    base.chmod(0o755)
    yield base
    for path in base.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.chmod(0o700)
    shutil.rmtree(base)
