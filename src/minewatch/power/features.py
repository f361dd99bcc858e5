"""Per-account load-profile features, computed in one columnar pipeline (DuckDB SQL).

Every feature is a statement about the physics of the load that a person can check on a plot:

* ``load_factor`` (mean / max) and ``cv_interval``/``cv_hourly``/``cv_daily`` (standard deviation
  over mean at the meter interval, of hourly means, of daily means): mining hardware runs flat
  out around the clock, so its load factor is near 1 and its variability near 0 at every scale;
* ``day_night`` and ``weekday_weekend`` ratios and ``spectral_24h``/``spectral_7d`` (amplitude of
  the daily and weekly cycle relative to the mean): people, offices, shops and most industry
  follow the clock and the calendar; miners do not;
* ``flatness_residual`` (variability left after removing each local day's mean, i.e. a smooth
  temperature-like drift) and ``flatness_robust`` (the median distance of an hour from its
  day's mean, which rare reboot or failover hours do not move): an ASIC farm's only slow
  variation is thermal;
* ``dip_share`` (share of hours holding a reading more than 10 % below the account's mean):
  AI training stalls at
  every checkpoint and synchronisation, cold stores cycle their compressors; a mining farm only
  dips on reboots and pool failovers;
* ``step_*`` (the most significant shift of the daily base load — the lower quartile of each
  day's hourly means, weekday effects removed — between two periods; ``step_kw`` is the
  base-load shift, ``step_mean_kw`` the mean-load shift at the same moment, ``step_rel`` the
  mean shift over the mean before): hidden mining added to a normal load lifts base and mean
  by the same constant — its onset is the shift — where a new clock-following load lifts the
  mean more than the base;
* ``peak_share`` (mean load in China's peak-price hours over the rest) and ``cv_offpeak``
  (variability of hourly means outside them) for the common two-peak tariff, and, whatever a
  province's peak hours are, ``off_share`` (hours far below the running level),
  ``off_on_schedule`` (of those, the share at clock hours that are off on most days) and
  ``cv_on`` (variability while running): price-curtailing miners stop at the same hours every
  day and run flat in all others;
* ``power_factor`` and ``phase_imbalance`` when kvar and phase currents are given: mining power
  supplies have active power-factor correction (≈0.99) and spread evenly over phases.

Load against contracted capacity and the declared business come from the accounts file and are
weighed in :mod:`minewatch.power.classify`.

The SQL runs on DuckDB by default; :mod:`minewatch.power.spark` computes the same columns on
Spark. Timestamps are grouped by the meter's *local* clock (``ts_utc`` + ``utc_offset_min``).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

__all__ = ["FEATURE_COLUMNS", "PEAK_HOURS", "compute_features"]

PEAK_HOURS: tuple[tuple[int, int], ...] = ((8, 11), (18, 23))
"""Local-clock peak-price hours [start, end) used for curtailment; the common pattern of
provincial time-of-use tariffs (two peaks, morning and evening)."""

MIN_SEGMENT_DAYS = 2
"""A level shift must leave at least two days on each side to count."""

FEATURE_COLUMNS: tuple[str, ...] = (
    "account_id",
    "n_readings",
    "interval_min",
    "first_ts",
    "last_ts",
    "days",
    "kw_mean",
    "kw_max",
    "load_factor",
    "cv_interval",
    "cv_hourly",
    "cv_daily",
    "day_night",
    "weekday_weekend",
    "spectral_24h",
    "spectral_7d",
    "flatness_residual",
    "flatness_robust",
    "dip_share",
    "peak_share",
    "cv_offpeak",
    "off_share",
    "off_on_schedule",
    "cv_on",
    "power_factor",
    "phase_imbalance",
    "step_onset",
    "step_kw",
    "step_mean_kw",
    "step_rel",
    "step_t",
    "resid_std_before",
    "resid_std_after",
)


def _peak_predicate(hour: str, peaks: Sequence[tuple[int, int]]) -> str:
    return " OR ".join(f"({hour} >= {a} AND {hour} < {b})" for a, b in peaks) or "FALSE"


def feature_sql(
    source: str = "readings",
    peaks: Sequence[tuple[int, int]] = PEAK_HOURS,
    *,
    reactive: bool = True,
    phases: bool = True,
) -> str:
    """The SQL computing :data:`FEATURE_COLUMNS` from a readings relation named ``source``.

    One pass over the readings builds per-account, per-local-hour sums (count, sum, sum of
    squares, minimum, power-factor and imbalance sums); everything else is derived from that
    table, which is 4-60 times smaller than the readings. Residual spread around each day's mean
    comes from the same sums (sum of squares minus the day's share), not from a second pass.
    Level shifts are searched between days (weekday effects removed): onsets are wanted to
    within a day, and a day's mean is free of the daily cycle that would blur an hourly search.
    ``reactive``/``phases`` say whether kvar and phase currents are present (their sums are
    skipped otherwise).
    """
    pf = (
        "sum(kw / sqrt(kw * kw + kvar * kvar)) FILTER (WHERE kvar IS NOT NULL AND kw > 0)"
        if reactive
        else "CAST(NULL AS DOUBLE)"
    )
    pf_n = "count(*) FILTER (WHERE kvar IS NOT NULL AND kw > 0)" if reactive else "0"
    im = (
        "sum((greatest(ia, ib, ic) - least(ia, ib, ic)) / ((ia + ib + ic) / 3))"
        " FILTER (WHERE ia + ib + ic > 0)"
        if phases
        else "CAST(NULL AS DOUBLE)"
    )
    im_n = "count(*) FILTER (WHERE ia + ib + ic > 0)" if phases else "0"
    peak = _peak_predicate("hod", peaks)
    # Only integers from code and an internal relation name are interpolated, never user input.
    return f"""
WITH hourly AS MATERIALIZED (
    -- Local clock hours as integers (hours since 1970-01-01 00:00 local): integer keys group an
    -- order of magnitude faster than time-zone-aware truncation.
    SELECT account_id,
           (epoch_us(ts_utc) + CAST(utc_offset_min AS BIGINT) * 60000000) // 3600000000 AS lh,
           count(kw) AS n, sum(kw) AS s, sum(kw * kw) AS q, min(kw) AS lo, max(kw) AS hi,
           min(epoch_us(ts_utc)) AS t0, max(epoch_us(ts_utc)) AS t1,
           any_value(utc_offset_min) AS off,
           {pf} AS pf_s, {pf_n} AS pf_n, {im} AS im_s, {im_n} AS im_n
    FROM {source}
    WHERE kw IS NOT NULL
    GROUP BY ALL
), h AS (
    -- 1970-01-01 was a Thursday (ISO day 4).
    SELECT *, lh % 24 AS hod, (lh // 24 + 3) % 7 + 1 AS dow, lh // 24 AS ld, s / n AS hm
    FROM hourly
), daily AS MATERIALIZED (
    SELECT account_id, ld, sum(s) / sum(n) AS dm FROM h GROUP BY ALL
), hd AS MATERIALIZED (
    -- Each hour with its day's mean, and the hour's spread around that mean.
    SELECT h.*, d.dm, h.q - 2 * d.dm * h.s + h.n * d.dm * d.dm AS rq
    FROM h JOIN daily d USING (account_id, ld)
), acc AS MATERIALIZED (
    SELECT account_id,
           CAST(sum(n) AS BIGINT) AS n_readings, min(t0) AS first_ts, max(t1) AS last_ts,
           sum(s) / sum(n) AS kw_mean, max(hi) AS kw_max,
           sqrt(greatest(sum(q) / sum(n) - (sum(s) / sum(n)) ^ 2, 0)) AS kw_std,
           stddev_pop(hm) AS hourly_std,
           sqrt(greatest(sum(rq), 0) / sum(n)) AS resid_std,
           sum(s) FILTER (WHERE hod >= 8 AND hod < 20) / sum(n) FILTER (WHERE hod >= 8 AND hod < 20)
               AS kw_day,
           sum(s) FILTER (WHERE hod < 6) / sum(n) FILTER (WHERE hod < 6) AS kw_night,
           sum(s) FILTER (WHERE dow <= 5) / sum(n) FILTER (WHERE dow <= 5) AS kw_weekday,
           sum(s) FILTER (WHERE dow >= 6) / sum(n) FILTER (WHERE dow >= 6) AS kw_weekend,
           sum(s) FILTER (WHERE {peak}) / sum(n) FILTER (WHERE {peak}) AS kw_peak,
           sum(s) FILTER (WHERE NOT ({peak})) / sum(n) FILTER (WHERE NOT ({peak})) AS kw_offpeak,
           stddev_pop(hm) FILTER (WHERE NOT ({peak})) AS offpeak_hourly_std,
           sum(pf_s) / nullif(sum(pf_n), 0) AS power_factor,
           sum(im_s) / nullif(sum(im_n), 0) AS phase_imbalance,
           any_value(off) AS off
    FROM hd GROUP BY account_id
), onoff AS (
    -- Scheduled stops: hours far below the account's usual running level. A price-curtailing
    -- miner is off at the same clock hours every day (the province's peak-price hours) and
    -- flat in every other hour.
    SELECT h.account_id, h.hod, h.ld, h.hm, h.hm < 0.3 * q.run_level AS off,
           h.hm >= 0.7 * q.run_level AS running
    FROM h JOIN (
        SELECT account_id, quantile_cont(hm, 0.75) AS run_level FROM h GROUP BY account_id
    ) q USING (account_id)
), offclock AS (
    SELECT account_id, hod, avg(CASE WHEN off THEN 1.0 ELSE 0.0 END) AS off_rate
    FROM onoff GROUP BY ALL
), curtail AS (
    SELECT o.account_id,
           avg(CASE WHEN o.off THEN 1.0 ELSE 0.0 END) AS off_share,
           avg(CASE WHEN c.off_rate >= 0.7 THEN 1.0 ELSE 0.0 END) FILTER (WHERE o.off)
               AS off_on_schedule,
           -- Hours of switching (partly on) are neither off nor running.
           stddev_pop(o.hm) FILTER (WHERE o.running)
               / nullif(avg(o.hm) FILTER (WHERE o.running), 0) AS cv_on
    FROM onoff o JOIN offclock c USING (account_id, hod) GROUP BY o.account_id
), robust AS (
    -- Typical distance of an hour from its day's mean: unlike a standard deviation, a few
    -- reboot or failover hours do not move it.
    SELECT account_id, median(abs(hm - dm)) AS mad FROM hd GROUP BY account_id
), day_stats AS (
    SELECT account_id, stddev_pop(dm) AS daily_std FROM daily GROUP BY account_id
), dips AS (
    SELECT hd.account_id, avg(CASE WHEN hd.lo < 0.9 * a.kw_mean THEN 1.0 ELSE 0.0 END) AS dip_share
    FROM hd JOIN acc a USING (account_id) GROUP BY hd.account_id
), cycle AS (
    -- Amplitude of the daily and weekly cycles: the fundamental of the mean profile by hour of
    -- day (24 bins) and by hour of week (168 bins).
    SELECT account_id,
           2 * sqrt(sum(p * cos(2 * pi() * hod / 24)) ^ 2 + sum(p * sin(2 * pi() * hod / 24)) ^ 2)
               / 24 AS amp24
    FROM (SELECT account_id, hod, sum(s) / sum(n) AS p FROM h GROUP BY ALL) GROUP BY account_id
), week AS (
    SELECT account_id,
           2 * sqrt(sum(p * cos(2 * pi() * how / 168)) ^ 2 + sum(p * sin(2 * pi() * how / 168)) ^ 2)
               / count(*) AS amp7d
    FROM (SELECT account_id, (dow - 1) * 24 + hod AS how, sum(s) / sum(n) AS p FROM h GROUP BY ALL)
    GROUP BY account_id
), daily_raw AS (
    SELECT account_id, ld, sum(s) / sum(n) AS dm0, quantile_cont(hm, 0.25) AS dl0, sum(rq) AS drq,
           sum(n) AS dn,
           (ld + 3) % 7 AS dow0, (ld - min(ld) OVER (PARTITION BY account_id)) // 7 AS wk
    FROM hd GROUP BY account_id, ld
), weekday_effect AS (
    -- How much each weekday sits above its week (median over the weeks, so that the week of
    -- an onset does not drag it): offices and shops are lower at weekends, which would
    -- otherwise blur a level shift between days.
    SELECT account_id, dow0, median(dm0 - wk_mean) AS effect, median(dl0 - wk_low) AS low_effect
    FROM (
        SELECT *, avg(dm0) OVER (PARTITION BY account_id, wk) AS wk_mean,
               avg(dl0) OVER (PARTITION BY account_id, wk) AS wk_low
        FROM daily_raw
    ) GROUP BY ALL
), daily_full AS (
    -- The split is searched on each day's base load (the lower quartile of its hourly means):
    -- the least noisy level of a load that follows the clock, robust to a few dips, and one
    -- that a constant added load lifts by its full size.
    SELECT r.account_id, r.ld, r.dl0 - coalesce(e.low_effect, 0) AS dmean,
           r.dm0 - coalesce(e.effect, 0) AS dday, r.drq, r.dn
    FROM daily_raw r LEFT JOIN weekday_effect e USING (account_id, dow0)
), split AS (
    -- Every day boundary is a candidate onset: level and residual spread before and after it,
    -- from running sums over the days (one pass, no re-scan per candidate).
    SELECT account_id, ld,
           count(*) OVER wb AS n_b, sum(dmean) OVER wb AS s_b, sum(dmean * dmean) OVER wb AS q_b,
           sum(dday) OVER wb AS m_b, sum(dday) OVER wa AS m_all,
           sum(drq) OVER wb AS rq_b, sum(dn) OVER wb AS nn_b,
           count(*) OVER wa AS n_all, sum(dmean) OVER wa AS s_all,
           sum(dmean * dmean) OVER wa AS q_all, sum(drq) OVER wa AS rq_all,
           sum(dn) OVER wa AS nn_all
    FROM daily_full
    WINDOW wb AS (PARTITION BY account_id ORDER BY ld
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
           wa AS (PARTITION BY account_id)
), split_stats AS (
    SELECT account_id, ld, n_b, n_all - n_b AS n_a,
           s_b / n_b AS mu_b, (s_all - s_b) / (n_all - n_b) AS mu_a,
           (m_all - m_b) / (n_all - n_b) - m_b / n_b AS mean_step,
           m_b / n_b AS mean_before,
           greatest(q_b / n_b - (s_b / n_b) ^ 2, 0) AS var_b,
           greatest((q_all - q_b) / (n_all - n_b) - ((s_all - s_b) / (n_all - n_b)) ^ 2, 0)
               AS var_a,
           sqrt(greatest(rq_b, 0) / nn_b) AS rs_b,
           sqrt(greatest(rq_all - rq_b, 0) / (nn_all - nn_b)) AS rs_a
    FROM split
    WHERE n_b >= {MIN_SEGMENT_DAYS} AND n_all - n_b >= {MIN_SEGMENT_DAYS}
), best_split AS (
    SELECT account_id,
           arg_max(ld, t) AS onset_day,
           arg_max(mu_a - mu_b, t) AS step_kw,
           arg_max(mean_before, t) AS step_mean_before,
           arg_max(mean_step, t) AS step_mean_kw,
           max(t) AS step_t,
           arg_max(rs_b, t) AS resid_std_before,
           arg_max(rs_a, t) AS resid_std_after
    FROM (
        SELECT *, (mu_a - mu_b) / sqrt(var_b / n_b + var_a / n_a + 1e-12 * mu_b * mu_b) AS t
        FROM split_stats
    )
    GROUP BY account_id
)
SELECT a.account_id,
       a.n_readings,
       (a.last_ts - a.first_ts) / 60e6 / greatest(a.n_readings - 1, 1) AS interval_min,
       make_timestamptz(a.first_ts) AS first_ts,
       make_timestamptz(a.last_ts) AS last_ts,
       (a.last_ts - a.first_ts) / 86400e6 AS days,
       a.kw_mean,
       a.kw_max,
       a.kw_mean / nullif(a.kw_max, 0) AS load_factor,
       a.kw_std / nullif(a.kw_mean, 0) AS cv_interval,
       a.hourly_std / nullif(a.kw_mean, 0) AS cv_hourly,
       coalesce(ds.daily_std, 0) / nullif(a.kw_mean, 0) AS cv_daily,
       a.kw_day / nullif(a.kw_night, 0) AS day_night,
       a.kw_weekday / nullif(a.kw_weekend, 0) AS weekday_weekend,
       c.amp24 / nullif(a.kw_mean, 0) AS spectral_24h,
       w.amp7d / nullif(a.kw_mean, 0) AS spectral_7d,
       a.resid_std / nullif(a.kw_mean, 0) AS flatness_residual,
       rb.mad / nullif(a.kw_mean, 0) AS flatness_robust,
       d.dip_share,
       a.kw_peak / nullif(a.kw_offpeak, 0) AS peak_share,
       a.offpeak_hourly_std / nullif(a.kw_offpeak, 0) AS cv_offpeak,
       cu.off_share,
       coalesce(cu.off_on_schedule, 0) AS off_on_schedule,
       cu.cv_on,
       a.power_factor,
       a.phase_imbalance,
       make_timestamptz(bs.onset_day * 86400000000 - CAST(a.off AS BIGINT) * 60000000)
           AS step_onset,
       bs.step_kw,
       bs.step_mean_kw,
       bs.step_mean_kw / nullif(bs.step_mean_before, 0) AS step_rel,
       bs.step_t,
       bs.resid_std_before,
       bs.resid_std_after
FROM acc a
JOIN day_stats ds USING (account_id)
JOIN dips d USING (account_id)
JOIN cycle c USING (account_id)
JOIN week w USING (account_id)
JOIN curtail cu USING (account_id)
JOIN robust rb USING (account_id)
LEFT JOIN best_split bs USING (account_id)
ORDER BY a.account_id
"""  # noqa: S608


def compute_features(
    readings: pa.Table,
    con: duckdb.DuckDBPyConnection | None = None,
    peaks: Sequence[tuple[int, int]] = PEAK_HOURS,
) -> pa.Table:
    """Features of every account in ``readings`` (columns of :data:`FEATURE_COLUMNS`).

    ``readings`` has ``account_id``, ``ts_utc`` (UTC timestamps), ``utc_offset_min``, ``kw`` and
    optionally ``kvar``, ``ia``, ``ib``, ``ic`` (missing ones are treated as null).
    """
    con = con or duckdb.connect()
    table = readings
    present = {
        name: name in table.column_names and table.column(name).null_count < table.num_rows
        for name in ("kvar", "ia", "ib", "ic")
    }
    for name in present:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.float64()))
    sql = feature_sql(
        "readings_input",
        peaks,
        reactive=present["kvar"],
        phases=present["ia"] and present["ib"] and present["ic"],
    )
    con.register("readings_input", table)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("readings_input")
