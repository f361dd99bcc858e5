"""A bounded, read-only directory walker shared by the storage probes.

A plot farm or a Filecoin storage provider keeps its evidence in a few large files, but the agent
does not know where: by default it walks every real file system of the host. That walk must stay
cheap and honest on a machine it has never seen, so it

* reads metadata only (``os.scandir`` plus one ``lstat`` per entry), never file contents;
* never follows a symbolic link inside the tree (a link could lead out of it, or in a circle);
  a root given by the user is resolved once, because naming it is the user's intent;
* stays on the file system of each root unless told otherwise (``one_file_system``), and visits
  each directory once even when bind mounts show it twice (directories are keyed by device and
  inode), so nothing is counted twice;
* skips the pseudo file systems ``/proc``, ``/sys``, ``/dev`` and ``/run``: they hold no storage
  and some of their files block or never end;
* stops at limits on depth, on entries per directory and on entries in all, and *reports* each
  limit it hit, and every directory it could not read, as a blind spot, because an agent that
  silently saw less than it claims would clear a host it never looked at.

Default roots (no ``--path``) are the mount points from ``/proc/self/mounts`` whose type is a
block-device file system (ext4, xfs, btrfs, zfs, ...). ``overlay`` is taken only when it is the
root ``/`` (the agent runs in a container: that overlay *is* its view of the disk); other overlay
mounts are container layers whose files already lie on a real file system and would be counted
twice. ``tmpfs`` holds RAM, not farm storage, and is left out. Network file systems (NFS, SMB,
Ceph, ...) are not walked by default because a walk would load another machine; they are named as
blind spots so that an inspector can pass them with ``--path``.

The module also holds the two other bounded reads the storage probes share: :func:`read_head`
(the first bytes of one file, never more) and :func:`user_homes` (where per-user installs such as
``~/.chia`` or ``~/.lotusminer`` may lie).

Example::

    >>> import tempfile, stat
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "a.txt").write_bytes(b"x")
    >>> walk = TreeWalk([root])
    >>> [Path(p).name for p, st in walk if stat.S_ISREG(st.st_mode)]
    ['a.txt']
    >>> walk.blind_spots()
    []
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BLOCK_FS_TYPES",
    "NETWORK_FS_TYPES",
    "PSEUDO_ROOTS",
    "MountEntry",
    "TreeWalk",
    "WalkLimits",
    "default_roots",
    "read_head",
    "read_mounts",
    "unreadable_homes",
    "user_homes",
]

PSEUDO_ROOTS: tuple[Path, ...] = (Path("/proc"), Path("/sys"), Path("/dev"), Path("/run"))
"""Kernel and runtime file systems: never storage, and some of their files never end."""

BLOCK_FS_TYPES = frozenset(
    {
        "ext2",
        "ext3",
        "ext4",
        "xfs",
        "btrfs",
        "zfs",
        "f2fs",
        "jfs",
        "reiserfs",
        "bcachefs",
        "nilfs2",
        "ntfs",
        "ntfs3",
        "fuseblk",
        "exfat",
        "vfat",
        "msdos",
        "hfs",
        "hfsplus",
        "ufs",
    }
)
"""File systems that keep their data on a local block device: where plots and sectors live."""

NETWORK_FS_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "lustre",
        "beegfs",
        "gpfs",
        "9p",
        "afs",
    }
)
"""Remote file systems: named as blind spots, walked only when passed explicitly."""

_MAX_EXAMPLES = 5
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One line of ``/proc/self/mounts``."""

    source: str
    mount_point: Path
    fs_type: str


