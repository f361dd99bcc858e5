"""Active verification, opt-in: ask a suspected server whether it speaks a mining protocol.

* :mod:`.protocols`: what each handshake sends and how an answer is judged.
* :mod:`.client`: one server, plain TCP and/or TLS, bounded in time and bytes.
* :mod:`.policy`: off unless enabled; allow/deny lists; global and per-target rate limits.
* :mod:`.cache`: answers kept on disk with a TTL, so no server is asked twice.
* :mod:`.session`: all of the above around a list of targets.
"""

from minewatch.net.probe.client import ProbeResult, Target, parse_target
from minewatch.net.probe.policy import ProbePolicy, ProbingDisabledError, load_policy
from minewatch.net.probe.protocols import Strength
from minewatch.net.probe.session import ProbeSession

__all__ = [
    "ProbePolicy",
    "ProbeResult",
    "ProbeSession",
    "ProbingDisabledError",
    "Strength",
    "Target",
    "load_policy",
    "parse_target",
]
