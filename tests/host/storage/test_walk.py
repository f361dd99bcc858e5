"""The bounded walker: what it yields, what it refuses to follow, and the blind spots it reports."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from minewatch.host.storage.walk import (
    BLOCK_FS_TYPES,
    TreeWalk,
    WalkLimits,
    default_roots,
    read_head,
    read_mounts,
    unreadable_homes,
)

from .conftest import run_unprivileged


def _tree(root: Path) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "one.bin").write_bytes(b"1")
    (root / "a" / "b" / "two.bin").write_bytes(b"22")
    (root / "a" / "b" / "c" / "three.bin").write_bytes(b"333")
    (root / "top.txt").write_text("t")


def _expected(root: Path) -> set[str]:
    """Directories and regular files below root, computed independently with os.walk."""
    found = {str(root)}
    for directory, dirs, files in os.walk(root):
        found.update(os.path.join(directory, d) for d in dirs)
        found.update(os.path.join(directory, f) for f in files)
    return found


def test_yields_every_directory_and_file_once_with_its_stat(tmp_path: Path) -> None:
    _tree(tmp_path)
    walk = TreeWalk([tmp_path, tmp_path / "a"])  # the second root is inside the first
    seen = list(walk)
    paths = [p for p, _ in seen]
    assert len(paths) == len(set(paths))
    assert set(paths) == _expected(tmp_path)
    for path, st in seen:
        assert st.st_ino == os.lstat(path).st_ino
        if path.endswith("three.bin"):
            assert st.st_size == 3
    assert walk.blind_spots() == []
    assert walk.entries_examined == len(paths) - 1  # every entry but the root itself


def test_never_follows_symbolic_links(tmp_path: Path) -> None:
    inside = tmp_path / "tree"
    outside = tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"x" * 10)
    (inside / "real.bin").write_bytes(b"y")
    (inside / "to_dir").symlink_to(outside)
    (inside / "to_file").symlink_to(outside / "secret.bin")
    (inside / "loop").symlink_to(inside)
    paths = {Path(p).name for p, _ in TreeWalk([inside])}
    assert paths == {"tree", "real.bin"}


def test_a_root_named_through_a_link_is_walked(tmp_path: Path) -> None:
    _tree(tmp_path / "data")
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    paths = {p for p, _ in TreeWalk([tmp_path / "alias"])}
    assert paths == _expected(tmp_path / "data")


def test_a_regular_file_root_is_yielded_and_missing_roots_reported(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"abc")
    walk = TreeWalk([tmp_path / "f.bin", tmp_path / "gone"])
    assert [Path(p).name for p, _ in walk] == ["f.bin"]
    assert walk.blind_spots() == [f"1 paths do not exist: {tmp_path / 'gone'}"]


def test_pseudo_file_systems_are_skipped_and_said() -> None:
    walk = TreeWalk([Path("/proc/self"), Path("/sys")])
    assert list(walk) == []
    assert walk.blind_spots()[0].startswith("2 paths skipped as pseudo file systems")


def test_depth_limit_is_a_blind_spot(tmp_path: Path) -> None:
    _tree(tmp_path)
    walk = TreeWalk([tmp_path], WalkLimits(max_depth=2))
    names = {Path(p).name for p, _ in walk}
    assert {"a", "one.bin", "top.txt", "b"} <= names  # one and two levels below the root
    assert not {"two.bin", "c", "three.bin"} & names  # three levels and more
    (line,) = walk.blind_spots()
    assert line == f"1 directories at the depth limit (2) not entered: {tmp_path / 'a' / 'b'}"


def test_entries_per_directory_limit_is_a_blind_spot(tmp_path: Path) -> None:
    for n in range(10):
        (tmp_path / f"f{n}").write_bytes(b"")
    walk = TreeWalk([tmp_path], WalkLimits(max_dir_entries=4))
    files = [p for p, st in walk if stat.S_ISREG(st.st_mode)]
    assert len(files) == 4
    assert walk.blind_spots() == [
        f"1 directories with more than 4 entries only partly examined: {tmp_path}"
    ]


def test_total_entry_limit_stops_the_walk_and_says_so(tmp_path: Path) -> None:
    _tree(tmp_path)
    walk = TreeWalk([tmp_path], WalkLimits(max_entries=3))
    list(walk)
    assert walk.entries_examined == 3
    (line,) = walk.blind_spots()
    assert line.startswith("walk stopped after 3 entries")


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        WalkLimits(max_entries=0)


@contextlib.contextmanager
def _tmpfs(where: Path) -> Iterator[None]:
    """Mount a small tmpfs (root only); skip where the kernel or sandbox refuses."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "minewatch-test", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_stays_on_one_file_system_and_names_the_mount_not_crossed(tmp_path: Path) -> None:
    (tmp_path / "here.bin").write_bytes(b"h")
    mount = tmp_path / "other-fs"
    with _tmpfs(mount):
        (mount / "there.bin").write_bytes(b"t")
        walk = TreeWalk([tmp_path])
        names = {Path(p).name for p, _ in walk}
        assert "here.bin" in names and "there.bin" not in names and "other-fs" not in names
        assert walk.blind_spots() == [
            f"1 mount points of other file systems not crossed (pass them with --path): {mount}"
        ]
        crossing = TreeWalk([tmp_path], WalkLimits(one_file_system=False))
        assert "there.bin" in {Path(p).name for p, _ in crossing}
        both = TreeWalk([tmp_path, mount])  # named as a root of its own: walked, not reported
        assert "there.bin" in {Path(p).name for p, _ in both}
        assert both.blind_spots() == []


