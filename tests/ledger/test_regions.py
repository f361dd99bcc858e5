"""Region subtree rules."""

from __future__ import annotations

import pytest

from minewatch.errors import InputError
from minewatch.ledger.regions import NATIONAL, scope_prefix, within


@pytest.mark.parametrize(
    ("code", "scope", "inside"),
    [
        ("110105", "110000", True),  # county in its province
        ("110105", "110100", True),  # county in its city
        ("110105", "110105", True),  # itself
        ("110100", "110105", False),  # a county does not reach its city
        ("110000", "110100", False),  # nor a city its province
        ("120101", "110000", False),  # neighbouring province
        ("429004", "420000", True),  # county-level city directly under a province
        ("429004", "429000", True),
        ("650000", NATIONAL, True),
    ],
)
def test_within(code: str, scope: str, inside: bool) -> None:
    assert within(code, scope) is inside


@pytest.mark.parametrize("bad", ["", "11", "1100000", "11000a", " 110000"])
def test_malformed_codes_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match="six digits"):
        scope_prefix(bad)
