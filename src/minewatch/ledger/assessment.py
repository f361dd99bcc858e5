"""Assessment: what the attributed evidence says about a tenant, per data centre and overall.

The three detector families look at mining from independent sides: the *network* detector sees
the protocol on the wire, the *power* screen sees the load on the meter, the *host* agent sees
the process or the plots on disk. One tenant's evidence is combined into a score, a class and
the reasons, each reason naming the evidence rows it rests on.

**Score** (how sure we are that the tenant mines; 0 when nothing says so):

1. Within a family, take the strongest confidence of any mining finding (``mining``,
   ``storage-mining``, or a power ``mining``/``suspect`` verdict). Repeats of the same
   observation add nothing: the thousandth Stratum connection from one address comes from the
   same vantage point and the same rule as the first, so its errors are not independent.
2. Across families, combine as independent evidence (noisy-OR):
   ``score = 1 - Π (1 - family)``. Two families at 0.8 give 0.96, one gives 0.8: this is the
   corroboration bonus.
3. Uncorroborated evidence is capped: unless two families each reach
   :data:`CORROBORATES` (0.5), the score stays at most :data:`SINGLE_FAMILY_CAP` (0.85). One
   detector's word, however confident, is not yet "high".
4. A contradicting family lowers it: when the class is ``pow-asic`` (kilowatts per unit, a farm
   cannot hide from its meter) and the power screen judged one of the tenant's accounts
   ``normal``, the score is multiplied by ``1 - CONTRADICTION_WEIGHT × c``, where ``c`` is how
   sure the screen was of "normal" (``1 - its mining score``). A fully sure meter halves it.
5. A lawful look-alike explains weak power-only evidence: when the only mining evidence is a
   power ``suspect`` verdict and the tenant's declared business is blockchain nodes, AI
   training, big data or cloud hosting, the class is that look-alike and the score is
   multiplied by :data:`LOOKALIKE_FACTOR` (0.5). A power ``mining`` verdict is not explained
   away: the screen has already weighed the load's shape against those businesses.

So one weak signal alone gives a weak score, any number of repeats of it gives the same, and
only agreement between the wire, the meter and the host reaches 0.9 and above.

**Class** comes from physics and protocol, never from a name alone. Each mining finding votes:
the coin decides the hardware where it is known (SHA-256d, Scrypt, X11, Equihash, kHeavyHash
coins are mined on ASICs; Ethash/KawPow/Autolykos coins on GPUs; RandomX and other CPU-hard
coins on CPUs; ``xch`` is Chia, ``fil`` Filecoin); otherwise the protocol or program does
(``stratum-xmr``/RandomX/XMRig → ``pow-cpu``; ``eth-proxy``/Ethash/KawPow/GPU telemetry →
``pow-gpu``; Stratum V2, a Bitcoin-only protocol → ``pow-asic``; bare Stratum V1, mostly SHA-256
ASICs → ``pow-asic`` at half weight). The power screen's load kind (asic/gpu/cpu/storage) votes
at half weight: it corroborates, since it is inferred from the size and shape of a load. The
class with the strongest combined vote wins; mining whose hardware nothing tells is
``pow-unknown``. Without mining evidence the class is ``blockchain-node`` when only node
evidence exists, else ``none``.

Counting is done in SQL: one ``GROUP BY`` per (tenant, data centre, detector, verdict, kind,
coin) and one windowed query for the three strongest rows of each group (the evidence ids the
reasons cite), so 100k evidence rows become a few hundred signal rows before Python sees them.

Example::

    >>> from minewatch.ledger.db import open_engine, session_factory, upgrade
    >>> engine = open_engine("sqlite://"); upgrade(engine)
    >>> with session_factory(engine)() as session:
    ...     assess(session)
    []
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, distinct, func, or_, select
from sqlalchemy.orm import Session

from minewatch.host.miner_intel import MinerIntel
from minewatch.ledger.regions import NATIONAL, scope_prefix
from minewatch.ledger.registry_models import DataCentre, Evidence, Tenant

__all__ = [
    "CLASSES",
    "CONTRADICTION_WEIGHT",
    "CORROBORATES",
    "FAMILIES",
    "LAWFUL_CLASSES",
    "LOOKALIKE_FACTOR",
    "MINING_CLASSES",
    "NO_CLASS",
    "SINGLE_FAMILY_CAP",
    "Assessment",
    "Reason",
    "assess",
    "assess_tenant",
]

MINING_CLASSES = (
    "pow-asic",
    "pow-gpu",
    "pow-cpu",
    "pow-unknown",
    "storage-chia",
    "storage-filecoin",
)
"""Classes that are mining; ``pow-unknown`` is proof-of-work whose hardware nothing tells."""
LAWFUL_CLASSES = ("blockchain-node", "ai-training", "big-data", "cloud")
"""Lawful look-alikes: crypto-related but not mining, or loads that look like mining."""
NO_CLASS = "none"
CLASSES = (*MINING_CLASSES, *LAWFUL_CLASSES, NO_CLASS)
FAMILIES = ("net", "power", "host")
"""Detector families, in the order reasons list them."""

SINGLE_FAMILY_CAP = 0.85
"""Highest score evidence from one family alone can reach."""
CORROBORATES = 0.5
"""Strength a family needs to count as corroborating another."""
CONTRADICTION_WEIGHT = 0.5
"""Share of the score a fully sure contradicting family removes."""
LOOKALIKE_FACTOR = 0.5
"""Factor on a power-only ``suspect`` score that the declared lawful business explains."""
POWER_CLASS_WEIGHT = 0.5
"""Weight of the power screen's load kind in the class vote (it corroborates, not decides)."""
EXAMPLES = 3
"""Evidence ids each reason cites per signal (the strongest rows); the rest are counted."""

