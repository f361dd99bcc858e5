"""Find mining in flow records by behaviour alone, and say why.

:func:`detect_flows` computes the conversation features, scores them with the flow model, and
turns every conversation whose calibrated probability reaches the model's threshold into a
:class:`~minewatch.findings.Finding`:

* ``detector`` is ``flow-behaviour`` and ``confidence`` the calibrated probability;
* ``protocol`` is ``stratum-tls`` when the conversation carried TLS (a ClientHello, or
  payloads that begin with TLS record headers), else
  ``stratum``: flow behaviour shows a pool protocol of the Stratum family but cannot read which
  one; where packets are available the payload recognisers name it, and their finding wins
  when findings are merged by key;
* ``evidence`` holds the features that pushed the score up most, as short sentences with the
  measured values, plus a pool-name match of the SNI or DNS name against the bundled pool list.

Conversations observed for less than the model's ``min_span_s`` (five minutes for the bundled
model) are not judged: a shorter conversation has not shown enough job pushes and share
submits for its rhythm to separate it from a poller or a heartbeat; the detector stays silent on
it until it has lasted that long (a live monitor judges it again later).

Example::

    >>> from minewatch.net.flowrec.from_packets import read_capture_flows
    >>> flows, _ = read_capture_flows(["capture.pcap"])           # doctest: +SKIP
    >>> for f in detect_flows(flows):                              # doctest: +SKIP
    ...     print(f.client_ip, f.server_ip, f.confidence, f.evidence[0])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from minewatch.findings import Finding, Verdict
from minewatch.intel.pools import PoolIntel
from minewatch.net.behaviour.features import conversation_features, feature_matrix
from minewatch.net.behaviour.model import FlowModel

__all__ = ["DETECTOR", "describe", "detect_flows", "score_features"]

DETECTOR = "flow-behaviour"
_TOP_REASONS = 3


def _minutes(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _every(per_min: float) -> str:
    return f"every ~{60.0 / per_min:.0f} s" if per_min > 0 else "never"


_PHRASES: dict[str, Callable[[dict[str, Any]], str]] = {
    "span_s": lambda r: f"conversation lasted {_minutes(r['span_s'])}",
    "max_conn_s": lambda r: f"one connection held {_minutes(r['max_conn_s'])}",
    "conn_count": lambda r: f"{int(r['conn_count'])} connection(s) to the same server and port",
    "reconnects_per_hour": lambda r: f"reconnects ~{r['reconnects_per_hour']:.1f} times/hour",
    "coverage": lambda r: f"traffic in {100 * r['coverage']:.0f} % of its minutes",
    "slices": lambda r: f"active in {int(r['slices'])} one-minute slices",
    "rate_cv": lambda r: f"steady packet rate (variation {r['rate_cv']:.2f} between minutes)",
    "pkts_up_per_min": lambda r: f"client sends ~{r['pkts_up_per_min']:.1f} packets/min",
    "pkts_down_per_min": lambda r: f"server sends ~{r['pkts_down_per_min']:.1f} packets/min",
    "bytes_up_per_min": lambda r: f"client sends ~{r['bytes_up_per_min']:.0f} B/min",
    "bytes_down_per_min": lambda r: f"server sends ~{r['bytes_down_per_min']:.0f} B/min",
    "msgs_up_per_min": lambda r: (
        f"client sends ~{r['msgs_up_per_min']:.1f} small messages/min "
        f"({_every(r['msgs_up_per_min'])})"
    ),
    "msgs_down_per_min": lambda r: (
        f"server pushes ~{r['msgs_down_per_min']:.1f} messages/min "
        f"({_every(r['msgs_down_per_min'])})"
    ),
    "mean_pkt_up": lambda r: f"client packets average {r['mean_pkt_up']:.0f} B",
    "mean_pkt_down": lambda r: f"server packets average {r['mean_pkt_down']:.0f} B",
    "up_byte_share": lambda r: f"client sends {100 * r['up_byte_share']:.0f} % of the bytes",
    "up_pkt_share": lambda r: f"client sends {100 * r['up_pkt_share']:.0f} % of the packets",
    "msg_share_up": lambda r: f"{100 * r['msg_share_up']:.0f} % of client packets carry data",
    "msg_share_down": lambda r: f"{100 * r['msg_share_down']:.0f} % of server packets carry data",
    "opens_up_per_min": lambda r: (
        f"client speaks first after a silence ~{r['opens_up_per_min']:.1f} times/min "
        "(share submits)"
    ),
    "opens_down_per_min": lambda r: (
        f"server speaks first after a silence ~{r['opens_down_per_min']:.1f} times/min (job pushes)"
    ),
    "server_open_share": lambda r: (
        f"server opens {100 * r['server_open_share']:.0f} % of the exchanges unsolicited"
    ),
    "both_open": lambda r: (
        "both sides speak first in turn" if r["both_open"] else "only one side speaks first"
    ),
    "open_gap_up_s": lambda r: f"client opens every ~{r['open_gap_up_s']:.0f} s on average",
    "open_gap_down_s": lambda r: f"server pushes every ~{r['open_gap_down_s']:.0f} s on average",
    "open_cv_up": lambda r: (
        f"client opens at irregular, Poisson-like times (variation {r['open_cv_up']:.2f})"
    ),
    "open_cv_down": lambda r: f"server push intervals vary by {r['open_cv_down']:.2f} (jittered)",
}


def describe(feature: str, row: dict[str, Any]) -> str:
    """A short sentence stating one feature's value for one conversation."""
    value = row.get(feature)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return f"{feature} unknown"
    phrase = _PHRASES.get(feature)
    return phrase(row) if phrase is not None else f"{feature} = {value:.3g}"


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def score_features(features: pa.Table, model: FlowModel) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities and per-feature contributions for conversation features."""
    x = feature_matrix(features, model.features)
    raw, contrib, _ = model.explain(x)
    return model.calibrate(raw), contrib


def detect_flows(
    records: pa.Table,
    model: FlowModel | None = None,
    *,
    intel: PoolIntel | None = None,
    threshold: float | None = None,
) -> list[Finding]:
    """Findings for the conversations in flow records (FLOW_SCHEMA) that behave like mining.

    ``model`` defaults to the bundled one, ``threshold`` to the model's own
    (:meth:`FlowModel.cutoffs`: flow-export rows have their own).
    """
    model = model or FlowModel.bundled()
    features = conversation_features(records)
    if features.num_rows == 0:
        return []
    span = features.column("span_s").to_numpy(zero_copy_only=False)
    judged = np.flatnonzero(span >= model.min_span_s)
    if judged.shape[0] == 0:
        return []
    features = features.take(pa.array(judged))
    x = feature_matrix(features, model.features)
    raw, contrib, _ = model.explain(x)
    prob = model.calibrate(raw)
    cut = model.cutoffs(x) if threshold is None else np.full(x.shape[0], threshold)
    hits = np.flatnonzero(prob >= cut)
    if hits.shape[0] == 0:
        return []
    intel = intel or PoolIntel.bundled()
    rows = features.take(pa.array(hits)).to_pylist()
    return [
        _finding(row, float(prob[i]), contrib[i], model, intel)
        for row, i in zip(rows, hits.tolist(), strict=True)
    ]


def _finding(
    row: dict[str, Any], prob: float, contrib: np.ndarray, model: FlowModel, intel: PoolIntel
) -> Finding:
    # The features that pushed the score up most, among those the source could measure: a
    # flow export's missing packet features also steer the trees, but "unknown" explains
    # nothing to the person reading the finding.
    order = [
        j
        for j in np.argsort(-contrib).tolist()
        if contrib[j] > 0 and _known(row.get(model.features[j]))
    ]
    reasons = [describe(model.features[j], row) for j in order[:_TOP_REASONS]]
    evidence = [f"flow behaviour ({model.model_id}, p={prob:.2f}): " + "; ".join(reasons)]
    pool: str | None = None
    coin: str | None = None
    server_name = row.get("sni") or row.get("dns_name")
    for kind in ("sni", "dns_name"):
        name = row.get(kind)
        entry = intel.match_domain(name) if name else None
        if entry is not None:
            pool, coin = entry.pool, entry.coins[0] if len(entry.coins) == 1 else None
            label = "TLS server name" if kind == "sni" else "DNS name"
            evidence.append(f"{label} {name} belongs to the mining pool {entry.pool}")
            break
    if row.get("tls_seen"):
        evidence.append("encrypted (TLS seen)")
    return Finding(
        verdict=Verdict.MINING,
        protocol="stratum-tls" if row.get("tls_seen") else "stratum",
        client_ip=row["client_ip"],
        server_ip=row["server_ip"],
        server_port=int(row["server_port"]),
        transport=row["transport"],
        coin=coin,
        confidence=min(1.0, max(0.0, prob)),
        first_seen_ns=int(row["first_seen_ns"]),
        last_seen_ns=int(row["last_seen_ns"]),
        evidence=evidence,
        detector=DETECTOR,
        pool=pool,
        server_name=server_name,
        connections=int(row["connections"]),
        packets=int(row["packets_up"] + row["packets_down"]),
        bytes_to_server=int(row["bytes_up"]),
        bytes_to_client=int(row["bytes_down"]),
        sources=[str(row["source"])] if row.get("source") else [],
    )
