"""``/api/v1/ip-lists/``: push an IP list down to the regions that must act on it.

National monitoring (or a province) posts a named list of addresses; each address is attributed
through the registry and the list becomes one ``ip-list`` lead per tenant and data centre, in
that data centre's region (see :mod:`minewatch.ledger.ip_lists`). Only analysts and admins may
push; leads are opened only inside the caller's subtree — addresses that lie elsewhere are refused
and listed in the answer. Posting the same list again opens nothing new.

Example::

    >>> sorted(r.path for r in router.routes)
    ['/api/v1/ip-lists/']
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from minewatch.api.deps import PrincipalDep, SessionDep, require_write
from minewatch.errors import InputError
from minewatch.ledger import cases as workflow
from minewatch.ledger.ip_lists import MAX_LIST_ADDRESSES, push_down_ip_list

__all__ = ["IpListIn", "IpListOut", "router"]

router = APIRouter(prefix="/api/v1", tags=["cases"])


class IpListIn(BaseModel):
    """A named list of addresses to push down."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60, description="e.g. NDRC-2026-W48")
    addresses: list[str] = Field(min_length=1, max_length=MAX_LIST_ADDRESSES)
    reason: str = Field(default="", max_length=2000)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            try:
                out.append(str(ipaddress.ip_address(value.strip())))
            except ValueError as exc:
                raise ValueError(f"{value[:60]!r} is not an IPv4 or IPv6 address") from exc
        return out


class PushedLeadOut(BaseModel):
    """One lead of the list: new, or already opened by an earlier push of the same list."""

    case_id: int
    url: str
    region_code: str
    title: str
    addresses: int
    created: bool


class IpListOut(BaseModel):
    """What the push did."""

    name: str
    created: int
    leads: list[PushedLeadOut]
    unplaced: int = Field(description="addresses the registry could not place")
    outside_region: list[str] = Field(description="addresses refused: outside your region")
    duplicates: int


@router.post("/ip-lists/", response_model=IpListOut, status_code=status.HTTP_201_CREATED)
def push_ip_list(
    body: IpListIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> IpListOut:
    """Attribute a list of addresses and open one lead per tenant/site in its region."""
    require_write(principal, workflow.ACTIONS["open"])
    try:
        result = push_down_ip_list(
            session, principal, body.name, body.addresses, reason=body.reason
        )
        session.commit()
    except workflow.NotPermittedError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except InputError as exc:
        session.rollback()
        raise HTTPException(422, str(exc)) from exc
    except BaseException:
        session.rollback()
        raise
    return IpListOut(
        name=result.list_name,
        created=result.created,
        leads=[
            PushedLeadOut(
                case_id=lead.case_id,
                url=str(request.url_for("get_case", pk=lead.case_id)),
                region_code=lead.region_code,
                title=lead.title,
                addresses=lead.addresses,
                created=lead.created,
            )
            for lead in result.leads
        ],
        unplaced=result.unplaced,
        outside_region=result.outside_region,
        duplicates=result.duplicates,
    )