_FAMILY_NAMES = {"net": "network", "power": "power", "host": "host"}
_MINING_VERDICTS = frozenset({"mining", "storage-mining", "suspect"})
_NODE_VERDICT = "blockchain-node"

# Facts of each coin's proof of work and the hardware that mines it today.
_ASIC_COINS = (
    "btc bch bsv"  # SHA-256d
    " ltc doge"  # Scrypt
    " dash"  # X11
    " zec"  # Equihash 200,9
    " ckb"  # Eaglesong
    " dcr sc kda lbc"  # Blake-family hashes
    " kas"  # kHeavyHash
)
_GPU_COINS = "eth etc rvn erg firo cfx beam flux grin nexa iron rxd kls zil evr"
_CPU_COINS = "xmr wow arq rtm dero trtl xhv zeph vrsc nim sfx grft kva yda ccx upx tlo"
_COIN_CLASS: dict[str, str] = {
    **dict.fromkeys(_ASIC_COINS.split(), "pow-asic"),
    **dict.fromkeys(_GPU_COINS.split(), "pow-gpu"),
    **dict.fromkeys(_CPU_COINS.split(), "pow-cpu"),
    "xch": "storage-chia",
    "fil": "storage-filecoin",
}
_COIN_WHY = {
    "pow-asic": "an ASIC-mined coin",
    "pow-gpu": "a GPU-mined coin",
    "pow-cpu": "a CPU-mined (RandomX-family) coin",
    "storage-chia": "Chia (proof of space)",
    "storage-filecoin": "Filecoin (proof of storage)",
}
_KIND_CLASS: dict[str, tuple[str, float, str]] = {
    "xmrig": ("pow-cpu", 1.0, "XMRig, a RandomX CPU miner (its GPU back ends are separate)"),
    "stratum-xmr": ("pow-cpu", 1.0, "the Monero Stratum dialect (RandomX, a CPU algorithm)"),
    "randomx": ("pow-cpu", 1.0, "a RandomX dataset in huge pages (CPU mining)"),
    "eth-proxy": ("pow-gpu", 1.0, "the Ethash proxy protocol (GPU mining)"),
    "ethereum-stratum": ("pow-gpu", 1.0, "EthereumStratum (GPU mining)"),
    "ethash": ("pow-gpu", 1.0, "Ethash (GPU mining)"),
    "etchash": ("pow-gpu", 1.0, "Etchash (GPU mining)"),
    "kawpow": ("pow-gpu", 1.0, "KawPow (GPU mining)"),
    "gpu-mining": ("pow-gpu", 1.0, "GPU telemetry of a mining load"),
    "stratum-v2": ("pow-asic", 1.0, "Stratum V2, a Bitcoin-only protocol (ASIC mining)"),
    "stratum-v1": ("pow-asic", 0.5, "Stratum V1 without a known coin (mostly SHA-256 ASICs)"),
}
_POWER_KIND_CLASS = {"asic": "pow-asic", "gpu": "pow-gpu", "cpu": "pow-cpu"}
_PROGRAM_KIND_CLASS = {"cpu": "pow-cpu", "gpu": "pow-gpu", "asic-controller": "pow-asic"}

