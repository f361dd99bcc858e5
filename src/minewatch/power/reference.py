"""The load-profile features written plainly in pandas, the way an analyst would.

:func:`compute_features_pandas` computes the columns of
:data:`~minewatch.power.features.FEATURE_COLUMNS` with ordinary pandas: local clock times,
``groupby`` by account and hour or day, ``transform`` for day means, cumulative sums for the
level-shift search. It is the peer of the DuckDB pipeline in ``benchmarks/bench_power.py`` and
a third, independent check of it (and of the Spark port) in the tests: it works on the readings
themselves where the SQL works on hourly sums, so agreement checks the algebra too.

Example::

    >>> features = compute_features_pandas(loaded.table.to_pandas())   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from minewatch.power.features import FEATURE_COLUMNS, MIN_SEGMENT_DAYS, PEAK_HOURS

__all__ = ["compute_features_pandas"]


def _amplitude(profile: pd.DataFrame, key: str, period: int, divisor: pd.Series | int) -> pd.Series:
    """Amplitude of the fundamental of a mean profile (``p`` by ``key``) per account."""
    angle = 2 * np.pi * profile[key] / period
    parts = pd.DataFrame(
        {
            "account_id": profile["account_id"],
            "re": profile["p"] * np.cos(angle),
            "im": profile["p"] * np.sin(angle),
        }
    )
    sums = parts.groupby("account_id").sum()
    return 2 * np.sqrt(sums["re"] ** 2 + sums["im"] ** 2) / divisor


def compute_features_pandas(
    readings: pd.DataFrame, peaks: Sequence[tuple[int, int]] = PEAK_HOURS
) -> pd.DataFrame:
    """Features of every account in ``readings``, one row per account, sorted by account.

    ``readings`` has the columns of a readings table (``account_id``, ``ts_utc`` as UTC
    timestamps, ``utc_offset_min``, ``kw``, optionally ``kvar``, ``ia``, ``ib``, ``ic``), e.g.
    ``table.to_pandas()``. Timestamps in the result are UTC; missing values are NaN/NaT.
    """
    df = readings[readings["kw"].notna()].copy()
    for name in ("kvar", "ia", "ib", "ic"):
        if name not in df.columns:
            df[name] = np.nan
    # The meter's local clock: hours and days are the meter's, not UTC's.
    ts = df["ts_utc"].dt.tz_convert("UTC").dt.tz_localize(None)
    local = ts + pd.to_timedelta(df["utc_offset_min"].astype("int64"), unit="min")
    df["hour"] = local.dt.floor("h")
    df["day"] = local.dt.floor("D")
    df["hod"] = local.dt.hour
    df["dow"] = local.dt.day_of_week  # Monday = 0
    peak_hours = sorted({h for a, b in peaks for h in range(a, b)})
    df["peak"] = df["hod"].isin(peak_hours)

    by_account = df.groupby("account_id")
    out = by_account.agg(
        n_readings=("kw", "size"),
        first_ts=("ts_utc", "min"),
        last_ts=("ts_utc", "max"),
        kw_mean=("kw", "mean"),
        kw_max=("kw", "max"),
        off=("utc_offset_min", "first"),
    )
    kw_mean = out["kw_mean"]
    span = out["last_ts"] - out["first_ts"]
    out["interval_min"] = span / pd.Timedelta(minutes=1) / np.maximum(out["n_readings"] - 1, 1)
    out["days"] = span / pd.Timedelta(days=1)
    out["load_factor"] = kw_mean / out["kw_max"].replace(0, np.nan)
    out["cv_interval"] = by_account["kw"].std(ddof=0) / kw_mean.replace(0, np.nan)

    # Hourly means (the hours that hold readings).
    hourly = (
        df.groupby(["account_id", "hour"])
        .agg(hm=("kw", "mean"), lo=("kw", "min"), peak=("peak", "first"))
        .reset_index()
    )
    hourly["day"] = hourly["hour"].dt.floor("D")
    hourly["hod"] = hourly["hour"].dt.hour
    out["cv_hourly"] = hourly.groupby("account_id")["hm"].std(ddof=0) / kw_mean.replace(0, np.nan)

    # Daily means, and what is left around them.
    df["day_mean"] = df.groupby(["account_id", "day"])["kw"].transform("mean")
    df["resid2"] = (df["kw"] - df["day_mean"]) ** 2
    daily = (
        df.groupby(["account_id", "day"])
        .agg(dm0=("kw", "mean"), dn=("kw", "size"), drq=("resid2", "sum"))
        .reset_index()
    )
    daily_std = daily.groupby("account_id")["dm0"].std(ddof=0).fillna(0.0)
    out["cv_daily"] = daily_std / kw_mean.replace(0, np.nan)

    def mean_kw(mask: pd.Series) -> pd.Series:
        return df[mask].groupby("account_id")["kw"].mean().reindex(out.index)

    day_kw = mean_kw((df["hod"] >= 8) & (df["hod"] < 20))
    night_kw = mean_kw(df["hod"] < 6)
    out["day_night"] = day_kw / night_kw.replace(0, np.nan)
    out["weekday_weekend"] = mean_kw(df["dow"] <= 4) / mean_kw(df["dow"] >= 5).replace(0, np.nan)

    # Daily and weekly cycles: mean profile by hour of day and by hour of week.
    by_hod = df.groupby(["account_id", "hod"])["kw"].mean().rename("p").reset_index()
    out["spectral_24h"] = _amplitude(by_hod, "hod", 24, 24) / kw_mean.replace(0, np.nan)
    df["how"] = df["dow"] * 24 + df["hod"]
    by_how = df.groupby(["account_id", "how"])["kw"].mean().rename("p").reset_index()
    bins = by_how.groupby("account_id").size()
    out["spectral_7d"] = _amplitude(by_how, "how", 168, bins) / kw_mean.replace(0, np.nan)

    resid_std = np.sqrt(df.groupby("account_id")["resid2"].mean())
    out["flatness_residual"] = resid_std / kw_mean.replace(0, np.nan)
    # Robust flatness: median distance of an hourly mean from its day's mean.
    day_mean = daily.set_index(["account_id", "day"])["dm0"]
    hour_day = pd.MultiIndex.from_frame(hourly[["account_id", "day"]])
    hourly["dm"] = day_mean.reindex(hour_day).to_numpy()
    mad = (hourly["hm"] - hourly["dm"]).abs().groupby(hourly["account_id"]).median()
    out["flatness_robust"] = mad / kw_mean.replace(0, np.nan)

    # Share of hours holding a reading more than 10 % below the account's mean.
    hourly["dip"] = hourly["lo"] < 0.9 * hourly["account_id"].map(kw_mean)
    out["dip_share"] = hourly.groupby("account_id")["dip"].mean()

    # Peak-price hours against the rest.
    peak_kw = mean_kw(df["peak"])
    offpeak_kw = mean_kw(~df["peak"])
    out["peak_share"] = peak_kw / offpeak_kw.replace(0, np.nan)
    offpeak_std = hourly[~hourly["peak"]].groupby("account_id")["hm"].std(ddof=0)
    out["cv_offpeak"] = offpeak_std.reindex(out.index) / offpeak_kw.replace(0, np.nan)

    # Scheduled stops, whatever the peak hours: hours far below the usual running level
    # (upper quartile of the hourly means), and whether they fall at clock hours that are off on
    # most days. Hours in between (switching) are neither off nor running.
    run_level = hourly["account_id"].map(hourly.groupby("account_id")["hm"].quantile(0.75))
    hourly["off"] = hourly["hm"] < 0.3 * run_level
    hourly["running"] = hourly["hm"] >= 0.7 * run_level
    off_rate = hourly.groupby(["account_id", "hod"])["off"].transform("mean")
    out["off_share"] = hourly.groupby("account_id")["off"].mean()
    on_schedule = (off_rate >= 0.7)[hourly["off"]].groupby(hourly["account_id"]).mean()
    out["off_on_schedule"] = on_schedule.reindex(out.index).fillna(0.0)
    running = hourly[hourly["running"]].groupby("account_id")["hm"]
    out["cv_on"] = (running.std(ddof=0) / running.mean().replace(0, np.nan)).reindex(out.index)

    # Power factor and phase imbalance where measured.
    pf_rows = df["kvar"].notna() & (df["kw"] > 0)
    pf = df["kw"] / np.sqrt(df["kw"] ** 2 + df["kvar"] ** 2)
    out["power_factor"] = pf[pf_rows].groupby(df["account_id"]).mean().reindex(out.index)
    phases = df[["ia", "ib", "ic"]]
    total = phases.sum(axis=1, min_count=3)
    imbalance = (phases.max(axis=1) - phases.min(axis=1)) / (total / 3)
    im_rows = total > 0
    out["phase_imbalance"] = imbalance[im_rows].groupby(df["account_id"]).mean().reindex(out.index)

    # Level shift, searched on each day's base load (lower quartile of its hourly means) with
    # each weekday's typical offset from its week removed (median over the weeks, weeks counted
    # from the account's first day); the mean load is corrected the same way.
    base = hourly.groupby(["account_id", "day"])["hm"].quantile(0.25)
    daily["dl0"] = base.reindex(pd.MultiIndex.from_frame(daily[["account_id", "day"]])).to_numpy()
    daily["dow0"] = daily["day"].dt.day_of_week
    first_day = daily.groupby("account_id")["day"].transform("min")
    daily["wk"] = (daily["day"] - first_day).dt.days // 7
    weekday = [daily["account_id"], daily["dow0"]]
    for level, value in (("dl0", "dmean"), ("dm0", "dday")):
        week_mean = daily.groupby(["account_id", "wk"])[level].transform("mean")
        effect = (daily[level] - week_mean).groupby(weekday).transform("median")
        daily[value] = daily[level] - effect
    daily["dmean2"] = daily["dmean"] ** 2

    days = daily.sort_values(["account_id", "day"]).reset_index(drop=True)
    g = days.groupby("account_id")
    n_b = g.cumcount()
    n_all = g["dmean"].transform("size")
    sums = {}
    for name in ("dmean", "dmean2", "dday", "drq", "dn"):
        total_ = g[name].transform("sum")
        before = g[name].cumsum() - days[name]  # the days before this one
        sums[name] = (before, total_ - before)
    n_a = n_all - n_b
    mu_b = sums["dmean"][0] / n_b
    mu_a = sums["dmean"][1] / n_a
    mean_before = sums["dday"][0] / n_b
    mean_after = sums["dday"][1] / n_a
    with np.errstate(divide="ignore", invalid="ignore"):
        var_b = np.maximum(sums["dmean2"][0] / n_b - mu_b**2, 0)
        var_a = np.maximum(sums["dmean2"][1] / n_a - mu_a**2, 0)
        splits = pd.DataFrame(
            {
                "account_id": days["account_id"],
                "onset_local": days["day"],
                "step_kw": mu_a - mu_b,
                "step_mean_kw": mean_after - mean_before,
                "step_rel": (mean_after - mean_before) / mean_before.replace(0, np.nan),
                "step_t": (mu_a - mu_b) / np.sqrt(var_b / n_b + var_a / n_a + 1e-12 * mu_b**2),
                "resid_std_before": np.sqrt(np.maximum(sums["drq"][0], 0) / sums["dn"][0]),
                "resid_std_after": np.sqrt(np.maximum(sums["drq"][1], 0) / sums["dn"][1]),
            }
        )
    splits = splits[(n_b >= MIN_SEGMENT_DAYS) & (n_a >= MIN_SEGMENT_DAYS)]
    # The split with the largest t (NaN sorts last, i.e. counts as largest, as in SQL engines).
    best = splits.sort_values(["account_id", "step_t"]).groupby("account_id").tail(1)
    best = best.set_index("account_id").reindex(out.index)
    local_onset = best["onset_local"] - pd.to_timedelta(out["off"].astype("int64"), unit="min")
    out["step_onset"] = local_onset.dt.tz_localize("UTC")
    steps = ("step_kw", "step_mean_kw", "step_rel", "step_t", "resid_std_before", "resid_std_after")
    for name in steps:
        out[name] = best[name]

    result = out.reset_index()[list(FEATURE_COLUMNS)]
    for name in ("first_ts", "last_ts", "step_onset"):
        result[name] = result[name].astype("datetime64[us, UTC]")
    result["n_readings"] = result["n_readings"].astype("int64")
    return result.sort_values("account_id", ignore_index=True)
