"""Request and response bodies of the REST API (pydantic), kept apart from the routes.

Validation here is the API's first line of defence: sizes are bounded, enums are closed, and a
timestamp without a time zone is refused (a report of "08:00" from a host in Beijing and one from a
host in UTC must not be confused).
"""

from __future__ import annotations

import datetime as dt
from typing import Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "HostFindingIn",
    "HostFindingOut",
    "HostReportAck",
    "HostReportBrief",
    "HostReportIn",
    "HostReportOut",
    "Page",
    "StatusOut",
]

T = TypeVar("T")


class HostFindingIn(BaseModel):
    """One finding as the agent emits it (``minewatch agent scan --format jsonl``)."""

    model_config = ConfigDict(extra="ignore")

    verdict: Literal["mining", "storage-mining", "blockchain-node"]
    kind: str = Field(min_length=1, max_length=40)
    entity: str = Field(min_length=1, max_length=4096)
    coin: str | None = Field(default=None, max_length=12)
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list, max_length=200)
    capacity_bytes: int | None = Field(default=None, ge=0, le=2**63 - 1)  # BIGINT column
    count: int | None = Field(default=None, ge=0, le=2**31 - 1)  # INTEGER column
    pid: int | None = Field(default=None, ge=0, le=2**31 - 1)
    path: str | None = Field(default=None, max_length=4096)


class HostReportIn(BaseModel):
    """One agent scan; ``report_id`` is chosen by the agent once and kept across retries."""

    model_config = ConfigDict(extra="forbid")

    report_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    hostname: str = Field(min_length=1, max_length=255)
    agent_version: str = Field(min_length=1, max_length=40)
    scanned_at: AwareDatetime
    findings: list[HostFindingIn] = Field(default_factory=list, max_length=10_000)
    blind_spots: list[str] = Field(default_factory=list, max_length=1_000)


class HostReportAck(BaseModel):
    """The answer to a delivered report: ``created`` is False when it had arrived before."""

    id: int
    report_id: str
    created: bool
    url: str


class HostFindingOut(HostFindingIn):
    """A stored finding."""

    id: int


class HostReportBrief(BaseModel):
    """The short form of a report used in lists with ``brief=true``."""

    id: int
    url: str
    report_id: str
    hostname: str


class HostReportOut(HostReportBrief):
    """A stored report with its findings."""

    agent_version: str
    scanned_at: dt.datetime
    received_at: dt.datetime
    region_code: str
    submitted_by: str
    blind_spots: list[str]
    findings: list[HostFindingOut]


class Page(BaseModel, Generic[T]):
    """A NetBox-style page: total ``count``, links to the neighbours, and the rows."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


class StatusOut(BaseModel):
    """What the server is and who is asking."""

    minewatch_version: str
    database: str
    user: str
    role: str
    region_code: str
    write_enabled: bool
