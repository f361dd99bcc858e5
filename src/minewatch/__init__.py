"""minewatch: find cryptocurrency mining hidden in data centres and follow every case until it
is gone."""

from minewatch.errors import CaptureError, DataError, InputError, MinewatchError
from minewatch.findings import Finding, Verdict

__version__ = "0.1.0"

__all__ = [
    "CaptureError",
    "DataError",
    "Finding",
    "InputError",
    "MinewatchError",
    "Verdict",
    "__version__",
]
