"""The capture bundled with minewatch, recorded by the project itself.

See ``data/sample/README.md`` for how it was recorded and what it holds.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["power_sample", "sample_capture"]


def sample_capture() -> Path:
    """Path of the bundled sample capture (a real XMRig session plus ordinary traffic)."""
    ref = resources.files("minewatch") / "data" / "sample" / "minewatch-sample.pcap"
    return Path(str(ref))


def power_sample() -> tuple[Path, Path]:
    """Paths of the bundled sample meter readings and their accounts file."""
    base = resources.files("minewatch") / "data" / "sample"
    return Path(str(base / "power-sample.csv.gz")), Path(str(base / "power-accounts.csv"))
