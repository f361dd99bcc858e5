"""Sub-command groups of the ``minewatch`` CLI, one module per group, added in ``cli.py``."""
