"""Byte signatures: families, the hash-gated search, bounds, caching, real binaries."""

from __future__ import annotations

import os
import random
import secrets
import shutil
import sys
import threading
from pathlib import Path

import pytest

from minewatch.errors import InputError
from minewatch.host.signatures import (
    FAMILIES,
    MIN_FAMILIES,
    SignatureScanner,
    default_scanner,
)

CHROOT = Path(os.environ.get("MINEWATCH_CHROOT", "/var/cache/minewatch/trixie-xmrig"))
XMRIG = CHROOT / "usr/bin/xmrig"
ALL_FORMS = [form for family in FAMILIES for sig in family.signatures for form in sig.forms]


def family_blob(*names: str) -> bytes:
    """Enough NUL-separated strings of each named family to make the family present."""
    parts: list[bytes] = []
    for family in FAMILIES:
        if family.name in names:
            parts += [sig.forms[0] for sig in family.signatures[: family.min_hits]]
    return b"\0" + b"\0".join(parts) + b"\0"


@pytest.fixture
def xmrig_copy(tmp_path: Path) -> Path:
    """The real xmrig 6.22.2 from the Debian trixie chroot, copied under a random name."""
    if not XMRIG.is_file():
        pytest.skip(
            f"real xmrig not found at {XMRIG} (build it with scripts/record-sample --chroot-only)"
        )
    target = tmp_path / f"svc-{secrets.token_hex(4)}"
    shutil.copyfile(XMRIG, target)
    return target


def test_families_are_independent_and_well_formed() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names)) >= MIN_FAMILIES
    assert any(f.work for f in FAMILIES)
    assert all(len(form) >= 4 for form in ALL_FORMS)
    labels = [(f.name, s.label) for f in FAMILIES for s in f.signatures]
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("count", range(MIN_FAMILIES + 1))
def test_family_count_decides(count: int) -> None:
    # the two work families first, so every count >= MIN_FAMILIES includes one
    order = ["stratum-protocol", "pow-hashing", "pool-url", "miner-config", "miner-banner"]
    match = SignatureScanner().scan_bytes(family_blob(*order[:count]))
    assert len(match.families) == count
    assert match.is_miner == (count >= MIN_FAMILIES)
    assert (match.confidence > 0) == match.is_miner


def test_three_families_without_work_are_not_a_miner() -> None:
    # a security tool carries pool URLs, miner names and config keys, but neither protocol
    # nor hashing: it talks about miners, it does not mine
    match = SignatureScanner().scan_bytes(family_blob("pool-url", "miner-config", "miner-banner"))
    assert len(match.families) == 3 and not match.work_families
    assert not match.is_miner


def test_one_label_is_below_a_two_hit_family() -> None:
    # a full node verifies RandomX; one hashing string does not make the hashing family
    match = SignatureScanner().scan_bytes(b"\0RandomX\x03\0mining.submit\0")
    assert match.hits == {
        "stratum-protocol": ("mining.submit",),
        "pow-hashing": ("RandomX Argon2 salt",),
    }
    assert match.families == ()


def test_lawful_programs_strings_do_not_add_up() -> None:
    json_rpc = b'{"jsonrpc":"2.0","method":"getblocktemplate","params":[]}\0submitblock\0getwork\0'
    wallet = b"\0monero-wallet-cli\0transfer\0RandomX\x03\0refresh\0" + b"\0" * 100
    for blob in (json_rpc, wallet):
        assert not SignatureScanner().scan_bytes(blob).is_miner


def test_gated_search_equals_a_plain_find_at_every_chunk_boundary(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    # small chunks so that forms straddle many chunk boundaries
    scanner = SignatureScanner(chunk_bytes=97, cache_entries=0)
    for trial in range(12):
        noise = bytearray(rng.randbytes(3000))
        planted = rng.sample(ALL_FORMS, 6)
        for form in planted:
            at = rng.randrange(0, len(noise) - len(form))
            noise[at : at + len(form)] = form
        data = bytes(noise)
        path = tmp_path / f"blob{trial}"
        path.write_bytes(data)
        expected = {form for form in ALL_FORMS if form in data}
        from_file = scanner.scan_file(path)
        from_bytes = scanner.scan_bytes(data)
        assert from_file.hits == from_bytes.hits
        found = {
            form
            for family in FAMILIES
            for sig in family.signatures
            if sig.label in from_file.hits.get(family.name, ())
            for form in sig.forms
            if form in expected
        }
        assert found == expected


def test_reads_at_most_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big"
    blob = family_blob("stratum-protocol", "pool-url", "pow-hashing", "miner-banner")
    path.write_bytes(b"\0" * 4096 + blob)
    head = SignatureScanner(max_bytes=4096, chunk_bytes=1000).scan_file(path)
    assert head.bytes_read == 4096 and head.truncated and head.families == ()
    whole = SignatureScanner(chunk_bytes=1000).scan_file(path)
    assert whole.bytes_read == path.stat().st_size and not whole.truncated and whole.is_miner


def test_results_are_cached_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "exe"
    path.write_bytes(b"\0" * 1000)
    scanner = SignatureScanner()
    first = scanner.scan_file(path)
    read = scanner.bytes_read_total
    assert read == 1000 and scanner.cached(path) is first
    assert scanner.scan_file(path) is first
    assert scanner.bytes_read_total == read and scanner.cache_hits == 1
    path.write_bytes(family_blob("stratum-protocol", "pool-url", "pow-hashing"))
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    assert scanner.cached(path) is None
    assert scanner.scan_file(path).is_miner
    assert scanner.bytes_read_total > read
    assert default_scanner() is default_scanner()


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "xmrig"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def scan() -> None:
        try:
            SignatureScanner().scan_file(fifo)
        except BaseException as exc:  # collected for the assertion below
            result.append(exc)

    worker = threading.Thread(target=scan, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "opening a FIFO blocked the scanner"
    assert len(result) == 1 and isinstance(result[0], InputError)
    assert "not a regular file" in str(result[0])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InputError):
        SignatureScanner(max_bytes=0)


@pytest.mark.parametrize(
    "path",
    [
        sys.executable,
        "/usr/bin/python3",
        "/bin/ls",
        "/usr/bin/ssh",
        "/bin/bash",
        "/usr/bin/openssl",
    ],
)
def test_ordinary_binaries_are_clean(path: str) -> None:
    real = Path(path).resolve()
    if not real.is_file():
        pytest.skip(f"{path} not installed here")
    match = SignatureScanner().scan_file(real)
    assert not match.is_miner
    assert len(match.families) <= 1, match.hits


def test_real_xmrig_under_a_random_name_is_found(xmrig_copy: Path) -> None:
    match = SignatureScanner().scan_file(xmrig_copy)
    assert match.is_miner
    assert match.programs[0] == "xmrig"
    assert {"stratum-protocol", "pow-hashing"} <= set(match.families)
    assert "RandomX Argon2 salt" in match.hits["pow-hashing"]
    assert not match.truncated
