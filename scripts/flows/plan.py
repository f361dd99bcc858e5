"""Which sessions a batch records, with parameters drawn from a generator seeded by the batch
number, so a batch can be re-recorded with the same addresses, ports and rhythms.

Usage::

    sessions = plan(2, "all", versions)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from session import Session

__all__ = ["plan"]

# ---------------------------------------------------------------------------------------------
# Plan: which sessions a batch records, with parameters drawn from a seeded generator
# ---------------------------------------------------------------------------------------------


def plan(batch: int, only: str, versions: dict[str, str]) -> list[Session]:
    rng = random.Random(f"minewatch-flows/{batch}/{only}")
    sessions: list[Session] = []
    used_ports: set[int] = set()

    def port() -> int:
        while True:
            p = rng.randrange(20000, 60000, 3)
            if p not in used_ports and p + 1 not in used_ports and p + 2 not in used_ports:
                used_ports.update({p, p + 1, p + 2})
                return p

    def add(kind: str, label: str, net: int, software: str, notes: str, **params: Any) -> None:
        i = sum(1 for s in sessions if s.kind == kind) + 1
        host = batch * 20 + sum(1 for s in sessions if s.server_ip.split(".")[2] == str(net)) + 1
        name = f"b{batch}-{kind}-{i}"
        params.setdefault("key_type", rng.choice(["rsa", "ec"]))
        sessions.append(
            Session(name, kind, label, f"127.0.{net}.{host}", port(), software, notes, params)
        )

    if batch >= 5:
        plan_five(only, versions, rng, add)
        return sessions
    if batch == 4:
        plan_four(only, versions, rng, add)
        return sessions
    if batch == 3:
        plan_vardiff(only, versions, rng, add)
        return sessions
    if batch == 2:
        plan_more(only, versions, rng, add)
        return sessions
    xmrig = versions["xmrig"]
    py = versions["python"]
    if only in ("mining", "all"):
        n_tls, n_stunnel = 4, 2
        for _ in range(n_tls):
            d = rng.choice([100, 150, 250, 400, 600])
            ji = rng.choice([10, 15, 20, 30, 45, 60])
            jj = rng.choice([0.0, 0.2, 0.4, 0.6])
            ka = rng.choice([0, 0, 20, 30, 60])
            cn = rng.choice(["pool.minewatch.test", "xmr-eu.minewatch.test", "stratum.internal"])
            add(
                "xmrig-tls",
                "mining",
                10,
                f"{xmrig}; pool xmr_pool.py (Python {py} ssl)",
                f"difficulty={d}; job_interval={ji}s jitter={jj}; keepalive={ka or 'off'}; "
                "1 thread light mode nice 19",
                difficulty=d,
                job_interval=ji,
                job_jitter=jj,
                keepalive=ka,
                cn=cn,
            )
        for _ in range(n_stunnel):
            d = rng.choice([100, 200, 400, 600])
            ji = rng.choice([15, 30, 45, 60])
            jj = rng.choice([0.2, 0.5])
            ka = rng.choice([0, 30])
            add(
                "xmrig-stunnel",
                "mining",
                11,
                f"{xmrig} -> {versions['stunnel']} TLS -> xmr_pool.py",
                f"TLS leg between two stunnel4; difficulty={d}; job_interval={ji}s jitter={jj}; "
                f"keepalive={ka or 'off'}",
                difficulty=d,
                job_interval=ji,
                job_jitter=jj,
                keepalive=ka,
                cn="pool.minewatch.test",
                local_ip=f"127.0.12.{batch * 20 + 1}",
            )
    if only in ("benign", "all"):
        for _ in range(2):
            period = rng.choice([1, 2, 5, 10, 15, 30])
            qos = rng.choice([0, 1])
            add(
                "mqtt-tls",
                "benign",
                20,
                f"{versions['mosquitto']}; paho-mqtt {versions['paho']}",
                f"publish every {period}s (+-5%); keepalive 60s; qos {qos}",
                period=period,
                jitter=0.05,
                keepalive=60,
                qos=qos,
                client_id=f"pdu-{rng.randrange(100)}",
                topic=f"dc/hall{rng.randrange(1, 4)}/rack{rng.randrange(1, 40)}/pdu",
                subscribe=rng.choice(["", "dc/cmd/#"]),
                cn="mqtt.minewatch.test",
            )
        add(
            "ssh-interactive",
            "benign",
            21,
            versions["openssh"],
            "ssh -tt; typed commands, mean pause 8s; ServerAliveInterval 30",
            mode="typist",
            pause=8,
            alive=30,
            hostkey="ed25519",
        )
        add(
            "ssh-top",
            "benign",
            21,
            versions["openssh"],
            "ssh running 'top -b -d 3' (screen every 3s)",
            mode="command",
            command="top -b -d 3 -w 120",
            alive=0,
            hostkey=rng.choice(["rsa", "ecdsa"]),
        )
        add(
            "ssh-top",
            "benign",
            21,
            versions["openssh"],
            "ssh running 'vmstat 5' (line every 5s)",
            mode="command",
            command="vmstat 5",
            alive=15,
            hostkey="ed25519",
        )
        for _ in range(2):
            period = rng.choice([2, 5, 10, 20, 30])
            add(
                "https-poll",
                "benign",
                22,
                f"Python {py} http.server+ssl; http.client",
                f"GET JSON every {period}s (+-10%) on one keep-alive connection",
                mode="api",
                period=period,
                jitter=0.1,
                path="/api/v1/status,/api/v1/queue,/healthz",
                agent=rng.choice(["python-requests/2.31.0", "curl/7.88.1", "Go-http-client/1.1"]),
                cn="api.minewatch.test",
            )
        for mode, rpc, cn in (
            (
                "bitcoind",
                "getblockcount,getbestblockhash,getmempoolinfo,getblockchaininfo",
                "btc-node.minewatch.test",
            ),
            (
                "geth",
                "eth_blockNumber,eth_syncing,net_peerCount,eth_gasPrice",
                "eth-node.minewatch.test",
            ),
            (
                "monerod",
                "get_info,get_block_count,get_last_block_header",
                "xmr-node.minewatch.test",
            ),
        ):
            period = rng.choice([2, 4, 6, 10, 15])
            add(
                "jsonrpc-node-poll",
                "benign",
                23,
                f"Python {py} http.server+ssl (node stand-in: no node software here); http.client",
                f"{mode}-style JSON-RPC {rpc.split(',')[0]}... every {period}s (+-10%); "
                "server is a stand-in answering like the node",
                mode=mode,
                rpc=rpc,
                period=period,
                jitter=0.1,
                agent="python-http.client",
                cn=cn,
            )
        for _ in range(1):
            period = rng.choice([5, 10, 15])
            add(
                "prometheus-scrape",
                "benign",
                24,
                f"{versions['node_exporter']}; scraper Python {py} http.client",
                f"scrape /metrics every {period}s (+-2%) on a kept-alive connection",
                period=period,
                jitter=0.02,
                cn="node1.minewatch.test",
            )
        for _ in range(2):
            ping = rng.choice([10, 20, 30])
            add(
                "websocket",
                "benign",
                25,
                f"websockets {versions['websockets']} (both ends)",
                f"client ping every {ping}s; client message mean 60s; server event mean 45s",
                ping=ping,
                send_every=60,
                push_every=45,
                cn="ws.minewatch.test",
            )
        period = rng.choice([1, 3, 5, 10])
        add(
            "postgres-tls",
            "benign",
            26,
            f"{versions['postgres']}; psycopg {versions['psycopg']}",
            f"sslmode=require; small query every {period}s (+-30%)",
            period=period,
            jitter=0.3,
            cn="db.minewatch.test",
        )
    return sessions


def plan_more(
    only: str, versions: dict[str, str], rng: random.Random, add: Callable[..., None]
) -> None:
    """Batches after the first: easier shares (the first batch measured ~5 H/s per miner with six
    in parallel), pool restarts, and more kinds of hard negatives."""
    xmrig = versions["xmrig"]
    py = versions["python"]
    if only in ("mining", "all"):
        for i in range(4):
            d = rng.choice([25, 40, 60, 100, 150, 250])
            ji = rng.choice([10, 20, 30, 45, 60])
            jj = rng.choice([0.2, 0.4, 0.6, 0.8])
            ka = rng.choice([0, 20, 30, 60])
            restart = rng.choice([150, 200, 250]) if i == 0 else 0
            cn = rng.choice(["pool.minewatch.test", "xmr-eu.minewatch.test", "stratum.internal"])
            add(
                "xmrig-tls",
                "mining",
                10,
                f"{xmrig}; pool xmr_pool.py (Python {py} ssl)",
                f"difficulty={d}; job_interval={ji}s jitter={jj}; keepalive={ka or 'off'}; "
                + (f"pool restarted at {restart}s, miner reconnects; " if restart else "")
                + "1 thread light mode nice 19",
                difficulty=d,
                job_interval=ji,
                job_jitter=jj,
                keepalive=ka,
                cn=cn,
                restart_at=restart,
            )
        for _ in range(2):
            d = rng.choice([25, 50, 100, 200])
            ji = rng.choice([10, 20, 30, 60])
            jj = rng.choice([0.3, 0.6])
            ka = rng.choice([0, 30, 60])
            add(
                "xmrig-stunnel",
                "mining",
                11,
                f"{xmrig} -> {versions['stunnel']} TLS -> xmr_pool.py",
                f"TLS leg between two stunnel4; difficulty={d}; job_interval={ji}s jitter={jj}; "
                f"keepalive={ka or 'off'}",
                difficulty=d,
                job_interval=ji,
                job_jitter=jj,
                keepalive=ka,
                cn="pool.minewatch.test",
                local_ip="127.0.12.99",
            )
    if only not in ("benign", "all"):
        return
    for _ in range(2):
        interval = rng.choice([2, 5, 10, 20, 30])
        push = rng.choice([15, 30, 45, 60])
        add(
            "sensor-rpc-stunnel",
            "benign",
            28,
            f"{versions['stunnel']} (both ends); sensor_rpc.py (Python {py})",
            f"line-delimited JSON-RPC look-alike of stratum (scripts/sample/sensor_rpc.py) through "
            f"the same stunnel TLS as the xmrig-stunnel sessions; read every {interval}s, server "
            f"push every {push}s",
            interval=interval,
            push_interval=push,
            cn="sensors.minewatch.test",
            local_ip="127.0.12.98",
        )
    for _ in range(2):
        block = rng.choice([5, 10, 20, 30])
        add(
            "redis-tls-worker",
            "benign",
            27,
            f"{versions['redis']}; redis-py {versions['redis_py']}",
            f"queue worker: BLPOP timeout {block}s then heartbeat SET+INCR, one TLS connection",
            block=block,
            jitter=rng.choice([0.0, 0.5]),
            cn="redis.minewatch.test",
        )
    for _ in range(2):
        period = rng.choice([1, 3, 20, 60])
        add(
            "mqtt-tls",
            "benign",
            20,
            f"{versions['mosquitto']}; paho-mqtt {versions['paho']}",
            f"publish every {period}s (+-5%); keepalive 60s; qos 1",
            period=period,
            jitter=0.05,
            keepalive=60,
            qos=1,
            client_id=f"bms-{rng.randrange(100)}",
            topic=f"bms/floor{rng.randrange(1, 6)}/ahu{rng.randrange(1, 9)}",
            subscribe="bms/cmd/#",
            cn="mqtt.minewatch.test",
        )
    pause = rng.choice([4, 15])
    add(
        "ssh-interactive",
        "benign",
        21,
        versions["openssh"],
        f"ssh -tt; typed commands, mean pause {pause}s; no ServerAlive",
        mode="typist",
        pause=pause,
        alive=0,
        hostkey="rsa",
    )
    add(
        "ssh-top",
        "benign",
        21,
        versions["openssh"],
        "ssh running 'top -b -d 10'",
        mode="command",
        command="top -b -d 10 -w 100",
        alive=60,
        hostkey="ecdsa",
    )
    period = rng.choice([10, 15, 30, 60])
    add(
        "https-poll",
        "benign",
        22,
        f"Python {py} http.server+ssl; http.client",
        f"GET JSON every {period}s (+-10%) on one keep-alive connection",
        mode="api",
        period=period,
        jitter=0.1,
        path="/api/v1/status,/healthz",
        agent="kube-probe/1.29",
        cn="api.minewatch.test",
    )
    for mode, rpc, cn in (
        ("monerod", "get_info,get_block_count", "xmr-node.minewatch.test"),
        ("geth", "eth_blockNumber,eth_getBlockByNumber", "eth-node.minewatch.test"),
    ):
        period = rng.choice([2, 5, 12, 15])
        add(
            "jsonrpc-node-poll",
            "benign",
            23,
            f"Python {py} http.server+ssl (node stand-in: no node software here); http.client",
            f"{mode}-style JSON-RPC {rpc.split(',')[0]}... every {period}s (+-10%); "
            "server is a stand-in answering like the node",
            mode=mode,
            rpc=rpc,
            period=period,
            jitter=0.1,
            agent="python-http.client",
            cn=cn,
        )
    period = rng.choice([10, 15, 30])
    add(
        "prometheus-scrape",
        "benign",
        24,
        f"{versions['node_exporter']}; scraper Python {py} http.client",
        f"scrape /metrics every {period}s (+-2%) on a kept-alive connection",
        period=period,
        jitter=0.02,
        cn="node2.minewatch.test",
    )
    ping = rng.choice([15, 25, 30])
    add(
        "websocket",
        "benign",
        25,
        f"websockets {versions['websockets']} (both ends)",
        f"client ping every {ping}s; no client messages; server event mean 20s",
        ping=ping,
        send_every=0,
        push_every=20,
        cn="ws.minewatch.test",
    )
    period = rng.choice([1, 2, 10])
    add(
        "postgres-tls",
        "benign",
        26,
        f"{versions['postgres']}; psycopg {versions['psycopg']}",
        f"sslmode=require; small query every {period}s (+-30%)",
        period=period,
        jitter=0.3,
        cn="db.minewatch.test",
    )


def plan_vardiff(
    only: str, versions: dict[str, str], rng: random.Random, add: Callable[..., None]
) -> None:
    """Batches 3 and later: the pool retargets difficulty (vardiff) as real pools do, from a
    start difficulty that may be far off; benign kinds with other rhythms than batches 1-2."""
    xmrig = versions["xmrig"]
    py = versions["python"]
    if only in ("mining", "all"):
        for i in range(4):
            vd = rng.choice([10, 15, 20, 30, 45])
            d0 = rng.choice([30, 100, 300, 1000])
            ji = rng.choice([15, 25, 40, 60, 90])
            jj = rng.choice([0.3, 0.5, 0.8])
            ka = rng.choice([0, 30, 60])
            restart = rng.choice([120, 240]) if i == 1 else 0
            cn = rng.choice(["pool.minewatch.test", "xmr-us.minewatch.test", "gulf.internal"])
            add(
                "xmrig-tls",
                "mining",
                10,
                f"{xmrig}; pool xmr_pool.py (Python {py} ssl)",
                f"vardiff target {vd}s from difficulty {d0}; job_interval={ji}s jitter={jj}; "
                f"keepalive={ka or 'off'}; "
                + (f"pool restarted at {restart}s, miner reconnects; " if restart else "")
                + "1 thread light mode nice 19",
                difficulty=d0,
                vardiff=vd,
                job_interval=ji,
                job_jitter=jj,
                keepalive=ka,
                cn=cn,
                restart_at=restart,
            )
        for _ in range(2):
            vd = rng.choice([15, 30, 60])
            d0 = rng.choice([50, 500])
            ji = rng.choice([20, 40, 60])
            jj = rng.choice([0.4, 0.8])
            ka = rng.choice([0, 60])
            add(
                "xmrig-stunnel",
                "mining",
                11,
                f"{xmrig} -> {versions['stunnel']} TLS -> xmr_pool.py",
                f"TLS leg between two stunnel4; vardiff target {vd}s from difficulty {d0}; "
                f"job_interval={ji}s jitter={jj}; keepalive={ka or 'off'}",
                difficulty=d0,
                vardiff=vd,
                job_interval=ji,
                job_jitter=jj,
                keepalive=ka,
                cn="stratum.minewatch.test",
                local_ip="127.0.12.97",
            )
    if only not in ("benign", "all"):
        return
    for period in rng.sample([3, 5, 10, 20], 2):
        add(
            "mqtt-tls",
            "benign",
            20,
            f"{versions['mosquitto']}; paho-mqtt {versions['paho']}",
            f"publish every {period}s (+-5%); keepalive 30s; qos 1",
            period=period,
            jitter=0.05,
            keepalive=30,
            qos=1,
            client_id=f"meter-{rng.randrange(100)}",
            topic=f"energy/meter{rng.randrange(1, 99)}",
            subscribe="",
            cn="mqtt.minewatch.test",
        )
    add(
        "ssh-interactive",
        "benign",
        21,
        versions["openssh"],
        "ssh -tt; typed commands, mean pause 30s; ServerAliveInterval 15",
        mode="typist",
        pause=30,
        alive=15,
        hostkey="ed25519",
    )
    for period in rng.sample([5, 20, 60], 2):
        add(
            "https-poll",
            "benign",
            22,
            f"Python {py} http.server+ssl; http.client",
            f"GET JSON every {period}s (+-10%) on one keep-alive connection",
            mode="api",
            period=period,
            jitter=0.1,
            path="/api/v1/queue,/api/v1/status",
            agent=rng.choice(["okhttp/4.12.0", "axios/1.6.8"]),
            cn="status.minewatch.test",
        )
    for mode, rpc, cn, period in (
        ("bitcoind", "getblockcount,getblockchaininfo", "btc-node.minewatch.test", 30),
        ("geth", "eth_blockNumber,net_peerCount", "eth-node.minewatch.test", 3),
        ("monerod", "get_info,get_last_block_header", "xmr-node.minewatch.test", 20),
    ):
        add(
            "jsonrpc-node-poll",
            "benign",
            23,
            f"Python {py} http.server+ssl (node stand-in: no node software here); http.client",
            f"{mode}-style JSON-RPC {rpc.split(',')[0]}... every {period}s (+-10%); "
            "server is a stand-in answering like the node",
            mode=mode,
            rpc=rpc,
            period=period,
            jitter=0.1,
            agent="python-http.client",
            cn=cn,
        )
    for ping in rng.sample([10, 20, 30, 45], 2):
        add(
            "websocket",
            "benign",
            25,
            f"websockets {versions['websockets']} (both ends)",
            f"client ping every {ping}s; client message mean 30s; server event mean 90s",
            ping=ping,
            send_every=30,
            push_every=90,
            cn="feed.minewatch.test",
        )
    add(
        "postgres-tls",
        "benign",
        26,
        f"{versions['postgres']}; psycopg {versions['psycopg']}",
        "sslmode=require; small query every 15s (+-30%)",
        period=15,
        jitter=0.3,
        cn="db.minewatch.test",
    )
    add(
        "redis-tls-worker",
        "benign",
        27,
        f"{versions['redis']}; redis-py {versions['redis_py']}",
        "queue worker: BLPOP timeout 15s then heartbeat SET+INCR, one TLS connection",
        block=15,
        jitter=0.0,
        cn="redis.minewatch.test",
    )
    for interval, push in ((5, 30), (15, 60)):
        add(
            "sensor-rpc-stunnel",
            "benign",
            28,
            f"{versions['stunnel']} (both ends); sensor_rpc.py (Python {py})",
            f"line-delimited JSON-RPC look-alike of stratum (scripts/sample/sensor_rpc.py) through "
            f"the same stunnel TLS as the xmrig-stunnel sessions; read every {interval}s, server "
            f"push every {push}s",
            interval=interval,
            push_interval=push,
            cn="sensors.minewatch.test",
            local_ip="127.0.12.96",
        )
    add(
        "prometheus-scrape",
        "benign",
        24,
        f"{versions['node_exporter']}; scraper Python {py} http.client",
        "scrape /metrics every 30s (+-2%) on a kept-alive connection",
        period=30,
        jitter=0.02,
        cn="node3.minewatch.test",
    )


def plan_four(
    only: str, versions: dict[str, str], rng: random.Random, add: Callable[..., None]
) -> None:
    """Batches 4 and later: the edges of the rhythms -- fast and slow vardiff, a two-thread
    miner, long job intervals; benign clients at very short and very long periods."""
    xmrig = versions["xmrig"]
    py = versions["python"]
    if only in ("mining", "all"):
        for i, vd in enumerate(rng.sample([5, 8, 12, 25, 40, 60], 4)):
            d0 = rng.choice([20, 80, 400])
            ji = 120 if i == 0 else rng.choice([20, 30, 45])
            jj = rng.choice([0.2, 0.5, 0.9])
            ka = rng.choice([0, 15, 45])
            threads = 2 if i == 1 else 1
            add(
                "xmrig-tls",
                "mining",
                10,
                f"{xmrig}; pool xmr_pool.py (Python {py} ssl)",
                f"vardiff target {vd}s from difficulty {d0}; job_interval={ji}s jitter={jj}; "
                f"keepalive={ka or 'off'}; {threads} thread(s) light mode nice 19",
                difficulty=d0,
                vardiff=vd,
                job_interval=ji,
                job_jitter=jj,
                keepalive=ka,
                threads=threads,
                cn=rng.choice(["pool.minewatch.test", "mine.example.internal"]),
            )
        for _ in range(2):
            d = rng.choice([30, 60, 120])
            ji = rng.choice([25, 50])
            add(
                "xmrig-stunnel",
                "mining",
                11,
                f"{xmrig} -> {versions['stunnel']} TLS -> xmr_pool.py",
                f"TLS leg between two stunnel4; difficulty={d}; job_interval={ji}s jitter=0.5; "
                "keepalive=30",
                difficulty=d,
                job_interval=ji,
                job_jitter=0.5,
                keepalive=30,
                cn="pool.minewatch.test",
                local_ip="127.0.12.95",
            )
    if only not in ("benign", "all"):
        return
    for period, qos in ((60, 0), (0.5, 0)):
        add(
            "mqtt-tls",
            "benign",
            20,
            f"{versions['mosquitto']}; paho-mqtt {versions['paho']}",
            f"publish every {period}s (+-5%); keepalive 60s; qos {qos}",
            period=period,
            jitter=0.05,
            keepalive=60,
            qos=qos,
            client_id=f"gw-{rng.randrange(100)}",
            topic=f"site/{rng.randrange(1, 9)}/telemetry",
            subscribe="site/cmd",
            cn="mqtt.minewatch.test",
        )
    add(
        "ssh-interactive",
        "benign",
        21,
        versions["openssh"],
        "ssh -tt; typed commands, mean pause 3s; ServerAliveInterval 60",
        mode="typist",
        pause=3,
        alive=60,
        hostkey="ecdsa",
    )
    add(
        "ssh-top",
        "benign",
        21,
        versions["openssh"],
        "ssh running a watch-like loop: 'date; uptime' every 7s",
        mode="command",
        command="while sleep 7; do date; uptime; done",
        alive=30,
        hostkey="ed25519",
    )
    for period in (1, 45):
        add(
            "https-poll",
            "benign",
            22,
            f"Python {py} http.server+ssl; http.client",
            f"GET JSON every {period}s (+-10%) on one keep-alive connection",
            mode="api",
            period=period,
            jitter=0.1,
            path="/api/v1/status",
            agent="Go-http-client/1.1",
            cn="api2.minewatch.test",
        )
    for mode, rpc, cn, period in (
        ("bitcoind", "getblockcount,getmempoolinfo", "btc-node.minewatch.test", 10),
        ("geth", "eth_blockNumber", "eth-node.minewatch.test", 12),
        ("monerod", "get_info", "xmr-node.minewatch.test", 60),
    ):
        add(
            "jsonrpc-node-poll",
            "benign",
            23,
            f"Python {py} http.server+ssl (node stand-in: no node software here); http.client",
            f"{mode}-style JSON-RPC {rpc.split(',')[0]}... every {period}s (+-10%); "
            "server is a stand-in answering like the node",
            mode=mode,
            rpc=rpc,
            period=period,
            jitter=0.1,
            agent="python-http.client",
            cn=cn,
        )
    add(
        "websocket",
        "benign",
        25,
        f"websockets {versions['websockets']} (both ends)",
        "client ping every 60s; no client messages; server event mean 10s",
        ping=60,
        send_every=0,
        push_every=10,
        cn="feed.minewatch.test",
    )
    for period in (0.5, 60):
        add(
            "postgres-tls",
            "benign",
            26,
            f"{versions['postgres']}; psycopg {versions['psycopg']}",
            f"sslmode=require; small query every {period}s (+-30%)",
            period=period,
            jitter=0.3,
            cn="db.minewatch.test",
        )
    for block in (5, 60):
        add(
            "redis-tls-worker",
            "benign",
            27,
            f"{versions['redis']}; redis-py {versions['redis_py']}",
            f"queue worker: BLPOP timeout {block}s then heartbeat SET+INCR, one TLS connection",
            block=block,
            jitter=0.0,
            cn="redis.minewatch.test",
        )
    for interval, push in ((2, 20), (30, 10)):
        add(
            "sensor-rpc-stunnel",
            "benign",
            28,
            f"{versions['stunnel']} (both ends); sensor_rpc.py (Python {py})",
            f"line-delimited JSON-RPC look-alike of stratum (scripts/sample/sensor_rpc.py) through "
            f"the same stunnel TLS as the xmrig-stunnel sessions; read every {interval}s, server "
            f"push every {push}s",
            interval=interval,
            push_interval=push,
            cn="sensors.minewatch.test",
            local_ip="127.0.12.94",
        )
    add(
        "prometheus-scrape",
        "benign",
        24,
        f"{versions['node_exporter']}; scraper Python {py} http.client",
        "scrape /metrics every 15s (+-2%) on a kept-alive connection",
        period=15,
        jitter=0.02,
        cn="node4.minewatch.test",
    )


def plan_five(
    only: str, versions: dict[str, str], rng: random.Random, add: Callable[..., None]
) -> None:
    """Batches 5 and later: XMRig's own TLS terminated by a stunnel4 proxy in front of the pool
    (server side OpenSSL 3.0, half of them TLS 1.2 only), and TLS 1.2 benign servers."""
    xmrig = versions["xmrig"]
    py = versions["python"]
    if only in ("mining", "all"):
        for i in range(4):
            tls12 = i % 2 == 0
            version = "TLS 1.2 max" if tls12 else "TLS 1.3"
            vd = rng.choice([8, 15, 30, 45])
            d0 = rng.choice([40, 150, 600])
            ji = rng.choice([15, 30, 60, 90])
            jj = rng.choice([0.3, 0.6, 0.9])
            ka = rng.choice([0, 20, 60])
            add(
                "xmrig-tls-proxy",
                "mining",
                13,
                f"{xmrig} TLS -> {versions['stunnel']} -> xmr_pool.py",
                f"xmrig tls:true to a stunnel4 TLS front of the pool ({version}); "
                f"vardiff target {vd}s from difficulty {d0}; job_interval={ji}s jitter={jj}; "
                f"keepalive={ka or 'off'}",
                difficulty=d0,
                vardiff=vd,
                job_interval=ji,
                job_jitter=jj,
                keepalive=ka,
                tls12=tls12,
                cn="pool.minewatch.test",
            )
        for _ in range(2):
            vd = rng.choice([10, 20, 40])
            ji = rng.choice([20, 40])
            add(
                "xmrig-tls",
                "mining",
                10,
                f"{xmrig}; pool xmr_pool.py (Python {py} ssl)",
                f"vardiff target {vd}s from difficulty 200; job_interval={ji}s jitter=0.7; "
                "keepalive=30; 1 thread light mode nice 19",
                difficulty=200,
                vardiff=vd,
                job_interval=ji,
                job_jitter=0.7,
                keepalive=30,
                cn="pool.minewatch.test",
            )
    if only not in ("benign", "all"):
        return
    for period in (4, 25):
        add(
            "mqtt-tls",
            "benign",
            20,
            f"{versions['mosquitto']}; paho-mqtt {versions['paho']}",
            f"client offers TLS 1.2 at most; publish every {period}s (+-5%); keepalive 60s; qos 1",
            period=period,
            jitter=0.05,
            keepalive=60,
            qos=1,
            tls12=True,
            client_id=f"plc-{rng.randrange(100)}",
            topic=f"plant/line{rng.randrange(1, 9)}",
            subscribe="",
            cn="mqtt.minewatch.test",
        )
    for mode, rpc, cn, period in (
        ("monerod", "get_info,get_block_count", "xmr-node.minewatch.test", 8),
        ("bitcoind", "getblockcount", "btc-node.minewatch.test", 20),
    ):
        add(
            "jsonrpc-node-poll",
            "benign",
            23,
            f"Python {py} http.server+ssl (node stand-in: no node software here); http.client",
            f"server offers TLS 1.2 only; {mode}-style JSON-RPC {rpc.split(',')[0]}... every "
            f"{period}s (+-10%); server is a stand-in answering like the node",
            mode=mode,
            rpc=rpc,
            period=period,
            jitter=0.1,
            agent="python-http.client",
            cn=cn,
            tls12=True,
        )
    add(
        "https-poll",
        "benign",
        22,
        f"Python {py} http.server+ssl; http.client",
        "server offers TLS 1.2 only; GET JSON every 10s (+-10%) on one keep-alive connection",
        mode="api",
        period=10,
        jitter=0.1,
        path="/api/v1/status",
        agent="curl/7.88.1",
        cn="api3.minewatch.test",
        tls12=True,
    )
    for ping in (15, 40):
        add(
            "websocket",
            "benign",
            25,
            f"websockets {versions['websockets']} (both ends)",
            f"client ping every {ping}s; client message mean 120s; server event mean 30s",
            ping=ping,
            send_every=120,
            push_every=30,
            cn="ws.minewatch.test",
        )
    add(
        "sensor-rpc-stunnel",
        "benign",
        28,
        f"{versions['stunnel']} (both ends); sensor_rpc.py (Python {py})",
        "line-delimited JSON-RPC look-alike of stratum (scripts/sample/sensor_rpc.py) through "
        "the same stunnel TLS as the xmrig-stunnel sessions; read every 10s, server push every "
        "40s",
        interval=10,
        push_interval=40,
        cn="sensors.minewatch.test",
        local_ip="127.0.12.93",
    )
    add(
        "redis-tls-worker",
        "benign",
        27,
        f"{versions['redis']}; redis-py {versions['redis_py']}",
        "queue worker: BLPOP timeout 25s then heartbeat SET+INCR, one TLS connection",
        block=25,
        jitter=0.5,
        cn="redis.minewatch.test",
    )
