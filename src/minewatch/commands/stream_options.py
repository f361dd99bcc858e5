"""Options shared by the commands that report findings as they happen (``watch``, ``collect``):
how long to run, how to print, and how sure a finding must be."""

from __future__ import annotations

import click

__all__ = ["duration_option", "min_confidence_option", "stream_format_option"]

duration_option = click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop after this many seconds (default: run until interrupted).",
)
stream_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="Findings on standard output: one line each, or one JSON document each.",
)
min_confidence_option = click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Report only findings at least this sure.",
)