_LOOKALIKES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("blockchain-node", re.compile(r"blockchain|区块链", re.IGNORECASE)),
    (
        "ai-training",
        re.compile(
            r"\bai\b|artificial intelligence|machine learning|deep learning|\bllm|"
            r"model training|\btraining\b|人工智能|训练|大模型|智算",
            re.IGNORECASE,
        ),
    ),
    (
        "big-data",
        re.compile(r"big data|\bspark\b|hadoop|analytics|大数据|数据分析", re.IGNORECASE),
    ),
    (
        "cloud",
        re.compile(r"\bcloud\b|\biaas\b|\bhosting\b|\bidc\b|云计算|云服务|主机托管", re.IGNORECASE),
    ),
)
_FILECOIN_BUSINESS = re.compile(r"filecoin|\bipfs\b|\bfil\b|星际", re.IGNORECASE)
_CHIA_BUSINESS = re.compile(r"\bchia\b|\bxch\b|奇亚", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason in words and the evidence rows (ids) it rests on."""

    text: str
    evidence_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "evidence_ids": list(self.evidence_ids)}


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the evidence says about one tenant in one data centre (or across all of them).

    ``tenant_id`` is ``None`` for evidence placed in a data centre but not with a tenant;
    ``data_centre_id`` is ``None`` for the roll-up over all of a tenant's data centres (and for
    evidence attributed to a tenant without a site). ``families`` holds each family's strength
    (its strongest mining finding); ``score`` is the combination described in the module doc.

    Example::

        >>> a = Assessment(tenant_id=1, tenant_name="t", declared_business="cloud",
        ...                data_centre_id=None, data_centre_name=None, region_code=None,
        ...                score=0.0, mining_class="none", families={}, evidence_count=0,
        ...                first_seen=None, last_seen=None, reasons=())
        >>> a.to_dict()["class"]
        'none'
    """

    tenant_id: int | None
    tenant_name: str | None
    declared_business: str | None
    data_centre_id: int | None
    data_centre_name: str | None
    region_code: str | None
    score: float
    mining_class: str
    families: Mapping[str, float]
    evidence_count: int
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    reasons: tuple[Reason, ...]

    @property
    def mining(self) -> bool:
        """Whether the class is a mining class."""
        return self.mining_class in MINING_CLASSES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``class`` as the key of the class)."""
        return {
            "tenant_id": self.tenant_id,
            "tenant": self.tenant_name,
            "declared_business": self.declared_business,
            "data_centre_id": self.data_centre_id,
            "data_centre": self.data_centre_name,
            "region_code": self.region_code,
            "score": self.score,
            "class": self.mining_class,
            "families": dict(self.families),
            "evidence_count": self.evidence_count,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "reasons": [r.to_dict() for r in self.reasons],
        }


def _iso(stamp: dt.datetime | None) -> str | None:
    return None if stamp is None else stamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------ signals

_Key = tuple[int | None, int | None]
_SignalKey = tuple[int | None, int | None, str, str, str, str | None]


@dataclass(slots=True)
class _Signal:
    """All evidence rows of one group that share detector, verdict, kind and coin."""

    detector: str
    verdict: str
    kind: str
    coin: str | None
    count: int
    subjects: int
    confidence: float
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    examples: list[int] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The raw record of the strongest row (for the words of a reason)."""

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(self.examples)

    def describe(self) -> str:
        """The signal in words, as an inspector would say it."""
        coin = f" ({self.coin})" if self.coin else ""
        if self.detector == "net":
            target = self.raw.get("pool") or self.raw.get("server_name")
            where = f" to {target}" if isinstance(target, str) and target else ""
            what = f"{self.kind}{coin}{where} from {self.subjects} address(es)"
        elif self.detector == "power":
            kw = self.raw.get("mining_kw")
            load = f", ≈{kw} kW" if kw not in (None, "") else ""
            why = str(self.raw.get("explanation") or "").split(";", 1)[0].strip()
            shape = f" ({why})" if why else ""
            what = (
                f"{self.verdict} load of kind {self.kind}{load}{shape} on "
                f"{self.subjects} account(s)"
            )
        else:
            what = f"{self.kind}{coin}, {self.verdict}, on {self.subjects} host(s)"
        return f"{what}: {self.count} finding(s), strongest {self.confidence:.2f}"


