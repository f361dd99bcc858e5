"""Importing the data-centre registry from NetBox, through the same checks as the CSV import.

Many operators already keep their sites, racks, tenants, prefixes and power feeds in NetBox, so
the registry can be read from its REST API (with ``pynetbox``, the optional extra ``netbox``)
instead of being exported to CSV by hand. Every NetBox object is turned into the row the CSV
import would read (:class:`~minewatch.ledger.registry.RegistryRow`) and handed to
:func:`~minewatch.ledger.registry.import_rows`: one path checks and writes both sources, so the
same rules (references, credit codes, region codes, prefixes without host bits, duplicate keys)
hold and importing twice changes nothing.

Mapping (every custom-field name is a field of :class:`NetboxMapping`; the defaults are shown):

=====================  ==================================================================
NetBox                 minewatch
=====================  ==================================================================
dcim.sites             data centre: ``name``; operator from custom field ``operator``, else
                       the site's tenant; address from ``physical_address``, else
                       ``shipping_address``; capacity and PUE from custom fields
                       ``capacity_kw`` and ``pue``; region code: see below
tenancy.tenants        tenant: ``name``; credit code from custom field ``credit_code``;
                       declared business from custom field ``declared_business``, else the
                       tenant's ``description``
dcim.racks             rack: site, ``name``, tenant
ipam.prefixes          prefix: ``prefix``, tenant, ``description``; data centre from ``site``
                       (NetBox < 4.2), or the scope when it is a site or a location (4.2+);
                       a region or site-group scope names no data centre
dcim.devices,          host: ``name`` in its ``site``, tenant. Unnamed ones, names with white
virtualization.        space (patch panels, PDUs: not hostnames) and virtual machines without a
virtual_machines       site are skipped and listed
dcim.power-feeds       power account: the meter account id from custom field ``meter_account``;
                       the site of the feed's power panel; the feed's tenant, else its rack's;
                       contracted kW from custom field ``contracted_kw``. Feeds without an
                       account are skipped and listed; feeds sharing one account (A and B
                       feeds on one meter) become one account and must agree on site, tenant
                       and contracted kW
=====================  ==================================================================

*Region code.* NetBox regions carry no administrative code, so it is looked for, in the order of
:attr:`NetboxMapping.region_sources`: ``custom_field`` (the site's custom field
``region_code``), ``region_slug`` and ``region_description`` (a single six-digit group in the
slug or description of the site's own region, e.g. slug ``330110`` or ``cn-330110``, description
``余杭区 330110``). Parent regions are not consulted: a coarser code would hide the site from the
county that answers for it.

*All or nothing.* Everything is fetched first (regions, sites, locations, tenants, racks,
prefixes, devices, virtual machines, power panels and feeds, page by page); an HTTP error, a bad
token, an unreachable server or an answer that is not NetBox's stops the import with an
:class:`~minewatch.errors.InputError` naming the URL and the status before anything is written.
The token goes only into the ``Authorization`` header: it is never logged or shown.

Example::

    with session_factory(engine)() as session:
        result = import_netbox(session, "https://netbox.example", token)
        session.commit()
    print("\\n".join(result.lines()))
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.ledger.registry import ImportSummary, RegistryError, RegistryRow, import_rows

__all__ = [
    "ENDPOINTS",
    "NetboxImport",
    "NetboxMapping",
    "NetboxSnapshot",
    "fetch_netbox",
    "import_netbox",
    "rows_from_netbox",
]

_SIX_DIGITS = re.compile(r"(?<!\d)\d{6}(?!\d)")
_WHITE_SPACE = re.compile(r"\s")
_REGION_SOURCES = frozenset({"custom_field", "region_slug", "region_description"})

ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("regions", "dcim", "regions"),
    ("sites", "dcim", "sites"),
    ("locations", "dcim", "locations"),
    ("tenants", "tenancy", "tenants"),
    ("racks", "dcim", "racks"),
    ("prefixes", "ipam", "prefixes"),
    ("devices", "dcim", "devices"),
    ("virtual_machines", "virtualization", "virtual_machines"),
    ("power_panels", "dcim", "power_panels"),
    ("power_feeds", "dcim", "power_feeds"),
)
"""What is read: (key in :attr:`NetboxSnapshot.objects`, pynetbox app, endpoint)."""


@dataclass(frozen=True, slots=True)
class NetboxMapping:
    """Where the fields minewatch needs live in a NetBox installation (see the module doc).

    Load one from a TOML file whose keys are these field names::

        region_field = "gb2260"
        meter_account_field = "grid_account"
        hosts_from = ["devices"]
    """

    region_field: str = "region_code"
    region_sources: tuple[str, ...] = ("custom_field", "region_slug", "region_description")
    operator_field: str = "operator"
    capacity_field: str = "capacity_kw"
    pue_field: str = "pue"
    credit_code_field: str = "credit_code"
    declared_business_field: str = "declared_business"
    meter_account_field: str = "meter_account"
    contracted_kw_field: str = "contracted_kw"
    hosts_from: tuple[str, ...] = ("devices", "virtual_machines")
    """``devices`` and/or ``virtual_machines``."""
    page_size: int = 500
    """Objects asked for per request (NetBox caps it at its ``MAX_PAGE_SIZE``)."""
    timeout_s: float = 30.0
    """Seconds to wait for NetBox to connect or answer, per request."""

    def __post_init__(self) -> None:
        unknown = set(self.region_sources) - _REGION_SOURCES
        if unknown or not self.region_sources:
            raise InputError(f"region_sources must be some of {', '.join(sorted(_REGION_SOURCES))}")
        if not set(self.hosts_from) <= {"devices", "virtual_machines"}:
            raise InputError("hosts_from must be some of devices, virtual_machines")
        if self.page_size < 1 or not 0 < self.timeout_s <= 600:
            raise InputError("page_size must be >= 1 and timeout_s in (0, 600]")

    @classmethod
    def from_toml(cls, path: Path) -> NetboxMapping:
        """Read a mapping file; keys not given keep their defaults, unknown keys are refused."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"{path}: not a TOML file: {exc}") from exc
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InputError(
                f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(cls(), key)
            if isinstance(default, tuple):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InputError(f"{path}: {key} must be a list of strings")
                value = tuple(value)
            elif isinstance(default, str) and not (isinstance(value, str) and value):
                raise InputError(f"{path}: {key} must be a non-empty string")
            elif isinstance(default, int | float) and (
                isinstance(value, bool)
                or not isinstance(value, int if isinstance(default, int) else int | float)
            ):
                raise InputError(f"{path}: {key} must be a number")
            values[key] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class NetboxSnapshot:
    """What was read from one NetBox: its version and the objects as NetBox's JSON gave them.

    Example::

        snapshot = fetch_netbox("https://netbox.example", token)
        rows, skipped = rows_from_netbox(snapshot)
    """

    url: str
    version: str
    objects: dict[str, list[dict[str, Any]]]


@dataclass(slots=True)
class NetboxImport:
    """The outcome of :func:`import_netbox`: the registry counts plus what NetBox held.

    Example::

        result = import_netbox(session, "https://netbox.example", token)
        result.summary.counts["ip_prefixes"].added, result.skipped
    """

    summary: ImportSummary
    version: str
    fetched: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    """``where: why`` for each NetBox object that does not map to a registry row."""

    def lines(self) -> list[str]:
        """For people: the version, the counts per kind, what was skipped."""
        read = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.fetched.items())
        out = [f"NetBox {self.version}: read {read}", *self.summary.lines()]
        out.append(f"skipped: {len(self.skipped)} NetBox object(s)")
        out.extend(f"  {line}" for line in self.skipped)
        return out


