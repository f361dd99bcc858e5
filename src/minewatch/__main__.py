"""``python -m minewatch`` is the ``minewatch`` command."""

from minewatch.cli import main

if __name__ == "__main__":
    main()
