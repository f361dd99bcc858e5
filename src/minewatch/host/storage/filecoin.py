"""Filecoin storage mining on a host: sector stores, Lotus repositories and services.

A Filecoin storage provider earns by proving that it keeps *sealed sectors*: 32 GiB or 64 GiB
replicas (2 KiB, 8 MiB and 512 MiB on test networks) produced by a sealing pipeline that runs
for hours per sector. Lotus keeps them in storage paths with a fixed layout::

    <path>/sectorstore.json        {"ID": "<uuid>", "CanSeal": ..., "CanStore": ...}
    <path>/sealed/s-t0<miner>-<n>  the replica, exactly one sector size long
    <path>/cache/s-t0<miner>-<n>/  p_aux, t_aux, sc-02-data-tree-r-last-*.dat
    <path>/unsealed/s-t0<miner>-<n>
    <path>/update/, update-cache/  the same after a SnapDeals upgrade

Lotus names sectors ``s-t0<actor id>-<sector number>`` on every network (mainnet miners are
written ``f0...`` elsewhere); some forks write ``s-f0``, so both are read. A directory called
``sealed`` proves nothing, so a storage path counts only when sector-named entries come with at
least one independent fact: a valid ``sectorstore.json``, a sealed file exactly one sector size
long, or a cache directory holding ``p_aux``/``t_aux``. Capacities come from ``stat``; nothing is
read from a sector. A sealed file whose blocks on disk are far fewer than its size is sparse (a
real replica is fully written) and named in the evidence.

Repositories (``~/.lotus``, ``~/.lotusminer``, ``~/.lotusworker``, ``$LOTUS_PATH``,
``$LOTUS_MINER_PATH``, ``$LOTUS_WORKER_PATH``, ``~/.boost``) are recognised by their files
(``config.toml``, ``keystore/``, ``datastore/``, ``storage.json``, ``api``, ``token``); the
storage paths a miner's or worker's ``storage.json`` lists are added to the walk. Processes:
``lotus daemon`` (and ``venus daemon``) alone is a blockchain node; ``lotus-miner``,
``lotus-worker``, ``boostd``, ``curio`` and the Venus sealing tools are storage mining. The proof
parameters (``/var/tmp/filecoin-proof-parameters`` or ``$FIL_PROOFS_PARAMETER_CACHE``, ~100 GiB
of ``v28-*.params``) are supporting evidence only: a developer may download them too. An IPFS
node (``~/.ipfs``, ``ipfs daemon``) shares Filecoin's libraries but stores no sectors and is left
alone.

Example::

    >>> parse_sector_name("s-t01000-42")
    (1000, 42)
    >>> parse_sector_name("backup-42") is None
    True
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from minewatch.findings import Verdict
from minewatch.host.model import HostFinding, HostSnapshot, ProbeResult, ProcessInfo, register_probe
from minewatch.host.storage.base import StorageProbe, human_bytes, process_evidence, process_finding
from minewatch.host.storage.walk import TreeWalk, WalkLimits, read_head, unreadable_homes

__all__ = [
    "DEFAULT_PARAMETER_CACHE",
    "SECTOR_SIZES",
    "FilecoinStorageProbe",
    "LotusRepo",
    "ProofParameters",
    "SectorStore",
    "filecoin_program",
    "find_lotus_repos",
    "find_proof_parameters",
    "find_sector_stores",
    "parse_sector_name",
]

SECTOR_SIZES: Mapping[int, str] = {
    2 << 10: "2 KiB",
    8 << 20: "8 MiB",
    512 << 20: "512 MiB",
    32 << 30: "32 GiB",
    64 << 30: "64 GiB",
}
"""The sector sizes Filecoin proofs support; a sealed replica is exactly one of them long."""
SECTOR_SUBDIRS = frozenset({"sealed", "cache", "unsealed", "update", "update-cache"})
REPLICA_SUBDIRS = frozenset({"sealed", "update"})
CACHE_SUBDIRS = frozenset({"cache", "update-cache"})
CACHE_MARKERS = frozenset({"p_aux", "t_aux"})
DEFAULT_PARAMETER_CACHE = Path("/var/tmp/filecoin-proof-parameters")  # noqa: S108  (read, not written)
METADATA_READ_BYTES = 1 << 20
SPARSE_RATIO = 0.5
FILECOIN_PORTS: Mapping[int, str] = {
    1234: "Lotus node API",
    2345: "Lotus miner API",
    3456: "Lotus worker API",
}
_SECTOR_NAME = re.compile(r"^s-[tf]0(\d+)-(\d+)$")
_PARAMETER_NAME = re.compile(r"^v\d+-.+\.(params|vk|srs)$")
_MAX_EXAMPLES = 3
_MAX_PARAMETER_ENTRIES = 10_000


def parse_sector_name(name: str) -> tuple[int, int] | None:
    """``(actor id, sector number)`` from a Lotus sector file name, or ``None``."""
    match = _SECTOR_NAME.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _read_json(path: Path) -> object | None:
    """A small JSON file read within :data:`METADATA_READ_BYTES`; ``None`` if it is not JSON."""
    try:
        data: object = json.loads(read_head(path, METADATA_READ_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    return data


def _valid_store_metadata(data: object) -> bool:
    """Lotus's ``sectorstore.json``: an object with a string ID and the seal/store switches."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("ID"), str)
        and ("CanSeal" in data or "CanStore" in data)
    )


