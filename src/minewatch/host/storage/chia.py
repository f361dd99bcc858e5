"""Chia farming on a host: plot files recognised by their header, installs, and services.

Chia "mines" with disk space: a farm is a few hundred plot files of about 101.4 GiB each (k = 32)
and a harvester that looks up proofs in them. Names prove nothing (``plot-k32-*.plot`` is only a
convention, and any file can be renamed), so a file counts as a plot when its *first bytes* are a
plot header:

* chiapos format v1: the 19-byte magic ``Proof of Space Plot``, the 32-byte plot id, one byte k,
  a big-endian 2-byte length and the format description (``v1.0``), a 2-byte length and the memo
  (at most 128 bytes: pool or contract key, farmer key, local master secret), then ten big-endian
  8-byte table pointers;
* bladebit format v2 (compressed plots, C1..C9 and later): the 4-byte magic ``PLOT``, a
  little-endian 4-byte version (2), the plot id, k, the memo as above, 4 little-endian flag bytes
  (bit 0: compressed), then one compression-level byte when compressed, ten table pointers and
  ten table sizes.

Other formats (Gigahorse/NoSSD compressed plots, whose headers are not public) are not recognised;
they are not counted, and this module says so rather than guessing from names.

The header is checked field by field (k in 18..50, a printable format description, a memo of at
most 128 bytes, table pointers inside the file), so a random file that happens to begin with the
magic is not counted. Only files at least half the size of the smallest valid plot (k = 18) are
opened at all, and each is read once, :data:`HEADER_READ_BYTES` bytes, never more: a scan of a
100 TB farm costs a few hundred small reads. Capacities come from ``stat`` (``st_size``).

A plot much smaller than a plot of its k must be (half of (2k + 1) · 2^(k-1) · 0.78 bytes, the
size the Chia client itself assumes) is truncated, a fake, or compressed by a third-party plotter;
it is still counted (its header is real) but named in the evidence, as are sparse files whose
blocks on disk are far fewer than their size claims.

Installs: ``~/.chia/<network>`` of every account (and ``$CHIA_ROOT``), recognised by
``config/config.yaml`` and the private CA whose certificate subject is ``CN=Chia CA``. The
harvester's ``plot_directories`` in the config are added to what is walked, so plots on a disk the
default walk leaves out (a network share) are still found. Processes: the services
``chia_harvester``, ``chia_farmer`` (storage mining), ``chia_full_node``, ``chia_timelord``
(blockchain node), and the plotters ``chia plots create``, bladebit, madMAx ``chia_plot`` and
Gigahorse ``cuda_plot_k*``; the ports 8444 (full-node peers), 8447 (farmer, harvesters connect to
it) and 8448 (harvester) are supporting evidence. A renamed harvester is not recognised by name,
but the plots it farms still are, by content.

Example::

    >>> header = parse_plot_header(b"Proof of Space Plot" + bytes(32) + bytes([32])
    ...     + b"\\x00\\x04v1.0" + b"\\x00\\x00" + (200).to_bytes(8, "big") * 10)
    >>> header.k, header.format
    (32, 'v1.0')
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from minewatch.findings import Verdict
from minewatch.host.model import HostFinding, HostSnapshot, ProbeResult, ProcessInfo, register_probe
from minewatch.host.storage.base import StorageProbe, human_bytes, process_evidence, process_finding
from minewatch.host.storage.walk import TreeWalk, WalkLimits, read_head, unreadable_homes

__all__ = [
    "CHIA_PORTS",
    "HEADER_READ_BYTES",
    "K_MAX",
    "K_MIN",
    "MAINNET_MIN_K",
    "MIN_PLOT_FILE_BYTES",
    "ChiaInstall",
    "ChiaStorageProbe",
    "PlotFile",
    "PlotHeader",
    "PlotSearch",
    "chia_role",
    "expected_plot_size",
    "find_chia_installs",
    "find_plots",
    "is_chia_ca_certificate",
    "parse_plot_directories",
    "parse_plot_header",
]

V1_MAGIC = b"Proof of Space Plot"
V2_MAGIC = b"PLOT"
V2_VERSION = 2
K_MIN = 18
"""The smallest k chiapos plots (tests use it)."""
K_MAX = 50
MAINNET_MIN_K = 32
"""Mainnet rejects proofs from plots below k = 32: smaller plots are test or testnet plots."""
MEMO_MAX = 128
"""48 + 48 + 32 bytes: pool public key, farmer public key, local master secret key."""
DESCRIPTION_MAX = 32
TABLE_POINTERS = 10
V2_MAX_COMPRESSION = 32
HEADER_READ_BYTES = 512
"""Bytes read from a candidate file; the largest valid header (v2, 128-byte memo) is 336."""
SIZE_FACTOR = 0.78
"""Chia's own plot-size constant: a k plot holds about (2k + 1) · 2^(k-1) · 0.78 bytes."""
SUSPECT_SIZE_RATIO = 0.5
"""Below this fraction of the expected size a plot is named as truncated or fake."""
SPARSE_RATIO = 0.5
CHIA_PORTS: Mapping[int, str] = {
    8444: "full-node peer port",
    8447: "farmer port (harvesters connect to it)",
    8448: "harvester port",
}
CONFIG_READ_BYTES = 1 << 20
CERT_READ_BYTES = 64 << 10
_MAX_CA_FILES = 16
_MAX_NETWORK_DIRS = 16
_MAX_EXAMPLES = 3


