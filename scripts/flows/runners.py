"""How each kind of session starts its servers and clients (real software, inside the run's
network namespace): one ``run_<kind>`` function per kind, collected in ``RUNNERS``.

Each runner returns the clients to wait on and the servers to stop afterwards.

Usage::

    clients, servers = RUNNERS[session.kind](ctx, session, session_dir)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from session import Context, Session, make_cert, stop, wait_port

__all__ = ["RUNNERS", "Procs", "Runner"]

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "sample"
# A made-up placeholder shaped like a Monero address; the pool never checks it.
WALLET = "48MinewatchFlowsWa11etNotARea1AddressDoNotUseForAnything" + "x" * 39

# ---------------------------------------------------------------------------------------------
# Session runners: each starts its servers and clients, returns the client to wait on and the
# processes to stop afterwards (servers last).
# ---------------------------------------------------------------------------------------------

Procs = list[subprocess.Popen[bytes]]
Runner = Callable[[Context, Session, Path], tuple[Procs, Procs]]


def xmrig_config(ctx: Context, s: Session, url: str, tls: bool) -> str:
    sys.path.insert(0, str(SAMPLE))
    import xmrig_config as xc  # scripts/sample, put on sys.path above

    host, port = url.rsplit(":", 1)
    conf = xc.xmrig_config(host, int(port), WALLET, 60)
    pool = conf["pools"][0]
    pool["tls"] = tls
    pool["keepalive"] = s.params["keepalive"] if s.params["keepalive"] else False
    pool["rig-id"] = s.name
    conf["print-time"] = 60
    conf["cpu"]["rx"] = [-1] * s.params.get("threads", 1)
    # xmrig's console stays silent when stdout is not a terminal; its log file does not.
    conf["log-file"] = f"/tmp/minewatch-flows-{ctx.netns}-{s.name}.log"
    rel = f"tmp/minewatch-flows-{ctx.netns}-{s.name}.json"
    (ctx.chroot / rel).write_text(json.dumps(conf, indent=2))
    return "/" + rel


def xmrig_argv(ctx: Context, conf: str) -> list[str]:
    return [
        "nice",
        "-n",
        "19",
        "chroot",
        str(ctx.chroot),
        "/usr/bin/xmrig",
        f"--config={conf}",
        "--no-color",
    ]


def pool_argv(
    ctx: Context, s: Session, ip: str, port: int, sd: Path, tls: tuple[Path, Path] | None
) -> list[str]:
    p = s.params
    argv = [
        ctx.python,
        "-u",
        str(SAMPLE / "xmr_pool.py"),
        "--host",
        ip,
        "--port",
        str(port),
        "--difficulty",
        str(p["difficulty"]),
        "--job-interval",
        str(p["job_interval"]),
        "--job-jitter",
        str(p["job_jitter"]),
        "--seed",
        s.name,
        "--stats",
        str(sd / "pool-stats.json"),
    ]
    if p.get("vardiff"):
        argv += ["--vardiff", str(p["vardiff"])]
    if tls:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    return argv


def run_xmrig_tls(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    tls = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    pool = ctx.spawn(pool_argv(ctx, s, s.server_ip, s.port, sd, tls), sd / "pool.log")
    wait_port(ctx, s.server_ip, s.port)
    conf = xmrig_config(ctx, s, f"{s.server_ip}:{s.port}", tls=True)
    miner = ctx.spawn(xmrig_argv(ctx, conf), sd / "xmrig.log")
    pools = [pool]
    if s.params.get("restart_at"):
        # A pool restart (deploy, crash) mid-session: the miner reconnects to the same server,
        # which is what "persistence across reconnects" must see through.
        def restart() -> None:
            time.sleep(s.params["restart_at"])
            stop(pools[0])
            argv = pool_argv(ctx, s, s.server_ip, s.port, sd, tls)
            argv[argv.index("--stats") + 1] = str(sd / "pool-stats-2.json")
            pools.append(ctx.spawn(argv, sd / "pool.log"))

        threading.Thread(target=restart, daemon=True).start()
    return [miner], pools


def run_xmrig_stunnel(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    inner = s.port + 1
    local_ip = s.params["local_ip"]
    local_port = s.port + 2
    pool = ctx.spawn(pool_argv(ctx, s, s.server_ip, inner, sd, None), sd / "pool.log")
    server_conf = sd / "stunnel-server.conf"
    server_conf.write_text(
        f"foreground = yes\npid =\n[pool]\naccept = {s.server_ip}:{s.port}\n"
        f"connect = {s.server_ip}:{inner}\ncert = {cert}\nkey = {key}\n"
    )
    client_conf = sd / "stunnel-client.conf"
    client_conf.write_text(
        f"foreground = yes\npid =\n[pool]\nclient = yes\naccept = {local_ip}:{local_port}\n"
        f"connect = {s.server_ip}:{s.port}\nsni = {s.params['cn']}\n"
    )
    srv = ctx.spawn(["stunnel4", str(server_conf)], sd / "stunnel-server.log")
    cli = ctx.spawn(["stunnel4", str(client_conf)], sd / "stunnel-client.log")
    wait_port(ctx, s.server_ip, inner)
    wait_port(ctx, s.server_ip, s.port)
    wait_port(ctx, local_ip, local_port)
    conf = xmrig_config(ctx, s, f"{local_ip}:{local_port}", tls=False)
    miner = ctx.spawn(xmrig_argv(ctx, conf), sd / "xmrig.log")
    return [miner], [cli, srv, pool]


def run_xmrig_tls_proxy(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    """XMRig's own TLS, terminated in front of a plain pool by stunnel4 (as pools behind a TLS
    proxy are run); with ``tls12`` the proxy offers at most TLS 1.2."""
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    inner = s.port + 1
    pool = ctx.spawn(pool_argv(ctx, s, s.server_ip, inner, sd, None), sd / "pool.log")
    server_conf = sd / "stunnel-server.conf"
    server_conf.write_text(
        f"foreground = yes\npid =\n[pool]\naccept = {s.server_ip}:{s.port}\n"
        f"connect = {s.server_ip}:{inner}\ncert = {cert}\nkey = {key}\n"
        + ("sslVersionMax = TLSv1.2\n" if s.params.get("tls12") else "")
    )
    srv = ctx.spawn(["stunnel4", str(server_conf)], sd / "stunnel-server.log")
    wait_port(ctx, s.server_ip, inner)
    wait_port(ctx, s.server_ip, s.port)
    conf = xmrig_config(ctx, s, f"{s.server_ip}:{s.port}", tls=True)
    miner = ctx.spawn(xmrig_argv(ctx, conf), sd / "xmrig.log")
    return [miner], [srv, pool]


def py_helper(ctx: Context, script: str, *args: str) -> list[str]:
    return [ctx.python, "-u", str(HERE / script), *args]


def run_https_like(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    p = s.params
    srv = ctx.spawn(
        py_helper(
            ctx,
            "https_api.py",
            "serve",
            "--host",
            s.server_ip,
            "--port",
            str(s.port),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--mode",
            p["mode"],
            *(["--tls12"] if p.get("tls12") else []),
        ),
        sd / "server.log",
    )
    wait_port(ctx, s.server_ip, s.port)
    argv = [
        "poll",
        "--host",
        s.server_ip,
        "--port",
        str(s.port),
        "--ca",
        str(cert),
        "--sni",
        p["cn"],
        "--period",
        str(p["period"]),
        "--jitter",
        str(p["jitter"]),
        "--seconds",
        str(ctx.seconds),
        "--seed",
        s.name,
        "--user-agent",
        p["agent"],
    ]
    if p["mode"] == "api":
        argv += ["--path", p["path"]]
    else:
        argv += ["--rpc", p["rpc"], "--rpc-style", p["mode"], "--auth", "Basic cnBjOnJwYw=="]
    cli = ctx.spawn(py_helper(ctx, "https_api.py", *argv), sd / "client.log")
    return [cli], [srv]


def run_prometheus(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    web = sd / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    srv = ctx.spawn(
        [
            "prometheus-node-exporter",
            f"--web.listen-address={s.server_ip}:{s.port}",
            f"--web.config.file={web}",
        ],
        sd / "server.log",
    )
    wait_port(ctx, s.server_ip, s.port)
    p = s.params
    cli = ctx.spawn(
        py_helper(
            ctx,
            "https_api.py",
            "poll",
            "--host",
            s.server_ip,
            "--port",
            str(s.port),
            "--ca",
            str(cert),
            "--sni",
            p["cn"],
            "--path",
            "/metrics",
            "--period",
            str(p["period"]),
            "--jitter",
            str(p["jitter"]),
            "--seconds",
            str(ctx.seconds),
            "--seed",
            s.name,
            "--user-agent",
            "Prometheus/2.42.0",
        ),
        sd / "client.log",
    )
    return [cli], [srv]


def run_mqtt(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    conf = sd / "mosquitto.conf"
    conf.write_text(
        f"per_listener_settings false\nallow_anonymous true\npersistence false\n"
        f"log_dest stderr\nlistener {s.port} {s.server_ip}\ncertfile {cert}\nkeyfile {key}\n"
    )
    sd.chmod(0o755)
    srv = ctx.spawn(["mosquitto", "-c", str(conf)], sd / "server.log")
    wait_port(ctx, s.server_ip, s.port)
    p = s.params
    argv = [
        "--host",
        s.server_ip,
        "--port",
        str(s.port),
        "--ca",
        str(cert),
        "--client-id",
        p["client_id"],
        "--topic",
        p["topic"],
        "--period",
        str(p["period"]),
        "--jitter",
        str(p["jitter"]),
        "--keepalive",
        str(p["keepalive"]),
        "--qos",
        str(p["qos"]),
        "--seconds",
        str(ctx.seconds),
        "--seed",
        s.name,
    ]
    if p.get("tls12"):
        argv += ["--tls12"]
    if p.get("subscribe"):
        argv += ["--subscribe", p["subscribe"]]
    cli = ctx.spawn(py_helper(ctx, "mqtt_telemetry.py", *argv), sd / "client.log")
    return [cli], [srv]


def run_ws(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    p = s.params
    srv = ctx.spawn(
        py_helper(
            ctx,
            "ws_heartbeat.py",
            "serve",
            "--host",
            s.server_ip,
            "--port",
            str(s.port),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--push-every",
            str(p["push_every"]),
            "--seed",
            s.name,
        ),
        sd / "server.log",
    )
    wait_port(ctx, s.server_ip, s.port)
    cli = ctx.spawn(
        py_helper(
            ctx,
            "ws_heartbeat.py",
            "client",
            "--host",
            s.server_ip,
            "--port",
            str(s.port),
            "--ca",
            str(cert),
            "--sni",
            p["cn"],
            "--ping",
            str(p["ping"]),
            "--send-every",
            str(p["send_every"]),
            "--seconds",
            str(ctx.seconds),
            "--seed",
            s.name,
        ),
        sd / "client.log",
    )
    return [cli], [srv]


def run_ssh(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    sd.chmod(0o755)
    hostkey = sd / "hostkey"
    userkey = sd / "userkey"
    for k, t in ((hostkey, s.params["hostkey"]), (userkey, "ed25519")):
        subprocess.run(["ssh-keygen", "-q", "-t", t, "-N", "", "-f", str(k)], check=True)
    auth = sd / "authorized_keys"
    shutil.copy(f"{userkey}.pub", auth)
    conf = sd / "sshd_config"
    conf.write_text(
        f"ListenAddress {s.server_ip}:{s.port}\nHostKey {hostkey}\nPidFile none\n"
        f"AuthorizedKeysFile {auth}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPrintMotd no\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    srv = ctx.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)], sd / "server.log")
    wait_port(ctx, s.server_ip, s.port)
    ssh = [
        "ssh",
        "-i",
        str(userkey),
        "-p",
        str(s.port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ServerAliveInterval={s.params['alive']}",
    ]
    p = s.params
    if p["mode"] == "typist":
        typist = subprocess.Popen(
            ctx.ns(
                py_helper(
                    ctx,
                    "ssh_typist.py",
                    "--seconds",
                    str(ctx.seconds),
                    "--pause",
                    str(p["pause"]),
                    "--seed",
                    s.name,
                )
            ),
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        with ctx.lock:
            ctx.procs.append(typist)
        cli = ctx.spawn(
            [*ssh, "-tt", f"root@{s.server_ip}"], sd / "client.log", stdin=typist.stdout
        )
        return [typist, cli], [srv]
    remote = p["command"]
    cli = ctx.spawn(
        ["timeout", "--signal=INT", str(int(ctx.seconds)), *ssh, f"root@{s.server_ip}", remote],
        sd / "client.log",
    )
    return [cli], [srv]


def run_postgres(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    pgdata = sd / "pgdata"
    pgdata.mkdir(mode=0o700)
    shutil.chown(pgdata, "postgres")
    sock = sd / "sock"
    sock.mkdir()
    shutil.chown(sock, "postgres")
    pkey = sd / "server.key"
    shutil.copy(key, pkey)
    shutil.chown(pkey, "postgres")
    pkey.chmod(0o600)
    pgbin = Path("/usr/lib/postgresql/15/bin")
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(pgbin / "initdb"),
            "-D",
            str(pgdata),
            "-A",
            "trust",
            "-U",
            "postgres",
        ],
        check=True,
        capture_output=True,
    )
    srv = ctx.spawn(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(pgbin / "postgres"),
            "-D",
            str(pgdata),
            "-c",
            f"listen_addresses={s.server_ip}",
            "-c",
            f"port={s.port}",
            "-c",
            "ssl=on",
            "-c",
            f"ssl_cert_file={cert}",
            "-c",
            f"ssl_key_file={pkey}",
            "-c",
            f"unix_socket_directories={sock}",
        ],
        sd / "server.log",
    )
    wait_port(ctx, s.server_ip, s.port)
    p = s.params
    cli = ctx.spawn(
        py_helper(
            ctx,
            "pg_session.py",
            "--host",
            s.server_ip,
            "--port",
            str(s.port),
            "--period",
            str(p["period"]),
            "--jitter",
            str(p["jitter"]),
            "--seconds",
            str(ctx.seconds),
            "--seed",
            s.name,
        ),
        sd / "client.log",
    )
    return [cli], [srv]


def run_redis(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    srv = ctx.spawn(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(s.port),
            "--bind",
            s.server_ip,
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(cert),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(sd),
        ],
        sd / "server.log",
    )
    wait_port(ctx, s.server_ip, s.port)
    p = s.params
    cli = ctx.spawn(
        py_helper(
            ctx,
            "redis_worker.py",
            "--host",
            s.server_ip,
            "--port",
            str(s.port),
            "--ca",
            str(cert),
            "--block",
            str(p["block"]),
            "--jitter",
            str(p["jitter"]),
            "--seconds",
            str(ctx.seconds),
            "--seed",
            s.name,
        ),
        sd / "client.log",
    )
    return [cli], [srv]


def run_sensor_stunnel(ctx: Context, s: Session, sd: Path) -> tuple[Procs, Procs]:
    cert, key = make_cert(ctx, s.name, s.params["cn"], s.server_ip, s.params["key_type"])
    inner, local_ip, local_port = s.port + 1, s.params["local_ip"], s.port + 2
    p = s.params
    srv_app = ctx.spawn(
        [
            ctx.python,
            "-u",
            str(SAMPLE / "sensor_rpc.py"),
            "serve",
            "--host",
            s.server_ip,
            "--port",
            str(inner),
            "--push-interval",
            str(p["push_interval"]),
        ],
        sd / "server.log",
    )
    server_conf = sd / "stunnel-server.conf"
    server_conf.write_text(
        f"foreground = yes\npid =\n[sensor]\naccept = {s.server_ip}:{s.port}\n"
        f"connect = {s.server_ip}:{inner}\ncert = {cert}\nkey = {key}\n"
    )
    client_conf = sd / "stunnel-client.conf"
    client_conf.write_text(
        f"foreground = yes\npid =\n[sensor]\nclient = yes\naccept = {local_ip}:{local_port}\n"
        f"connect = {s.server_ip}:{s.port}\nsni = {p['cn']}\n"
    )
    srv = ctx.spawn(["stunnel4", str(server_conf)], sd / "stunnel-server.log")
    cli_tunnel = ctx.spawn(["stunnel4", str(client_conf)], sd / "stunnel-client.log")
    wait_port(ctx, s.server_ip, inner)
    wait_port(ctx, s.server_ip, s.port)
    wait_port(ctx, local_ip, local_port)
    cli = ctx.spawn(
        [
            ctx.python,
            "-u",
            str(SAMPLE / "sensor_rpc.py"),
            "poll",
            "--host",
            local_ip,
            "--port",
            str(local_port),
            "--seconds",
            str(ctx.seconds),
            "--interval",
            str(p["interval"]),
        ],
        sd / "client.log",
    )
    return [cli], [cli_tunnel, srv, srv_app]


RUNNERS: dict[str, Runner] = {
    "xmrig-tls": run_xmrig_tls,
    "xmrig-stunnel": run_xmrig_stunnel,
    "xmrig-tls-proxy": run_xmrig_tls_proxy,
    "https-poll": run_https_like,
    "jsonrpc-node-poll": run_https_like,
    "prometheus-scrape": run_prometheus,
    "mqtt-tls": run_mqtt,
    "websocket": run_ws,
    "ssh-interactive": run_ssh,
    "ssh-top": run_ssh,
    "postgres-tls": run_postgres,
    "redis-tls-worker": run_redis,
    "sensor-rpc-stunnel": run_sensor_stunnel,
}