@dataclass(slots=True)
class SectorStore:
    """One Lotus storage path as found on disk."""

    path: str
    metadata: dict[str, object] | None = None
    replicas: dict[tuple[int, int], tuple[str, int, int | None]] = field(default_factory=dict)
    """(actor, number) -> (subdir, size, allocated bytes) of sealed and updated replicas."""
    unsealed_bytes: int = 0
    unsealed: set[tuple[int, int]] = field(default_factory=set)
    cache_dirs: set[tuple[int, int]] = field(default_factory=set)
    cache_marked: set[tuple[int, int]] = field(default_factory=set)
    """Cache directories holding ``p_aux`` or ``t_aux`` (written by the sealing pipeline)."""
    subdirs: set[str] = field(default_factory=set)

    @property
    def sectors(self) -> set[tuple[int, int]]:
        return set(self.replicas) | self.unsealed | self.cache_dirs

    @property
    def exact_replicas(self) -> list[tuple[int, int]]:
        return [sid for sid, (_sub, size, _alloc) in self.replicas.items() if size in SECTOR_SIZES]

    @property
    def recognised(self) -> bool:
        """Sector names plus one independent fact, or valid metadata over the Lotus layout."""
        independent = bool(self.exact_replicas) or bool(self.cache_marked)
        if self.sectors:
            return independent or self.metadata is not None
        return self.metadata is not None and {"sealed", "cache"} <= self.subdirs


def find_sector_stores(
    roots: Iterable[Path | str], limits: WalkLimits | None = None, *, report_mounts: bool = True
) -> tuple[list[SectorStore], list[str]]:
    """Walk ``roots`` for Lotus storage paths; returns (recognised stores, blind spots)."""
    stores: dict[str, SectorStore] = {}

    def store(path: str) -> SectorStore:
        if path not in stores:
            stores[path] = SectorStore(path=path)
        return stores[path]

    walk = TreeWalk(roots, limits, report_mounts=report_mounts)
    for path, st in walk:
        # Walk paths are absolute strings: split them without building Path objects.
        parent, _, name = path.rpartition("/")
        parent_name = parent.rpartition("/")[2]
        is_dir = stat.S_ISDIR(st.st_mode)
        if name == "sectorstore.json" and not is_dir:
            data = _read_json(Path(path))
            if _valid_store_metadata(data):
                assert isinstance(data, dict)
                store(parent).metadata = data
            continue
        if is_dir and name in SECTOR_SUBDIRS:
            store(parent).subdirs.add(name)
            continue
        sid = parse_sector_name(name)
        if sid is not None and parent_name in SECTOR_SUBDIRS:
            target = store(parent.rpartition("/")[0])
            if parent_name in REPLICA_SUBDIRS and not is_dir:
                blocks = getattr(st, "st_blocks", None)
                allocated = blocks * 512 if blocks is not None else None
                target.replicas[sid] = (parent_name, st.st_size, allocated)
            elif parent_name in CACHE_SUBDIRS and is_dir:
                target.cache_dirs.add(sid)
            elif parent_name == "unsealed" and not is_dir:
                target.unsealed.add(sid)
                target.unsealed_bytes += st.st_size
            continue
        if name in CACHE_MARKERS and not is_dir:
            cache_sid = parse_sector_name(parent_name)
            cache_root = parent.rpartition("/")[0]  # <store>/cache
            store_path, _, cache_name = cache_root.rpartition("/")
            if cache_sid is not None and cache_name in CACHE_SUBDIRS:
                store(store_path).cache_marked.add(cache_sid)
    found = [s for _path, s in sorted(stores.items()) if s.recognised]
    return found, walk.blind_spots()


