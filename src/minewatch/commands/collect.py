"""``minewatch collect``: receive NetFlow v5/v9/IPFIX and write (and/or judge) the records.

Why a separate function from the click command: detection runs on the same batches the writer
sees, so :func:`run_collect` takes extra ``on_records`` callbacks — the CLI wiring passes the
detector there — and the command itself only parses options and prints.

Output is written to a temporary file beside ``--out`` while collecting and renamed over it when
the collector stops (``minewatch.atomic``), so a reader never sees a half-written file.

Example::

    minewatch collect --listen 0.0.0.0:2055 --out flows.parquet --duration 3600
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

import click
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from minewatch.atomic import atomic_binary
from minewatch.commands.stream_options import (
    duration_option,
    min_confidence_option,
    stream_format_option,
)
from minewatch.errors import InputError, MinewatchError
from minewatch.findings import iso_utc
from minewatch.net.behaviour.streaming import StreamingJudge
from minewatch.net.flowrec.collector import (
    CollectorStats,
    FlowCollector,
    RecordsCallback,
    parse_listen,
)
from minewatch.net.flowrec.table import FLOW_SCHEMA

__all__ = ["JudgeRecords", "collect", "records_writer", "run_collect", "streaming_judge"]


@contextmanager
def records_writer(path: Path) -> Iterator[RecordsCallback]:
    """A callback that appends each batch to ``path`` (``.parquet`` or ``.jsonl``), which
    appears whole when the ``with`` block ends."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".jsonl"):
        raise InputError(f"--out {path}: the file name must end in .parquet or .jsonl")
    if not path.resolve().parent.is_dir():
        raise InputError(f"--out {path}: the folder does not exist")
    with atomic_binary(path) as fh:
        if suffix == ".parquet":
            with pq.ParquetWriter(fh, FLOW_SCHEMA, compression="zstd") as writer:
                yield writer.write_table
        else:
            yield _jsonl_writer(fh)


def _jsonl_writer(fh: BinaryIO) -> RecordsCallback:
    def write(table: pa.Table) -> None:
        rows = table.to_pylist()
        lines = []
        for row in rows:
            row["start"] = iso_utc(row["start_ns"])
            row["end"] = iso_utc(row["end_ns"])
            lines.append(json.dumps(row, ensure_ascii=False))
        fh.write(("\n".join(lines) + "\n").encode())

    return write


def run_collect(
    listen: str,
    out: Path | None = None,
    duration: float | None = None,
    on_records: Sequence[RecordsCallback] = (),
    stats_every: float = 10.0,
    stderr: TextIO | None = None,
    on_bound: Callable[[str, int], None] | None = None,
) -> CollectorStats:
    """Collect on ``listen`` until ``duration``/SIGINT/SIGTERM; each batch goes to ``out`` (if
    given) and to every ``on_records`` callback; a stats line goes to ``stderr`` every
    ``stats_every`` seconds and at the end. Returns the final counters."""
    host, port = parse_listen(listen)
    err = stderr if stderr is not None else sys.stderr
    with ExitStack() as stack:
        sinks: list[RecordsCallback] = list(on_records)
        if out is not None:
            sinks.insert(0, stack.enter_context(records_writer(out)))

        def deliver(table: pa.Table) -> None:
            for sink in sinks:
                sink(table)

        collector = FlowCollector(host, port, deliver)
        bound_host, bound_port = collector.bind()
        if on_bound is not None:
            on_bound(bound_host, bound_port)
        print(f"collecting on {bound_host}:{bound_port}", file=err, flush=True)

        def tick(stats: CollectorStats) -> None:
            print(stats.line(), file=err, flush=True)

        stats = collector.run(duration=duration, on_tick=tick, tick_seconds=stats_every)
    print(stats.line(), file=err, flush=True)
    for gap in stats.sequence_gaps:
        print(
            f"sequence: exporter {gap.exporter} domain {gap.domain} v{gap.version}: "
            f"{gap.gaps} gaps, {gap.missing} {gap.unit} missing, {gap.backwards} backwards",
            file=err,
        )
    for reason, count in sorted(stats.malformed_reasons.items()):
        print(f"malformed: {count} x {reason}", file=err)
    return stats


@click.command()
@click.option(
    "--listen",
    default="127.0.0.1:2055",
    show_default=True,
    metavar="HOST:PORT",
    help="UDP address to receive NetFlow v5/v9/IPFIX on ([v6]:PORT for IPv6).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the records to this .parquet or .jsonl file (replaced when collection stops).",
)
@duration_option
@click.option(
    "--stats-every",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Print a stats line to stderr this often.",
)
@click.option(
    "--detect/--no-detect",
    default=True,
    show_default=True,
    help="Judge the flows with the flow-behaviour model and report mining as it is seen.",
)
@stream_format_option
@min_confidence_option
@click.pass_context
def collect(
    ctx: click.Context,
    listen: str,
    out: Path | None,
    duration: float | None,
    stats_every: float,
    detect: bool,
    fmt: str,
    min_confidence: float,
) -> None:
    """Receive NetFlow/IPFIX exports, write the flow records and report mining as it is seen.

    接收NetFlow/IPFIX流记录，保存记录，并按流量行为实时报告挖矿。

    Findings go to standard output as conversations show enough behaviour (a few minutes);
    stats, template and sequence-gap reports go to standard error.
    """
    callbacks: list[RecordsCallback] = []
    judge = None
    if detect:
        judge = streaming_judge(fmt, min_confidence)
        callbacks.append(judge)
    try:
        run_collect(
            listen, out=out, duration=duration, stats_every=stats_every, on_records=callbacks
        )
    except MinewatchError as exc:
        click.echo(f"minewatch collect: {exc}", err=True)
        ctx.exit(1)
    if judge is not None:
        judge.finish()


class JudgeRecords:
    """Feeds collected batches to a streaming judge, judging at most every ``every_s`` seconds.

    The history's clock is the data's (the latest record end seen), not the wall clock: an
    exporter replaying old traffic, or one whose clock is off, must not have its records aged
    out on arrival.
    """

    def __init__(self, judge: StreamingJudge, every_s: float = 10.0) -> None:
        self.judge = judge
        self.every_s = every_s
        self.clock_ns = 0
        self.next_at = 0.0

    def __call__(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        latest = pc.max(table.column("end_ns")).as_py()
        self.clock_ns = max(self.clock_ns, int(latest))
        self.judge.add(table, self.clock_ns)
        now = time.monotonic()
        if now >= self.next_at:
            self.judge.judge()
            self.next_at = now + self.every_s

    def finish(self) -> None:
        """Judge once more, over everything still held, when collection stops."""
        self.judge.judge()


def streaming_judge(
    fmt: str = "table", min_confidence: float = 0.0, out: TextIO | None = None
) -> JudgeRecords:
    """The bundled flow model as a collector callback that prints findings to ``out``."""
    from minewatch.net.behaviour.streaming import default_detector, printer

    detect, window_s = default_detector()
    emit = printer(out if out is not None else sys.stdout, fmt)
    return JudgeRecords(StreamingJudge(detect, window_s, emit=emit, min_confidence=min_confidence))
