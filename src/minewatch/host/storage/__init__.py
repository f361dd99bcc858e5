"""Storage mining on a host: Chia plots and Filecoin sectors, found by content, not by name.

Proof-of-space and proof-of-storage coins use little power and look like ordinary storage, so the
agent identifies them by what only they write: plot headers, the Lotus sector layout, their
installs and services. Every probe here reads metadata and file headers only, never contents,
and reports what it could not see. Importing this package registers the ``chia-storage`` and
``filecoin-storage`` probes.

Example::

    >>> from minewatch.host.model import PROBES
    >>> "chia-storage" in PROBES and "filecoin-storage" in PROBES
    True
"""

from minewatch.host.storage.capacity import TB, summarise_capacity
from minewatch.host.storage.chia import ChiaStorageProbe, parse_plot_header
from minewatch.host.storage.filecoin import FilecoinStorageProbe, parse_sector_name
from minewatch.host.storage.walk import TreeWalk, WalkLimits, default_roots

__all__ = [
    "TB",
    "ChiaStorageProbe",
    "FilecoinStorageProbe",
    "TreeWalk",
    "WalkLimits",
    "default_roots",
    "parse_plot_header",
    "parse_sector_name",
    "summarise_capacity",
]