def _unescape(field_text: str) -> str:
    """Undo the kernel's octal escapes (``\\040`` for a space) in a mounts field."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field_text)


def read_mounts(mounts_file: Path = Path("/proc/self/mounts")) -> list[MountEntry]:
    """Parse a mounts table; malformed lines are skipped. Raises ``OSError`` if unreadable."""
    entries: list[MountEntry] = []
    with mounts_file.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) < 3:
                continue
            entries.append(
                MountEntry(
                    source=_unescape(parts[0]),
                    mount_point=Path(_unescape(parts[1])),
                    fs_type=parts[2],
                )
            )
    return entries


_PSEUDO_STRINGS = frozenset(str(root) for root in PSEUDO_ROOTS)


def _is_pseudo(path: Path) -> bool:
    return any(path == root or root in path.parents for root in PSEUDO_ROOTS)


def default_roots(mounts_file: Path = Path("/proc/self/mounts")) -> tuple[list[Path], list[str]]:
    """The mount points to walk when the user named none, and what is left out on purpose.

    Returns ``(roots, blind_spots)``: roots are the block-device file systems (and an overlay
    mounted at ``/``), shortest path first, each once; blind spots name the network and FUSE file
    systems that were not walked, or say that the mounts table could not be read (then ``/`` is
    walked alone).
    """
    try:
        entries = read_mounts(mounts_file)
    except OSError as exc:
        return [Path("/")], [
            f"mount table {mounts_file} not readable ({exc.strerror}); walked / only"
        ]
    roots: list[Path] = []
    skipped: list[str] = []
    for entry in entries:
        point = entry.mount_point
        if _is_pseudo(point):
            continue
        if entry.fs_type in BLOCK_FS_TYPES or (entry.fs_type == "overlay" and point == Path("/")):
            if point not in roots:
                roots.append(point)
        elif entry.fs_type in NETWORK_FS_TYPES or (
            entry.fs_type.startswith("fuse.") and entry.fs_type != "fuse.portal"
        ):
            skipped.append(f"{point} ({entry.fs_type})")
    roots.sort(key=lambda p: (len(p.parts), str(p)))
    blind = []
    if skipped:
        blind.append(
            f"{len(skipped)} network or FUSE file systems not walked by default "
            f"(pass them with --path): {', '.join(skipped[:_MAX_EXAMPLES])}"
            + (" ..." if len(skipped) > _MAX_EXAMPLES else "")
        )
    if not roots:
        roots = [Path("/")]
    return roots, blind


@dataclass(frozen=True, slots=True)
class WalkLimits:
    """Bounds on one walk; each limit hit is reported as a blind spot, never silently."""

    max_depth: int = 40
    """Entries at most this many levels below their root are examined; directories at this
    depth are yielded but not entered."""
    max_entries: int = 5_000_000
    """Directory entries examined in the whole walk (one ``lstat`` each)."""
    max_dir_entries: int = 200_000
    """Entries examined in one directory; the rest of a larger directory is skipped."""
    one_file_system: bool = True
    """Do not descend into a mount point of another file system below a root."""

    def __post_init__(self) -> None:
        if self.max_depth < 0 or self.max_entries < 1 or self.max_dir_entries < 1:
            raise ValueError("walk limits must be positive (max_depth may be 0)")


@dataclass(slots=True)
class _Counter:
    """A count with a few examples, for blind-spot lines."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(example)

    def line(self, what: str) -> str:
        more = " ..." if self.count > len(self.examples) else ""
        return f"{self.count} {what}: {', '.join(self.examples)}{more}"