def expected_plot_size(k: int) -> int:
    """Bytes a plot of size ``k`` occupies, as the Chia client estimates it (k32: 101.4 GiB)."""
    return int((2 * k + 1) * 2 ** (k - 1) * SIZE_FACTOR)


MIN_PLOT_FILE_BYTES = int(expected_plot_size(K_MIN) * SUSPECT_SIZE_RATIO)
"""Smaller files are not opened: they cannot hold even the smallest plot."""


@dataclass(frozen=True, slots=True)
class PlotHeader:
    """The fields of a plot header that identify and size a plot."""

    plot_id: bytes
    k: int
    format: str
    """``v1.0`` (chiapos description) or ``v2`` (bladebit)."""
    memo_length: int
    compression_level: int
    table_pointers: tuple[int, ...]
    header_length: int

    @property
    def id_hex(self) -> str:
        return self.plot_id.hex()


def _printable(data: bytes) -> bool:
    return all(0x20 <= b < 0x7F for b in data)


def _pointers_plausible(pointers: Sequence[int], header_length: int) -> bool:
    """Pointers of a finished plot lie past the header; an unfinished one has them all zero."""
    return all(p == 0 for p in pointers) or all(p >= header_length for p in pointers)


def _parse_v1(data: bytes) -> PlotHeader | None:
    offset = len(V1_MAGIC)
    if len(data) < offset + 32 + 1 + 2:
        return None
    plot_id = data[offset : offset + 32]
    k = data[offset + 32]
    offset += 33
    (desc_len,) = struct.unpack_from(">H", data, offset)
    offset += 2
    if not 1 <= desc_len <= DESCRIPTION_MAX or len(data) < offset + desc_len + 2:
        return None
    description = data[offset : offset + desc_len]
    if not _printable(description):
        return None
    offset += desc_len
    (memo_len,) = struct.unpack_from(">H", data, offset)
    offset += 2 + memo_len
    if memo_len > MEMO_MAX or len(data) < offset + 8 * TABLE_POINTERS:
        return None
    pointers = struct.unpack_from(f">{TABLE_POINTERS}Q", data, offset)
    header_length = offset + 8 * TABLE_POINTERS
    if not K_MIN <= k <= K_MAX or not _pointers_plausible(pointers, header_length):
        return None
    return PlotHeader(
        plot_id=plot_id,
        k=k,
        format=description.decode("ascii"),
        memo_length=memo_len,
        compression_level=0,
        table_pointers=tuple(pointers),
        header_length=header_length,
    )


