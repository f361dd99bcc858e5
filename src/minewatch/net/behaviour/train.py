"""Train the flow-behaviour model from labelled flows, with grouped cross-validation.

Why grouped: conversations of one recording share a host, a pool and a moment; scoring one of
them with a model that saw its siblings measures memory, not detection. Every split therefore
keeps whole recordings (files) apart, and the reported figures are out-of-fold.

Why windows: a monitor judges a conversation after two minutes as well as after two hours. Each
recording is also read cut short at a few horizons (:data:`WINDOWS_S`, from its first packet),
so the model learns what two, five and ten minutes of a pool session look like, not only whole
captures. Windows of one recording stay in one group.

scikit-learn is needed here only (training); scoring uses :mod:`minewatch.net.behaviour.model`.

Example::

    >>> sets = [LabelledFlows("rec1", flows, {key: Label(True, "xmrig-tls")})]  # doctest: +SKIP
    >>> data = build_dataset(sets)                                              # doctest: +SKIP
    >>> result = fit_model(data, seed=7)                                        # doctest: +SKIP
    >>> result.model.save("flow-model.json")                                    # doctest: +SKIP
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from minewatch.errors import InputError
from minewatch.net.behaviour.features import (
    FEATURE_NAMES,
    conversation_features,
    feature_matrix,
    flow_export_view,
)
from minewatch.net.behaviour.model import FlowModel, Tree
from minewatch.net.flowrec.from_packets import capture_flows
from minewatch.net.flowrec.table import conform

__all__ = [
    "DEFAULT_JUDGE_SPAN_S",
    "DEFAULT_MIN_SPAN_S",
    "DEFAULT_TARGET_FP",
    "WINDOWS_S",
    "Dataset",
    "FitResult",
    "Label",
    "LabelKey",
    "LabelledFlows",
    "build_dataset",
    "corpus_sets",
    "export_missing_features",
    "fit_model",
    "load_flow_file",
    "pick_threshold",
    "read_labels",
    "recording_sets",
    "tree_from_sklearn",
]

LabelKey = tuple[str, str, int, str]
"""``(client_ip, server_ip, server_port, transport)``."""

WINDOWS_S: tuple[float | None, ...] = (120.0, 300.0, 600.0, 1800.0, None)
"""Horizons each recording is read at (seconds from its first packet; ``None``: all of it)."""

DEFAULT_TARGET_FP = 1e-3
"""False positives per benign conversation the decision threshold aims at (the issue's bound
without active probing)."""

DEFAULT_JUDGE_SPAN_S = 300.0
"""Conversations observed for less are not judged (the detector stays silent on them): a
rhythm needs several intervals to show, and pools push jobs every 10-60 s and miners submit a
few shares a minute, so five minutes hold five or more of each. The threshold is chosen on
benign conversations of at least this span. The issue's recall target is on sessions of at
least five minutes too."""

DEFAULT_MIN_SPAN_S = 120.0
"""Conversations observed for less are neither trained on nor judged: under two minutes a pool
session has shown one or two job pushes, which any chatty protocol can mimic. Short plaintext
sessions are the payload recognisers' job."""


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth for one conversation: mining or not, and what kind of traffic it is."""

    mining: bool
    kind: str


@dataclass(slots=True)
class LabelledFlows:
    """The flow records of one recording (one CV group) and the labels of its conversations.

    Conversations without a label count as benign of kind ``unlabelled_kind`` when
    ``unlabelled`` is ``"benign"`` (background traffic of a capture), and are left out when it
    is ``"ignore"`` (a user's flows with labels for some conversations only).
    """

    group: str
    flows: pa.Table
    labels: Mapping[LabelKey, Label]
    unlabelled: Literal["benign", "ignore"] = "benign"
    unlabelled_kind: str = "background"


@dataclass(slots=True)
class Dataset:
    """Feature rows with labels, groups, kinds and windows (one row per conversation and
    window)."""

    x: np.ndarray
    y: np.ndarray
    groups: list[str]
    kinds: list[str]
    window_s: list[float | None]
    tls: np.ndarray
    span_s: np.ndarray
    keys: list[LabelKey]
    export_view: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """True for rows computed from the flow-export view of a recording
    (:func:`~minewatch.net.behaviour.features.flow_export_view`); empty means none."""

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def is_export(self) -> np.ndarray:
        """:attr:`export_view` as a mask of ``len(self)`` rows."""
        if self.export_view.shape[0] == len(self):
            return self.export_view.astype(bool)
        return np.zeros(len(self), dtype=bool)

    def subset(self, mask: np.ndarray) -> Dataset:
        """The rows where ``mask`` is true."""
        idx = np.flatnonzero(mask).tolist()
        return Dataset(
            x=self.x[idx],
            y=self.y[idx],
            groups=[self.groups[i] for i in idx],
            kinds=[self.kinds[i] for i in idx],
            window_s=[self.window_s[i] for i in idx],
            tls=self.tls[idx],
            span_s=self.span_s[idx],
            keys=[self.keys[i] for i in idx],
            export_view=self.is_export()[idx],
        )


@dataclass(slots=True)
class FitResult:
    """A trained model and its out-of-fold raw scores (``NaN`` where a row was not judged)."""

    model: FlowModel
    oof_raw: np.ndarray
    oof_probability: np.ndarray
    folds: int
    summary: dict[str, Any] = field(default_factory=dict)
    oof_flagged: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Out-of-fold decisions with nested thresholds (see :func:`fit_model`)."""


def _window_tables(flows: pa.Table) -> Iterable[tuple[float | None, pa.Table]]:
    if flows.num_rows == 0:
        return
    t0 = pc.min(flows["start_ns"]).as_py()
    t1 = pc.max(flows["end_ns"]).as_py()
    for window in WINDOWS_S:
        if window is None:
            yield None, flows
            continue
        cut = t0 + int(window * 1e9)
        if cut >= t1:
            continue  # the recording is shorter: this window is the whole
        part = flows.filter(pc.less(flows["start_ns"], cut))
        # A slice straddling the cut keeps its counts: at one-minute slices that is the
        # granularity a live meter reports at anyway.
        yield window, part


def build_dataset(
    sets: Iterable[LabelledFlows],
    *,
    windows: bool = True,
    min_span_s: float = 0.0,
    export_copies: bool = True,
) -> Dataset:
    """Feature rows of every labelled recording (and of its windows when ``windows``).

    With ``export_copies`` every recording (and window) is read a second time as a flow
    exporter would have delivered it (:func:`~minewatch.net.behaviour.features.flow_export_view`:
    packet-only features NULL, one record per connection). Those rows stay in their recording's
    group, so cross-validation never trains on one view of a recording and judges the other;
    and one model learns both kinds of source (:attr:`Dataset.export_view` tells them apart).
    """
    xs: list[np.ndarray] = []
    ys: list[int] = []
    groups: list[str] = []
    kinds: list[str] = []
    window_s: list[float | None] = []
    tls: list[int] = []
    spans: list[float] = []
    keys: list[LabelKey] = []
    export: list[bool] = []
    for item in sets:
        parts = _window_tables(conform(item.flows)) if windows else [(None, item.flows)]
        for window, packet_table in parts:
            views: list[tuple[bool, pa.Table]] = [(False, packet_table)]
            if export_copies:
                views.append((True, flow_export_view(packet_table)))
            for is_export, table in views:
                feats = conversation_features(table)
                if feats.num_rows == 0:
                    continue
                x = feature_matrix(feats)
                rows = feats.select(
                    ["client_ip", "server_ip", "server_port", "transport", "tls_seen", "span_s"]
                ).to_pylist()
                for i, row in enumerate(rows):
                    if row["span_s"] < min_span_s:
                        continue
                    key = (
                        row["client_ip"],
                        row["server_ip"],
                        int(row["server_port"]),
                        row["transport"],
                    )
                    label = item.labels.get(key)
                    if label is None:
                        if item.unlabelled == "ignore":
                            continue
                        label = Label(False, item.unlabelled_kind)
                    xs.append(x[i])
                    ys.append(int(label.mining))
                    groups.append(item.group)
                    kinds.append(label.kind)
                    window_s.append(window)
                    tls.append(int(row["tls_seen"]))
                    spans.append(float(row["span_s"]))
                    keys.append(key)
                    export.append(is_export)
    n = len(ys)
    return Dataset(
        x=np.vstack(xs) if xs else np.zeros((0, len(FEATURE_NAMES))),
        y=np.asarray(ys, dtype=np.int64),
        groups=groups,
        kinds=kinds,
        window_s=window_s,
        tls=np.asarray(tls, dtype=np.int64).reshape(n),
        span_s=np.asarray(spans, dtype=np.float64).reshape(n),
        keys=keys,
        export_view=np.asarray(export, dtype=bool).reshape(n),
    )


def tree_from_sklearn(estimator: Any) -> Tree:
    """Export a fitted scikit-learn decision tree (binary classifier) to a :class:`Tree`.

    ``value`` is the share of class 1 among the (weighted) training samples at each node;
    ``missing_left`` is where the tree sends a missing value (scikit-learn decides it per split
    during fitting).
    """
    t = estimator.tree_
    values = t.value[:, 0, :]
    totals = values.sum(axis=1)
    share = np.divide(values[:, 1], totals, out=np.zeros_like(totals), where=totals > 0)
    feature = t.feature.astype(np.int64)
    feature[t.children_left < 0] = -1
    missing = getattr(t, "missing_go_to_left", np.ones(feature.shape[0], dtype=np.uint8))
    return Tree.build(
        feature=feature,
        threshold=t.threshold.astype(np.float64),
        left=t.children_left.astype(np.int64),
        right=t.children_right.astype(np.int64),
        missing_left=np.asarray(missing, dtype=bool),
        value=share.astype(np.float64),
    )


def _forest(seed: int, n_estimators: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]

    return RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=8,
        min_samples_leaf=3,
        max_features="sqrt",
        class_weight="balanced",
        random_state=seed,
        n_jobs=1,
    )


