"""A small fake NetBox REST API, served for real (uvicorn on loopback), for the NetBox import.

It answers what pynetbox asks of a NetBox: ``/api/`` and ``/api/status/`` with the
``API-Version`` header, and the list endpoints with NetBox's JSON shapes (4.2 style: absolute
``url``, ``display``, brief nested objects, ``custom_fields``, prefixes scoped with
``scope_type``/``scope``) and its limit/offset pagination (``count``, ``next``, ``previous``,
``results``; ``limit=0`` means the largest page; pages are capped at ``max_page_size``, kept small
so that every list spans several pages). Authentication is checked as NetBox does it
(``Authorization: Token <key>``); a wrong token gets ``auth_failure_status`` (NetBox answers 403
``Invalid token``; 401 can be chosen). ``failures`` makes one endpoint fail from some offset on,
to test a failure in the middle of an import.

The data is the sample province (Zhejiang) of ``src/minewatch/data/sample/registry`` as a NetBox
would hold it, plus what a real NetBox also holds and the import must cope with (see
:func:`sample_province`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

API_VERSION = "4.2"
NETBOX_VERSION = "4.2.1"

ENDPOINT_PATHS = {
    "regions": "dcim/regions",
    "sites": "dcim/sites",
    "locations": "dcim/locations",
    "tenants": "tenancy/tenants",
    "racks": "dcim/racks",
    "prefixes": "ipam/prefixes",
    "devices": "dcim/devices",
    "virtual_machines": "virtualization/virtual-machines",
    "power_panels": "dcim/power-panels",
    "power_feeds": "dcim/power-feeds",
}

Obj = dict[str, Any]


def _status(value: str) -> Obj:
    return {"value": value, "label": value.capitalize()}


class _Builder:
    """Builds NetBox objects with ids, urls and brief nested forms, as NetBox serialises them."""

    def __init__(self) -> None:
        self.objects: dict[str, list[Obj]] = {key: [] for key in ENDPOINT_PATHS}

    def add(self, key: str, display: str, fields: Obj) -> Obj:
        number = len(self.objects[key]) + 1
        path = ENDPOINT_PATHS[key]
        obj: Obj = {
            "id": number,
            "url": f"/api/{path}/{number}/",
            "display_url": f"/{path}/{number}/",
            "display": display,
            **fields,
            "tags": [],
            "created": "2025-03-01T08:00:00.000000Z",
            "last_updated": "2025-03-01T08:00:00.000000Z",
        }
        obj.setdefault("description", "")
        obj.setdefault("comments", "")
        obj.setdefault("custom_fields", {})
        self.objects[key].append(obj)
        return obj

    @staticmethod
    def brief(obj: Obj | None, *extra: str) -> Obj | None:
        if obj is None:
            return None
        keys = ("id", "url", "display", "name", "slug", "description", *extra)
        return {k: obj[k] for k in keys if k in obj}


def sample_province() -> dict[str, list[Obj]]:
    """The sample registry in NetBox form, plus objects the import must skip or add.

    Mirrors the CSV sample row for row (3 sites, 5 tenants, 9 racks, 16 prefixes, 11 hosts,
    4 meter accounts), with the region code found three ways (site custom field, region slug,
    region description), prefixes scoped to a site, a location or nothing, hosts as devices and
    virtual machines, and one meter account on two feeds (A and B). Extra: one prefix scoped to
    a region (no data centre), one virtual machine with a site, and objects that are not
    registry rows: an unnamed device, a patch panel, a virtual machine without a site, a feed
    without a meter account.
    """
    b = _Builder()
    brief = b.brief

    def region(name: str, slug: str, parent: Obj | None, description: str = "") -> Obj:
        depth = 0 if parent is None else parent["_depth"] + 1
        return b.add(
            "regions",
            name,
            {
                "name": name,
                "slug": slug,
                "parent": brief(parent, "_depth"),
                "description": description,
                "site_count": 0,
                "_depth": depth,
            },
        )

    zhejiang = region("浙江省", "zhejiang", None, "330000")
    hangzhou = region("杭州市", "hangzhou", zhejiang, "330100")
    yuhang = region("余杭区", "yuhang", hangzhou)
    xiaoshan = region("萧山区", "330109", hangzhou)
    quzhou = region("衢州市", "quzhou", zhejiang, "330800")
    kecheng = region("柯城区", "kecheng", quzhou, "行政区划代码 330802")

    def tenant(name: str, slug: str, credit: str | None, business: str | None, desc: str) -> Obj:
        return b.add(
            "tenants",
            name,
            {
                "name": name,
                "slug": slug,
                "group": None,
                "description": desc,
                "custom_fields": {"credit_code": credit, "declared_business": business},
            },
        )

    cloud = tenant(
        "杭州星联云计算有限公司", "xinglian", "91330110MA2GXL7K37", "cloud computing", "云"
    )
    chain = tenant(
        "浙江恒链区块链技术有限公司",
        "henglian",
        "91330100MA28YQ6N1Y",
        "blockchain node hosting",
        "",
    )
    storage = tenant(
        "杭州千峰分布式存储有限公司",
        "qianfeng",
        "91330109MA2H4C8R53",
        "IPFS distributed storage",
        "",
    )
    ai = tenant(
        "衢州数智人工智能有限公司", "shuzhi-ai", "91330802MA2DT5WJ0A", "AI model training", ""
    )
    web = tenant("杭州易数网络科技有限公司", "yishu", None, None, "web hosting")

    def site(
        name: str,
        slug: str,
        where: Obj,
        address: str,
        custom: Obj,
    ) -> Obj:
        return b.add(
            "sites",
            name,
            {
                "name": name,
                "slug": slug,
                "status": _status("active"),
                "region": brief(where, "site_count", "_depth"),
                "group": None,
                "tenant": None,
                "facility": "",
                "time_zone": "Asia/Shanghai",
                "physical_address": address,
                "shipping_address": "",
                "latitude": None,
                "longitude": None,
                "asns": [],
                "custom_fields": custom,
            },
        )

    yh = site(
        "余杭云谷数据中心",
        "yh",
        yuhang,
        "浙江省杭州市余杭区仓前街道示例路 1 号",
        {
            "region_code": "330110",
            "operator": "杭州云谷数据科技有限公司",
            "capacity_kw": 12000,
            "pue": 1.32,
        },
    )
    xs = site(
        "萧山临江数据中心",
        "xs",
        xiaoshan,
        "浙江省杭州市萧山区临江街道示例路 8 号",
        {
            "region_code": None,
            "operator": "杭州临江信息服务有限公司",
            "capacity_kw": 6000,
            "pue": 1.41,
        },
    )
    qz = site(
        "衢州柯城智算中心",
        "qz",
        kecheng,
        "浙江省衢州市柯城区示例大道 66 号",
        {"region_code": None, "operator": "衢州数智算力有限公司", "capacity_kw": 8000, "pue": 1.25},
    )
    hall = b.add(
        "locations",
        "Hall 2",
        {
            "name": "Hall 2",
            "slug": "xs-hall-2",
            "site": brief(xs),
            "parent": None,
            "status": _status("active"),
            "tenant": None,
            "rack_count": 4,
            "_depth": 0,
        },
    )

    racks: dict[str, Obj] = {}
    for at, name, who in (
        (yh, "A01", cloud),
        (yh, "A02", cloud),
        (yh, "B07", None),
        (xs, "R03", chain),
        (xs, "R12", storage),
        (xs, "R13", storage),
        (xs, "R20", web),
        (qz, "G01", ai),
        (qz, "G02", ai),
    ):
        racks[name] = b.add(
            "racks",
            name,
            {
                "name": name,
                "facility_id": None,
                "site": brief(at),
                "location": brief(hall) if at is xs else None,
                "tenant": brief(who),
                "status": _status("active"),
                "role": None,
                "u_height": 42,
                "custom_fields": {},
            },
        )

    def prefix(
        text: str, scope: Obj | None, scope_type: str | None, who: Obj | None, d: str
    ) -> None:
        b.add(
            "prefixes",
            text,
            {
                "family": {
                    "value": 6 if ":" in text else 4,
                    "label": "IPv6" if ":" in text else "IPv4",
                },
                "prefix": text,
                "vrf": None,
                "scope_type": scope_type,
                "scope_id": scope["id"] if scope else None,
                "scope": brief(scope),
                "tenant": brief(who),
                "vlan": None,
                "status": _status("active"),
                "role": None,
                "is_pool": False,
                "mark_utilized": False,
                "description": d,
                "children": 0,
                "_depth": 0,
            },
        )

    s, loc = "dcim.site", "dcim.location"
    prefix("10.11.0.0/16", yh, s, None, "Yuhang site internal")
    prefix("10.11.16.0/20", yh, s, cloud, "cloud tenant servers")
    prefix("203.0.113.0/25", yh, s, cloud, "cloud tenant public addresses")
    prefix("2001:db8:1100::/40", yh, s, None, "Yuhang site IPv6")
    prefix("2001:db8:1101::/48", None, None, cloud, "cloud tenant IPv6")
    prefix("10.12.0.0/16", xs, s, None, "Xiaoshan site internal")
    prefix("10.12.8.0/22", hall, loc, chain, "blockchain node hosting")
    prefix("10.12.32.0/20", hall, loc, storage, "storage cluster")
    prefix("10.12.40.0/24", xs, s, web, "web hosting")
    prefix("203.0.113.128/26", xs, s, storage, "storage public addresses")
    prefix("2001:db8:1200::/40", xs, s, None, "Xiaoshan site IPv6")
    prefix("2001:db8:1232::/48", xs, s, storage, "storage cluster IPv6")
    prefix("10.13.0.0/16", qz, s, None, "Quzhou site internal")
    prefix("10.13.64.0/18", qz, s, ai, "GPU training cluster")
    prefix("198.51.100.0/24", qz, s, ai, "AI tenant public addresses")
    prefix("2001:db8:1300::/40", qz, s, None, "Quzhou site IPv6")
    prefix("10.14.0.0/16", hangzhou, "dcim.region", None, "Hangzhou metro aggregate")

    def device(name: str | None, at: Obj, who: Obj | None, rack: Obj | None) -> None:
        b.add(
            "devices",
            name or f"Device {len(b.objects['devices']) + 1}",
            {
                "name": name,
                "device_type": {"id": 1, "display": "PowerEdge R750", "model": "PowerEdge R750"},
                "role": {"id": 1, "display": "Server", "name": "Server", "slug": "server"},
                "tenant": brief(who),
                "platform": None,
                "serial": "",
                "site": brief(at),
                "location": None,
                "rack": brief(rack),
                "position": None,
                "status": _status("active"),
                "primary_ip": None,
                "custom_fields": {},
            },
        )

    def machine(name: str, at: Obj | None, who: Obj | None) -> None:
        b.add(
            "virtual_machines",
            name,
            {
                "name": name,
                "status": _status("active"),
                "site": brief(at),
                "cluster": {"id": 1, "display": "kvm-1", "name": "kvm-1"},
                "device": None,
                "role": None,
                "tenant": brief(who),
                "platform": None,
                "primary_ip": None,
                "vcpus": 8.0,
                "memory": 32768,
                "disk": 200,
                "custom_fields": {},
            },
        )

    device("yh-a01-n01", yh, cloud, racks["A01"])
    device("yh-a01-n02", yh, cloud, racks["A01"])
    device("yh-a02-n01", yh, cloud, racks["A02"])
    device("bastion-01", yh, None, racks["B07"])
    device("xs-r03-n01", xs, chain, racks["R03"])
    device("xs-r12-n03", xs, storage, racks["R12"])
    device("xs-r12-n04", xs, storage, racks["R12"])
    device("bastion-01", xs, None, None)
    device(None, xs, None, racks["R13"])  # unnamed: skipped
    device("Patch panel 1", xs, None, racks["R20"])  # not a hostname: skipped
    machine("xs-r20-web1", xs, web)
    machine("qz-g01-gpu01", qz, ai)
    machine("qz-g02-gpu01", qz, ai)
    machine("qz-vm-infer01", qz, ai)  # extra host
    machine("orphan-vm", None, None)  # no site: skipped

    panels = {
        at["slug"]: b.add(
            "power_panels",
            f"{at['slug'].upper()}-PP1",
            {"name": f"{at['slug'].upper()}-PP1", "site": brief(at), "location": None},
        )
        for at in (yh, xs, qz)
    }

    def feed(name: str, panel: Obj, rack: Obj | None, who: Obj | None, custom: Obj) -> None:
        b.add(
            "power_feeds",
            name,
            {
                "name": name,
                "power_panel": brief(panel),
                "rack": brief(rack),
                "status": _status("active"),
                "type": {"value": "primary", "label": "Primary"},
                "supply": {"value": "ac", "label": "AC"},
                "phase": {"value": "three-phase", "label": "Three-phase"},
                "voltage": 400,
                "amperage": 1250,
                "max_utilization": 80,
                "available_power": 692820,
                "tenant": brief(who),
                "custom_fields": custom,
            },
        )

    feed("YH-A", panels["yh"], None, cloud, {"meter_account": "6374429439", "contracted_kw": 800})
    feed("YH-B", panels["yh"], None, cloud, {"meter_account": "6374429439", "contracted_kw": None})
    feed(
        "XS-R03",
        panels["xs"],
        racks["R03"],
        chain,
        {"meter_account": "1525564735", "contracted_kw": 50},
    )
    # no tenant on the feed: the tenant of its rack is used
    feed(
        "XS-R12",
        panels["xs"],
        racks["R12"],
        None,
        {"meter_account": "2261540648", "contracted_kw": 50.0},
    )
    feed("QZ-MAIN", panels["qz"], None, ai, {"meter_account": "3308020417", "contracted_kw": 3000})
    feed("XS-LIGHTING", panels["xs"], None, None, {"meter_account": None, "contracted_kw": None})
    return b.objects


@dataclass
class FakeNetbox:
    """The fake NetBox's state: its data, the accepted token, and failures to inject."""

    token: str
    objects: dict[str, list[Obj]] = field(default_factory=sample_province)
    max_page_size: int = 3
    auth_failure_status: int = 403
    failures: dict[str, tuple[int, int]] = field(default_factory=dict)
    """``endpoint key -> (HTTP status, first failing offset)``."""
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    """``(path, query, Authorization header)`` of every request served."""

    def app(self) -> FastAPI:
        """The ASGI app serving this state."""
        app = FastAPI()
        fake = self

        def answer(request: Request, body: Any, status: int = 200) -> JSONResponse:
            base = str(request.base_url).rstrip("/")
            return JSONResponse(
                _absolute(body, base), status_code=status, headers={"API-Version": API_VERSION}
            )

        def authorised(request: Request) -> JSONResponse | None:
            header = request.headers.get("authorization", "")
            fake.requests.append((request.url.path, request.url.query, header))
            if not header:
                return answer(
                    request, {"detail": "Authentication credentials were not provided."}, 403
                )
            if header not in (f"Token {fake.token}", f"Bearer {fake.token}"):
                return answer(request, {"detail": "Invalid token"}, fake.auth_failure_status)
            return None

        @app.get("/api/")
        def root(request: Request) -> JSONResponse:
            denied = authorised(request)
            if denied is not None:
                return denied
            apps = ("circuits", "core", "dcim", "extras", "ipam", "tenancy", "virtualization")
            return answer(request, {a: f"/api/{a}/" for a in apps})

        @app.get("/api/status/")
        def status(request: Request) -> JSONResponse:
            denied = authorised(request)
            if denied is not None:
                return denied
            return answer(
                request,
                {
                    "django-version": "5.1.4",
                    "installed-apps": {"django_filters": "24.3", "rest_framework": "3.15.2"},
                    "netbox-version": NETBOX_VERSION,
                    "plugins": {},
                    "python-version": "3.12.3",
                    "rq-workers-running": 1,
                },
            )

        for key, path in ENDPOINT_PATHS.items():
            app.add_api_route(f"/api/{path}/", _lister(fake, key, answer, authorised))
        return app


