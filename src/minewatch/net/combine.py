"""Put payload findings and flow-behaviour findings of the same traffic together.

A capture can be judged twice: by the payload recognisers (what the bytes say) and by the
flow-behaviour model (how the conversation moves — the only thing left under TLS). Where a
recogniser named the protocol, its finding stands: it read the traffic and can name protocol and
coin, and a recognised lawful blockchain node is not mining whatever its rhythm. The behaviour
model speaks only for conversations the recognisers could not read.

Example::

    >>> combine_findings([], [])
    []
"""

from __future__ import annotations

from collections.abc import Iterable

from minewatch.findings import Finding

__all__ = ["combine_findings"]


def combine_findings(payload: Iterable[Finding], behaviour: Iterable[Finding]) -> list[Finding]:
    """Payload findings, plus behaviour findings for conversations no recogniser claimed,
    ordered by first sight."""
    kept = list(payload)
    claimed = {f.key for f in kept}
    kept.extend(f for f in behaviour if f.key not in claimed)
    return sorted(kept, key=lambda f: (f.first_seen_ns, f.client_ip, f.server_ip, f.server_port))