def _parse_v2(data: bytes) -> PlotHeader | None:
    if len(data) < 8 + 32 + 1 + 2:
        return None
    (version,) = struct.unpack_from("<I", data, 4)
    if version != V2_VERSION:
        return None
    offset = 8
    plot_id = data[offset : offset + 32]
    k = data[offset + 32]
    offset += 33
    (memo_len,) = struct.unpack_from(">H", data, offset)
    offset += 2 + memo_len
    if memo_len > MEMO_MAX or len(data) < offset + 4:
        return None
    (flags,) = struct.unpack_from("<I", data, offset)
    offset += 4
    if flags & ~1:
        return None  # unknown flag bits: not a format we know
    level = 0
    if flags & 1:
        if len(data) < offset + 1:
            return None
        level = data[offset]
        offset += 1
        if not 1 <= level <= V2_MAX_COMPRESSION:
            return None
    if len(data) < offset + 16 * TABLE_POINTERS:
        return None
    pointers = struct.unpack_from(f">{TABLE_POINTERS}Q", data, offset)
    header_length = offset + 16 * TABLE_POINTERS
    if not K_MIN <= k <= K_MAX or not _pointers_plausible(pointers, header_length):
        return None
    return PlotHeader(
        plot_id=plot_id,
        k=k,
        format="v2",
        memo_length=memo_len,
        compression_level=level,
        table_pointers=tuple(pointers),
        header_length=header_length,
    )


def parse_plot_header(data: bytes) -> PlotHeader | None:
    """The plot header at the start of ``data``, or ``None`` if ``data`` does not start with one."""
    if data.startswith(V1_MAGIC):
        return _parse_v1(data)
    if data.startswith(V2_MAGIC):
        return _parse_v2(data)
    return None


@dataclass(frozen=True, slots=True)
class PlotFile:
    """One file whose header is a plot header, with what ``stat`` says about it."""

    path: str
    header: PlotHeader
    size: int
    allocated: int | None
    """Bytes the file system has allocated (``st_blocks`` · 512), where known."""

    @property
    def problems(self) -> tuple[str, ...]:
        """Why this plot looks truncated, unfinished, fake or hollow; empty for a healthy plot."""
        found = []
        pointers = self.header.table_pointers
        if all(p == 0 for p in pointers):
            found.append("unfinished (no table pointers)")
        elif any(p > self.size for p in pointers):
            found.append("truncated (table pointers past the end of the file)")
        if self.size < expected_plot_size(self.header.k) * SUSPECT_SIZE_RATIO:
            found.append(
                f"much smaller than a k{self.header.k} plot "
                f"(≈{human_bytes(expected_plot_size(self.header.k))})"
            )
        if self.allocated is not None and self.allocated < self.size * SPARSE_RATIO:
            found.append(f"sparse (only {human_bytes(self.allocated)} on disk)")
        return tuple(found)


@dataclass(slots=True)
class PlotSearch:
    """What a plot search found, and what it could not read."""

    plots: list[PlotFile] = field(default_factory=list)
    files_opened: int = 0
    unreadable: list[str] = field(default_factory=list)
    blind_spots: list[str] = field(default_factory=list)


def find_plots(
    roots: Iterable[Path | str], limits: WalkLimits | None = None, *, report_mounts: bool = True
) -> PlotSearch:
    """Walk ``roots`` and return every file whose header is a plot header (each file once)."""
    walk = TreeWalk(roots, limits, report_mounts=report_mounts)
    search = PlotSearch()
    seen: set[tuple[int, int]] = set()
    for path, st in walk:
        if not stat.S_ISREG(st.st_mode) or st.st_size < MIN_PLOT_FILE_BYTES:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        search.files_opened += 1
        try:
            head = read_head(Path(path), HEADER_READ_BYTES)
        except OSError as exc:
            search.unreadable.append(f"{path} ({exc.strerror or type(exc).__name__})")
            continue
        header = parse_plot_header(head)
        if header is None:
            continue
        blocks = getattr(st, "st_blocks", None)
        search.plots.append(
            PlotFile(
                path=path,
                header=header,
                size=st.st_size,
                allocated=blocks * 512 if blocks is not None else None,
            )
        )
    search.blind_spots = walk.blind_spots()
    if search.unreadable:
        more = " ..." if len(search.unreadable) > _MAX_EXAMPLES else ""
        search.blind_spots.append(
            f"{len(search.unreadable)} large files not readable, so not checked for a plot "
            f"header: {', '.join(search.unreadable[:_MAX_EXAMPLES])}{more}"
        )
    return search


