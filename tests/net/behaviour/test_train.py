"""Threshold choice and nested out-of-fold decisions of fit_model (synthetic feature rows:
the point is the bookkeeping, not the physics; the physics is tested on real recordings)."""

from __future__ import annotations

import numpy as np
import pytest

from minewatch.errors import InputError
from minewatch.net.behaviour.evaluate import evaluate, is_encrypted_kind
from minewatch.net.behaviour.features import FEATURE_NAMES
from minewatch.net.behaviour.train import Dataset, fit_model, pick_threshold


def test_threshold_flags_at_most_the_target_share_of_benign_scores() -> None:
    scores = np.array([0.1, 0.95, 0.3, 0.7, 0.2, 0.6, 0.4, 0.8, 0.05, 0.5])
    t = pick_threshold(scores, target_fp=0.0, floor=0.0)
    assert t > 0.95 and (scores >= t).sum() == 0
    t = pick_threshold(scores, target_fp=0.2, floor=0.0)  # two of ten may pass
    assert (scores >= t).sum() == 2 and t <= 0.7 + 1e-9
    assert pick_threshold(scores, target_fp=0.5, floor=0.75) == 0.75
    assert pick_threshold(np.array([np.nan]), target_fp=0.0, floor=0.5) == 0.5


def dataset(seed: int = 3, groups: int = 12, per_group: int = 6) -> Dataset:
    """Rows of ``groups`` recordings: mining groups have a higher first feature; a third of
    each group's rows are short windows (90 s)."""
    rng = np.random.default_rng(seed)
    n = groups * per_group
    y = np.repeat(np.arange(groups) % 2, per_group)
    x = rng.normal(size=(n, len(FEATURE_NAMES)))
    x[:, 0] += 2.5 * y
    span = np.where(np.arange(n) % 3 == 0, 90.0, 400.0)
    return Dataset(
        x=x,
        y=y,
        groups=[f"g{i // per_group}" for i in range(n)],
        kinds=["xmrig-tls" if v else "https-poll" for v in y],
        window_s=[None] * n,
        tls=np.ones(n, dtype=np.int64),
        span_s=span,
        keys=[("10.0.0.1", "10.0.0.2", 443 + i, "tcp") for i in range(n)],
    )


def test_nested_decisions_judge_only_long_rows() -> None:
    data = dataset()
    fit = fit_model(data, seed=1, n_estimators=15, min_span_s=60.0, judge_span_s=300.0)
    short = data.span_s < 300
    assert not fit.oof_flagged[short].any()
    assert np.isnan(fit.oof_probability[short]).all()
    assert fit.model.min_span_s == 300.0
    assert fit.model.threshold >= 0.5
    # The final threshold keeps the out-of-fold benign long rows at the target (here: none).
    long_benign = ~short & (data.y == 0)
    assert not (fit.oof_probability[long_benign] >= fit.model.threshold).any()
    ev = evaluate(data, fit.oof_probability, fit.model.threshold, fit.oof_flagged)
    assert ev.recall_long.n == int((~short & (data.y == 1)).sum())
    assert ev.recall_long.hits == int((fit.oof_flagged & (data.y == 1)).sum())
    assert ev.recall_long.hits > 0  # the signal is strong enough to be found out of fold


def test_too_few_classes_is_an_input_error() -> None:
    data = dataset()
    data.y[:] = 0
    with pytest.raises(InputError, match="mining and benign"):
        fit_model(data, n_estimators=5)


@pytest.mark.parametrize(
    ("kind", "encrypted"),
    [("xmrig-tls", True), ("xmrig-stunnel", True), ("stratum-tls", True),
     ("stratum-v1", False), ("mqtt-tls", True), ("getwork", False)],
)  # fmt: skip
def test_encrypted_kinds(kind: str, encrypted: bool) -> None:
    assert is_encrypted_kind(kind) is encrypted


def test_export_view_rows_get_their_own_threshold() -> None:
    """Export copies (packet-only features missing) of every row, in the same groups: the
    model learns both views, and each view's benign rows set its own threshold."""
    base = dataset()
    missing = [FEATURE_NAMES.index(f) for f in ("opens_up_per_min", "open_cv_up")]
    x = base.x.copy()
    x[:, missing] = np.nan
    n = len(base)
    data = Dataset(
        x=np.vstack([base.x, x]),
        y=np.concatenate([base.y, base.y]),
        groups=base.groups * 2,
        kinds=base.kinds * 2,
        window_s=base.window_s * 2,
        tls=np.concatenate([base.tls, base.tls]),
        span_s=np.concatenate([base.span_s, base.span_s]),
        keys=base.keys * 2,
        export_view=np.repeat([False, True], n),
    )
    fit = fit_model(data, seed=1, n_estimators=15, min_span_s=60.0, judge_span_s=300.0)
    model = fit.model
    assert model.export_threshold is not None
    assert set(model.export_missing) == {"opens_up_per_min", "open_cv_up"}
    assert fit.summary["export_view_rows"] == int((data.span_s >= 60).sum() // 2)
    long_benign = (data.span_s >= 300) & (data.y == 0)
    for view, cut in (
        (~data.is_export(), model.threshold),
        (data.is_export(), model.export_threshold),
    ):
        assert not (fit.oof_probability[long_benign & view] >= cut).any()
    assert (
        model.cutoffs(data.x).tolist()
        == np.where(data.is_export(), model.export_threshold, model.threshold).tolist()
    )
    export_rows = data.subset(data.is_export())
    assert len(export_rows) == n and export_rows.is_export().all()
    assert export_rows.groups == base.groups
