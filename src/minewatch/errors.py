"""The one exception tree of minewatch.

Every error a user can provoke derives from :class:`MinewatchError`, so the CLI can print one clear
line and exit non-zero instead of showing a traceback::

    MinewatchError
     ├── InputError            bad input given by the user (a file, an option value)
     │    └── CaptureError     a capture file that cannot be read, with *where* (path, byte offset)
     └── DataError             a bundled data file (intelligence lists) is malformed
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CaptureError", "DataError", "InputError", "MinewatchError"]


class MinewatchError(Exception):
    """Base of every error minewatch raises on purpose."""


class InputError(MinewatchError):
    """Input supplied by the user is unusable; the message says what a valid input looks like."""


class CaptureError(InputError):
    """A capture file is empty, truncated, corrupt or not a capture at all.

    Carries the path and, where known, the byte offset of the problem so that a user can look at
    the file with another tool.
    """

    def __init__(self, path: str | Path, message: str, offset: int | None = None) -> None:
        self.path = str(path)
        self.offset = offset
        self.reason = message
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path}: {message}{where}")


class DataError(MinewatchError):
    """A data file shipped with minewatch (or given to replace one) is malformed."""