# --- installs -----------------------------------------------------------------------------

_PLOT_DIRS_KEY = re.compile(r"^(\s*)plot_directories:\s*(.*?)\s*$")
_TOP_LEVEL_KEY = re.compile(r"^([a-z_]+):", re.MULTILINE)
_CHIA_SECTIONS = frozenset({"full_node", "harvester", "farmer", "wallet", "timelord"})


def _unquote(value: str) -> str:
    value = value.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_plot_directories(config_text: str) -> list[str]:
    """The harvester's ``plot_directories`` from a Chia ``config.yaml``, without a YAML library.

    Chia writes the list in block style (``- /mnt/plots``, at or below the key's indentation) or,
    when empty, as ``[]``; both are read, as is a one-line flow list.
    """
    lines = config_text.splitlines()
    directories: list[str] = []
    for number, line in enumerate(lines):
        match = _PLOT_DIRS_KEY.match(line)
        if not match:
            continue
        indent, rest = len(match.group(1)), match.group(2)
        if rest.startswith("["):
            inner = rest.strip("[]")
            directories.extend(_unquote(v) for v in inner.split(",") if _unquote(v))
            continue
        for item in lines[number + 1 :]:
            stripped = item.strip()
            if not stripped or stripped.startswith("#"):
                continue
            item_indent = len(item) - len(item.lstrip())
            if stripped.startswith("- ") and item_indent >= indent:
                value = _unquote(stripped[2:])
                if value:
                    directories.append(value)
            else:
                break
    return directories


_CN_OID = b"\x06\x03\x55\x04\x03"  # DER: OBJECT IDENTIFIER 2.5.4.3 (commonName)
_CHIA_CA_CN = b"Chia CA"
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)


def _der_blocks(data: bytes) -> list[bytes]:
    blocks = []
    for match in _PEM_BLOCK.finditer(data):
        try:
            blocks.append(base64.b64decode(b"".join(match.group(1).split()), validate=True))
        except (binascii.Error, ValueError):
            continue
    return blocks or [data]


def is_chia_ca_certificate(data: bytes, use_cryptography: bool = True) -> bool:
    """Whether a PEM or DER certificate's subject common name is ``Chia CA``.

    With the ``cryptography`` package (a dev dependency, not a runtime one) the subject is parsed
    properly. Without it, the DER bytes are searched for the commonName attribute with the value
    ``Chia CA`` (UTF8String or PrintableString); that also matches an *issuer* named Chia CA,
    which for Chia's self-signed CA is the same name.
    """
    if use_cryptography:
        try:
            from cryptography import x509
            from cryptography.x509.oid import NameOID
        except ImportError:
            pass
        else:
            for der in _der_blocks(data):
                try:
                    cert = x509.load_der_x509_certificate(der)
                except ValueError:
                    continue
                names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                if any(attr.value == _CHIA_CA_CN.decode() for attr in names):
                    return True
            return False
    needles = [_CN_OID + bytes([tag, len(_CHIA_CA_CN)]) + _CHIA_CA_CN for tag in (0x0C, 0x13)]
    return any(needle in der for der in _der_blocks(data) for needle in needles)


@dataclass(slots=True)
class ChiaInstall:
    """One Chia root directory (``~/.chia/mainnet``) and what it says about its use."""

    root: Path
    config_sections: list[str] = field(default_factory=list)
    plot_directories: list[str] = field(default_factory=list)
    ca_files: list[str] = field(default_factory=list)
    """CA certificates whose subject is ``CN=Chia CA``."""
    database_bytes: int = 0
    """Size of the blockchain databases under ``db/`` (a synced full node holds tens of GB)."""

    @property
    def recognised(self) -> bool:
        return bool(self.ca_files) or bool(_CHIA_SECTIONS.intersection(self.config_sections))


