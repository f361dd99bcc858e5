"""Results are replaced whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from minewatch.atomic import atomic_text, atomic_write_bytes


def test_complete_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with atomic_text(target) as fh:
        fh.write("新的 result\n")
    assert target.read_text(encoding="utf-8") == "新的 result\n"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_text(target) as fh:
        fh.write("half a file")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