def _to_model(forest: Any, model_id: str, min_span_s: float, training: dict[str, Any]) -> FlowModel:
    return FlowModel(
        model_id=model_id,
        features=FEATURE_NAMES,
        trees=tuple(tree_from_sklearn(e) for e in forest.estimators_),
        min_span_s=min_span_s,
        training=training,
    )


def _platt(raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Logistic calibration of raw scores (on their logit): ``(a, b)``."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    if raw.shape[0] == 0 or len(set(y.tolist())) < 2:
        return 1.0, 0.0
    p = np.clip(raw, 1e-6, 1 - 1e-6)
    z = np.log(p / (1 - p)).reshape(-1, 1)
    lr = LogisticRegression(C=1.0)
    lr.fit(z, y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def _calibrated(raw: np.ndarray, a: float, b: float) -> np.ndarray:
    p = np.clip(raw, 1e-6, 1 - 1e-6)
    out: np.ndarray = 1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b)))
    return out


def pick_threshold(benign: np.ndarray, target_fp: float, floor: float) -> float:
    """The lowest threshold that flags at most ``target_fp`` of the benign scores given (and
    never below ``floor``). With few benign rows that means flagging none of them: the
    threshold sits just above the highest benign score."""
    benign = np.sort(np.asarray(benign, dtype=np.float64)[~np.isnan(benign)])[::-1]
    if benign.shape[0] == 0:
        return floor
    allowed = int(np.floor(target_fp * benign.shape[0]))
    if allowed >= benign.shape[0]:
        return floor
    return float(max(floor, np.nextafter(benign[allowed], np.inf)))