def _scope_conditions(
    scope: str, tenant_id: int | None, data_centre_id: int | None, per_site: bool
) -> list[ColumnElement[bool]]:
    placed: ColumnElement[bool] = (
        or_(Evidence.tenant_id.is_not(None), Evidence.data_centre_id.is_not(None))
        if per_site
        else Evidence.tenant_id.is_not(None)
    )
    conditions = [placed]
    prefix = scope_prefix(scope)
    if prefix:
        conditions.append(Evidence.region_code.startswith(prefix))
    if tenant_id is not None:
        conditions.append(Evidence.tenant_id == tenant_id)
    if data_centre_id is not None:
        conditions.append(Evidence.data_centre_id == data_centre_id)
    return conditions


def _load_signals(
    session: Session, conditions: Sequence[ColumnElement[bool]], per_site: bool
) -> dict[_Key, list[_Signal]]:
    """Two grouped queries: counts per signal, then the strongest rows of each signal."""
    group = [Evidence.tenant_id, Evidence.data_centre_id] if per_site else [Evidence.tenant_id]
    signal = [Evidence.detector, Evidence.verdict, Evidence.kind, Evidence.coin]
    where = and_(*conditions)
    signals: dict[_SignalKey, _Signal] = {}
    counted = select(
        *group,
        *signal,
        func.count(),
        func.count(distinct(Evidence.subject)),
        func.max(Evidence.confidence),
        func.min(Evidence.first_seen),
        func.max(func.coalesce(Evidence.last_seen, Evidence.first_seen)),
    ).where(where)
    for row in session.execute(counted.group_by(*group, *signal)):
        values = tuple(row)
        head = values[: len(group)]
        tenant, site = (head[0], head[1]) if per_site else (head[0], None)
        detector, verdict, kind, coin, count, subjects, best, first, last = values[len(group) :]
        signals[tenant, site, detector, verdict, kind, coin] = _Signal(
            detector, verdict, kind, coin, count, subjects, float(best), first, last
        )
    if not signals:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=[*group, *signal], order_by=[Evidence.confidence.desc(), Evidence.id])
        .label("rank")
    )
    ranked = select(Evidence.id, *group, *signal, Evidence.raw, rank).where(where).subquery()
    strongest = select(ranked).where(ranked.c.rank <= EXAMPLES).order_by(ranked.c.rank)
    for row in session.execute(strongest):
        values = tuple(row)
        evidence_id = values[0]
        head = values[1 : 1 + len(group)]
        tenant, site = (head[0], head[1]) if per_site else (head[0], None)
        detector, verdict, kind, coin, raw, _rank = values[1 + len(group) :]
        found = signals.get((tenant, site, detector, verdict, kind, coin))
        if found is None:  # written between the two queries
            continue
        if not found.examples and isinstance(raw, dict):
            found.raw = raw
        found.examples.append(evidence_id)
    grouped: dict[_Key, list[_Signal]] = defaultdict(list)
    for (tenant, site, *_), found in signals.items():
        grouped[tenant, site].append(found)
    return dict(grouped)