class TreeWalk:
    """Iterate ``(path, lstat)`` for the directories and regular files below some roots.

    Paths are yielded as absolute ``str`` (building a :class:`~pathlib.Path` per entry would
    triple the cost of a walk over millions of files). Symbolic links, devices, sockets and FIFOs
    are never yielded. The roots themselves are yielded too (a root may be a single regular
    file). Iterate once; afterwards :meth:`blind_spots` says what the walk could not see.

    Example::

        >>> walk = TreeWalk([Path("/nonexistent-minewatch-root")])
        >>> list(walk), walk.blind_spots()
        ([], ['1 paths do not exist: /nonexistent-minewatch-root'])
    """

    def __init__(
        self,
        roots: Iterable[Path | str],
        limits: WalkLimits | None = None,
        *,
        report_mounts: bool = True,
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self.limits = limits or WalkLimits()
        # Off for default roots: every storage mount is then its own root, and the network
        # mounts left out are already named by default_roots().
        self.report_mounts = report_mounts
        self.entries_examined = 0
        self._unreadable = _Counter()
        self._missing = _Counter()
        self._pseudo = _Counter()
        self._too_deep = _Counter()
        self._big_dirs = _Counter()
        self._mounts_not_crossed = _Counter()
        self._stopped_at: str | None = None
        self._seen_dirs: set[tuple[int, int]] = set()

    def blind_spots(self) -> list[str]:
        """What this walk did not see, one line per cause, with counts and examples."""
        lines = []
        if self._unreadable.count:
            lines.append(self._unreadable.line("directories not readable"))
        if self._missing.count:
            lines.append(self._missing.line("paths do not exist"))
        if self._pseudo.count:
            lines.append(self._pseudo.line("paths skipped as pseudo file systems"))
        if self._too_deep.count:
            lines.append(
                self._too_deep.line(
                    f"directories at the depth limit ({self.limits.max_depth}) not entered"
                )
            )
        if self._big_dirs.count:
            lines.append(
                self._big_dirs.line(
                    f"directories with more than {self.limits.max_dir_entries} entries "
                    "only partly examined"
                )
            )
        if self._mounts_not_crossed.count:
            lines.append(
                self._mounts_not_crossed.line(
                    "mount points of other file systems not crossed (pass them with --path)"
                )
            )
        if self._stopped_at is not None:
            lines.append(
                f"walk stopped after {self.limits.max_entries} entries, in {self._stopped_at}; "
                "the rest was not examined"
            )
        return lines

    def __iter__(self) -> Iterator[tuple[str, os.stat_result]]:
        resolved_roots = [_resolve(root) for root in self.roots]
        root_set = {str(root) for root in resolved_roots}
        for root, resolved in zip(self.roots, resolved_roots, strict=True):
            if self._stopped_at is not None:
                return
            yield from self._walk_root(root, resolved, root_set)

    def _walk_root(
        self, root: Path, resolved: Path, root_set: set[str]
    ) -> Iterator[tuple[str, os.stat_result]]:
        if _is_pseudo(resolved):
            self._pseudo.add(str(root))
            return
        try:
            root_stat = resolved.stat()
        except FileNotFoundError:
            self._missing.add(str(root))
            return
        except OSError:
            self._unreadable.add(str(root))
            return
        if stat.S_ISREG(root_stat.st_mode):
            yield str(resolved), root_stat
            return
        if not stat.S_ISDIR(root_stat.st_mode):
            return
        root_dev = root_stat.st_dev
        stack: list[tuple[str, os.stat_result, int]] = [(str(resolved), root_stat, 0)]
        while stack:
            if self._stopped_at is not None:
                return
            directory, dir_stat, depth = stack.pop()
            key = (dir_stat.st_dev, dir_stat.st_ino)
            if key in self._seen_dirs:
                continue
            self._seen_dirs.add(key)
            yield directory, dir_stat
            if depth >= self.limits.max_depth:
                self._too_deep.add(directory)
                continue
            subdirs: list[tuple[str, os.stat_result, int]] = []
            for child, child_stat in self._read_dir(directory):
                mode = child_stat.st_mode
                if stat.S_ISREG(mode):
                    yield child, child_stat
                elif stat.S_ISDIR(mode):
                    if child in _PSEUDO_STRINGS:
                        continue
                    if self.limits.one_file_system and child_stat.st_dev != root_dev:
                        if self.report_mounts and child not in root_set:
                            self._mounts_not_crossed.add(child)
                        continue
                    subdirs.append((child, child_stat, depth + 1))
            # Reverse so that the stack pops subdirectories in name order.
            stack.extend(reversed(subdirs))

    def _read_dir(self, directory: str) -> list[tuple[str, os.stat_result]]:
        """Entries of one directory with their lstat, name-sorted (partial at a limit)."""
        found: list[tuple[str, os.stat_result]] = []
        try:
            with os.scandir(directory) as scan:
                for seen, entry in enumerate(scan):
                    if seen >= self.limits.max_dir_entries:
                        self._big_dirs.add(directory)
                        break
                    if self.entries_examined >= self.limits.max_entries:
                        self._stopped_at = directory
                        break
                    self.entries_examined += 1
                    try:
                        if entry.is_symlink():
                            continue
                        found.append((entry.path, entry.stat(follow_symlinks=False)))
                    except OSError:
                        continue  # vanished between listing and stat
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self._unreadable.add(f"{directory} ({reason})")
            return []
        found.sort()
        return found


def _resolve(path: Path) -> Path:
    """A root as the user meant it: links in the *named* path are followed, once."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_O_NOATIME = getattr(os, "O_NOATIME", 0)


def read_head(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes from the start of a regular file: one ``read``, never more.

    The file is opened without following a symbolic link and without blocking (a FIFO put in
    place of a file cannot hang the agent); where the kernel allows it (the agent owns the file or
    runs as root) it is opened with ``O_NOATIME`` so that the inspection leaves the file's access
    time as it was. Anything that is not a regular file reads as ``b""``. ``OSError`` (permission
    denied, vanished) propagates: the caller counts it as a blind spot.
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    try:
        fd = os.open(path, _OPEN_FLAGS | _O_NOATIME)
    except PermissionError:
        if not _O_NOATIME:
            raise
        fd = os.open(path, _OPEN_FLAGS)  # O_NOATIME needs ownership or CAP_FOWNER
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, limit)
    finally:
        os.close(fd)


def user_homes() -> list[Path]:
    """Home directories of the host's accounts: ``/root``, ``/home/*`` and every passwd entry.

    Per-user installs (``~/.chia``, ``~/.lotusminer``) lie there; farms often run under service
    accounts whose home is outside ``/home`` (``/var/lib/chia``, ``/srv/lotus``), hence the
    passwd entries. Paths that do not exist are left out; ``/`` is never a home here.
    """
    candidates: list[Path] = [Path("/root")]
    with contextlib.suppress(OSError):
        candidates.extend(sorted(p for p in Path("/home").iterdir() if p.is_dir()))
    with contextlib.suppress(OSError):
        candidates.extend(Path(entry.pw_dir) for entry in pwd.getpwall() if entry.pw_dir)
    homes: list[Path] = []
    for home in candidates:
        if home == Path("/") or _is_pseudo(home) or home in homes:
            continue
        try:
            if home.is_dir():
                homes.append(home)
        except OSError:
            continue
    return homes


def unreadable_homes(homes: Iterable[Path]) -> list[str]:
    """A blind-spot line naming the homes this process may not enter, or nothing.

    Without root, other accounts' homes are usually closed; what lies there (a ``~/.chia`` or
    ``~/.lotusminer``) was not checked, and the report must say so. The line is the same for every
    probe, so a scan can merge it.
    """
    blocked = _Counter()
    for home in homes:
        if not os.access(home, os.R_OK | os.X_OK):
            blocked.add(str(home))
    if not blocked.count:
        return []
    return [blocked.line("home directories not readable, per-user installs there not checked")]
