"""Administrative region codes and the subtree rule that scopes every read and write.

Codes are the six-digit codes of China's administrative divisions (GB/T 2260): two digits of
province, two of city (prefecture), two of county. ``000000`` stands for the nation. A user at a
region reaches that region and everything below it: a province user sees its cities and counties,
a city user its counties, a county user only itself. The rule is computed from the code's
structure, so it also holds for regions the registry has not imported yet.

Example::

    >>> within("110105", "110000"), within("120101", "110000"), within("110105", "000000")
    (True, False, True)
    >>> scope_prefix("110100")
    '1101'
"""

from __future__ import annotations

import re

from minewatch.errors import InputError

__all__ = ["NATIONAL", "check_code", "scope_prefix", "within"]

NATIONAL = "000000"
_CODE = re.compile(r"^\d{6}$")


def check_code(code: str) -> str:
    """Return ``code`` when it is a well-formed region code, else raise :class:`InputError`."""
    if not _CODE.fullmatch(code or ""):
        raise InputError(
            f"region code {code!r} is not valid: give six digits, e.g. 110000 (a province), "
            f"110100 (a city), 110105 (a county) or {NATIONAL} (national)"
        )
    return code


def scope_prefix(code: str) -> str:
    """The code prefix shared by every region inside ``code``'s subtree ('' for national)."""
    check_code(code)
    if code == NATIONAL:
        return ""
    if code[2:] == "0000":
        return code[:2]
    if code[4:] == "00":
        return code[:4]
    return code


def within(code: str, scope: str) -> bool:
    """Whether region ``code`` lies inside the subtree of region ``scope`` (inclusive)."""
    return check_code(code).startswith(scope_prefix(scope))