def _lister(
    fake: FakeNetbox,
    key: str,
    answer: Callable[..., JSONResponse],
    authorised: Callable[[Request], JSONResponse | None],
) -> Callable[[Request], JSONResponse]:
    def handler(request: Request) -> JSONResponse:
        denied = authorised(request)
        if denied is not None:
            return denied
        try:
            limit = int(request.query_params.get("limit", "50"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            return answer(request, {"detail": "Invalid limit or offset."}, 400)
        limit = fake.max_page_size if limit <= 0 else min(limit, fake.max_page_size)
        if key in fake.failures and offset >= fake.failures[key][1]:
            return answer(
                request,
                {
                    "error": "database is down",
                    "exception": "OperationalError",
                    "netbox_version": NETBOX_VERSION,
                },
                fake.failures[key][0],
            )
        items = fake.objects.get(key, [])
        base = str(request.url).split("?", 1)[0]
        others = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}

        def link(at: int) -> str:
            return f"{base}?{urlencode({**others, 'limit': limit, 'offset': at})}"

        return answer(
            request,
            {
                "count": len(items),
                "next": link(offset + limit) if offset + limit < len(items) else None,
                "previous": link(max(offset - limit, 0)) if offset > 0 else None,
                "results": copy.deepcopy(items[offset : offset + limit]),
            },
        )

    return handler


def _absolute(body: Any, base: str) -> Any:
    """NetBox gives absolute URLs in ``url`` and ``display_url``; the data holds paths."""
    if isinstance(body, dict):
        return {
            k: base + v
            if k in ("url", "display_url") and isinstance(v, str) and v.startswith("/")
            else _absolute(v, base)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [_absolute(v, base) for v in body]
    return body