def _names(session: Session, model: Any, ids: Iterable[int], *columns: Any) -> dict[int, Any]:
    wanted = sorted(set(ids))
    out: dict[int, Any] = {}
    for i in range(0, len(wanted), 900):
        chunk = wanted[i : i + 900]
        for row in session.execute(select(model.id, *columns).where(model.id.in_(chunk))):
            out[row[0]] = tuple(row[1:])
    return out


# ------------------------------------------------------------------------------------ judging


def _noisy_or(values: Iterable[float]) -> float:
    return 1.0 - math.prod(1.0 - v for v in values)


def _program_class(kind: str) -> tuple[str, str] | None:
    program = MinerIntel.bundled().get(kind)
    if program is None or program.is_node:
        return None
    classes = {_PROGRAM_KIND_CLASS.get(k) for k in program.kinds}
    if len(classes) != 1 or None in classes:
        return None  # a program that drives several kinds of hardware names none
    (found,) = classes
    assert found is not None
    return found, f"the miner program {program.program} drives {program.kinds[0]} hardware"


def _votes(signal: _Signal) -> list[tuple[str, float, str]]:
    """The classes one signal votes for: (class, weight, why)."""
    kind = signal.kind.lower()
    if signal.detector == "power":
        if kind == "storage":
            half = POWER_CLASS_WEIGHT
            why = "a flat storage-sized load"
            return [("storage-chia", half, why), ("storage-filecoin", half, why)]
        found = _POWER_KIND_CLASS.get(kind)
        return [(found, POWER_CLASS_WEIGHT, f"a load of kind {kind}")] if found else []
    coin = (signal.coin or "").lower()
    if coin in _COIN_CLASS:
        cls = _COIN_CLASS[coin]
        return [(cls, 1.0, f"{coin} is {_COIN_WHY[cls]}")]
    if signal.verdict == "storage-mining" or kind.startswith(("chia", "filecoin", "lotus")):
        if kind.startswith("chia"):
            return [("storage-chia", 1.0, f"{signal.kind} is Chia farming")]
        if kind.startswith(("filecoin", "lotus")):
            return [("storage-filecoin", 1.0, f"{signal.kind} is Filecoin storage")]
    if kind in _KIND_CLASS:
        cls, weight, why = _KIND_CLASS[kind]
        return [(cls, weight, why)]
    if signal.detector == "host":
        program = _program_class(kind)
        if program is not None:
            return [(program[0], 1.0, program[1])]
    return []


def _lookalike(business: str | None) -> str | None:
    for cls, pattern in _LOOKALIKES:
        if business and pattern.search(business):
            return cls
    return None


def _storage_preference(business: str | None) -> tuple[str, ...]:
    if business and _CHIA_BUSINESS.search(business):
        return ("storage-chia", "storage-filecoin")
    if business and _FILECOIN_BUSINESS.search(business):
        return ("storage-filecoin", "storage-chia")
    return ()


def _choose_class(
    mining: Sequence[_Signal], business: str | None
) -> tuple[str, list[Reason], list[Reason]]:
    """The winning class, the reasons for it, and the evidence that suggests another class."""
    per_class: dict[str, dict[str, float]] = defaultdict(dict)
    backing: dict[str, list[tuple[_Signal, str]]] = defaultdict(list)
    for signal in mining:
        for cls, weight, why in _votes(signal):
            family = per_class[cls]
            family[signal.detector] = max(
                family.get(signal.detector, 0.0), signal.confidence * weight
            )
            backing[cls].append((signal, why))
    if not per_class:
        return "pow-unknown", [], []
    strengths = {cls: _noisy_or(f.values()) for cls, f in per_class.items()}
    preferred = _storage_preference(business)
    order = {cls: i for i, cls in enumerate(dict.fromkeys((*preferred, *MINING_CLASSES)))}
    chosen = min(strengths, key=lambda c: (-round(strengths[c], 9), order[c]))
    because = [
        Reason(f"class {chosen}: {signal.describe()}; {why}", signal.ids)
        for signal, why in backing[chosen]
    ]
    if preferred and chosen == preferred[0] and per_class[chosen].keys() == {"power"}:
        because.append(
            Reason(
                "the power screen cannot tell Chia from Filecoin; the declared business "
                f"{business!r} points to {chosen}",
                tuple(i for s, _ in backing[chosen] for i in s.ids),
            )
        )
    voted_for_chosen = {id(s) for s, _ in backing[chosen]}
    others = [
        Reason(
            f"{_FAMILY_NAMES[signal.detector]} evidence suggests {cls} instead (not "
            f"penalised): {signal.describe()}; {why}",
            signal.ids,
        )
        for cls in sorted(backing, key=lambda c: order[c])
        if cls != chosen
        for signal, why in backing[cls]
        if id(signal) not in voted_for_chosen
    ]
    return chosen, because, others


