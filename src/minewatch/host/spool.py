"""The agent's durable queue: host reports kept on disk until the server has stored them.

An agent in a data centre loses its server for hours at a time (maintenance, a firewall change, a
network partition), and it may be killed or the machine may lose power at any moment. A scan that
was made must still reach the server, exactly once. The spool makes the first half of that
promise: every report is a file on disk *before* anyone tries to send it, and a file is removed
only after the server confirmed it (:mod:`minewatch.host.delivery`). The second half, "exactly
once", rests on :attr:`HostReport.report_id`: it is drawn once when the scan is made, written into
the file, and sent unchanged on every retry, so a server that already stored it answers
"duplicate" instead of storing it again.

Layout of the spool directory (mode 0700; files 0600, because reports describe the host)::

    <spool>/
      00001732650000123456789-<report_id>.json   pending reports; the name sorts by creation
      .state.json                                 drop counters (see "Bound" below)
      .lock                                       held by the one agent using this spool
      bad/        unreadable files moved aside (+ <name>.reason.txt)
      rejected/   reports the server refused for good (+ <name>.reason.txt)

*Durability.* A report is written to a temporary file in the spool directory, flushed with
``fsync``, renamed over its final name with ``os.replace`` (atomic on POSIX) and the directory is
``fsync``-ed so the rename itself survives a power cut. A reader therefore sees a whole report or
none; a temporary file left by a crash is incomplete by construction and is removed when the
spool is opened.

*Corruption.* A file that cannot be read back as a report (truncated by a failing disk, edited by
hand) is moved to ``bad/`` with a warning and the reason beside it. It never stops the agent and
never blocks the reports behind it.

*Bound.* The spool holds at most :attr:`SpoolLimits.max_reports` reports and
:attr:`SpoolLimits.max_bytes` bytes. When a new report would exceed either, the **oldest** pending
reports are deleted unsent: during a long outage the recent state of the host matters more than
the state weeks ago, and a full disk would stop the host's real work. Drops are never silent: each
is logged, counted in ``.state.json`` (:attr:`SpoolStats.dropped_total`, kept across restarts)
and announced to the server as a blind spot in the next report stored, with the time span the
dropped reports covered. ``bad/`` and ``rejected/`` keep at most
:attr:`SpoolLimits.max_quarantined` files each, oldest deleted first.

*Default location* (:func:`default_spool_dir`): ``/var/lib/minewatch/spool`` when run as root,
else ``$XDG_STATE_HOME/minewatch/spool``, else ``~/.local/state/minewatch/spool`` (the XDG base
directory rule for state that should survive a reboot but is not user data).

Example::

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp, Spool(Path(tmp) / "spool") as spool:
    ...     stored = spool.put(HostReport.create("web-01", findings=[], blind_spots=[]))
    ...     [entry.report.hostname for entry in spool.iter_pending()]
    ['web-01']
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import minewatch
from minewatch.errors import MinewatchError
from minewatch.findings import iso_utc
from minewatch.host.model import HostFinding

__all__ = [
    "HostReport",
    "PutResult",
    "Spool",
    "SpoolError",
    "SpoolLimits",
    "SpoolStats",
    "SpooledReport",
    "default_spool_dir",
]

log = logging.getLogger("minewatch.agent.spool")

_NAME = re.compile(r"^(?P<stamp>\d{20})-(?P<report_id>[0-9a-f]{32})\.json$")
_REPORT_ID = re.compile(r"^[0-9a-f]{32}$")
_TEMP_PREFIX = ".tmp-"
_STATE_NAME = ".state.json"
_LOCK_NAME = ".lock"
_BAD = "bad"
_REJECTED = "rejected"
_REASON_SUFFIX = ".reason.txt"
_REASON_MAX_CHARS = 4000


class SpoolError(MinewatchError):
    """The spool cannot be used (directory not writable, held by another agent, report too big)."""


@dataclass(slots=True)
class HostReport:
    """What the agent sends to the server for one scan: the envelope of the findings.

    ``report_id`` is a random UUID (hex) drawn once, when the scan is made. It is stored in the
    spool and sent unchanged on every retry; the server keys on it, so a report that reached the
    server but whose answer was lost is recognised as a duplicate instead of being stored twice.

    Example::

        >>> r = HostReport.create("web-01", findings=[], blind_spots=["no NVML library"])
        >>> r.to_dict()["hostname"], len(r.report_id), r.scanned_at.endswith("Z")
        ('web-01', 32, True)
    """

    report_id: str
    hostname: str
    agent_version: str
    scanned_at: str
    """ISO-8601 with a time zone; :meth:`create` writes UTC with ``Z``."""
    findings: list[dict[str, Any]] = field(default_factory=list)
    """Each one :meth:`HostFinding.to_dict` of a finding."""
    blind_spots: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        hostname: str,
        findings: Iterable[HostFinding],
        blind_spots: Iterable[str] = (),
        *,
        scanned_at_ns: int | None = None,
    ) -> HostReport:
        """A new report with a fresh ``report_id``, stamped now (or at ``scanned_at_ns``)."""
        stamp = time.time_ns() if scanned_at_ns is None else scanned_at_ns
        return cls(
            report_id=uuid.uuid4().hex,
            hostname=hostname,
            agent_version=minewatch.__version__,
            scanned_at=iso_utc(stamp),
            findings=[finding.to_dict() for finding in findings],
            blind_spots=list(blind_spots),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON body sent to ``POST /api/v1/host-reports/``; the key order is the contract."""
        return {
            "report_id": self.report_id,
            "hostname": self.hostname,
            "agent_version": self.agent_version,
            "scanned_at": self.scanned_at,
            "findings": [dict(finding) for finding in self.findings],
            "blind_spots": list(self.blind_spots),
        }

    def to_json_bytes(self) -> bytes:
        """Compact UTF-8 JSON of :meth:`to_dict` (no NaN: the server's JSON parser would refuse)."""
        return json.dumps(
            self.to_dict(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> HostReport:
        """Check and rebuild a report read from disk; a :class:`ValueError` says what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("a report is a JSON object")
        values: dict[str, Any] = {}
        for key in ("report_id", "hostname", "agent_version", "scanned_at"):
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{key!r} must be a non-empty string")
            values[key] = value
        if not _REPORT_ID.match(values["report_id"]):
            raise ValueError("'report_id' must be 32 lower-case hex digits")
        try:
            stamp = datetime.fromisoformat(values["scanned_at"])
        except ValueError:
            raise ValueError("'scanned_at' is not an ISO-8601 time") from None
        if stamp.tzinfo is None:
            raise ValueError("'scanned_at' has no time zone")
        findings = data.get("findings")
        if not isinstance(findings, list) or not all(isinstance(f, dict) for f in findings):
            raise ValueError("'findings' must be a list of objects")
        blind_spots = data.get("blind_spots")
        if not isinstance(blind_spots, list) or not all(isinstance(b, str) for b in blind_spots):
            raise ValueError("'blind_spots' must be a list of strings")
        return cls(findings=findings, blind_spots=blind_spots, **values)


@dataclass(frozen=True, slots=True)
class SpoolLimits:
    """How much the spool may hold; beyond either bound the oldest reports are dropped.

    The defaults keep about five weeks of reports at one scan every five minutes (a report
    without findings is well under 1 KiB) while never taking more than 256 MiB of disk.
    """

    max_reports: int = 10_000
    max_bytes: int = 256 * 1024 * 1024
    max_quarantined: int = 1_000
    """Files kept in each of ``bad/`` and ``rejected/``."""

    def __post_init__(self) -> None:
        if self.max_reports < 1 or self.max_bytes < 1 or self.max_quarantined < 0:
            raise ValueError(f"spool limits must be positive, got {self}")


@dataclass(frozen=True, slots=True)
class SpooledReport:
    """A pending report and the file that holds it."""

    path: Path
    report: HostReport
    size: int

    @property
    def name(self) -> str:
        """The file name: ``<creation time, ns, 20 digits>-<report_id>.json``."""
        return self.path.name


@dataclass(frozen=True, slots=True)
class PutResult:
    """What :meth:`Spool.put` did: the stored report and the older reports dropped for it."""

    entry: SpooledReport
    dropped: tuple[str, ...] = ()
    """``report_id`` of each pending report deleted unsent to respect the bound."""


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """Counts for the agent's log line and status output."""

    pending: int
    pending_bytes: int
    dropped_total: int
    """Reports ever dropped unsent because the spool was full (kept across restarts)."""
    bad: int
    rejected: int


@dataclass(slots=True)
class _DropState:
    """Persisted drop counters; ``unannounced_*`` are drops the server has not been told of."""

    dropped_total: int = 0
    unannounced: int = 0
    unannounced_first_ns: int | None = None
    unannounced_last_ns: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dropped_total": self.dropped_total,
            "unannounced": self.unannounced,
            "unannounced_first_ns": self.unannounced_first_ns,
            "unannounced_last_ns": self.unannounced_last_ns,
        }


def default_spool_dir(environ: Mapping[str, str] | None = None, euid: int | None = None) -> Path:
    """Where the agent keeps its spool unless told otherwise (see the module docstring)."""
    env = os.environ if environ is None else environ
    uid = os.geteuid() if euid is None else euid
    if uid == 0:
        return Path("/var/lib/minewatch/spool")
    state_home = env.get("XDG_STATE_HOME", "")
    # The XDG rule: a relative value is invalid and must be ignored.
    if state_home and Path(state_home).is_absolute():
        return Path(state_home) / "minewatch" / "spool"
    return Path.home() / ".local" / "state" / "minewatch" / "spool"


def _fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(directory: Path, name: str, data: bytes) -> Path:
    """Write ``directory/name`` whole or not at all, mode 0600, and make it durable."""
    fd, tmp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)  # created 0600
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        target = directory / name
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return target