def test_unreadable_directories_are_counted_as_blind_spots(
    unprivileged_uid: int | None, world_readable_tmp: Path
) -> None:
    """Runs the walker without privileges (as ``nobody`` when the tests run as root)."""
    base = world_readable_tmp
    (base / "open").mkdir()
    (base / "open" / "seen.bin").write_bytes(b"s")
    for name in ("locked1", "locked2"):
        (base / name).mkdir()
        (base / name / "hidden.bin").write_bytes(b"h")
        (base / name).chmod(0o000 if unprivileged_uid is None else 0o700)

    def walk() -> tuple[list[str], list[str]]:
        tree = TreeWalk([base])
        return sorted(Path(p).name for p, _ in tree), tree.blind_spots()

    names, blind = run_unprivileged(walk, unprivileged_uid)
    assert "seen.bin" in names and "hidden.bin" not in names
    (line,) = blind
    assert line.startswith("2 directories not readable")
    assert "locked1" in line and "locked2" in line and "Permission denied" in line


def test_closed_homes_are_named(unprivileged_uid: int | None, world_readable_tmp: Path) -> None:
    open_home = world_readable_tmp / "alice"
    closed_home = world_readable_tmp / "bob"
    open_home.mkdir()
    closed_home.mkdir()
    closed_home.chmod(0o700 if unprivileged_uid is not None else 0o000)
    (line,) = run_unprivileged(lambda: unreadable_homes([open_home, closed_home]), unprivileged_uid)
    assert line == (
        f"1 home directories not readable, per-user installs there not checked: {closed_home}"
    )
    assert unreadable_homes([open_home]) == []


MOUNTS = (
    "/dev/sda1 / ext4 rw,relatime 0 0\n"
    "proc /proc proc rw 0 0\n"
    "tmpfs /run tmpfs rw 0 0\n"
    "/dev/sdb1 /srv/plots\\040disk xfs rw 0 0\n"
    "tank/farm /tank zfs rw 0 0\n"
    "fileserver:/export /mnt/nfs nfs4 rw 0 0\n"
    "mergerfs /mnt/pool fuse.mergerfs rw 0 0\n"
    "overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0\n"
    "/dev/loop3 /snap/core/1 squashfs ro 0 0\n"
    "tmpfs /dev/shm tmpfs rw 0 0\n"
    "/dev/sda1 /srv/plots\\040disk xfs rw 0 0\n"
    "garbage\n"
)


def test_default_roots_keep_block_file_systems_and_name_remote_ones(tmp_path: Path) -> None:
    table = tmp_path / "mounts"
    table.write_text(MOUNTS)
    assert read_mounts(table)[3].mount_point == Path("/srv/plots disk")
    roots, blind = default_roots(table)
    assert roots == [Path("/"), Path("/tank"), Path("/srv/plots disk")]
    (line,) = blind
    assert line.startswith("2 network or FUSE file systems not walked by default")
    assert "/mnt/nfs (nfs4)" in line and "/mnt/pool (fuse.mergerfs)" in line


def test_default_roots_take_an_overlay_only_at_the_root(tmp_path: Path) -> None:
    table = tmp_path / "mounts"
    table.write_text("overlay / overlay rw 0 0\noverlay /x/merged overlay rw 0 0\n")
    assert default_roots(table) == ([Path("/")], [])


def test_default_roots_without_a_mount_table_walk_root_and_say_so(tmp_path: Path) -> None:
    roots, blind = default_roots(tmp_path / "missing")
    assert roots == [Path("/")]
    assert "not readable" in blind[0]


def test_default_roots_of_this_host_are_real_directories() -> None:
    table = Path("/proc/self/mounts")
    if not table.exists():
        pytest.skip("no /proc/self/mounts on this system")
    roots, _ = default_roots(table)
    mounts = read_mounts(table)
    for root in roots:
        assert root.is_dir()
        types = {m.fs_type for m in mounts if m.mount_point == root}
        assert types & BLOCK_FS_TYPES or (root == Path("/") and "overlay" in types)


def test_read_head_reads_at_most_the_limit(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    (tmp_path / "f").write_bytes(data)
    assert read_head(tmp_path / "f", 100) == data[:100]
    assert read_head(tmp_path / "f", 0) == b""


def test_read_head_does_not_block_on_a_fifo_nor_follow_a_link(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert read_head(fifo, 100) == b""
    assert time.monotonic() - started < 5
    (tmp_path / "target").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        read_head(tmp_path / "link", 3)


def test_read_head_leaves_the_access_time_alone_where_allowed(tmp_path: Path) -> None:
    """An atime older than the mtime is updated by a plain read even on relatime mounts."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 4096)
    st = path.stat()
    old_atime_ns = st.st_mtime_ns - 3600 * 10**9
    os.utime(path, ns=(old_atime_ns, st.st_mtime_ns))
    read_head(path, 512)
    assert path.stat().st_atime_ns == old_atime_ns
