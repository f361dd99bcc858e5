#!/usr/bin/env python3
"""Types shell commands, one every few seconds, for an ``ssh -tt`` session reading stdin.

Why: an operator's interactive SSH session is a long-lived encrypted flow of tiny keystroke
packets and bursts of output. Piping this into the real OpenSSH client gives real SSH traffic
with a human-like rhythm: characters typed ~80-250 ms apart, pauses between commands.

Usage::

    python3 ssh_typist.py --seconds 400 --pause 8 | ssh -tt -p 32022 root@127.0.21.1
"""

from __future__ import annotations

import argparse
import random
import sys
import time

__all__ = ["main"]

COMMANDS = [
    "uptime",
    "df -h /",
    "free -m",
    "ls -la /var/log | head",
    "ps aux --sort=-%cpu | head -5",
    "cat /proc/loadavg",
    "date",
    "ip -br addr",
    "tail -n 5 /etc/passwd",
    "echo $SHELL",
    "who",
    "uname -a",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--pause", type=float, default=8.0, help="mean pause between commands")
    parser.add_argument("--seed", default="typist")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    out = sys.stdout
    time.sleep(2)
    while time.monotonic() < deadline - 2:
        for ch in rng.choice(COMMANDS) + "\n":
            out.write(ch)
            out.flush()
            time.sleep(rng.uniform(0.08, 0.25))
        time.sleep(
            min(max(0.5, rng.expovariate(1 / args.pause)), max(0.0, deadline - time.monotonic()))
        )
    out.write("exit\n")
    out.flush()
    time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
