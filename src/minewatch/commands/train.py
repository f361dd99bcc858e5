"""``minewatch train``: retrain the flow-behaviour model on a user's own labelled flows.

Labels are keyed by conversation (``client_ip, server_ip, server_port, transport``) with a
``label`` of ``mining`` or ``benign`` (for example the outcomes of on-site inspections, as
``minewatch`` ledger exports them); an optional ``file`` column scopes a row to one flow file.
Flows are captures, FLOW_SCHEMA Parquet tables, nfdump files, Zeek logs or Suricata eve.json.

Example::

    minewatch train --flows site-a.pcap --flows site-b.nfcapd --labels inspections.csv \\
        --out flow-model.json
"""

from __future__ import annotations

from pathlib import Path

import click

from minewatch.commands.common import fail
from minewatch.errors import InputError, MinewatchError

__all__ = ["train"]


@click.command("train")
@click.option(
    "--flows",
    "flow_files",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A flow file (capture, Parquet, nfdump, Zeek log, eve.json); repeat for several.",
)
@click.option(
    "--labels",
    "labels_path",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV: client_ip, server_ip, server_port, transport, label (mining|benign) [, file, kind].",
)
@click.option(
    "--out", "out_path", required=True, type=click.Path(path_type=Path), help="Model file to write."
)
@click.option(
    "--unlabelled",
    type=click.Choice(["ignore", "benign"]),
    default="ignore",
    show_default=True,
    help="What conversations without a label are: left out, or benign.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.pass_context
def train(
    ctx: click.Context,
    flow_files: tuple[Path, ...],
    labels_path: Path,
    out_path: Path,
    unlabelled: str,
    seed: int,
) -> None:
    """Retrain the flow-behaviour model on labelled flows and write it with its report.

    用带标签的流记录（如现场核查结论）重新训练流量行为模型，并输出模型与训练报告。
    """
    try:
        from minewatch.net.behaviour.evaluate import evaluate, render_report
        from minewatch.net.behaviour.train import (
            LabelledFlows,
            build_dataset,
            fit_model,
            load_flow_file,
            read_labels,
        )
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        fail(ctx, InputError(f"training needs scikit-learn: {exc}"))
    try:
        labels = read_labels(labels_path)
        sets = []
        for path in flow_files:
            flows, problems = load_flow_file(path)
            for problem in problems:
                click.echo(f"{path}: {problem}", err=True)
            scoped = {**labels.get(None, {}), **labels.get(path.name, {})}
            if unlabelled == "benign":
                sets.append(LabelledFlows(str(path), flows, scoped, unlabelled="benign"))
            else:
                sets.append(LabelledFlows(str(path), flows, scoped, unlabelled="ignore"))
        data = build_dataset(sets)
        result = fit_model(data, seed=seed, model_id=out_path.stem)
    except MinewatchError as exc:
        fail(ctx, exc)
    result.model.save(out_path)
    ev = evaluate(data, result.oof_probability, result.model.threshold, result.oof_flagged)
    report = render_report(
        f"{out_path.stem}: training report",
        ev,
        result.summary,
        [f"{p}" for p in flow_files] + [f"labels: {labels_path}"],
    )
    out_path.with_suffix(".md").write_text(report, encoding="utf-8")
    click.echo(
        f"wrote {out_path} ({len(result.model.trees)} trees, {result.summary['rows']} rows: "
        f"{result.summary['mining_rows']} mining, {result.summary['benign_rows']} benign); "
        f"report {out_path.with_suffix('.md')}"
    )
