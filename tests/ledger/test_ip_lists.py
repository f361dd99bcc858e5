"""Pushing an IP list down: attribution to the responsible region, idempotence, refusals."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.errors import InputError
from minewatch.ledger.audit import verify
from minewatch.ledger.case_models import Case
from minewatch.ledger.cases import LocalOperator
from minewatch.ledger.ip_lists import push_down_ip_list, read_ip_list

NATIONAL = LocalOperator("adm-nat", role="admin", region_code="000000")
HANGZHOU = LocalOperator("adm-hz", role="admin", region_code="330100")

# Addresses in the bundled sample registry: two Yuhang cloud-tenant addresses (one IPv6), a
# Xiaoshan storage-tenant address, an address in the Yuhang site range with no tenant, an
# address in the Quzhou AI tenant (another city), and two the registry does not know.
LIST = [
    "10.11.16.25",
    "2001:db8:1101::7",
    "10.12.32.9",
    "10.11.200.1",
    "198.51.100.20",
    "192.0.2.1",
    "192.0.2.2",
    "10.11.16.25",
]


def _cases(session: Session) -> list[Case]:
    return list(session.scalars(select(Case).order_by(Case.id)))


def test_a_national_list_becomes_one_lead_per_tenant_in_its_region(
    sample_sessions: sessionmaker[Session],
) -> None:
    with sample_sessions() as session:
        result = push_down_ip_list(session, NATIONAL, "NDRC-2026-W48", LIST)
        session.commit()
        cases = _cases(session)
    assert result.duplicates == 1
    assert result.outside_region == []
    assert result.unplaced == 2
    by_region = {(c.region_code, tuple(sorted(c.ip_addresses))) for c in cases}
    assert by_region == {
        ("330110", ("10.11.16.25", "2001:db8:1101::7")),  # cloud tenant, Yuhang
        ("330110", ("10.11.200.1",)),  # Yuhang site, no tenant
        ("330109", ("10.12.32.9",)),  # storage tenant, Xiaoshan
        ("330802", ("198.51.100.20",)),  # AI tenant, Quzhou
        ("000000", ("192.0.2.1", "192.0.2.2")),  # unknown to the registry: kept, at national
    }
    assert all(c.source == "ip-list" and c.state == "lead" for c in cases)
    assert all(c.source_ref and c.source_ref.startswith("NDRC-2026-W48#") for c in cases)
    assert {c.tenant_id is not None for c in cases} == {True, False}
    assert {c.enterprise for c in cases if c.tenant_id is not None} == {
        "杭州星联云计算有限公司",
        "杭州千峰分布式存储有限公司",
        "衢州数智人工智能有限公司",
    }
    assert result.created == len(cases) == 5


def test_importing_the_same_list_again_adds_nothing(
    sample_sessions: sessionmaker[Session],
) -> None:
    with sample_sessions() as session:
        first = push_down_ip_list(session, NATIONAL, "L1", LIST)
        session.commit()
        again = push_down_ip_list(session, NATIONAL, "L1", LIST)
        session.commit()
        count = session.scalar(select(func.count()).select_from(Case))
        assert verify(session).ok
    assert again.created == 0
    assert [lead.case_id for lead in again.leads] == [lead.case_id for lead in first.leads]
    assert count == first.created


def test_a_city_cannot_act_on_addresses_of_another_region(
    sample_sessions: sessionmaker[Session],
) -> None:
    with sample_sessions() as session:
        result = push_down_ip_list(session, HANGZHOU, "HZ-1", LIST)
        session.commit()
        regions = {c.region_code for c in _cases(session)}
    assert result.outside_region == ["198.51.100.20"]
    assert regions <= {"330110", "330109", "330100"}
    assert "330100" in regions  # the unplaced addresses stay with the importer


def test_a_bad_line_fails_the_whole_list_naming_it() -> None:
    text = "ip,note\n10.11.16.25,ok\n10.11.16.300,typo\n"
    with pytest.raises(InputError, match=r"list.csv:3: '10.11.16.300'"):
        read_ip_list(io.StringIO(text), "list.csv")
    with pytest.raises(InputError, match="no IP addresses"):
        read_ip_list(io.StringIO("# nothing\n\n"), "empty.txt")
    with pytest.raises(InputError, match="'ip' column"):
        read_ip_list(io.StringIO("address\n10.0.0.1\n"), "noip.csv")


def test_csv_and_plain_lists_read_alike() -> None:
    csv_text = "note,ip\nfirst,10.0.0.1\nsecond,2001:DB8::1\n"
    plain = "10.0.0.1\n# a comment\n2001:db8::1\n"
    assert read_ip_list(io.StringIO(csv_text), "a") == read_ip_list(io.StringIO(plain), "b")


def test_a_list_needs_a_name(sample_sessions: sessionmaker[Session]) -> None:
    with sample_sessions() as session, pytest.raises(InputError, match="name"):
        push_down_ip_list(session, NATIONAL, "  ", LIST)
