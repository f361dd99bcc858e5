#!/usr/bin/env python3
"""An MQTT telemetry client: publishes a small JSON reading every few seconds over TLS.

Why: IoT gateways, building management and rack sensors hold one TLS connection to a broker for
hours, publish ~100-300 byte messages on a timer and send PINGREQ when idle for the keepalive:
in size and rhythm much like a miner submitting shares. Uses the real ``paho-mqtt`` client
against a real broker (Debian's mosquitto with a TLS listener).

Usage::

    python3 mqtt_telemetry.py --host 127.0.20.1 --port 30883 --ca broker.crt \\
        --sni mqtt.example.test --period 10 --seconds 400 --client-id rack7-pdu
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import ssl
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rhythm import Pacer

__all__ = ["main"]

log = logging.getLogger("mqtt_telemetry")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--sni", help="broker name to check the certificate against")
    parser.add_argument("--client-id", default="sensor-1")
    parser.add_argument("--topic", default="dc/hall1/rack7/pdu")
    parser.add_argument("--period", type=float, default=10.0)
    parser.add_argument("--jitter", type=float, default=0.05)
    parser.add_argument("--keepalive", type=int, default=60)
    parser.add_argument("--qos", type=int, choices=[0, 1], default=0)
    parser.add_argument("--subscribe", help="also subscribe to this topic (commands channel)")
    parser.add_argument("--tls12", action="store_true", help="offer at most TLS 1.2")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", default="mqtt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id)
    context = ssl.create_default_context(cafile=str(args.ca))
    context.check_hostname = False  # the broker is reached by address; the chain is still checked
    if args.tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    client.tls_set_context(context)
    client.connect(args.host, args.port, keepalive=args.keepalive)
    if args.subscribe:
        client.subscribe(args.subscribe, qos=args.qos)
    client.loop_start()
    pacer = Pacer(args.period, args.jitter, args.seconds, args.seed)
    seq = 0
    t0 = time.time()
    while True:
        seq += 1
        phase = (time.time() - t0) / 600.0
        reading = {
            "seq": seq,
            "ts": round(time.time(), 3),
            "temp_c": round(24.0 + 2.5 * math.sin(phase) + pacer.uniform(-0.2, 0.2), 2),
            "power_w": round(3150 + 120 * math.cos(phase) + pacer.uniform(-15, 15), 1),
            "humidity": round(41 + pacer.uniform(-1, 1), 1),
        }
        client.publish(args.topic, json.dumps(reading), qos=args.qos)
        if not pacer.wait():
            break
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
