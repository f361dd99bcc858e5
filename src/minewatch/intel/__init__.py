"""Intelligence kept as data: mining-pool domains and CDN front ends, each fact with its source.

The data files (``pools.csv``, ``cdn_prefixes.csv``) live beside the code and are validated on
load. See :mod:`minewatch.intel.pools`.
"""

from minewatch.intel.pools import CdnPrefix, PoolEntry, PoolIntel

__all__ = ["CdnPrefix", "PoolEntry", "PoolIntel"]
