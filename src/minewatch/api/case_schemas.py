"""Request and response bodies of the case endpoints (pydantic).

As in :mod:`minewatch.api.schemas`: sizes are bounded, enums are closed, unknown fields are
refused, and times must carry a time zone. Deadlines and due dates are plain calendar dates
(``YYYY-MM-DD``, read in China Standard Time). The ledger layer checks everything again
(:mod:`minewatch.ledger.cases`); these bounds only stop nonsense at the door and document the
API in OpenAPI.

Example::

    >>> TransitionIn(to="cleared", reason="lawful Ethereum node").to
    'cleared'
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "AlertOut",
    "AttachmentIn",
    "AttachmentOut",
    "CaseBrief",
    "CaseIn",
    "CaseOut",
    "CasePatch",
    "ChecklistItem",
    "Hashrate",
    "InspectionIn",
    "InspectionOut",
    "InspectionPatch",
    "MilestoneOut",
    "MilestonePatch",
    "TransitionIn",
    "TransitionOut",
]

State = Literal[
    "lead", "verification", "inspection", "confirmed", "cleared", "rectification", "closed"
]
Source = Literal["detection", "ip-list", "hotline", "self-report"]
MiningClass = Literal[
    "pow-asic", "pow-gpu", "pow-cpu", "storage-chia", "storage-filecoin", "unknown"
]
ProjectType = Literal["new", "existing"]
HashrateUnit = Literal[
    "H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "GiB", "TiB", "PiB", "EiB"
]
InspectionResult = Literal["mining", "no-mining", "inconclusive"]
ExitStep = Literal["stop-mining", "remove-equipment", "cut-supply"]
MilestoneKind = Literal["shutdown", "stop-mining", "remove-equipment", "cut-supply"]

_REGION = r"^\d{6}$"
_EvidenceId = Annotated[int, Field(ge=1, le=2**31 - 1)]
"""An evidence row id: larger numbers cannot name a row (and would not bind to the column)."""
_CREDIT = r"^[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{18}$"
_Reason = Field(default="", max_length=2000)


class Hashrate(BaseModel):
    """A hashrate with its unit, never a bare number: 110 TH/s and 110 PH/s differ 1000-fold.
    For storage mining the "hashrate" is the proven capacity, in GiB ... EiB."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(ge=0, le=1e18, allow_inf_nan=False)
    unit: HashrateUnit


class _LedgerFields(BaseModel):
    """The ledger fields of the notice, shared by create and update."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    mining_class: MiningClass = "unknown"
    source_ref: str | None = Field(default=None, max_length=100)
    tenant_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    data_centre_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    enterprise: str | None = Field(default=None, max_length=200)
    credit_code: str | None = Field(default=None, pattern=_CREDIT)
    """Unified social credit code (统一社会信用代码); its check character is verified."""
    scale_units: int | None = Field(default=None, ge=0, le=10_000_000)
    hashrate: Hashrate | None = None
    power_kw: float | None = Field(default=None, ge=0, le=1e9, allow_inf_nan=False)
    annual_kwh: float | None = Field(default=None, ge=0, le=1e13, allow_inf_nan=False)
    planned_production_date: dt.date | None = None
    project_type: ProjectType | None = None
    """``new`` (增量) or ``existing`` (存量)."""


class CaseIn(_LedgerFields):
    """A new lead: where, what, from which source, and what is already known."""

    region_code: str = Field(pattern=_REGION)
    source: Source
    reason: str = _Reason
    evidence_ids: list[_EvidenceId] = Field(default_factory=list, max_length=10_000)
    ip_addresses: list[str] = Field(default_factory=list, max_length=10_000)


class CasePatch(BaseModel):
    """Ledger fields to change; a field sent as ``null`` is cleared, one left out is kept."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    mining_class: MiningClass | None = None
    region_code: str | None = Field(default=None, pattern=_REGION)
    """Hand the case to another region inside the caller's (a province assigning a city)."""
    source_ref: str | None = Field(default=None, max_length=100)
    tenant_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    data_centre_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    enterprise: str | None = Field(default=None, max_length=200)
    credit_code: str | None = Field(default=None, pattern=_CREDIT)
    scale_units: int | None = Field(default=None, ge=0, le=10_000_000)
    hashrate: Hashrate | None = None
    power_kw: float | None = Field(default=None, ge=0, le=1e9, allow_inf_nan=False)
    annual_kwh: float | None = Field(default=None, ge=0, le=1e13, allow_inf_nan=False)
    planned_production_date: dt.date | None = None
    project_type: ProjectType | None = None
    link_evidence_ids: list[_EvidenceId] = Field(default_factory=list, max_length=10_000)
    """Evidence to add to the case (what is linked already stays)."""
    reason: str = _Reason


class ChecklistItem(BaseModel):
    """One thing to check on site, and whether it was."""

    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=500)
    done: bool = False


