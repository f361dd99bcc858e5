"""Real servers on loopback for the probe tests: the CryptoNote pool from scripts/sample, npm's
``stratum`` pool library, OpenSSH, Mosquitto, Python's HTTPS server; plus small servers in
``servers.py`` for what no real software does on purpose (silence, garbage, 10 MB floods) and a
SYNTHETIC Stratum V2 Noise responder (no SV2 pool software is installable here)."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.probe.servers import ServerThread, make_certificate, server_tls, tls_proxy

REPO = Path(__file__).resolve().parents[3]
XMR_POOL = REPO / "scripts" / "sample" / "xmr_pool.py"
STRATUM_VERSION = "0.2.4"
_STRATUM_POOL_JS = """
const stratum = require('stratum');
const server = stratum.Server.$create({settings: {host: '127.0.0.1', port: 0, toobusy: 1000}});
server.on('mining', function (req, deferred) {
  if (req.method === 'subscribe') {
    deferred.resolve(['b4b6693b72a50c7116db18d6497cac52', 'ae6812eb4cd7735a302a8a9dd95cf71f',
                      '08000002', 4]);
  } else if (req.method === 'authorize') {
    deferred.resolve([true]);
  } else {
    deferred.reject(stratum.Server.errors.METHOD_NOT_FOUND);
  }
});
server.listen().then(function () {
  console.log(server.server.address().port);
});
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _first_line(proc: subprocess.Popen[str], what: str, limit_s: float = 30) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + limit_s
    line = ""
    while time.monotonic() < deadline and not line:
        line = proc.stdout.readline().strip()
        if proc.poll() is not None and not line:
            break
    if not line:
        proc.kill()
        pytest.fail(f"{what} did not start")
    return line


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def servers() -> Iterator[ServerThread]:
    thread = ServerThread()
    yield thread
    thread.close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="session")
def xmr_pool() -> Iterator[int]:
    """scripts/sample/xmr_pool.py, the CryptoNote stratum pool XMRig mines against."""
    proc = subprocess.Popen(
        [sys.executable, str(XMR_POOL), "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    port = int(_first_line(proc, "xmr_pool.py"))
    yield port
    _stop(proc)


@pytest.fixture(scope="session")
def xmr_tls_pool(
    certificate: tuple[Path, Path], xmr_pool: int, servers: ServerThread
) -> Iterator[int]:
    """The CryptoNote pool on a TLS port: its own ``--tls-cert`` where it has one, else behind a
    TLS-terminating relay (as stunnel fronts a pool)."""
    if "--tls-cert" not in XMR_POOL.read_text():
        yield servers.serve(tls_proxy(xmr_pool), tls=server_tls(*certificate)).port
        return
    cert, key = certificate
    proc = subprocess.Popen(
        [
            sys.executable,
            str(XMR_POOL),
            "--port",
            "0",
            "--quiet",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    port = int(_first_line(proc, "xmr_pool.py --tls-cert"))
    yield port
    _stop(proc)


@pytest.fixture(scope="session")
def stratum_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Stratum v1 pool built on npm's ``stratum`` library (installed into a temp dir)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed: cannot run npm's stratum pool library")
    work = tmp_path_factory.mktemp("stratum")
    install = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"stratum@{STRATUM_VERSION}"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if install.returncode != 0:
        pytest.skip(
            f"npm could not install stratum (registry unreachable?): {install.stderr[-300:]}"
        )
    script = work / "pool.js"
    script.write_text(_STRATUM_POOL_JS)
    proc = subprocess.Popen(
        [node, str(script)], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    port = int(_first_line(proc, "the stratum pool"))
    yield port
    _stop(proc)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """OpenSSH's sshd on loopback with a throwaway host key."""
    binary = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    keygen = shutil.which("ssh-keygen")
    if not binary or not keygen:
        pytest.skip("OpenSSH server not installed (Debian package openssh-server)")
    work = tmp_path_factory.mktemp("sshd")
    key = work / "host_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    if Path("/run").is_dir():  # sshd insists on its privilege-separation directory
        Path("/run/sshd").mkdir(exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "-D",
            "-e",
            "-f",
            "/dev/null",
            "-h",
            str(key),
            "-p",
            str(port),
            "-o",
            "ListenAddress=127.0.0.1",
            "-o",
            "UsePAM=no",
            "-o",
            "PidFile=none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_listening(port, proc, "sshd")
    yield port
    _stop(proc)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The Mosquitto MQTT broker on loopback."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if not binary:
        pytest.skip("MQTT broker not installed (Debian package mosquitto)")
    port = free_port()
    conf = tmp_path_factory.mktemp("mqtt") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _wait_listening(port, proc, "mosquitto")
    yield port
    _stop(proc)


@pytest.fixture(scope="session")
def https_server(
    certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """Python's http.server behind TLS, serving a small directory."""
    root = tmp_path_factory.mktemp("www")
    (root / "index.html").write_text("<p>status: ok</p>\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    httpd.socket = server_tls(*certificate).wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def _wait_listening(port: int, proc: subprocess.Popen[str], what: str) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"{what} exited: {err[-300:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"{what} did not listen on {port}")