def _business_note(business: str, cls: str, ids: tuple[int, ...]) -> Reason:
    """How the tenant's declared business compares with the class the evidence shows."""
    if cls.startswith("storage") and re.search(r"storage|存储|ipfs|filecoin|chia", business, re.I):
        return Reason(
            f"the declared business {business!r} matches {cls} in kind, but storage mining is "
            "still mining",
            ids,
        )
    return Reason(f"the declared business {business!r} does not explain {cls}", ids)


def _family_order(signal: _Signal) -> tuple[int, float]:
    rank = FAMILIES.index(signal.detector) if signal.detector in FAMILIES else len(FAMILIES)
    return rank, -signal.confidence


def _judge(
    key: _Key,
    signals: Sequence[_Signal],
    tenants: Mapping[int, tuple[str, str]],
    sites: Mapping[int, tuple[str, str]],
) -> Assessment:
    """Combine one group's signals into an assessment (the rule is in the module doc)."""
    tenant_id, site_id = key
    tenant_name, business = tenants.get(tenant_id, (None, None)) if tenant_id else (None, None)
    site_name, region = sites.get(site_id, (None, None)) if site_id else (None, None)
    ordered = sorted(signals, key=_family_order)
    mining = [s for s in ordered if s.verdict in _MINING_VERDICTS]
    nodes = [s for s in ordered if s.verdict == _NODE_VERDICT]
    normal_power = [s for s in ordered if s.detector == "power" and s.verdict == "normal"]
    families: dict[str, float] = {}
    for s in mining:
        families[s.detector] = max(families.get(s.detector, 0.0), s.confidence)
    dated = mining or nodes
    reasons: list[Reason] = []

    def result(score: float, cls: str) -> Assessment:
        return Assessment(
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            declared_business=business,
            data_centre_id=site_id,
            data_centre_name=site_name,
            region_code=region,
            score=round(min(max(score, 0.0), 1.0), 4),
            mining_class=cls,
            families={f: round(v, 4) for f, v in families.items()},
            evidence_count=sum(s.count for s in ordered),
            first_seen=min((s.first_seen for s in dated if s.first_seen), default=None),
            last_seen=max((s.last_seen for s in dated if s.last_seen), default=None),
            reasons=tuple(reasons),
        )

    if not mining:
        for s in nodes:
            reasons.append(Reason(f"blockchain node (lawful, not mining): {s.describe()}", s.ids))
        for s in normal_power:
            reasons.append(Reason(f"power screened the load as normal: {s.describe()}", s.ids))
        if not reasons:
            reasons.append(Reason("no evidence of mining"))
        return result(0.0, "blockchain-node" if nodes else NO_CLASS)

    for s in mining:
        family = _FAMILY_NAMES.get(s.detector, s.detector)
        reasons.append(Reason(f"{family}: {s.describe()}", s.ids))
    all_ids = tuple(i for s in mining for i in s.ids)
    score = _noisy_or(families.values())
    agreeing = [f for f, v in families.items() if v >= CORROBORATES]
    if len(agreeing) >= 2:
        shown = ", ".join(f"{_FAMILY_NAMES[f]} {families[f]:.2f}" for f in agreeing)
        reasons.append(
            Reason(
                f"{len(agreeing)} independent detector families corroborate each other "
                f"({shown}): combined {score:.3f}",
                all_ids,
            )
        )
    elif score > SINGLE_FAMILY_CAP:
        seen_by = " and ".join(_FAMILY_NAMES.get(f, f) for f in families)
        reasons.append(
            Reason(
                f"uncorroborated: only the {seen_by} detector saw it strongly, so "
                f"{score:.3f} is capped at {SINGLE_FAMILY_CAP} until another family agrees",
                all_ids,
            )
        )
        score = SINGLE_FAMILY_CAP

    cls, because, others = _choose_class(mining, business)
    reasons.extend(because)
    reasons.extend(others)
    if cls == "pow-unknown":
        reasons.append(
            Reason(
                "class pow-unknown: no coin, protocol or program in the evidence tells the "
                "mining hardware",
                all_ids,
            )
        )
    if cls == "pow-asic" and normal_power:
        sure = max(1.0 - s.confidence for s in normal_power)
        factor = 1.0 - CONTRADICTION_WEIGHT * sure
        reasons.append(
            Reason(
                f"contradiction: the power screen judged this tenant's load normal ({sure:.2f} "
                f"sure), but an ASIC farm draws kilowatts per unit: score × {factor:.2f}",
                tuple(i for s in normal_power for i in s.ids),
            )
        )
        score *= factor
    lookalike = _lookalike(business)
    if lookalike and set(families) == {"power"} and all(s.verdict == "suspect" for s in mining):
        reasons.append(
            Reason(
                f"lawful look-alike {lookalike}: the declared business {business!r} explains a "
                "suspect-level load, and no network or host evidence shows mining: "
                f"score × {LOOKALIKE_FACTOR}",
                all_ids,
            )
        )
        return result(score * LOOKALIKE_FACTOR, lookalike)
    for s in nodes:
        reasons.append(Reason(f"also a blockchain node (lawful in itself): {s.describe()}", s.ids))
    if business:
        reasons.append(_business_note(business, cls, all_ids))
    return result(score, cls)