class TransitionIn(BaseModel):
    """A move of the case to state ``to``, with why, and what that move needs:

    * ``inspection``: ``inspector`` (username) and ``scheduled_on``; ``checklist`` optional;
    * ``rectification``: ``deadline`` (new project) or ``plan`` (existing: a due date for each
      of stop-mining, remove-equipment, cut-supply); ``order_ref`` optional.
    """

    model_config = ConfigDict(extra="forbid")

    to: State
    reason: str = Field(min_length=1, max_length=2000)
    inspector: str | None = Field(default=None, min_length=1, max_length=150)
    scheduled_on: dt.date | None = None
    checklist: list[ChecklistItem] | None = Field(default=None, max_length=100)
    deadline: dt.date | None = None
    plan: dict[ExitStep, dt.date] | None = None
    order_ref: str | None = Field(default=None, max_length=100)


class TransitionOut(BaseModel):
    """One recorded change of state."""

    from_state: State | None
    to_state: State
    at: dt.datetime
    actor: str
    reason: str


class MilestoneOut(BaseModel):
    """A dated step of the rectification."""

    id: int
    url: str
    kind: MilestoneKind
    label: str
    """Chinese name of the step (关停, 停止挖矿, 拆除设备, 切断专用供电)."""
    due_on: dt.date
    done_on: dt.date | None
    note: str


class MilestonePatch(BaseModel):
    """Mark a step done (``done_on``; ``null`` undoes), note it, or move its due date
    (``due_on``: an extension, admins only, with a reason)."""

    model_config = ConfigDict(extra="forbid")

    done_on: dt.date | None = None
    due_on: dt.date | None = None
    note: str | None = Field(default=None, max_length=2000)
    reason: str = _Reason


class CaseBrief(BaseModel):
    """The short form of a case used in lists with ``brief=true``."""

    id: int
    url: str
    title: str
    state: State
    region_code: str


class CaseOut(CaseBrief):
    """A case with its ledger fields, plan and history."""

    source: Source
    source_ref: str | None
    mining_class: MiningClass
    tenant_id: int | None
    data_centre_id: int | None
    enterprise: str | None
    credit_code: str | None
    scale_units: int | None
    hashrate: Hashrate | None
    power_kw: float | None
    annual_kwh: float | None
    planned_production_date: dt.date | None
    project_type: ProjectType | None
    project_type_label: str | None
    """增量 or 存量."""
    ip_addresses: list[str]
    evidence_ids: list[int]
    cleared_reason: str | None
    order_ref: str | None
    opened_at: dt.datetime
    opened_by: str
    updated_at: dt.datetime
    confirmed_at: dt.datetime | None
    cleared_at: dt.datetime | None
    closed_at: dt.datetime | None
    allowed_transitions: list[State]
    milestones: list[MilestoneOut]
    transitions: list[TransitionOut]
    inspections_url: str


class AttachmentIn(BaseModel):
    """Metadata of a file from the inspection (the file itself is kept elsewhere)."""

    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0, le=2**53)
    content_type: str = Field(
        min_length=3, max_length=100, pattern=r"^[\w.+!#$&^-]+/[\w.+!#$&^-]+$"
    )


class AttachmentOut(AttachmentIn):
    """A recorded attachment."""

    id: int


class InspectionIn(BaseModel):
    """A further inspection of a case already in inspection."""

    model_config = ConfigDict(extra="forbid")

    inspector: str = Field(min_length=1, max_length=150)
    scheduled_on: dt.date
    checklist: list[ChecklistItem] | None = Field(default=None, max_length=100)
    reason: str = _Reason


class InspectionPatch(BaseModel):
    """What the inspection found; attachments are added to those already recorded."""

    model_config = ConfigDict(extra="forbid")

    checklist: list[ChecklistItem] | None = Field(default=None, max_length=100)
    result: InspectionResult | None = None
    notes: str | None = Field(default=None, max_length=20_000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=200)
    inspected_at: AwareDatetime | None = None
    reason: str = _Reason


class InspectionOut(BaseModel):
    """An inspection: who, when, the checklist, the result and the attachments' metadata."""

    id: int
    url: str
    case_id: int
    inspector: str
    scheduled_on: dt.date
    checklist: list[ChecklistItem]
    result: InspectionResult | None
    notes: str
    inspected_at: dt.datetime | None
    attachments: list[AttachmentOut]
    created_at: dt.datetime
    created_by: str


class AlertOut(BaseModel):
    """Something overdue: a rectification step, a shutdown deadline or an inspection."""

    case_id: int
    case_url: str
    region_code: str
    title: str
    enterprise: str | None
    kind: Literal["shutdown", "stop-mining", "remove-equipment", "cut-supply", "inspection"]
    label: str
    item_id: int
    due_on: dt.date
    days_overdue: int
