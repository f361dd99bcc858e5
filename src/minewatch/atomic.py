"""Files replaced whole or not at all.

Results are written to a temporary file in the destination's folder and renamed over the
destination once complete, so a reader never sees half a file and a failed or interrupted run
leaves the previous file in place.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

__all__ = ["atomic_binary", "atomic_text", "atomic_write_bytes"]


@contextmanager
def atomic_binary(path: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` when the ``with`` block ends without error."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.resolve().parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_text(path: Path, encoding: str = "utf-8") -> Iterator[TextIO]:
    """:func:`atomic_binary` for text."""
    with atomic_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding)
        try:
            yield text
        finally:
            text.flush()
            text.detach()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step."""
    with atomic_binary(path) as fh:
        fh.write(data)
