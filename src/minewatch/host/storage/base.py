"""What the storage probes share: where they look, and how they name a process and a size.

The Chia and Filecoin probes take the same options (the homes and environment that locate
per-user installs, the walk limits, the mounts table that yields the default roots) and begin a
scan the same way: the snapshot's paths, or every block-device mount when the user named none,
plus the directories the installs found point to. That common part lives here once, so both
probes honour ``--path`` and report a mount table they could not read identically.

Example::

    >>> from minewatch.host.model import HostSnapshot, ProbeResult
    >>> class ListRoots(StorageProbe):
    ...     name = "list-roots"
    ...     def scan(self, snapshot):
    ...         result = ProbeResult()
    ...         roots, explicit = self.walk_roots(snapshot, ["/srv/plots"], result.blind_spots)
    ...         result.blind_spots.extend(str(root) for root in roots)
    ...         return result
    >>> snap = HostSnapshot(hostname="h", processes=[], cpu_count=1, paths=[Path("/data")])
    >>> ListRoots(homes=[], environ={}).scan(snap).blind_spots
    ['/data', '/srv/plots']
    >>> human_bytes(3 * 2**30)
    '3.0 GiB'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from minewatch.findings import Verdict
from minewatch.host.model import HostFinding, HostProbe, HostSnapshot, ProcessInfo
from minewatch.host.storage.walk import WalkLimits, default_roots, user_homes

__all__ = [
    "StorageProbe",
    "human_bytes",
    "process_evidence",
    "process_finding",
]

COMMAND_LINE_CHARS = 200
"""A command line quoted in evidence is cut here: enough to show the subcommand and options."""


class StorageProbe(HostProbe):
    """Base of the probes that walk storage and look for per-user installs.

    ``homes`` and ``environ`` default to the host's accounts (read at each scan) and the agent's
    environment; tests and callers with other knowledge may pass their own. ``limits`` bounds the
    directory walk; ``mounts_file`` is the table the default roots come from.
    """

    def __init__(
        self,
        homes: Sequence[Path] | None = None,
        environ: Mapping[str, str] | None = None,
        limits: WalkLimits | None = None,
        mounts_file: Path = Path("/proc/self/mounts"),
    ) -> None:
        self._homes = homes
        self._environ = environ
        self._limits = limits
        self._mounts_file = mounts_file

    def search_homes(self) -> list[Path]:
        """The home directories to search for installs: those given, or the host's accounts'."""
        return user_homes() if self._homes is None else list(self._homes)

    def search_environ(self) -> Mapping[str, str]:
        """The environment whose variables may point to installs: the one given, or the agent's."""
        return os.environ if self._environ is None else self._environ

    def walk_roots(
        self, snapshot: HostSnapshot, install_paths: Iterable[str], blind_spots: list[str]
    ) -> tuple[list[Path], bool]:
        """The roots to walk, each once, and whether the user named them (``explicit``).

        The snapshot's paths when it has any, else the default roots of :attr:`_mounts_file`
        (whose blind spots are appended to ``blind_spots``); then ``install_paths`` (directories
        an install's config names, ``~`` expanded), so storage the default walk leaves out (a
        network share) is still found.
        """
        roots: list[Path] = list(snapshot.paths)
        explicit = bool(roots)
        if not explicit:
            roots, mount_blind = default_roots(self._mounts_file)
            blind_spots.extend(mount_blind)
        roots.extend(Path(p).expanduser() for p in install_paths)
        return list(dict.fromkeys(roots)), explicit


def human_bytes(n: float) -> str:
    """A size in binary units for evidence lines (``101.4 GiB``); whole bytes below 1 KiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover - the loop always returns


def process_evidence(proc: ProcessInfo, headline: str) -> list[str]:
    """``headline``, then the process's command line (cut short) where it could be read."""
    evidence = [headline]
    if proc.cmdline:
        evidence.append("command line: " + " ".join(proc.cmdline)[:COMMAND_LINE_CHARS])
    return evidence


def process_finding(
    proc: ProcessInfo,
    *,
    verdict: Verdict,
    kind: str,
    coin: str,
    confidence: float,
    evidence: list[str],
) -> HostFinding:
    """A finding about one running process, named by pid and executable (or argv[0])."""
    program = proc.exe or (proc.cmdline[0] if proc.cmdline else proc.name)
    return HostFinding(
        verdict=verdict,
        kind=kind,
        entity=f"pid {proc.pid} {program}",
        coin=coin,
        confidence=confidence,
        evidence=evidence,
        pid=proc.pid,
        path=proc.exe,
    )