def _make_private_dir(directory: Path) -> None:
    """Create ``directory`` (and parents) and make it 0700: reports describe the host."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise SpoolError(f"spool path {directory} is not a directory")
    if stat.S_IMODE(info.st_mode) != 0o700:
        try:
            directory.chmod(0o700)
        except OSError as exc:
            log.warning("cannot make spool directory %s private (mode 0700): %s", directory, exc)


class Spool:
    """A durable, bounded, ordered queue of :class:`HostReport` files; see the module docstring.

    One agent at a time: opening takes an exclusive lock on ``<spool>/.lock`` and a second
    :class:`Spool` over the same directory raises :class:`SpoolError` until the first is closed.

    Example::

        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with Spool(Path(tmp), SpoolLimits(max_reports=2)) as spool:
        ...         for _ in range(3):
        ...             _ = spool.put(HostReport.create("db-02", findings=[]))
        ...         spool.stats().pending, spool.stats().dropped_total
        (2, 1)
    """

    def __init__(
        self,
        directory: Path | None = None,
        limits: SpoolLimits | None = None,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._directory = default_spool_dir() if directory is None else Path(directory)
        self._clock_ns = clock_ns
        self._limits = SpoolLimits() if limits is None else limits
        try:
            _make_private_dir(self._directory)
            for sub in (_BAD, _REJECTED):
                _make_private_dir(self._directory / sub)
            lock_fd = os.open(self._directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {self._directory}: {exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise SpoolError(
                f"spool directory {self._directory} is in use by another minewatch agent"
            ) from None
        self._lock_fd: int | None = lock_fd
        self._remove_stale_temp_files()
        self._state = self._load_state()
        pending = self._pending_paths()
        # Creation stamp of the newest report: names stay ordered even if the clock steps back.
        self._last_stamp = self._stamp_of(pending[-1]) if pending else 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The spool directory."""
        return self._directory

    @property
    def limits(self) -> SpoolLimits:
        """The bound this spool enforces."""
        return self._limits

    def close(self) -> None:
        """Release the lock so another agent (or a restarted one) may open the spool."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Spool({str(self._directory)!r})"

    # -- writing ---------------------------------------------------------------------------

    def put(self, report: HostReport) -> PutResult:
        """Store ``report`` durably, dropping the oldest pending reports if the bound requires.

        If earlier drops have not been announced yet, the stored report carries a blind spot
        that says how many reports were lost and which period they covered; the returned entry
        holds the report as stored.
        """
        self._check_open()
        try:  # refuse to spool what could not be read back
            HostReport.from_dict(report.to_dict())
        except ValueError as exc:
            raise SpoolError(f"refusing to spool an invalid report: {exc}") from exc
        pending = [(path, path.stat().st_size) for path in self._pending_paths()]
        drops: list[tuple[Path, int]] = []
        stored = report
        for _ in range(len(pending) + 2):
            stored = self._with_drop_notice(report, drops)
            data = stored.to_json_bytes()
            if len(data) > self._limits.max_bytes:
                raise SpoolError(
                    f"report {report.report_id} is {len(data)} bytes, more than the spool bound "
                    f"of {self._limits.max_bytes} bytes; it cannot be kept"
                )
            kept = pending[len(drops) :]
            kept_bytes = sum(size for _, size in kept)
            over_count = len(kept) + 1 > self._limits.max_reports
            if not over_count and kept_bytes + len(data) <= self._limits.max_bytes:
                break
            drops.append(pending[len(drops)])
        dropped_ids = self._drop(path for path, _ in drops)

        stamp = max(self._clock_ns(), self._last_stamp + 1)
        name = f"{stamp:020d}-{report.report_id}.json"
        try:
            path = _write_durably(self._directory, name, data)
        except OSError as exc:
            raise SpoolError(f"cannot write report to spool {self._directory}: {exc}") from exc
        self._last_stamp = stamp
        if self._state.unannounced:
            self._state.unannounced = 0
            self._state.unannounced_first_ns = self._state.unannounced_last_ns = None
            self._save_state()
        return PutResult(SpooledReport(path, stored, len(data)), dropped_ids)

    def _with_drop_notice(self, report: HostReport, drops: list[tuple[Path, int]]) -> HostReport:
        """``report`` plus a blind spot announcing unannounced drops and the ``drops`` planned."""
        count = self._state.unannounced + len(drops)
        if count == 0:
            return report
        stamps = [self._stamp_of(path) for path, _ in drops]
        for known in (self._state.unannounced_first_ns, self._state.unannounced_last_ns):
            if known is not None:
                stamps.append(known)
        span = f" made between {iso_utc(min(stamps))} and {iso_utc(max(stamps))}" if stamps else ""
        notice = (
            f"agent spool full: {count} earlier report(s){span} were dropped unsent to keep the "
            f"spool within {self._limits.max_reports} reports / {self._limits.max_bytes} bytes; "
            "the server has no scans of this host for that period"
        )
        return replace(report, blind_spots=[*report.blind_spots, notice])

    def _drop(self, paths: Iterable[Path]) -> tuple[str, ...]:
        """Delete pending reports unsent, count them and remember their span for the notice."""
        dropped: list[str] = []
        for path in paths:
            match = _NAME.match(path.name)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            dropped.append(match.group("report_id") if match else path.name)
            stamp = self._stamp_of(path)
            state = self._state
            state.dropped_total += 1
            state.unannounced += 1
            first, last = state.unannounced_first_ns, state.unannounced_last_ns
            state.unannounced_first_ns = stamp if first is None else min(first, stamp)
            state.unannounced_last_ns = stamp if last is None else max(last, stamp)
        if dropped:
            _fsync_dir(self._directory)
            self._save_state()
            log.warning(
                "spool full (bound %d reports / %d bytes): dropped %d oldest unsent report(s); "
                "%d dropped in total",
                self._limits.max_reports,
                self._limits.max_bytes,
                len(dropped),
                self._state.dropped_total,
            )
        return tuple(dropped)

    # -- reading and settling --------------------------------------------------------------

    def iter_pending(self) -> Iterator[SpooledReport]:
        """Pending reports, oldest first, read one at a time; unreadable ones go to ``bad/``.

        The directory is listed once when iteration starts; reports stored meanwhile are seen on
        the next call. A file that vanished meanwhile (settled by this agent) is skipped.
        """
        self._check_open()
        for path in self._pending_paths():
            entry = self._read(path)
            if entry is not None:
                yield entry

    def count(self) -> int:
        """How many reports are pending (without reading them)."""
        return len(self._pending_paths())

    def ack(self, entry: SpooledReport) -> None:
        """The server has stored ``entry``: delete its file, durably."""
        self._check_open()
        with contextlib.suppress(FileNotFoundError):
            entry.path.unlink()
        _fsync_dir(self._directory)

    def reject(self, entry: SpooledReport, reason: str) -> Path:
        """The server refused ``entry`` for good: move it to ``rejected/`` with ``reason``."""
        self._check_open()
        return self._move_aside(entry.path, _REJECTED, reason)

    def stats(self) -> SpoolStats:
        """Pending count and bytes, drops ever made, files in ``bad/`` and ``rejected/``."""
        paths = self._pending_paths()
        sizes = 0
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                sizes += path.stat().st_size
        return SpoolStats(
            pending=len(paths),
            pending_bytes=sizes,
            dropped_total=self._state.dropped_total,
            bad=len(self._quarantined(self._directory / _BAD)),
            rejected=len(self._quarantined(self._directory / _REJECTED)),
        )

    # -- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise SpoolError(f"spool {self._directory} is closed")

    def _pending_names(self) -> list[str]:
        """Names of pending report files, sorted (= oldest first).

        Hidden names (the lock, the counters, temporary files) and directories are not reports;
        anything else that is not a regular file named like a report is moved to ``bad/`` so it
        is seen by a person and does not sit in the queue forever.
        """
        valid: list[str] = []
        strays: list[tuple[str, str]] = []
        with os.scandir(self._directory) as entries:
            for item in entries:
                if item.name.startswith(".") or item.is_dir(follow_symlinks=False):
                    continue
                if not item.is_file(follow_symlinks=False):
                    strays.append((item.name, "not a regular file"))
                elif not _NAME.match(item.name):
                    strays.append((item.name, "file name is not <20-digit time>-<report id>.json"))
                else:
                    valid.append(item.name)
        for name, reason in strays:
            self._move_aside(self._directory / name, _BAD, reason)
        valid.sort()
        return valid

    def _pending_paths(self) -> list[Path]:
        return [self._directory / name for name in self._pending_names()]

    @staticmethod
    def _stamp_of(path: Path) -> int:
        match = _NAME.match(path.name)
        return int(match.group("stamp")) if match else 0

    def _read(self, path: Path) -> SpooledReport | None:
        """Read one pending report, or move it to ``bad/`` and return ``None``."""
        try:
            with path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > self._limits.max_bytes:
                    raise ValueError(f"{size} bytes, more than the spool bound")
                data = fh.read(self._limits.max_bytes + 1)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._move_aside(path, _BAD, f"cannot read: {exc}")
            return None
        try:
            report = HostReport.from_dict(json.loads(data.decode("utf-8")))
            match = _NAME.match(path.name)
            if match is None or match.group("report_id") != report.report_id:
                raise ValueError("report_id in the file does not match the file name")
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            self._move_aside(path, _BAD, f"not a valid report: {exc}")
            return None
        return SpooledReport(path, report, len(data))

    def _move_aside(self, path: Path, sub: str, reason: str) -> Path:
        """Move ``path`` into ``<spool>/<sub>/`` with a ``.reason.txt`` beside it; never raises
        for a file that is already gone."""
        target_dir = self._directory / sub
        target = target_dir / path.name
        reason = reason[:_REASON_MAX_CHARS]
        try:
            path.replace(target)
        except FileNotFoundError:
            return target
        except OSError as exc:
            # Cannot move it: delete rather than let one bad file block the queue forever.
            log.error("cannot move %s to %s/ (%s); deleting it", path, sub, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return target
        try:
            _write_durably(target_dir, path.name + _REASON_SUFFIX, (reason + "\n").encode())
            _fsync_dir(self._directory)
        except OSError as exc:
            log.error("cannot record why %s was moved to %s/: %s", path.name, sub, exc)
        if sub == _BAD:
            log.warning("spool file %s moved to %s: %s", path.name, target_dir, reason)
        else:
            log.warning("report file %s moved to %s: %s", path.name, target_dir, reason)
        self._trim_quarantine(target_dir)
        return target

    @staticmethod
    def _quarantined(directory: Path) -> list[Path]:
        try:
            return sorted(
                p
                for p in directory.iterdir()
                if p.is_file() and not p.name.endswith(_REASON_SUFFIX)
            )
        except OSError:
            return []

    def _trim_quarantine(self, directory: Path) -> None:
        """Keep at most ``max_quarantined`` files in ``bad/`` or ``rejected/``, oldest out first."""
        files = self._quarantined(directory)
        excess = len(files) - self._limits.max_quarantined
        for path in files[: max(0, excess)]:
            for victim in (path, path.with_name(path.name + _REASON_SUFFIX)):
                with contextlib.suppress(OSError):
                    victim.unlink()
        if excess > 0:
            log.warning(
                "%s holds more than %d files; deleted the %d oldest",
                directory,
                self._limits.max_quarantined,
                excess,
            )

    def _remove_stale_temp_files(self) -> None:
        """Temporary files are incomplete by construction: a crash left them half-written."""
        for path in self._directory.glob(_TEMP_PREFIX + "*"):
            with contextlib.suppress(OSError):
                path.unlink()
                log.info("removed incomplete spool file %s left by an interrupted write", path)

    def _load_state(self) -> _DropState:
        path = self._directory / _STATE_NAME
        try:
            raw = json.loads(path.read_bytes().decode("utf-8"))
            state = _DropState(
                dropped_total=int(raw["dropped_total"]),
                unannounced=int(raw["unannounced"]),
                unannounced_first_ns=_opt_int(raw.get("unannounced_first_ns")),
                unannounced_last_ns=_opt_int(raw.get("unannounced_last_ns")),
            )
        except FileNotFoundError:
            return _DropState()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("spool counters in %s unreadable (%s); starting from zero", path, exc)
            return _DropState()
        if state.dropped_total < 0 or state.unannounced < 0:
            log.warning("spool counters in %s are negative; starting from zero", path)
            return _DropState()
        return state

    def _save_state(self) -> None:
        data = json.dumps(self._state.to_dict(), separators=(",", ":")).encode()
        try:
            _write_durably(self._directory, _STATE_NAME, data)
        except OSError as exc:
            log.error("cannot save spool counters in %s: %s", self._directory, exc)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
