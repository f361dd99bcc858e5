"""Turn load-profile features into a verdict, a score, a kind, an onset and the reasons.

The rules are the physics of mining hardware, not weights fitted to one data set:

* **Round-the-clock flat load.** ASICs, GPU rigs and CPU miners run at full power all day and
  every day: hourly variability of a few per cent (thermal drift), no daily or weekly cycle, no
  day/night difference, a load factor near 1, and almost no dips (only reboots and pool
  failovers). Legitimate loads that are also flat differ in a detail: AI training stalls at
  checkpoints and synchronisation (dips), cold stores cycle compressors (interval variability),
  process industry runs motors with a lower power factor.
* **Price curtailment.** Miners that stop in the peak-price hours draw almost nothing then and
  run flat in every other hour.
* **Hidden mining.** Mining added to a normal load lifts its level at one moment and adds no new
  variation: the largest level shift is large, sudden (a high t-statistic between days) and the
  spread around each day's mean stays what it was.

Each rule gives a strength in [0, 1] from the distance of the features to physical limits; the
account's score is the strongest rule, lowered where a look-alike explains the shape better.
Verdicts: ``mining`` (score ≥ 0.75), ``suspect`` (≥ 0.45: worth an inspection), ``normal``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "ASIC_UNIT_KW",
    "MINING_SCORE",
    "SUSPECT_SCORE",
    "AccountVerdict",
    "classify_account",
]

MINING_SCORE = 0.75
SUSPECT_SCORE = 0.45
ASIC_UNIT_KW = 3.25
"""Wall power of one S19-class ASIC (Bitmain Antminer S19: 3250 W at the wall)."""
MIN_MINING_KW = 2.0
"""Below this, a flat load is a few servers: reported as suspect at most."""

_CONTINUOUS_PROCESS = (
    "steel",
    "chemical",
    "smelt",
    "alumin",
    "cement",
    "glass",
    "paper",
    "钢",
    "化工",
    "冶炼",
    "铝",
)
_STORAGE = ("ipfs", "storage", "存储", "filecoin", "chia")


@dataclass(slots=True)
class AccountVerdict:
    """The screening result of one account."""

    account_id: str
    verdict: str
    score: float
    kind: str
    onset: datetime | None
    mining_kw: float
    equivalent: str
    explanation: list[str] = field(default_factory=list)


def _ramp(value: float | None, good: float, bad: float) -> float:
    """1 at or beyond ``good``, 0 at or beyond ``bad``, linear in between (None counts as 0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    if good == bad:
        return 1.0 if value == good else 0.0
    t = (value - bad) / (good - bad)
    return min(1.0, max(0.0, t))


def _near_one(value: float | None, tolerance_good: float, tolerance_bad: float) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.5  # no such hours in the window: says nothing
    return _ramp(abs(value - 1.0), tolerance_good, tolerance_bad)


def _flat_strength(f: dict[str, Any]) -> tuple[float, list[str]]:
    parts = {
        # Thermal drift of ±1-3 % is all the within-day variation mining hardware has (a 3 %
        # swing puts the typical hour about 2 % from its day's mean); reboots, failovers and
        # firmware power modes add rare outlying hours, which the robust measure ignores and
        # the plain one only bounds.
        "within-day variability": _ramp(f["flatness_robust"], 0.015, 0.025),
        "outlying hours": _ramp(f["flatness_residual"], 0.03, 0.06),
        "hourly variability": _ramp(f["cv_hourly"], 0.05, 0.10),
        "daily cycle": _ramp(f["spectral_24h"], 0.03, 0.10),
        "weekly cycle": _ramp(f["spectral_7d"], 0.02, 0.06),
        "day/night": _near_one(f["day_night"], 0.04, 0.12),
        "weekday/weekend": _near_one(f["weekday_weekend"], 0.04, 0.12),
        "load factor": _ramp(f["load_factor"], 0.88, 0.70),
        "dips": _ramp(f["dip_share"], 0.03, 0.15),
    }
    strength = min(parts.values())
    reasons = [
        f"load factor {f['load_factor']:.2f}, hourly CV {f['cv_hourly']:.3f}, "
        f"daily-cycle amplitude {f['spectral_24h']:.3f}, day/night {f['day_night']:.2f}, "
        f"dips in {100 * f['dip_share']:.1f} % of hours"
    ]
    weakest = min(parts, key=lambda k: parts[k])
    if strength < 1.0:
        reasons.append(f"weakest sign of round-the-clock flat load: {weakest}")
    return strength, reasons


def _curtail_strength(f: dict[str, Any]) -> tuple[float, list[str]]:
    strength = min(
        _ramp(f["off_share"], 0.08, 0.03),
        _ramp(f["off_on_schedule"], 0.85, 0.6),
        # Hours of switching before and after each stop sit a little below the running level.
        _ramp(f["cv_on"], 0.07, 0.12),
        _near_one(f["weekday_weekend"], 0.08, 0.2),
    )
    reasons = [
        f"stopped in {100 * (f['off_share'] or 0):.0f} % of hours, "
        f"{100 * (f['off_on_schedule'] or 0):.0f} % of them at the same clock hours daily; "
        f"hourly CV while running {f['cv_on'] or 0:.3f}; "
        f"load in the usual peak-price hours is {100 * (f['peak_share'] or 0):.0f} % of the rest"
    ]
    return strength, reasons


def _hidden_strength(f: dict[str, Any]) -> tuple[float, list[str]]:
    if f["step_t"] is None or f["step_rel"] is None:
        return 0.0, []
    base, mean = float(f["step_kw"] or 0.0), float(f["step_mean_kw"] or 0.0)
    # A constant added load lifts base load and mean alike.
    alike = mean / base if base > 0 else 0.0
    strength = min(
        _ramp(f["step_rel"], 0.15, 0.08),
        _ramp(f["step_t"], 7.0, 4.0),
        _ramp(abs(alike - 1.0), 0.25, 0.5),
    )
    reasons = [
        f"base load rose by {base:.0f} kW and mean load by {mean:.0f} kW "
        f"({100 * f['step_rel']:.0f} %) at the onset (t = {f['step_t']:.1f})"
    ]
    return strength, reasons


def _kind(f: dict[str, Any], mining_kw: float, business: str) -> str:
    if any(word in business for word in _STORAGE) and mining_kw < 200:
        return "storage"
    if (f["cv_interval"] or 0) >= 0.03:
        return "gpu"
    if mining_kw >= 100:
        return "asic"
    if mining_kw >= MIN_MINING_KW:
        return "cpu"
    return "unknown"


def classify_account(
    features: dict[str, Any],
    contracted_kw: float | None = None,
    declared_business: str | None = None,
) -> AccountVerdict:
    """Screen one account from its feature row (see :mod:`minewatch.power.features`)."""
    f = features
    business = (declared_business or "").lower()
    flat, flat_why = _flat_strength(f)
    curtail, curtail_why = _curtail_strength(f)
    hidden, hidden_why = _hidden_strength(f)
    explanation: list[str] = []
    onset: datetime | None = None
    if hidden > max(flat, curtail):
        score, pattern = hidden, "hidden"
        mining_kw = max(float(f["step_kw"]), 0.0)
        onset = f["step_onset"]
        explanation += ["mining added to a normal load", *hidden_why]
    elif curtail > flat:
        score, pattern = curtail, "curtailing"
        mining_kw = float(f["kw_mean"]) / max(1 - float(f["off_share"] or 0), 0.5)
        explanation += ["flat load that stops in peak-price hours", *curtail_why]
    else:
        score, pattern = flat, "flat"
        mining_kw = float(f["kw_mean"])
        explanation += ["round-the-clock flat load", *flat_why]

    # Look-alikes that explain a flat shape.
    pf = f.get("power_factor")
    if pattern != "hidden" and any(w in business for w in _CONTINUOUS_PROCESS):
        if pf is not None and not math.isnan(pf) and pf >= 0.97:
            explanation.append(
                f"declared '{declared_business}', but power factor {pf:.3f} is that of "
                "switch-mode power supplies, not motors and furnaces"
            )
        else:
            score = min(score, SUSPECT_SCORE + 0.1)
            explanation.append(f"flat load fits the declared business '{declared_business}'")
    if pf is not None and not math.isnan(pf):
        if pf < 0.93 and pattern != "hidden":
            score *= 0.7
            explanation.append(f"power factor {pf:.3f} is low for mining power supplies")
        elif pf >= 0.97:
            explanation.append(f"power factor {pf:.3f} (active PFC power supplies)")
    imbalance = f.get("phase_imbalance")
    if imbalance is not None and not math.isnan(imbalance) and imbalance > 0.15:
        score *= 0.85
        explanation.append(f"phase imbalance {100 * imbalance:.0f} %")
    if contracted_kw and contracted_kw > 0:
        use = float(f["kw_mean"]) / contracted_kw
        explanation.append(
            f"mean load is {100 * use:.0f} % of the contracted {contracted_kw:.0f} kW"
        )
        if use > 0.9 and score >= SUSPECT_SCORE:
            score = min(1.0, score + 0.05)
    if mining_kw < MIN_MINING_KW:
        score = min(score, SUSPECT_SCORE + 0.1)
        explanation.append(f"estimated mining load {mining_kw:.1f} kW is small")

    verdict = (
        "mining" if score >= MINING_SCORE else "suspect" if score >= SUSPECT_SCORE else "normal"
    )
    if verdict == "normal":
        # Say what was checked and why it did not fit, not the pattern's name as a finding.
        explanation[0] = f"no mining pattern (closest: {explanation[0]}, strength {score:.2f})"
        return AccountVerdict(
            account_id=str(f["account_id"]),
            verdict="normal",
            score=round(score, 3),
            kind="none",
            onset=None,
            mining_kw=0.0,
            equivalent="",
            explanation=explanation,
        )
    kind = _kind(f, mining_kw, business)
    units = mining_kw / ASIC_UNIT_KW
    return AccountVerdict(
        account_id=str(f["account_id"]),
        verdict=verdict,
        score=round(score, 3),
        kind=kind,
        onset=onset if pattern == "hidden" else None,
        mining_kw=round(mining_kw, 1),
        equivalent=f"≈ {units:.0f} × S19-class {ASIC_UNIT_KW} kW units",
        explanation=explanation,
    )