@dataclass(frozen=True, slots=True)
class ProofParameters:
    """Groth16 parameter and verifying-key files that sealing and proving need."""

    directory: Path
    files: int
    total_bytes: int


def find_proof_parameters(environ: Mapping[str, str]) -> ProofParameters | None:
    """The proof parameter cache, if it holds parameter files (listing only, never reading)."""
    directory = Path(environ.get("FIL_PROOFS_PARAMETER_CACHE") or DEFAULT_PARAMETER_CACHE)
    files = 0
    total = 0
    try:
        with os.scandir(directory) as entries:
            for number, entry in enumerate(entries):
                if number >= _MAX_PARAMETER_ENTRIES:
                    break
                if _PARAMETER_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                    files += 1
                    total += entry.stat(follow_symlinks=False).st_size
    except OSError:
        return None
    return ProofParameters(directory, files, total) if files else None


# --- repositories -------------------------------------------------------------------------

_REPO_LOCATIONS: Sequence[tuple[str, str]] = (
    (".lotus", "node"),
    (".lotusminer", "miner"),
    (".lotusstorage", "miner"),  # the miner repository's name before Lotus 1.0
    (".lotusworker", "worker"),
    (".boost", "boost"),
)
_REPO_ENV: Sequence[tuple[str, str]] = (
    ("LOTUS_PATH", "node"),
    ("LOTUS_MINER_PATH", "miner"),
    ("LOTUS_STORAGE_PATH", "miner"),
    ("LOTUS_WORKER_PATH", "worker"),
    ("BOOST_PATH", "boost"),
)
_REPO_FILES = ("config.toml", "storage.json", "sectorstore.json", "api", "token")
_REPO_DIRS = ("keystore", "datastore")


@dataclass(slots=True)
class LotusRepo:
    """A Lotus-family repository directory and the files that identify it."""

    path: Path
    role: str
    """``node``, ``miner``, ``worker`` or ``boost``."""
    markers: list[str] = field(default_factory=list)
    storage_paths: list[str] = field(default_factory=list)

    @property
    def recognised(self) -> bool:
        anchors = {"config.toml", "storage.json"}
        return len(self.markers) >= 2 and bool(anchors.intersection(self.markers))


def _inspect_repo(path: Path, role: str) -> LotusRepo:
    repo = LotusRepo(path=path, role=role)
    for name in _REPO_FILES:
        if (path / name).is_file():
            repo.markers.append(name)
    for name in _REPO_DIRS:
        if (path / name).is_dir():
            repo.markers.append(name + "/")
    if "storage.json" in repo.markers:
        data = _read_json(path / "storage.json")
        if isinstance(data, dict) and isinstance(data.get("StoragePaths"), list):
            for entry in data["StoragePaths"]:
                if isinstance(entry, dict) and isinstance(entry.get("Path"), str):
                    repo.storage_paths.append(entry["Path"])
    return repo


def find_lotus_repos(
    homes: Iterable[Path], environ: Mapping[str, str]
) -> tuple[list[LotusRepo], list[str]]:
    """Lotus, Lotus-miner, worker and Boost repositories; returns (repositories, blind spots)."""
    candidates: list[tuple[Path, str]] = []
    for variable, role in _REPO_ENV:
        if environ.get(variable):
            candidates.append((Path(environ[variable]).expanduser(), role))
    homes = list(homes)
    blind = unreadable_homes(homes)
    for home in homes:
        for name, role in _REPO_LOCATIONS:
            candidates.append((home / name, role))
    repos: list[LotusRepo] = []
    seen: set[Path] = set()
    for path, role in candidates:
        if path in seen:
            continue
        seen.add(path)
        try:
            if not path.is_dir():
                continue
            if not os.access(path, os.R_OK | os.X_OK):
                blind.append(f"Filecoin repository {path} not readable")
                continue
        except OSError:
            continue
        repo = _inspect_repo(path, role)
        if repo.recognised:
            repos.append(repo)
    return repos, blind


# --- processes ----------------------------------------------------------------------------