# --------------------------------------------------------------------------------------- fetching


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise InputError("NetBox import needs pynetbox: pip install 'minewatch[netbox]'") from None


def _api_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"NetBox URL {url!r} is not an http(s) URL such as https://netbox.example")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError(
            "give the NetBox URL without user, password, query or fragment; "
            "the token goes in --token-file or MINEWATCH_NETBOX_TOKEN"
        )
    return url.strip().rstrip("/")


def _http_problem(exc: BaseException, api_url: str, requests: ModuleType) -> InputError:
    """One line naming the URL and what went wrong; never the request's headers (the token)."""
    req = getattr(exc, "req", None)
    if req is not None and getattr(req, "status_code", None) is not None:
        detail = ""
        try:
            body = req.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            detail = f": {body['detail'][:200]}"
        if req.ok:
            return InputError(
                f"NetBox {req.url} answered HTTP {req.status_code} with something that is not "
                "NetBox's JSON; is this the NetBox URL?"
            )
        hint = " (check the token)" if req.status_code in (401, 403) else ""
        return InputError(
            f"NetBox {req.url} answered HTTP {req.status_code} {req.reason}{detail}{hint}; "
            "nothing was imported"
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return InputError(
            f"NetBox {api_url}: TLS certificate not accepted (give the CA with --ca-file); "
            "nothing was imported"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return InputError(f"NetBox {api_url} did not answer in time; nothing was imported")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return InputError(f"cannot reach NetBox at {api_url}; nothing was imported")
    return InputError(
        f"NetBox {api_url}: {exc.__class__.__name__} while reading; nothing was imported"
    )


def fetch_netbox(
    url: str,
    token: str | None,
    mapping: NetboxMapping | None = None,
    *,
    ca_file: Path | None = None,
) -> NetboxSnapshot:
    """Read everything the registry needs from the NetBox at ``url`` (its web root).

    ``token`` (None: anonymous, where NetBox allows it) is sent only in the Authorization
    header. ``ca_file`` is a PEM bundle to verify the server's certificate with (default: the
    system's). Raises :class:`InputError` naming the URL and status on any failure.
    """
    mapping = mapping or NetboxMapping()
    base = _api_url(url)
    pynetbox = _module("pynetbox")
    requests = _module("requests")
    api = pynetbox.api(base, token=token or None)
    session = requests.Session()
    plain_request = session.request

    def bounded_request(method: str, target: str, **kwargs: Any) -> Any:
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a
        # session's ``verify``, and an explicit CA file must win over the environment.
        kwargs.setdefault("timeout", mapping.timeout_s)
        if ca_file is not None:
            kwargs.setdefault("verify", str(ca_file))
        return plain_request(method, target, **kwargs)

    session.request = bounded_request
    api.http_session = session
    errors = (pynetbox.RequestError, pynetbox.ContentError, requests.exceptions.RequestException)
    try:
        status = api.status()
        if not isinstance(status, dict) or not isinstance(status.get("netbox-version"), str):
            raise InputError(f"NetBox {base}/api/status/ does not look like NetBox's status")
        objects: dict[str, list[dict[str, Any]]] = {}
        for key, app, name in ENDPOINTS:
            if key in ("devices", "virtual_machines") and key not in mapping.hosts_from:
                objects[key] = []
                continue
            endpoint = getattr(getattr(api, app), name)
            objects[key] = [dict(record) for record in endpoint.all(limit=mapping.page_size)]
    except errors as exc:
        raise _http_problem(exc, f"{base}/api/", requests) from None
    finally:
        session.close()
    return NetboxSnapshot(
        url=f"{base}/api/", version=str(status["netbox-version"]), objects=objects
    )


# --------------------------------------------------------------------------------------- mapping


def _where(obj: Mapping[str, Any], what: str) -> str:
    name = obj.get("display") or obj.get("name") or obj.get("prefix") or obj.get("id")
    return f"NetBox {obj.get('url') or what + ' ' + str(obj.get('id'))} ({name})"


def _name(nested: Any) -> str:
    """The ``name`` of a nested object (``{"id": 3, "name": ...}``), or empty when there is none."""
    if isinstance(nested, Mapping):
        return str(nested.get("name") or "")
    return ""


def _nested_id(nested: Any) -> int | None:
    if isinstance(nested, Mapping) and isinstance(nested.get("id"), int):
        return int(nested["id"])
    return None


def _cell(obj: Mapping[str, Any], key: str, where: str) -> str:
    """A custom field as the text the CSV import would read."""
    custom = obj.get("custom_fields") or {}
    value = custom.get(key) if isinstance(custom, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RegistryError(
            where, f"custom field {key} holds {type(value).__name__}, expected text or a number"
        )
    return str(value)


def _region_code(
    site: Mapping[str, Any], regions: Mapping[int, Mapping[str, Any]], mapping: NetboxMapping
) -> str:
    region_id = _nested_id(site.get("region"))
    region: Mapping[str, Any] = regions.get(region_id, {}) if region_id is not None else {}
    if not region and isinstance(site.get("region"), Mapping):
        region = site["region"]
    where = _where(site, "site")
    for source in mapping.region_sources:
        if source == "custom_field":
            text = _cell(site, mapping.region_field, where)
            if text:
                return text
            continue
        text = str(region.get("slug" if source == "region_slug" else "description") or "")
        codes = _SIX_DIGITS.findall(text)
        if len(codes) == 1:
            return str(codes[0])
    raise RegistryError(
        where,
        f"no six-digit region code: set custom field {mapping.region_field} on the site, or put "
        f"the code in its region's slug or description (looked at: "
        f"{', '.join(mapping.region_sources)})",
    )


def _site_rows(snapshot: NetboxSnapshot, mapping: NetboxMapping) -> Iterable[RegistryRow]:
    regions = {r["id"]: r for r in snapshot.objects.get("regions", []) if "id" in r}
    for site in snapshot.objects.get("sites", []):
        where = _where(site, "site")
        yield RegistryRow(
            "data_centres",
            where,
            {
                "name": str(site.get("name") or ""),
                "operator": _cell(site, mapping.operator_field, where) or _name(site.get("tenant")),
                "address": str(site.get("physical_address") or site.get("shipping_address") or ""),
                "region_code": _region_code(site, regions, mapping),
                "capacity_kw": _cell(site, mapping.capacity_field, where),
                "pue": _cell(site, mapping.pue_field, where),
            },
        )


def _tenant_rows(snapshot: NetboxSnapshot, mapping: NetboxMapping) -> Iterable[RegistryRow]:
    for tenant in snapshot.objects.get("tenants", []):
        where = _where(tenant, "tenant")
        declared = _cell(tenant, mapping.declared_business_field, where)
        yield RegistryRow(
            "tenants",
            where,
            {
                "name": str(tenant.get("name") or ""),
                "declared_business": declared or str(tenant.get("description") or ""),
                "credit_code": _cell(tenant, mapping.credit_code_field, where),
            },
        )


def _rack_rows(snapshot: NetboxSnapshot) -> Iterable[RegistryRow]:
    for rack in snapshot.objects.get("racks", []):
        yield RegistryRow(
            "racks",
            _where(rack, "rack"),
            {
                "data_centre": _name(rack.get("site")),
                "name": str(rack.get("name") or ""),
                "tenant": _name(rack.get("tenant")),
            },
        )


def _prefix_rows(snapshot: NetboxSnapshot) -> Iterable[RegistryRow]:
    location_site = {
        loc["id"]: _name(loc.get("site")) for loc in snapshot.objects.get("locations", [])
    }
    for prefix in snapshot.objects.get("prefixes", []):
        site = _name(prefix.get("site"))  # NetBox before 4.2
        scope_type = prefix.get("scope_type")
        scope_id = _nested_id(prefix.get("scope")) or prefix.get("scope_id")
        if not site and scope_type == "dcim.site":
            site = _name(prefix.get("scope"))
        elif not site and scope_type == "dcim.location" and isinstance(scope_id, int):
            site = location_site.get(scope_id, "")
        yield RegistryRow(
            "ip_prefixes",
            _where(prefix, "prefix"),
            {
                "prefix": str(prefix.get("prefix") or ""),
                "data_centre": site,
                "tenant": _name(prefix.get("tenant")),
                "description": str(prefix.get("description") or ""),
            },
        )


def _host_rows(snapshot: NetboxSnapshot, skipped: list[str]) -> Iterable[RegistryRow]:
    for key, what in (("devices", "device"), ("virtual_machines", "virtual machine")):
        for host in snapshot.objects.get(key, []):
            where = _where(host, what)
            name = str(host.get("name") or "")
            site = _name(host.get("site"))
            if not name:
                skipped.append(f"{where}: unnamed {what}")
            elif _WHITE_SPACE.search(name):
                skipped.append(f"{where}: name has white space, not a hostname")
            elif not site:
                skipped.append(f"{where}: {what} has no site")
            else:
                yield RegistryRow(
                    "hosts",
                    where,
                    {"data_centre": site, "hostname": name, "tenant": _name(host.get("tenant"))},
                )


def _power_rows(
    snapshot: NetboxSnapshot, mapping: NetboxMapping, skipped: list[str]
) -> Iterable[RegistryRow]:
    panel_site = {p["id"]: _name(p.get("site")) for p in snapshot.objects.get("power_panels", [])}
    rack_tenant = {r["id"]: _name(r.get("tenant")) for r in snapshot.objects.get("racks", [])}
    accounts: dict[str, tuple[str, dict[str, str]]] = {}
    for feed in snapshot.objects.get("power_feeds", []):
        where = _where(feed, "power feed")
        account = _cell(feed, mapping.meter_account_field, where)
        if not account:
            skipped.append(
                f"{where}: no meter account in custom field {mapping.meter_account_field}"
            )
            continue
        panel = _nested_id(feed.get("power_panel"))
        rack = _nested_id(feed.get("rack"))
        values = {
            "account_id": account,
            "data_centre": panel_site.get(panel, "") if panel is not None else "",
            "tenant": _name(feed.get("tenant"))
            or (rack_tenant.get(rack, "") if rack is not None else ""),
            "contracted_kw": _cell(feed, mapping.contracted_kw_field, where),
        }
        if account in accounts:
            first_where, first = accounts[account]
            for key in ("data_centre", "tenant", "contracted_kw"):
                if first[key] != values[key] and first[key] and values[key]:
                    raise RegistryError(
                        where,
                        f"meter account {account} has {key} {values[key]!r} here but "
                        f"{first[key]!r} at {first_where}",
                    )
                first[key] = first[key] or values[key]
            continue
        accounts[account] = (where, values)
    for where, values in accounts.values():
        yield RegistryRow("power_accounts", where, values)


def rows_from_netbox(
    snapshot: NetboxSnapshot, mapping: NetboxMapping | None = None
) -> tuple[list[RegistryRow], list[str]]:
    """NetBox objects -> registry rows (as the CSV import reads them), and what was skipped.

    Raises :class:`RegistryError` (``NetBox <object url> (<name>): reason``) where an object
    cannot be mapped at all (no region code, a custom field of the wrong type, feeds of one
    meter account that disagree); the registry's own checks follow in :func:`import_rows`.
    """
    mapping = mapping or NetboxMapping()
    skipped: list[str] = []
    producers: list[Callable[[], Iterable[RegistryRow]]] = [
        lambda: _site_rows(snapshot, mapping),
        lambda: _tenant_rows(snapshot, mapping),
        lambda: _rack_rows(snapshot),
        lambda: _prefix_rows(snapshot),
        lambda: _host_rows(snapshot, skipped),
        lambda: _power_rows(snapshot, mapping, skipped),
    ]
    rows = [row for produce in producers for row in produce()]
    return rows, skipped


def import_netbox(
    session: Session,
    url: str,
    token: str | None,
    mapping: NetboxMapping | None = None,
    *,
    ca_file: Path | None = None,
) -> NetboxImport:
    """Read the NetBox at ``url`` and write its registry through ``session`` (not committed).

    Nothing is written unless everything was read and every row passed the registry's checks;
    the caller commits the one transaction (or rolls it back).
    """
    snapshot = fetch_netbox(url, token, mapping, ca_file=ca_file)
    rows, skipped = rows_from_netbox(snapshot, mapping)
    summary = import_rows(session, rows, sources=[snapshot.url])
    fetched = {key: len(objs) for key, objs in snapshot.objects.items()}
    return NetboxImport(summary=summary, version=snapshot.version, fetched=fetched, skipped=skipped)
