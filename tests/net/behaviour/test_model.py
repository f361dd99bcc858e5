"""FlowModel: numpy scoring equals scikit-learn (missing values included), Saabas contributions
add up, JSON round trip, malformed files are clear errors; bounds of rates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from minewatch.errors import InputError
from minewatch.net.behaviour.evaluate import upper_bound
from minewatch.net.behaviour.features import FEATURE_NAMES
from minewatch.net.behaviour.model import FlowModel
from minewatch.net.behaviour.train import tree_from_sklearn

sklearn_ensemble = pytest.importorskip("sklearn.ensemble")


def data(n: int = 600, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURE_NAMES)))
    y = ((x[:, 0] + 0.5 * x[:, 3] - x[:, 7]) > 0).astype(int)
    x[rng.random(x.shape) < 0.15] = np.nan  # sources that cannot tell
    return x, y


@pytest.fixture(scope="module")
def fitted() -> tuple[object, FlowModel, np.ndarray]:
    x, y = data()
    forest = sklearn_ensemble.RandomForestClassifier(
        n_estimators=25, max_depth=6, random_state=1
    ).fit(x, y)
    model = FlowModel(
        model_id="test",
        features=FEATURE_NAMES,
        trees=tuple(tree_from_sklearn(e) for e in forest.estimators_),
    )
    return forest, model, x


def test_numpy_scores_equal_sklearn(fitted: tuple[object, FlowModel, np.ndarray]) -> None:
    forest, model, _ = fitted
    x, _ = data(300, seed=9)
    expected = forest.predict_proba(x)[:, 1]  # type: ignore[attr-defined]
    assert np.allclose(model.raw_score(x), expected, atol=1e-9)


def test_contributions_add_up(fitted: tuple[object, FlowModel, np.ndarray]) -> None:
    _, model, x = fitted
    raw, contrib, bias = model.explain(x[:50])
    assert np.allclose(bias + contrib.sum(axis=1), raw, atol=1e-9)
    # The label depends on features 0, 3 and 7: they carry most of the movement.
    top = np.abs(contrib).mean(axis=0).argsort()[::-1][:3]
    assert set(top.tolist()) == {0, 3, 7}


def test_json_round_trip(tmp_path: Path, fitted: tuple[object, FlowModel, np.ndarray]) -> None:
    _, model, x = fitted
    path = model.save(tmp_path / "m.json")
    back = FlowModel.load(path)
    assert back.features == model.features
    assert np.allclose(back.raw_score(x), model.raw_score(x), atol=1e-6)


def test_calibration_is_monotone() -> None:
    model = FlowModel("t", FEATURE_NAMES, (), calibration_a=2.0, calibration_b=-1.0)
    p = model.calibrate(np.linspace(0, 1, 11))
    assert np.all(np.diff(p) > 0) and p.min() >= 0 and p.max() <= 1


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"format": "other"}',
     '{"format": "minewatch-flow-model", "format_version": 99}',
     '{"format": "minewatch-flow-model", "format_version": 1, "model_id": "x", '
     '"features": ["a"], "trees": [{"feature": [0, -1], "threshold": [0, 0], '
     '"left": [5, -1], "right": [1, -1], "missing_left": [1, 0], "value": [0.5, 1]}]}'],
)  # fmt: skip
def test_malformed_model_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError):
        FlowModel.load(path)


def test_wrong_feature_count_is_an_input_error(
    fitted: tuple[object, FlowModel, np.ndarray],
) -> None:
    _, model, _ = fitted
    with pytest.raises(InputError, match="feature columns"):
        model.raw_score(np.zeros((2, 3)))


def test_bundled_model_loads_and_scores() -> None:
    try:
        model = FlowModel.bundled()
    except FileNotFoundError:
        pytest.skip("no bundled model yet (scripts/train-flow-model)")
    assert model.features == FEATURE_NAMES
    p = model.probability(np.full((2, len(FEATURE_NAMES)), np.nan))
    assert np.all((p >= 0) & (p <= 1))
    json.dumps(model.to_json())


def test_rate_upper_bounds() -> None:
    # Zero events in n trials: the one-sided 95 % bound is 1 - 0.05 ** (1 / n) (~3/n).
    for n in (10, 300, 3000):
        assert upper_bound(0, n) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-6)
    assert upper_bound(5, 100) > 0.05
    assert upper_bound(100, 100) == 1.0


def test_export_rows_get_the_export_threshold(
    tmp_path: Path, fitted: tuple[object, FlowModel, np.ndarray]
) -> None:
    _, base, _ = fitted
    missing = ("open_cv_up", "msgs_up_per_min")
    model = FlowModel(
        model_id="t", features=base.features, trees=base.trees, threshold=0.6,
        export_threshold=0.8, export_missing=missing,
    )  # fmt: skip
    x = np.ones((3, len(FEATURE_NAMES)))
    cols = [FEATURE_NAMES.index(f) for f in missing]
    x[1, cols] = np.nan  # an export: every listed feature missing
    x[2, cols[0]] = np.nan  # one missing only: a packet source that could not tell
    assert model.cutoffs(x).tolist() == [0.6, 0.8, 0.6]
    again = FlowModel.load(model.save(tmp_path / "m.json"))
    assert again.export_threshold == 0.8 and again.export_missing == missing
    assert base.cutoffs(x).tolist() == [base.threshold] * 3  # no export threshold: one cut
    bad = model.to_json() | {"export_missing": ["no_such_feature"]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="unknown features"):
        FlowModel.load(tmp_path / "bad.json")
