"""The pieces every recorded session shares: what a session is, the run's context (network
namespace, scratch space, processes to clean up), process helpers and certificates.

Usage::

    ctx = Context(netns, work, out_dir, labels, chroot, python, seconds, versions)
    proc = ctx.spawn(["mosquitto", "-c", str(conf)], log_path)
    wait_port(ctx, "127.0.20.21", 30883)
    stop(proc)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Context", "Session", "make_cert", "stop", "wait_for", "wait_port"]


@dataclass
class Session:
    """One recorded conversation: who serves where, what runs, and how it is labelled."""

    name: str
    kind: str
    label: str
    server_ip: str
    port: int
    software: str
    notes: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What every session needs: the namespace, tools, scratch space, output places."""

    netns: str
    work: Path
    out_dir: Path
    labels: Path
    chroot: Path
    python: str
    seconds: float
    versions: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ns(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def spawn(self, argv: list[str], log_path: Path, **kw: Any) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                self.ns(argv), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw
            )
        with self.lock:
            self.procs.append(proc)
        return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 10) -> None:
    """Stop a process we started (its own process group: ip netns exec forks the real one)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_for(path: Path, text: str, limit: float) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        with contextlib.suppress(FileNotFoundError):
            if text in path.read_text(errors="replace"):
                return
        time.sleep(0.2)
    tail = path.read_text(errors="replace")[-800:] if path.exists() else "(no log)"
    raise RuntimeError(f"timed out waiting for {text!r} in {path}: {tail}")


def wait_port(ctx: Context, ip: str, port: int, limit: float = 20) -> None:
    """Wait until something listens on ip:port inside the namespace."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        out = subprocess.run(
            ctx.ns(["ss", "-Hltn", f"src {ip}:{port}"]), capture_output=True, text=True, check=False
        ).stdout
        if out.strip():
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {ip}:{port}")


# ---------------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------------


def make_cert(ctx: Context, name: str, cn: str, ip: str, key_type: str) -> tuple[Path, Path]:
    """A self-signed server certificate, as an operator would make for an internal service."""
    d = ctx.work / "certs"
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    algo = (
        ["-newkey", "rsa:2048"]
        if key_type == "rsa"
        else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    )
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-nodes",
            *algo,
            "-days",
            "365",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            f"/O=Minewatch recording/CN={cn}",
            "-addext",
            f"subjectAltName=DNS:{cn},IP:{ip}",
        ],
        check=True,
        capture_output=True,
    )
    cert.chmod(0o644)
    key.chmod(0o644)  # throwaway key; daemons that drop privileges must read it
    return cert, key