_NODE_PROGRAMS = frozenset({"lotus", "venus"})
"""Node daemons: only ``<program> daemon`` is a node; other invocations are the CLI client."""
_STORAGE_PROGRAMS: Mapping[str, str] = {
    "lotus-miner": "lotus-miner",
    "lotus-storage-miner": "lotus-miner",
    "lotus-worker": "lotus-worker",
    "lotus-seal-worker": "lotus-worker",
    "boostd": "boostd",
    "curio": "curio",
    "lotus-provider": "curio",
    "venus-sealer": "venus-sealer",
    "venus-worker": "venus-worker",
    "venus-miner": "venus-miner",
    "sophon-miner": "venus-miner",
    "damocles-worker": "damocles-worker",
    "damocles-manager": "damocles-manager",
    "venus-sector-manager": "damocles-manager",
    "venus-market": "venus-market",
    "droplet": "venus-market",
}
_RUN_COMMANDS = frozenset({"run", "daemon"})


def _program_names(proc: ProcessInfo) -> list[str]:
    names = [proc.name]
    if proc.exe:
        names.append(Path(proc.exe).name)
    if proc.cmdline:
        names.append(Path(proc.cmdline[0].split(" ", 1)[0]).name)
    return [n for n in dict.fromkeys(names) if n]


def filecoin_program(proc: ProcessInfo) -> tuple[str, Verdict, bool] | None:
    """``(kind, verdict, long-running)`` for a Filecoin process, or ``None``.

    ``long-running`` is true for the services (``run``/``daemon`` subcommands), false for a CLI
    call of a storage tool. A bare ``lotus`` CLI call is no finding at all.
    """
    names = _program_names(proc)
    # Subcommands follow the program in argv, after any wrapper interpreter (sh, a service shim).
    start = 1
    for index, argument in enumerate(proc.cmdline[:3]):
        program = Path(argument.split(" ", 1)[0]).name
        if program in _STORAGE_PROGRAMS or program in _NODE_PROGRAMS:
            start = index + 1
            break
    subcommands = [a for a in proc.cmdline[start:] if not a.startswith("-")][:2]
    running = bool(_RUN_COMMANDS.intersection(subcommands))
    for name in names:
        if name in _STORAGE_PROGRAMS:
            return _STORAGE_PROGRAMS[name], Verdict.STORAGE_MINING, running
        if name in _NODE_PROGRAMS and "daemon" in subcommands:
            return f"{name}-daemon", Verdict.BLOCKCHAIN_NODE, True
    return None


def _process_finding(
    proc: ProcessInfo, kind: str, verdict: Verdict, running: bool, support: list[str]
) -> HostFinding:
    evidence = process_evidence(proc, f"process {proc.name!r} is the Filecoin program {kind}")
    for port in sorted(set(proc.listen_ports).intersection(FILECOIN_PORTS)):
        evidence.append(f"listens on {port} ({FILECOIN_PORTS[port]})")
    if verdict is Verdict.STORAGE_MINING:
        evidence.extend(support)
        confidence = 0.9 if running else 0.7
    else:
        confidence = 0.85
    return process_finding(
        proc, verdict=verdict, kind=kind, coin="fil", confidence=confidence, evidence=evidence
    )


# --- findings -----------------------------------------------------------------------------


def _store_finding(found: SectorStore, support: list[str]) -> HostFinding:
    replica_bytes = sum(size for _sub, size, _alloc in found.replicas.values())
    sizes = Counter(
        SECTOR_SIZES.get(size, f"{size} bytes (not a sector size)")
        for _sub, size, _alloc in found.replicas.values()
    )
    actors = sorted({actor for actor, _n in found.sectors})
    sparse = [
        sid
        for sid, (_sub, size, alloc) in found.replicas.items()
        if alloc is not None and alloc < size * SPARSE_RATIO
    ]
    evidence = [
        f"Lotus storage path layout: {', '.join(sorted(found.subdirs)) or 'no subdirectories'}"
    ]
    if found.metadata is not None:
        switches = ", ".join(
            f"{key}={found.metadata[key]}"
            for key in ("CanSeal", "CanStore")
            if key in found.metadata
        )
        evidence.append(f"sectorstore.json with ID {found.metadata['ID']} ({switches})")
    if found.replicas:
        evidence.append(
            f"{len(found.replicas)} sealed sector replicas: "
            + ", ".join(f"{label} ×{n}" for label, n in sorted(sizes.items()))
        )
    if actors:
        evidence.append(
            "miner actor ids: "
            + ", ".join(f"{a} (f0{a} on mainnet)" for a in actors[:_MAX_EXAMPLES])
        )
    if found.cache_dirs:
        evidence.append(
            f"{len(found.cache_dirs)} sector cache directories, "
            f"{len(found.cache_marked)} with p_aux/t_aux from the sealing pipeline"
        )
    if found.unsealed:
        evidence.append(
            f"{len(found.unsealed)} unsealed copies ({human_bytes(found.unsealed_bytes)}, "
            "not counted in the capacity)"
        )
    if sparse:
        evidence.append(
            f"{len(sparse)} sealed replicas are sparse (far fewer blocks on disk than their "
            "size): a real replica is fully written"
        )
    evidence.append("capacity from file sizes (stat); sector contents not read")
    evidence.extend(support)
    if found.metadata is not None and (found.exact_replicas or found.cache_marked):
        confidence = 0.95
    elif found.exact_replicas:
        confidence = 0.9
    else:
        confidence = 0.75
    if found.replicas and len(sparse) == len(found.replicas):
        confidence -= 0.15
    return HostFinding(
        verdict=Verdict.STORAGE_MINING,
        kind="filecoin-sector",
        entity=found.path,
        coin="fil",
        confidence=confidence,
        evidence=evidence,
        capacity_bytes=replica_bytes,
        count=len(found.replicas) if found.replicas else len(found.sectors),
        path=found.path,
    )


