"""The host agent: what runs on a machine (miner processes, renamed miner binaries, GPU kernels)
and what it stores (Chia plots, Filecoin sectors). See :mod:`minewatch.host.model` for the
contract and :mod:`minewatch.host.scan` for a whole-host scan."""
