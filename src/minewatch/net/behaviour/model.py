"""The flow-behaviour model: a small tree ensemble stored as JSON and scored with numpy alone.

Why this shape: trees cope with features of very different scales and with missing values (a
NetFlow source has no payload counts), a forest of shallow trees is robust on a small training
set, and a tree's decision path explains itself: following a sample from the root to its leaf,
each split moves the predicted mining share up or down, and adding those moves per feature
(Saabas' method) says which features drove the score. Scoring needs no scikit-learn: the arrays
of every tree are walked level by level for all conversations at once.

The JSON file (``format`` = ``minewatch-flow-model``, ``format_version`` 1) holds the feature
names, per tree the node arrays (``feature`` (-1 at leaves), ``threshold``, ``left``, ``right``,
``missing_left`` and ``value`` = mining share of the training samples at the node), the Platt
calibration ``a``, ``b`` (probability = 1 / (1 + exp(-(a * logit(score) + b)))), the decision
``threshold`` on the calibrated probability, optionally ``export_threshold`` and
``export_missing`` (the threshold for rows where every feature in ``export_missing`` is missing,
as in flow exports: with less evidence the scores sit elsewhere, so one cut would cost either
the packet sources' recall or the exports' false positives), ``min_span_s`` (conversations
observed for less are not judged) and a ``training`` summary.

Example::

    >>> model = FlowModel.bundled()
    >>> model.features[:2]
    ('span_s', 'max_conn_s')
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from minewatch.errors import DataError, InputError

__all__ = ["MODEL_FORMAT", "FlowModel", "Tree"]

MODEL_FORMAT = "minewatch-flow-model"
_FORMAT_VERSION = 1
_BUNDLED = "flow-model-v2.json"
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Tree:
    """One decision tree as parallel node arrays (see the module text)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    depth: int = 0
    """Levels below the root: the most steps a walk to a leaf takes (see :meth:`build`)."""

    @classmethod
    def build(
        cls,
        feature: np.ndarray,
        threshold: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        missing_left: np.ndarray,
        value: np.ndarray,
    ) -> Tree:
        """A tree from its arrays (children numbered after their parents), depth computed."""
        levels = np.zeros(feature.shape[0], dtype=np.int64)
        for node in np.flatnonzero(feature >= 0).tolist():
            levels[left[node]] = levels[node] + 1
            levels[right[node]] = levels[node] + 1
        depth = int(levels.max()) if levels.shape[0] else 0
        return cls(feature, threshold, left, right, missing_left, value, depth)

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature.tolist(),
            "threshold": [float(f"{t:.9g}") for t in self.threshold.tolist()],
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "missing_left": self.missing_left.astype(int).tolist(),
            "value": [float(f"{v:.6g}") for v in self.value.tolist()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], n_features: int) -> Tree:
        try:
            arrays = dict(
                feature=np.asarray(data["feature"], dtype=np.int64),
                threshold=np.asarray(data["threshold"], dtype=np.float64),
                left=np.asarray(data["left"], dtype=np.int64),
                right=np.asarray(data["right"], dtype=np.int64),
                missing_left=np.asarray(data["missing_left"], dtype=bool),
                value=np.asarray(data["value"], dtype=np.float64),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"flow model tree is malformed: {exc}") from exc
        feature, left, right = arrays["feature"], arrays["left"], arrays["right"]
        n = feature.shape[0]
        if n == 0 or any(a.shape != (n,) for a in arrays.values()):
            raise DataError("flow model tree arrays differ in length or are empty")
        inner = np.flatnonzero(feature >= 0)
        if (feature >= n_features).any() or (
            inner.shape[0]
            and (
                (left[inner] <= inner).any()
                or (right[inner] <= inner).any()
                or (left[inner] >= n).any()
                or (right[inner] >= n).any()
            )
        ):
            raise DataError("flow model tree has a feature or child index out of range")
        return cls.build(**arrays)


