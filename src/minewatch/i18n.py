"""User-facing messages in English and Simplified Chinese.

The language comes from ``--lang``, else ``MINEWATCH_LANG``, else the locale (``LANG``/``LC_ALL``
starting with ``zh`` selects Chinese). Evidence strings inside findings stay in English: they are
data that other tools parse and that analysts quote in reports.
"""

from __future__ import annotations

import os

__all__ = ["LANGUAGES", "detect_language", "message"]

LANGUAGES = ("en", "zh")

_MESSAGES: dict[str, dict[str, str]] = {
    "summary": {
        "en": (
            "{files} file(s), {packets} packets scanned: "
            "{mining} mining, {nodes} blockchain-node finding(s)"
        ),
        "zh": "已扫描 {files} 个文件、{packets} 个数据包：挖矿 {mining} 条，区块链节点 {nodes} 条",
    },
    "problem": {"en": "error: {problem}", "zh": "错误：{problem}"},
    "no_findings": {"en": "no findings", "zh": "未发现挖矿或区块链节点流量"},
    "scanning": {"en": "scanning", "zh": "扫描中"},
    "no_input": {
        "en": "nothing to scan: give capture files or directories, or --sample",
        "zh": "没有可扫描的内容：请指定抓包文件或目录，或使用 --sample",
    },
    "power_summary": {
        "en": "{mining} mining, {suspect} suspect, {normal} normal accounts; results in {out}",
        "zh": "挖矿 {mining} 户，可疑 {suspect} 户，正常 {normal} 户；结果见 {out}",
    },
    "inspection_list": {
        "en": "inspection list of {n} account(s): {out}",
        "zh": "现场检查清单 {n} 户：{out}",
    },
    "db_ready": {"en": "ledger database ready: {url}", "zh": "台账数据库已就绪：{url}"},
    "token_once": {
        "en": "the token above is shown only once; only its hash is stored",
        "zh": "以上令牌仅显示一次；系统只保存其哈希值",
    },
    "col_verdict": {"en": "VERDICT", "zh": "结论"},
    "col_client": {"en": "CLIENT", "zh": "客户端"},
    "col_server": {"en": "SERVER", "zh": "服务端"},
    "col_protocol": {"en": "PROTOCOL", "zh": "协议"},
    "col_coin": {"en": "COIN", "zh": "币种"},
    "col_confidence": {"en": "CONF", "zh": "置信度"},
    "col_seen": {"en": "FIRST SEEN (UTC) / LAST", "zh": "首次/末次出现 (UTC)"},
    "col_evidence": {"en": "EVIDENCE", "zh": "证据"},
    "col_kind": {"en": "KIND", "zh": "类型"},
    "col_entity": {"en": "ENTITY", "zh": "对象"},
    "col_capacity": {"en": "CAPACITY / COUNT", "zh": "容量 / 数量"},
    "no_host_findings": {
        "en": "no mining, storage mining or blockchain node found on this host",
        "zh": "本机未发现挖矿、存储挖矿或区块链节点",
    },
    "host_summary": {
        "en": "host {host}: {mining} mining, {storage} storage-mining, {nodes} blockchain-node "
        "finding(s); {blind} blind spot(s)",
        "zh": "主机 {host}：挖矿 {mining} 条，存储挖矿 {storage} 条，区块链节点 {nodes} 条；"
        "未能检查 {blind} 项",
    },
    "token_in_argv": {
        "en": "warning: --token is visible to every local user (ps); prefer MINEWATCH_TOKEN "
        "or --token-file",
        "zh": "警告：--token 对本机所有用户可见（ps）；建议使用 MINEWATCH_TOKEN 或 --token-file",
    },
    "agent_summary": {
        "en": "agent stopped: {scans} scan(s), {delivered} report(s) delivered, {pending} waiting "
        "in the spool",
        "zh": "代理已停止：扫描 {scans} 次，已上报 {delivered} 份，{pending} 份在本地等待发送",
    },
    "blind_spot": {"en": "not inspected: {what}", "zh": "未能检查：{what}"},
    "verdict_mining": {"en": "mining", "zh": "挖矿"},
    "verdict_storage-mining": {"en": "storage-mining", "zh": "存储挖矿"},
    "verdict_blockchain-node": {"en": "blockchain-node", "zh": "区块链节点"},
    "report_col_region_code": {"en": "REGION", "zh": "区划代码"},
    "report_col_region_name": {"en": "NAME", "zh": "地区"},
    "report_col_open": {"en": "OPEN", "zh": "未清零"},
    "report_col_new": {"en": "NEW", "zh": "本周新增"},
    "report_col_confirmed": {"en": "CONFIRMED", "zh": "本周认定"},
    "report_col_exited": {"en": "EXITED", "zh": "本周退出"},
    "report_col_overdue": {"en": "OVERDUE", "zh": "逾期"},
    "report_col_kwh_unknown": {"en": "NO KWH", "zh": "缺年用电量"},
    "report_col_kw_retired": {"en": "KW RETIRED", "zh": "退出负荷（千瓦）"},
    "report_col_kwh_retired": {"en": "KWH/YR RETIRED", "zh": "退出年用电量（千瓦时）"},
    "report_col_co2_t": {"en": "CO2 AVOIDED (t)", "zh": "减排二氧化碳（吨）"},
    "report_col_factor_t_per_mwh": {"en": "FACTOR (t/MWh)", "zh": "排放因子（吨/兆瓦时）"},
    "report_total": {"en": "TOTAL", "zh": "合计"},
    "report_own_level": {"en": "{name} (own level)", "zh": "{name}（本级）"},
    "report_weekly_title": {
        "en": "clear-to-zero report of {region}, week {week} ({monday} to {sunday}, China time); "
        "grid emission factors of {year}",
        "zh": "{region} 清零周报，{week}（{monday} 至 {sunday}，北京时间）；"
        "电网排放因子年份 {year}",
    },
    "report_fell_back": {
        "en": "no provincial emission factor for {regions}: the national average was used",
        "zh": "{regions} 无省级排放因子，已按全国平均值计算",
    },
    "report_ledger_written": {
        "en": "{n} case(s) written to {out}",
        "zh": "已写出 {n} 件案件：{out}",
    },
}


def detect_language(explicit: str | None = None) -> str:
    """The language to speak: explicit choice, then MINEWATCH_LANG, then the locale."""
    for candidate in (explicit, os.environ.get("MINEWATCH_LANG")):
        if candidate:
            return "zh" if candidate.lower().startswith("zh") else "en"
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def message(key: str, lang: str, **values: object) -> str:
    """The message ``key`` in ``lang`` (English when no translation exists)."""
    texts = _MESSAGES[key]
    return texts.get(lang, texts["en"]).format(**values)