_REPO_KINDS: Mapping[str, tuple[str, Verdict, float]] = {
    "node": ("lotus-node-repo", Verdict.BLOCKCHAIN_NODE, 0.7),
    "miner": ("lotus-miner-repo", Verdict.STORAGE_MINING, 0.85),
    "worker": ("lotus-worker-repo", Verdict.STORAGE_MINING, 0.85),
    "boost": ("boost-repo", Verdict.STORAGE_MINING, 0.7),
}


def _repo_finding(repo: LotusRepo, support: list[str]) -> HostFinding:
    kind, verdict, confidence = _REPO_KINDS[repo.role]
    evidence = [f"Filecoin {repo.role} repository {repo.path}: {', '.join(repo.markers)}"]
    if repo.storage_paths:
        evidence.append(
            f"storage.json lists {len(repo.storage_paths)} storage paths: "
            + ", ".join(repo.storage_paths[:_MAX_EXAMPLES])
        )
    if verdict is Verdict.STORAGE_MINING:
        evidence.extend(support)
    return HostFinding(
        verdict=verdict,
        kind=kind,
        entity=str(repo.path),
        coin="fil",
        confidence=confidence,
        evidence=evidence,
        path=str(repo.path),
    )


class FilecoinStorageProbe(StorageProbe):
    """Filecoin sector stores, Lotus-family repositories and services on one host.

    Options as for :class:`~minewatch.host.storage.base.StorageProbe`. A storage path with one
    sealed 2 KiB (test-network) sector:

    Example::

        >>> import json, tempfile
        >>> store = Path(tempfile.mkdtemp())
        >>> (store / "sealed").mkdir()
        >>> _ = (store / "sealed" / "s-t01000-1").write_bytes(bytes(2 << 10))
        >>> _ = (store / "sectorstore.json").write_text(json.dumps({"ID": "a", "CanStore": True}))
        >>> snap = HostSnapshot(hostname="h", processes=[], cpu_count=1, paths=[store])
        >>> found = FilecoinStorageProbe(homes=[], environ={}).scan(snap).findings
        >>> [(f.kind, f.capacity_bytes) for f in found]
        [('filecoin-sector', 2048)]
    """

    name = "filecoin-storage"

    def scan(self, snapshot: HostSnapshot) -> ProbeResult:
        result = ProbeResult()
        environ = self.search_environ()
        repos, repo_blind = find_lotus_repos(self.search_homes(), environ)
        result.blind_spots.extend(repo_blind)
        parameters = find_proof_parameters(environ)
        support = (
            [
                f"proof parameters present: {parameters.files} files, "
                f"{human_bytes(parameters.total_bytes)} in {parameters.directory}"
            ]
            if parameters
            else []
        )

        storage_paths = [p for repo in repos for p in repo.storage_paths]
        roots, explicit = self.walk_roots(snapshot, storage_paths, result.blind_spots)
        stores, walk_blind = find_sector_stores(roots, self._limits, report_mounts=explicit)
        result.blind_spots.extend(walk_blind)

        result.findings.extend(_store_finding(s, support) for s in stores)
        result.findings.extend(_repo_finding(r, support) for r in repos)
        for proc in snapshot.processes:
            program = filecoin_program(proc)
            if program is not None:
                kind, verdict, running = program
                result.findings.append(_process_finding(proc, kind, verdict, running, support))
        return result


register_probe(FilecoinStorageProbe)