def _grouped_oof(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    folds: int,
    seed: int,
    n_estimators: int,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Out-of-fold raw scores of a grouped K-fold (NaN where a fold's training part lacked a
    class) and the splits used."""
    from sklearn.model_selection import GroupKFold  # type: ignore[import-untyped]

    oof = np.full(y.shape[0], np.nan)
    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        return oof, []
    k = max(2, min(folds, n_groups))
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    splits = list(splitter.split(x, y, groups))
    for train_idx, test_idx in splits:
        if len(set(y[train_idx].tolist())) < 2:
            continue
        forest = _forest(seed, n_estimators).fit(x[train_idx], y[train_idx])
        oof[test_idx] = _to_model(forest, "fold", 0.0, {}).raw_score(x[test_idx])
    return oof, splits


def _view_thresholds(
    probability: np.ndarray,
    benign: np.ndarray,
    export: np.ndarray,
    target_fp: float,
    floor: float,
) -> tuple[float, float]:
    """Thresholds for packet-source rows and for flow-export rows, each from its own benign
    rows (``benign`` marks the rows to choose on)."""
    return (
        pick_threshold(probability[benign & ~export], target_fp, floor),
        pick_threshold(probability[benign & export], target_fp, floor),
    )


def export_missing_features(data: Dataset) -> tuple[str, ...]:
    """Features a flow export cannot provide, read off the data: missing in every export-view
    row, present in some packet-source row."""
    export = data.is_export()
    known = ~np.isnan(data.x)
    return tuple(
        name
        for j, name in enumerate(FEATURE_NAMES)
        if known[~export, j].any() and not known[export, j].any()
    )


def fit_model(
    data: Dataset,
    *,
    seed: int = 0,
    n_estimators: int = 150,
    folds: int = 5,
    inner_folds: int = 3,
    model_id: str = "flow-model",
    min_span_s: float = DEFAULT_MIN_SPAN_S,
    judge_span_s: float = DEFAULT_JUDGE_SPAN_S,
    target_fp: float = DEFAULT_TARGET_FP,
    min_threshold: float = 0.5,
) -> FitResult:
    """Train the model and measure it honestly.

    Grouped cross-validation gives out-of-fold scores; Platt calibration is fitted on them; the
    decision threshold is the lowest that keeps the out-of-fold false-positive share of benign
    rows at ``target_fp`` or below (:func:`pick_threshold`, never below ``min_threshold``); the
    final forest is fitted on all rows. Because choosing a threshold on the scores it is judged
    by would flatter it, the out-of-fold *decisions* (:attr:`FitResult.oof_flagged`) are nested:
    each outer fold's threshold and calibration come from an inner grouped cross-validation of
    that fold's training part only. Rows observed for less than ``min_span_s`` are left out of
    training; rows observed for less than ``judge_span_s`` are trained on (early windows teach
    the trees) but never judged, and the thresholds are chosen on longer benign rows only.
    """
    judge_span_s = max(judge_span_s, min_span_s)
    use = data.span_s >= min_span_s
    x, y = data.x[use], data.y[use]
    long = data.span_s[use] >= judge_span_s
    groups = np.asarray(data.groups, dtype=object)[use]
    export = data.is_export()[use]
    if len(set(y.tolist())) < 2:
        raise InputError(
            "training needs labelled mining and benign conversations observed for at least "
            f"{min_span_s:.0f} s; got {int(y.sum())} mining and {int((1 - y).sum())} benign"
        )
    oof, splits = _grouped_oof(x, y, groups, folds, seed, n_estimators)
    flagged = np.zeros(y.shape[0], dtype=bool)
    for train_idx, test_idx in splits:
        if np.isnan(oof[test_idx]).all():
            continue
        inner, _ = _grouped_oof(
            x[train_idx], y[train_idx], groups[train_idx], inner_folds, seed, n_estimators
        )
        ok = ~np.isnan(inner)
        a_in, b_in = _platt(inner[ok], y[train_idx][ok])
        benign_in = ok & long[train_idx] & (y[train_idx] == 0)
        cuts_in = _view_thresholds(
            _calibrated(inner, a_in, b_in), benign_in, export[train_idx], target_fp, min_threshold
        )
        scores = oof[test_idx]
        cut = np.where(export[test_idx], cuts_in[1], cuts_in[0])
        flagged[test_idx] = (
            ~np.isnan(scores)
            & long[test_idx]
            & (_calibrated(np.nan_to_num(scores), a_in, b_in) >= cut)
        )
    judged = ~np.isnan(oof)
    a, b = _platt(oof[judged], y[judged])
    threshold, export_threshold = _view_thresholds(
        _calibrated(oof, a, b), judged & long & (y == 0), export, target_fp, min_threshold
    )
    forest = _forest(seed, n_estimators).fit(x, y)
    summary = {
        "rows": int(y.shape[0]),
        "export_view_rows": int(data.is_export()[use].sum()),
        "mining_rows": int(y.sum()),
        "benign_rows": int((1 - y).sum()),
        "groups": len(set(groups.tolist())),
        "folds": len(splits),
        "inner_folds": inner_folds,
        "seed": seed,
        "n_estimators": n_estimators,
        "min_span_s": min_span_s,
        "judge_span_s": judge_span_s,
        "target_fp": target_fp,
        "threshold": threshold,
        "export_threshold": export_threshold if export.any() else None,
    }
    model = FlowModel(
        model_id=model_id,
        features=FEATURE_NAMES,
        trees=tuple(tree_from_sklearn(e) for e in forest.estimators_),
        calibration_a=a,
        calibration_b=b,
        threshold=threshold,
        min_span_s=judge_span_s,
        training=summary,
        export_threshold=export_threshold if export.any() else None,
        export_missing=export_missing_features(data) if export.any() else (),
    )
    rows = np.flatnonzero(use)
    oof_full = np.full(len(data), np.nan)
    oof_full[rows] = np.where(long, oof, np.nan)  # shorter rows are not judged
    flagged_full = np.zeros(len(data), dtype=bool)
    flagged_full[rows] = flagged
    prob = np.where(np.isnan(oof_full), np.nan, model.calibrate(np.nan_to_num(oof_full)))
    return FitResult(model, oof_full, prob, len(splits), summary, flagged_full)


# --- inputs -------------------------------------------------------------------------------------

_LABEL_COLUMNS = ("client_ip", "server_ip", "server_port", "transport", "label")
_MINING_WORDS = frozenset({"mining", "1", "true", "yes", "miner", "confirmed"})
_BENIGN_WORDS = frozenset({"benign", "0", "false", "no", "cleared", "not-mining"})


def read_labels(path: str | Path) -> dict[str | None, dict[LabelKey, Label]]:
    """Labels from a CSV keyed by ``client_ip, server_ip, server_port, transport`` with a
    ``label`` of ``mining`` or ``benign`` (optional ``kind``; optional ``file`` to scope a row
    to one flow file, by name). Returns labels per file name (``None``: any file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the labels: {exc.strerror}") from exc
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in _LABEL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: labels need the columns {', '.join(missing)}")
    out: dict[str | None, dict[LabelKey, Label]] = {}
    for line, row in enumerate(reader, start=2):
        word = (row.get("label") or "").strip().lower()
        if word in _MINING_WORDS:
            mining = True
        elif word in _BENIGN_WORDS:
            mining = False
        else:
            raise InputError(f"{path}:{line}: label must be mining or benign, got {word!r}")
        try:
            port = int(row["server_port"])
        except ValueError:
            raise InputError(f"{path}:{line}: server_port is not a number") from None
        key = (row["client_ip"].strip(), row["server_ip"].strip(), port,
               row["transport"].strip().lower())  # fmt: skip
        file = (row.get("file") or "").strip() or None
        kind = (row.get("kind") or "").strip() or ("mining" if mining else "benign")
        out.setdefault(Path(file).name if file else None, {})[key] = Label(mining, kind)
    return out


def load_flow_file(path: str | Path) -> tuple[pa.Table, list[str]]:
    """Flow records of one file — a capture, a FLOW_SCHEMA Parquet file, an nfdump file, a Zeek
    log or an eve.json, sniffed by :func:`~minewatch.net.flowrec.files.read_flow_files` — and its
    problems. A file that yields nothing at all is an :class:`InputError`."""
    from minewatch.net.flowrec.files import read_flow_files

    path = Path(path)
    table, problems = read_flow_files([path])
    notes = [str(p) for p in problems]
    if table.num_rows == 0 and problems:
        raise InputError("; ".join(notes))
    return table, notes


def corpus_sets(corpus: str | Path) -> list[LabelledFlows]:
    """The labelled capture corpus (``MANIFEST.csv``, ``LABELS.csv``) as training sets.

    Labelled mining conversations are positives (kind: their protocol); blockchain-p2p
    conversations are hard negatives; every other conversation is benign background (kind:
    the file's class). One group per file.
    """
    corpus = Path(corpus)
    manifest = list(csv.DictReader((corpus / "MANIFEST.csv").read_text().splitlines()))
    by_file: dict[str, dict[LabelKey, Label]] = {}
    for row in csv.DictReader((corpus / "LABELS.csv").read_text().splitlines()):
        key = (row["client_ip"], row["server_ip"], int(row["server_port"]), row["transport"])
        mining = row["label"] == "mining"
        by_file.setdefault(row["file"], {})[key] = Label(
            mining, row["protocol"] if mining else row["label"]
        )
    out: list[LabelledFlows] = []
    for entry in manifest:
        flows, _ = capture_flows(corpus / entry["path"])
        out.append(
            LabelledFlows(
                group=f"corpus:{entry['path']}",
                flows=flows,
                labels=by_file.get(entry["path"], {}),
                unlabelled_kind="background" if entry["class"] == "mining" else "benign",
            )
        )
    return out


def recording_sets(labels_csv: str | Path) -> list[LabelledFlows]:
    """Recordings listed in a ``labels.csv`` (column ``file`` relative to the CSV's folder),
    one group per recording; conversations without a row are benign background."""
    labels_csv = Path(labels_csv)
    per_file = read_labels(labels_csv)
    files: dict[str, Path] = {}
    for row in csv.DictReader(labels_csv.read_text().splitlines()):
        path = labels_csv.parent / row["file"]
        files.setdefault(path.name, path)
    out: list[LabelledFlows] = []
    for name, path in sorted(files.items()):
        if not path.is_file():
            continue
        flows, _ = capture_flows(path)
        out.append(LabelledFlows(f"recording:{name}", flows, per_file.get(name, {})))
    return out