def _inspect_install(root: Path, blind: list[str]) -> ChiaInstall | None:
    install = ChiaInstall(root=root)
    config = root / "config" / "config.yaml"
    try:
        text = read_head(config, CONFIG_READ_BYTES).decode("utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        blind.append(f"Chia config {config} not readable ({exc.strerror})")
        text = ""
    install.config_sections = _TOP_LEVEL_KEY.findall(text)
    install.plot_directories = parse_plot_directories(text)
    ca_dir = root / "config" / "ssl" / "ca"
    try:
        certs = sorted(p for p in ca_dir.iterdir() if p.suffix == ".crt")[:_MAX_CA_FILES]
    except FileNotFoundError:
        certs = []
    except OSError as exc:
        blind.append(f"Chia CA directory {ca_dir} not readable ({exc.strerror})")
        certs = []
    for cert in certs:
        try:
            if is_chia_ca_certificate(read_head(cert, CERT_READ_BYTES)):
                install.ca_files.append(str(cert))
        except OSError as exc:
            blind.append(f"Chia CA certificate {cert} not readable ({exc.strerror})")
    try:
        with os.scandir(root / "db") as entries:
            for entry in entries:
                if entry.name.startswith("blockchain_") and entry.name.endswith(".sqlite"):
                    install.database_bytes += entry.stat(follow_symlinks=False).st_size
    except OSError:
        pass
    return install if install.recognised else None


def find_chia_installs(
    homes: Iterable[Path], environ: Mapping[str, str]
) -> tuple[list[ChiaInstall], list[str]]:
    """Chia roots under each home's ``.chia`` and at ``$CHIA_ROOT``; returns (installs, blind)."""
    candidates: list[Path] = []
    blind: list[str] = []
    if environ.get("CHIA_ROOT"):
        candidates.append(Path(environ["CHIA_ROOT"]).expanduser())
    homes = list(homes)
    blind.extend(unreadable_homes(homes))
    for home in homes:
        if not os.access(home, os.R_OK | os.X_OK):
            continue  # named once by unreadable_homes()
        dot_chia = home / ".chia"
        try:
            networks = sorted(p for p in dot_chia.iterdir() if p.is_dir())[:_MAX_NETWORK_DIRS]
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            blind.append(f"{dot_chia} not readable ({exc.strerror})")
            continue
        candidates.extend(networks)
    installs: list[ChiaInstall] = []
    seen: set[Path] = set()
    for candidate in candidates:
        if candidate in seen:
            continue
        seen.add(candidate)
        found = _inspect_install(candidate, blind)
        if found is not None:
            installs.append(found)
    return installs, blind


# --- processes ----------------------------------------------------------------------------

_SERVICE_ROLES: Mapping[str, str] = {
    "chia_harvester": "harvester",
    "chia_farmer": "farmer",
    "chia_full_node": "full-node",
    "chia_timelord": "timelord",
    "chia_plotter": "plotter",
    "chia_plot": "plotter",  # madMAx
    "chia_plot_k34": "plotter",
    "bladebit": "plotter",
    "bladebit_cuda": "plotter",
}
_FROZEN_ROLES: Mapping[str, str] = {
    # PyInstaller builds of chia-blockchain ship the services as start_<service>.
    "start_harvester": "harvester",
    "start_farmer": "farmer",
    "start_full_node": "full-node",
    "start_timelord": "timelord",
}
_GIGAHORSE_PLOTTER = re.compile(r"^cuda_plot_k\d{2}$")
_STORAGE_ROLES = frozenset({"harvester", "farmer", "plotter"})
_ROLE_CONFIDENCE: Mapping[str, float] = {
    "harvester": 0.9,
    "farmer": 0.9,
    "plotter": 0.85,
    "full-node": 0.85,
    "timelord": 0.8,
}


def _basename(argument: str) -> str:
    return Path(argument.split(" ", 1)[0]).name if argument else ""


def _program_names(proc: ProcessInfo) -> set[str]:
    """Every name the process goes by: kernel name, executable, argv[0] and a script's name."""
    names = {proc.name}
    if proc.exe:
        names.add(Path(proc.exe).name)
    if proc.cmdline:
        first = _basename(proc.cmdline[0])
        names.add(first)
        if first.startswith("python") and len(proc.cmdline) > 1:
            names.add(_basename(proc.cmdline[1]))
    names.discard("")
    return names


def chia_role(proc: ProcessInfo) -> str | None:
    """``harvester``, ``farmer``, ``plotter``, ``full-node``, ``timelord`` or ``None``."""
    names = _program_names(proc)
    for name in sorted(names):
        if name in _SERVICE_ROLES:
            return _SERVICE_ROLES[name]
        if _GIGAHORSE_PLOTTER.match(name):
            return "plotter"
    paths = " ".join([proc.exe or "", *proc.cmdline[:2]]).lower()
    for name in sorted(names):
        if name in _FROZEN_ROLES and "chia" in paths:
            return _FROZEN_ROLES[name]
    # The chia CLI is a Python script: find it in argv (after any interpreter), read its command.
    for index, argument in enumerate(proc.cmdline[:3]):
        if _basename(argument) == "chia":
            words = [a for a in proc.cmdline[index + 1 :] if not a.startswith("-")]
            if words[:2] == ["plots", "create"] or words[:1] == ["plotters"]:
                return "plotter"
            break
    return None


def _port_evidence(proc: ProcessInfo) -> list[str]:
    lines = []
    for port in sorted(set(proc.listen_ports).intersection(CHIA_PORTS)):
        lines.append(f"listens on {port} (Chia {CHIA_PORTS[port]})")
    remote = Counter(port for _addr, port in proc.remote_endpoints if port in CHIA_PORTS)
    for port, count in sorted(remote.items()):
        lines.append(f"{count} connections to remote port {port} (Chia {CHIA_PORTS[port]})")
    return lines


def _process_finding(proc: ProcessInfo, role: str) -> HostFinding:
    storage = role in _STORAGE_ROLES
    evidence = process_evidence(
        proc, f"process {sorted(_program_names(proc))} runs as the Chia {role}"
    )
    ports = _port_evidence(proc)
    evidence.extend(ports)
    return process_finding(
        proc,
        verdict=Verdict.STORAGE_MINING if storage else Verdict.BLOCKCHAIN_NODE,
        kind=f"chia-{role}",
        coin="xch",
        confidence=min(0.99, _ROLE_CONFIDENCE[role] + (0.05 if ports else 0.0)),
        evidence=evidence,
    )


# --- findings -----------------------------------------------------------------------------


def _plot_directory_finding(directory: str, plots: list[PlotFile]) -> HostFinding:
    total = sum(p.size for p in plots)
    ks = Counter(p.header.k for p in plots)
    formats = Counter(
        p.header.format
        + (f" compressed C{p.header.compression_level}" if p.header.compression_level else "")
        for p in plots
    )
    healthy = [p for p in plots if not p.problems]
    suspect = [p for p in plots if p.problems]
    evidence = [
        f"{len(plots)} files carry a Chia plot header (recognised by content, not by name); "
        "formats: " + ", ".join(f"{fmt} ×{n}" for fmt, n in sorted(formats.items())),
        "k sizes: " + ", ".join(f"k{k} ×{n}" for k, n in sorted(ks.items())),
        "plot ids: "
        + ", ".join(p.header.id_hex[:16] + "…" for p in plots[:_MAX_EXAMPLES])
        + (" ..." if len(plots) > _MAX_EXAMPLES else ""),
        f"{human_bytes(total)} ({total / 1e12:.3f} TB) of plots by file size (stat); "
        "contents not read beyond the header",
    ]
    for plot in suspect[:_MAX_EXAMPLES]:
        evidence.append(f"{plot.path.rpartition('/')[2]}: {'; '.join(plot.problems)}")
    if len(suspect) > _MAX_EXAMPLES:
        evidence.append(f"... and {len(suspect) - _MAX_EXAMPLES} more suspect plots")
    if healthy and all(p.header.k < MAINNET_MIN_K for p in healthy):
        evidence.append(
            f"all healthy plots have k < {MAINNET_MIN_K}: too small to win on mainnet "
            "(test or testnet plots)"
        )
    if any(p.header.k >= MAINNET_MIN_K for p in healthy):
        confidence = 0.97
    elif healthy:
        confidence = 0.8
    else:
        confidence = 0.6
    return HostFinding(
        verdict=Verdict.STORAGE_MINING,
        kind="chia-plot",
        entity=directory,
        coin="xch",
        confidence=confidence,
        evidence=evidence,
        capacity_bytes=total,
        count=len(plots),
        path=directory,
    )


def _install_finding(install: ChiaInstall, plot_dirs_with_plots: set[str]) -> HostFinding:
    evidence = [f"Chia root {install.root}"]
    if install.config_sections:
        sections = sorted(_CHIA_SECTIONS.intersection(install.config_sections))
        evidence.append(f"config/config.yaml with sections {', '.join(sections) or 'none'}")
    for ca in install.ca_files:
        evidence.append(f"CA certificate with subject CN=Chia CA: {ca}")
    if install.database_bytes:
        evidence.append(f"blockchain database {human_bytes(install.database_bytes)} (a full node)")
    farming = bool(install.plot_directories)
    if farming:
        listed = install.plot_directories
        holding = [d for d in listed if str(_resolve_quiet(Path(d))) in plot_dirs_with_plots]
        evidence.append(
            f"harvester plot_directories lists {len(listed)} directories "
            f"({len(holding)} hold plots found in this scan): "
            + ", ".join(listed[:_MAX_EXAMPLES])
            + (" ..." if len(listed) > _MAX_EXAMPLES else "")
        )
        confidence = 0.9 if holding else 0.75
    else:
        evidence.append("no plot directories configured: not farming from this install")
        confidence = 0.7 if install.database_bytes else 0.5
    return HostFinding(
        verdict=Verdict.STORAGE_MINING if farming else Verdict.BLOCKCHAIN_NODE,
        kind="chia-install",
        entity=str(install.root),
        coin="xch",
        confidence=confidence,
        evidence=evidence,
        path=str(install.root),
    )


def _resolve_quiet(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


class ChiaStorageProbe(StorageProbe):
    """Chia plots (by header), Chia installs and Chia services on one host.

    Options as for :class:`~minewatch.host.storage.base.StorageProbe`. A renamed plot is still
    a plot:

    Example::

        >>> import tempfile
        >>> farm = Path(tempfile.mkdtemp())
        >>> with (farm / "backup.bin").open("wb") as disguised:
        ...     _ = disguised.write(b"Proof of Space Plot" + bytes(32) + bytes([18])
        ...         + b"\\x00\\x04v1.0" + b"\\x00\\x00" + (200).to_bytes(8, "big") * 10)
        ...     _ = disguised.truncate(expected_plot_size(18))
        >>> snap = HostSnapshot(hostname="h", processes=[], cpu_count=1, paths=[farm])
        >>> [(f.kind, f.count) for f in ChiaStorageProbe(homes=[], environ={}).scan(snap).findings]
        [('chia-plot', 1)]
    """

    name = "chia-storage"

    def scan(self, snapshot: HostSnapshot) -> ProbeResult:
        result = ProbeResult()
        installs, install_blind = find_chia_installs(self.search_homes(), self.search_environ())
        result.blind_spots.extend(install_blind)
        plot_dirs = [d for install in installs for d in install.plot_directories]
        roots, explicit = self.walk_roots(snapshot, plot_dirs, result.blind_spots)
        search = find_plots(roots, self._limits, report_mounts=explicit)
        result.blind_spots.extend(search.blind_spots)

        by_directory: dict[str, list[PlotFile]] = defaultdict(list)
        for plot in search.plots:
            by_directory[plot.path.rpartition("/")[0] or "/"].append(plot)
        for directory in sorted(by_directory):
            result.findings.append(_plot_directory_finding(directory, by_directory[directory]))
        for install in installs:
            result.findings.append(_install_finding(install, set(by_directory)))
        for proc in snapshot.processes:
            role = chia_role(proc)
            if role is not None:
                result.findings.append(_process_finding(proc, role))
        return result


register_probe(ChiaStorageProbe)