@dataclass(frozen=True, slots=True)
class FlowModel:
    """A trained flow-behaviour model.

    Example::

        >>> model = FlowModel.bundled()
        >>> x = np.full((1, len(model.features)), np.nan)
        >>> 0.0 <= float(model.probability(x)[0]) <= 1.0
        True
    """

    model_id: str
    features: tuple[str, ...]
    trees: tuple[Tree, ...]
    calibration_a: float = 1.0
    calibration_b: float = 0.0
    threshold: float = 0.5
    min_span_s: float = 120.0
    training: dict[str, Any] = field(default_factory=dict)
    export_threshold: float | None = None
    export_missing: tuple[str, ...] = ()

    # --- scoring ------------------------------------------------------------------------------

    def _walk(self, x: np.ndarray, explain: bool) -> tuple[np.ndarray, np.ndarray | None]:
        n = x.shape[0]
        rows = np.arange(n)
        score = np.zeros(n)
        contrib = np.zeros((n, len(self.features))) if explain else None
        for tree in self.trees:
            node = np.zeros(n, dtype=np.int64)
            for _ in range(tree.depth):
                feat = tree.feature[node]
                inner = feat >= 0
                if not inner.any():
                    break
                value = x[rows, np.maximum(feat, 0)]
                left = np.where(
                    np.isnan(value), tree.missing_left[node], value <= tree.threshold[node]
                )
                nxt = np.where(inner, np.where(left, tree.left[node], tree.right[node]), node)
                if contrib is not None:
                    delta = tree.value[nxt] - tree.value[node]
                    np.add.at(contrib, (rows[inner], feat[inner]), delta[inner])
                node = nxt
            score += tree.value[node]
        k = len(self.trees)
        return score / k, (contrib / k if contrib is not None else None)

    def _matrix(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise InputError(
                f"the flow model needs {len(self.features)} feature columns, got shape {x.shape}"
            )
        return x

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """The forest's mean mining share for each row of ``x`` (columns = :attr:`features`)."""
        return self._walk(self._matrix(x), explain=False)[0]

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Platt-scaled probability of mining from raw forest scores."""
        p = np.clip(raw, _EPS, 1 - _EPS)
        z = self.calibration_a * np.log(p / (1 - p)) + self.calibration_b
        out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return out

    def probability(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability of mining for each row of ``x``."""
        return self.calibrate(self.raw_score(x))

    def cutoffs(self, x: np.ndarray) -> np.ndarray:
        """The decision threshold for each row of ``x``: :attr:`export_threshold` where every
        feature of :attr:`export_missing` is missing (a flow export), else :attr:`threshold`."""
        x = self._matrix(x)
        out = np.full(x.shape[0], self.threshold)
        if self.export_threshold is None or not self.export_missing:
            return out
        cols = [self.features.index(f) for f in self.export_missing if f in self.features]
        if cols:
            export = np.isnan(x[:, cols]).all(axis=1)
            out[export] = self.export_threshold
        return out

    def explain(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Raw scores, per-feature contributions (rows x features) and the bias.

        ``raw == bias + contributions.sum(axis=1)`` for every row: each contribution is how much
        the splits on that feature moved the row's mining share, averaged over the trees.
        """
        raw, contrib = self._walk(self._matrix(x), explain=True)
        assert contrib is not None
        bias = float(np.mean([t.value[0] for t in self.trees]))
        return raw, contrib, bias

    # --- files --------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "format_version": _FORMAT_VERSION,
            "model_id": self.model_id,
            "features": list(self.features),
            "calibration": {"a": self.calibration_a, "b": self.calibration_b},
            "threshold": self.threshold,
            "min_span_s": self.min_span_s,
            **(
                {
                    "export_threshold": self.export_threshold,
                    "export_missing": list(self.export_missing),
                }
                if self.export_threshold is not None
                else {}
            ),
            "training": self.training,
            "trees": [t.to_json() for t in self.trees],
        }

    def save(self, path: str | Path) -> Path:
        """Write the model as compact JSON (written whole to a temporary file, then renamed)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":"), sort_keys=False) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_json(cls, data: Any, where: str = "flow model") -> FlowModel:
        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            raise DataError(f"{where}: not a minewatch flow model (format {MODEL_FORMAT!r})")
        if data.get("format_version") != _FORMAT_VERSION:
            raise DataError(
                f"{where}: flow model format version {data.get('format_version')!r} is not "
                f"supported (this minewatch reads version {_FORMAT_VERSION})"
            )
        try:
            features = tuple(str(f) for f in data["features"])
            trees = tuple(Tree.from_json(t, len(features)) for t in data["trees"])
            calibration = data.get("calibration", {})
            model = cls(
                model_id=str(data["model_id"]),
                features=features,
                trees=trees,
                calibration_a=float(calibration.get("a", 1.0)),
                calibration_b=float(calibration.get("b", 0.0)),
                threshold=float(data.get("threshold", 0.5)),
                min_span_s=float(data.get("min_span_s", 0.0)),
                training=dict(data.get("training", {})),
                export_threshold=(
                    None
                    if data.get("export_threshold") is None
                    else float(data["export_threshold"])
                ),
                export_missing=tuple(str(f) for f in data.get("export_missing", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: flow model is malformed: {exc}") from exc
        if not trees:
            raise DataError(f"{where}: flow model has no trees")
        unknown = [f for f in model.export_missing if f not in features]
        if unknown:
            raise DataError(f"{where}: export_missing names unknown features {unknown}")
        if not all(math.isfinite(v) for v in (model.calibration_a, model.calibration_b)):
            raise DataError(f"{where}: flow model calibration is not finite")
        return model

    @classmethod
    def load(cls, path: str | Path) -> FlowModel:
        """Read a model file; a missing or malformed file raises :class:`InputError`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read the flow model: {exc.strerror}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: the flow model is not JSON: {exc}") from exc
        try:
            return cls.from_json(data, str(path))
        except DataError as exc:
            raise InputError(str(exc)) from exc

    @classmethod
    def bundled(cls) -> FlowModel:
        """The model shipped with minewatch (``models/flow-model-v2.json``)."""
        text = (
            resources.files("minewatch.net.behaviour")
            .joinpath("models", _BUNDLED)
            .read_text(encoding="utf-8")
        )
        return cls.from_json(json.loads(text), f"bundled {_BUNDLED}")