# ------------------------------------------------------------------------------------ entry


def assess(
    session: Session,
    *,
    scope: str = NATIONAL,
    tenant_id: int | None = None,
    data_centre_id: int | None = None,
    per_site: bool = True,
) -> list[Assessment]:
    """Assess every tenant (per data centre, or overall with ``per_site=False``) that has
    attributed evidence inside region ``scope``, strongest first.

    ``per_site`` also assesses evidence placed in a data centre without a tenant (one group per
    data centre, ``tenant_id`` None). Unattributed evidence is not assessed (it is listed by
    :func:`minewatch.ledger.ingest.unattributed_evidence`).
    """
    conditions = _scope_conditions(scope, tenant_id, data_centre_id, per_site)
    grouped = _load_signals(session, conditions, per_site)
    tenants = _names(
        session,
        Tenant,
        (t for t, _ in grouped if t is not None),
        Tenant.name,
        Tenant.declared_business,
    )
    sites = _names(
        session,
        DataCentre,
        (s for _, s in grouped if s is not None),
        DataCentre.name,
        DataCentre.region_code,
    )
    results = [_judge(key, signals, tenants, sites) for key, signals in grouped.items()]
    results.sort(key=lambda a: (-a.score, a.tenant_id or 0, a.data_centre_id or 0))
    return results


def assess_tenant(
    session: Session, tenant_id: int, *, scope: str = NATIONAL
) -> tuple[Assessment, list[Assessment]]:
    """One tenant: the roll-up over its data centres inside ``scope``, and one per data centre.

    A tenant without evidence gets a roll-up of class ``none`` and score 0.
    """
    sites = assess(session, scope=scope, tenant_id=tenant_id, per_site=True)
    overall = assess(session, scope=scope, tenant_id=tenant_id, per_site=False)
    if overall:
        return overall[0], sites
    row = session.execute(
        select(Tenant.name, Tenant.declared_business).where(Tenant.id == tenant_id)
    ).first()
    known = {tenant_id: (row[0], row[1])} if row is not None else {}
    return _judge((tenant_id, None), [], known, {}), sites
