"""Miner intelligence: the bundled miners.csv, its validation, and reading command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from minewatch.errors import DataError
from minewatch.host.miner_intel import (
    ALGORITHM_COINS,
    KINDS,
    CommandLineFacts,
    MinerIntel,
    MinerProgram,
    algorithm_coin,
    coin_from_name,
    parse_miners_csv,
    parse_pool_target,
    program_names,
    read_command_line,
    wallet_coin,
)
from minewatch.host.signatures import FAMILIES
from minewatch.intel.pools import PoolIntel

HEADER = "program,aliases,weak_aliases,coins,kind,mining_args,source,date,notes\n"
GOOD = "xmrig,xmrig,,xmr,cpu,--donate-level,https://github.com/xmrig/xmrig,2026-11-26,\n"
# A made-up address shaped like a Monero one (95 base58 characters), as scripts/record-sample uses.
XMR_WALLET = "48MinewatchSamp1eWa11etNotARea1AddressDoNotUseForAnything" + "x" * 38

# Every program issue 5 names, by the id miners.csv uses for it.
ISSUE_MINERS = [
    "xmrig", "xmr-stak", "cpuminer", "cpuminer-opt", "cgminer", "bfgminer", "ethminer", "t-rex",
    "lolminer", "gminer", "nbminer", "phoenixminer", "nanominer", "srbminer", "teamredminer",
    "xmrig-cuda", "xmrig-nvidia", "ccminer", "bminer", "claymore", "kawpowminer",
]  # fmt: skip
ISSUE_NODES = ["bitcoind", "geth", "monerod", "lotus", "chia-full-node"]


@pytest.fixture(scope="module")
def intel() -> MinerIntel:
    return MinerIntel.bundled()


@pytest.fixture(scope="module")
def pools() -> PoolIntel:
    return PoolIntel.bundled()


def facts_of(intel: MinerIntel, *argv: str, pools: PoolIntel | None = None) -> CommandLineFacts:
    return read_command_line(argv, program_names(Path(argv[0]).name, argv[0], argv), intel, pools)


def program_id(program: MinerProgram | None) -> str | None:
    return None if program is None else program.program


# --- the bundled file -------------------------------------------------------------------------


def test_bundled_file_lists_the_issue_miners_and_nodes(intel: MinerIntel) -> None:
    ids = {p.program for p in intel}
    assert set(ISSUE_MINERS) <= ids
    for node in ISSUE_NODES:
        program = intel.get(node)
        assert program is not None and program.is_node, node
    for miner in ISSUE_MINERS:
        program = intel.get(miner)
        assert program is not None and not program.is_node, miner


def test_bundled_rows_are_complete(intel: MinerIntel) -> None:
    for program in intel:
        assert program.source.startswith(("https://", "http://")), program.program
        assert program.aliases or program.weak_aliases
        assert set(program.kinds) <= KINDS
        assert program.date.year >= 2026


def test_binary_names_match_case_insensitively_and_without_exe(intel: MinerIntel) -> None:
    assert program_id(intel.match_name("lolMiner")) == "lolminer"
    assert program_id(intel.match_name("SRBMiner-MULTI")) == "srbminer"
    assert program_id(intel.match_name("PhoenixMiner.exe")) == "phoenixminer"
    assert program_id(intel.match_name("minerd")) == "cpuminer"
    assert intel.match_name("python3") is None
    # GMiner's binary is "miner": too ordinary to count without miner arguments
    assert intel.match_name("miner") is None
    assert program_id(intel.match_weak_name("miner")) == "gminer"


def test_options_belong_to_miners_not_nodes(intel: MinerIntel) -> None:
    assert next(p.program for p in intel.programs_with_option("--donate-level=1")) == "xmrig"
    assert intel.programs_with_option("-donate-level")  # Go/single-dash spelling
    assert intel.programs_with_option("--mine") == []  # geth's, only meaningful for geth
    assert intel.programs_with_option("--epochs") == []


def test_every_banner_signature_names_a_listed_program(intel: MinerIntel) -> None:
    banner_programs = {s.program for f in FAMILIES for s in f.signatures if s.program}
    assert banner_programs
    missing = {p for p in banner_programs if intel.get(p) is None}
    assert not missing


def test_algorithm_table_uses_tickers() -> None:
    assert algorithm_coin("RX/0") == (True, "xmr")
    assert algorithm_coin("sha256d") == (True, None)  # PoW, but BTC, BCH and BSV share it
    assert algorithm_coin("resnet50") == (False, None)
    assert all(c is None or (c.isalnum() and c.islower()) for c in ALGORITHM_COINS.values())
    assert coin_from_name("Monero") == "xmr"
    assert coin_from_name("XMR") == "xmr"
    assert coin_from_name("imagenet") is None


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("XMRig,xmrig,,xmr,cpu,,https://x.org,2026-11-26,\n", "program 'XMRig'"),
        ("xmrig,XMRig,,xmr,cpu,,https://x.org,2026-11-26,\n", "alias 'XMRig'"),
        ("xmrig,,,xmr,cpu,,https://x.org,2026-11-26,\n", "no executable name"),
        ("xmrig,xmrig,,XMR,cpu,,https://x.org,2026-11-26,\n", "coin 'XMR'"),
        ("xmrig,xmrig,,xmr,fpga,,https://x.org,2026-11-26,\n", "kind 'fpga'"),
        ("xmrig,xmrig,,xmr,node;cpu,,https://x.org,2026-11-26,\n", "cannot be combined"),
        ("xmrig,xmrig,,xmr,cpu,donate-level,https://x.org,2026-11-26,\n", "'donate-level'"),
        ("xmrig,xmrig,,xmr,cpu,,github.com/xmrig,2026-11-26,\n", "not an http(s) URL"),
        ("xmrig,xmrig,,xmr,cpu,,https://x.org,26/11/2026,\n", "not an ISO date"),
        ("xmrig,xmrig,,xmr,cpu,,https://x.org,2026-02-30,\n", "not an ISO date"),
        ("xmrig,xmrig,,xmr,cpu,,https://x.org,2026-11-26\n", "8 fields, header has 9"),
    ],
)
def test_bad_rows_name_file_and_line(row: str, message: str) -> None:
    with pytest.raises(DataError) as err:
        parse_miners_csv(HEADER + row, "mine.csv")
    assert "mine.csv:2:" in str(err.value)
    assert message in str(err.value)


def test_duplicates_name_the_first_line() -> None:
    with pytest.raises(
        DataError, match=r"mine.csv:3: duplicate program 'xmrig' \(first on line 2\)"
    ):
        parse_miners_csv(HEADER + GOOD + GOOD, "mine.csv")
    other = "other,xmrig,,xmr,cpu,,https://x.org,2026-11-26,\n"
    with pytest.raises(DataError, match=r"mine\.csv:3: alias 'xmrig' already names .* line 2"):
        parse_miners_csv(HEADER + GOOD + other, "mine.csv")


def test_header_problems() -> None:
    with pytest.raises(DataError, match=r"mine\.csv:1: empty file"):
        parse_miners_csv("", "mine.csv")
    with pytest.raises(DataError, match=r"missing column.*mining_args"):
        parse_miners_csv("program,aliases,weak_aliases,coins,kind,source,date,notes\n", "mine.csv")


def test_from_file_reads_and_reports(tmp_path: Path) -> None:
    good = tmp_path / "miners.csv"
    good.write_text(HEADER + GOOD + "\n", encoding="utf-8")
    assert [p.program for p in MinerIntel.from_file(good)] == ["xmrig"]
    with pytest.raises(DataError, match="cannot read"):
        MinerIntel.from_file(tmp_path / "absent.csv")


# --- pool targets and wallets -----------------------------------------------------------------


def test_pool_urls_lose_their_credentials(pools: PoolIntel) -> None:
    target = parse_pool_target(
        f"stratum+ssl://{XMR_WALLET}:secret@Pool.SupportXMR.com:443", pools=pools
    )
    assert target is not None
    assert target.text == "stratum+ssl://pool.supportxmr.com:443"
    assert "secret" not in target.text and XMR_WALLET not in target.text
    assert target.is_stratum and target.pool is not None and target.pool.pool == "SupportXMR"


def test_pool_target_shapes(pools: PoolIntel) -> None:
    assert parse_pool_target("/tmp/out") is None
    assert parse_pool_target("10.0.0.5:99999") is None
    assert parse_pool_target("model.pt") is None
    plain = parse_pool_target("10.0.0.5:3333")
    assert plain is not None and plain.port == 3333 and not plain.is_stratum
    six = parse_pool_target("[2001:db8::1]:3333")
    assert six is not None and six.host == "2001:db8::1"
    web = parse_pool_target("https://supportxmr.com/api/pool/stats", pools=pools)
    assert web is not None and web.is_web and web.pool is not None


@pytest.mark.parametrize(
    ("value", "coin"),
    [
        (XMR_WALLET, "xmr"),
        (XMR_WALLET + ".rig01", "xmr"),
        (XMR_WALLET + "+50000", "xmr"),
        ("0x" + "ab" * 20, None),
        ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "btc"),
        ("kaspa:qr" + "q" * 59 + ".w1", "kas"),
    ],
)
def test_wallet_shapes(value: str, coin: str | None) -> None:
    assert wallet_coin(value) == (True, coin)


@pytest.mark.parametrize("value", ["alice", "x", "admin@example.com", "0x1234", "4" * 20, "ubuntu"])
def test_user_names_are_not_wallets(value: str) -> None:
    assert wallet_coin(value) == (False, None)


# --- reading command lines --------------------------------------------------------------------


def test_xmrig_command_line(intel: MinerIntel, pools: PoolIntel) -> None:
    facts = facts_of(
        intel, "/opt/xmrig/xmrig", "-o", "pool.supportxmr.com:443", "-u", XMR_WALLET,
        "-k", "--tls", "-a", "rx/0", "--donate-level=1", "--randomx-1gb-pages", pools=pools,
    )  # fmt: skip
    assert facts.program is not None and facts.program.program == "xmrig"
    assert facts.name_strength == "strong"
    assert {o for _, o in facts.program_options} == {"--donate-level", "--randomx-1gb-pages"}
    assert facts.algorithms == [("rx/0", "xmr")]
    assert facts.wallets == [(XMR_WALLET, "xmr")]
    assert [t.text for t in facts.pool_targets] == ["pool.supportxmr.com:443"]
    assert facts.pool_targets[0].pool is not None
    assert facts.best_coin() == "xmr"


def test_renamed_miner_keeps_its_arguments(intel: MinerIntel) -> None:
    facts = facts_of(
        intel, "/tmp/.x/kswapd0", "--url=stratum+tcp://203.0.113.9:80", "--coin=monero"
    )
    assert facts.program is None
    assert [t.text for t in facts.stratum_urls] == ["stratum+tcp://203.0.113.9:80"]
    assert facts.coin_options == [("monero", "xmr")]
    assert facts.best_coin() == "xmr"


def test_text_tools_only_mention(intel: MinerIntel) -> None:
    facts = facts_of(intel, "/usr/bin/grep", "-r", "stratum+tcp://", "/etc")
    assert facts.text_tool and not facts.stratum_urls


@pytest.mark.parametrize(
    ("argv", "on"),
    [
        (("monerod", "--data-dir", "/srv/xmr", "--prune-blockchain"), []),
        (("monerod", "--start-mining", XMR_WALLET, "--mining-threads", "4"), ["--start-mining"]),
        (("geth", "--syncmode", "snap", "--miner.etherbase", "0x" + "1" * 40), []),
        (("geth", "--mine", "--miner.threads=2"), ["--mine"]),
        (("geth", "-mine"), ["-mine"]),
        (("bitcoind", "-daemon", "-txindex=1"), []),
        (("bitcoind", "-gen=1"), ["-gen"]),
        (("bitcoind", "-gen=0"), []),
    ],
)
def test_node_mining_options(intel: MinerIntel, argv: tuple[str, ...], on: list[str]) -> None:
    facts = facts_of(intel, *argv)
    assert facts.program is not None and facts.program.is_node
    assert facts.node_mining_options == on


@pytest.mark.parametrize(
    "argv",
    [
        ("python", "train.py", "--epochs", "90", "--lr", "0.1", "-a", "resnet50", "-o", "/ckpt",
         "--dist-url", "tcp://10.0.0.1:23456", "--world-size", "8", "-u", "alice"),
        ("torchrun", "--nproc_per_node=8", "--master_addr", "node1.cluster.local",
         "--master_port", "29500", "train.py", "--batch-size", "256"),
        ("java", "-Xmx8g", "-cp", "/opt/spark/jars/*", "org.apache.spark.deploy.SparkSubmit",
         "--master", "spark://10.0.0.5:7077", "--conf", "spark.executor.memory=8g", "etl.jar"),
        ("postgres", "-D", "/var/lib/postgresql/15/main", "-c", "huge_pages=on"),
        ("ipfs", "daemon", "--enable-gc", "--routing=dht"),
        ("rsync", "-a", "--delete", "/data/", "backup.example.org:/backups/data/"),
        ("curl", "-o", "stats.json", "https://example.org/api"),
    ],
)  # fmt: skip
def test_look_alike_command_lines_carry_no_mining_facts(
    intel: MinerIntel, pools: PoolIntel, argv: tuple[str, ...]
) -> None:
    facts = facts_of(intel, *argv, pools=pools)
    assert facts.program is None
    assert not facts.program_options and not facts.stratum_urls and not facts.algorithms
    assert not facts.wallets and not facts.coin_options
    assert all(t.pool is None for t in facts.pool_targets)
