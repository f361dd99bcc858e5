"""Flow records: one columnar record type for every flow source (captures, live interfaces,
NetFlow v5/v9/IPFIX, nfdump files, Zeek and Suricata logs).

See :mod:`minewatch.net.flowrec.table` for the schema every source produces.
"""
