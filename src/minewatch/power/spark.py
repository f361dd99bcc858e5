"""Load-profile features on Apache Spark, for national scale (hundreds of millions of meters).

:func:`compute_features_spark` is the DuckDB query of :func:`minewatch.power.features.feature_sql`
written with the Spark DataFrame API, step for step and under the same names (``hourly``,
``h``/``hd`` with ``daily``, ``acc`` with ``dips``/``onoff``/``offclock``/``curtail``/``robust``,
``day_stats``, ``cycle``, ``week``, ``daily_raw``, ``weekday_effect``, ``daily_full``,
``split``, ``split_stats``, ``best_split``): one aggregation of the readings by account and
integer local hour, everything else from that table. It returns the columns of
:data:`~minewatch.power.features.FEATURE_COLUMNS` with the same meaning and units;
``tests/power/test_feature_engines.py`` checks that both engines agree.

Where the two SQL dialects differ, the DuckDB meaning is kept explicitly:

* integer division is ``div`` (``//`` in DuckDB), powers are ``pow`` (``^`` is XOR in Spark);
* ``FILTER (WHERE ...)`` aggregates are ``CASE`` (``when``) inside the aggregate;
* DuckDB divides doubles by IEEE 754 (±inf, NaN); Spark gives NULL, or an error in ANSI mode
  (the default from Spark 4). Every division is guarded, and the one that can meet a zero in
  DuckDB (the step t-statistic of a segment without variation) returns DuckDB's ±inf/NaN;
* ``arg_max`` is ``max_by`` over one struct, so that all step columns come from one split;
* ``median`` is the exact, interpolating ``percentile(x, 0.5)``.

pyspark is imported inside the functions only: importing this module needs no Spark.

Example::

    >>> spark = spark_session()                                  # doctest: +SKIP
    >>> features = features_from_arrow(loaded.table, spark)      # doctest: +SKIP
    >>> features_to_arrow(features).column_names[:3]             # doctest: +SKIP
    ['account_id', 'n_readings', 'interval_min']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from minewatch.power.features import FEATURE_COLUMNS, MIN_SEGMENT_DAYS, PEAK_HOURS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "compute_features_spark",
    "features_from_arrow",
    "features_to_arrow",
    "readings_to_spark",
    "spark_session",
]

_US_PER_MIN = 60_000_000
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 86_400_000_000
_OPTIONAL = ("kvar", "ia", "ib", "ic")
_TIMESTAMPS = ("first_ts", "last_ts", "step_onset")


def spark_session(app: str = "minewatch", cores: int = 2, *, memory: str = "2g") -> SparkSession:
    """A local Spark session on ``cores`` cores (``local[cores]``), set up for small jobs.

    The web UI and progress bars are off, shuffles use ``2 * cores`` partitions (adaptive
    execution merges them further), the SQL session time zone is UTC and Arrow transfers to
    and from Python are on. ``memory`` is the driver's heap (it holds all data in local mode);
    it only takes effect if no Spark JVM runs in this process yet. On a cluster, build the
    session as the cluster wants instead and pass its DataFrames to
    :func:`compute_features_spark`.
    """
    if cores < 1:
        raise ValueError(f"cores must be a positive number of cores, e.g. 2; got {cores!r}")
    from pyspark.sql import SparkSession

    builder: SparkSession.Builder = SparkSession.builder
    session = (
        builder.master(f"local[{cores}]")
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(2 * cores))
        .config("spark.default.parallelism", str(2 * cores))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", memory)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def readings_to_spark(table: pa.Table, spark: SparkSession) -> DataFrame:
    """A Spark DataFrame of an Arrow readings table (the layout of
    :func:`minewatch.power.readings.load_readings`); absent ``kvar``/``ia``/``ib``/``ic`` become
    null columns."""
    from pyspark.sql.types import (
        DoubleType,
        ShortType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    types = {
        "account_id": pa.string(),
        "ts_utc": pa.timestamp("us", tz="UTC"),
        "utc_offset_min": pa.int16(),
        **{name: pa.float64() for name in ("kw", *_OPTIONAL)},
    }
    columns = []
    for name, typ in types.items():
        if name in table.column_names:
            columns.append(table.column(name).cast(typ))
        elif name in _OPTIONAL:
            columns.append(pa.nulls(table.num_rows, typ))
        else:
            raise ValueError(f"readings need a column {name!r}; they have {table.column_names}")
    arrow = pa.table(columns, names=list(types))
    schema = StructType(
        [
            StructField("account_id", StringType(), False),
            StructField("ts_utc", TimestampType(), False),
            StructField("utc_offset_min", ShortType(), False),
            *(StructField(name, DoubleType(), True) for name in ("kw", *_OPTIONAL)),
        ]
    )
    if _spark_major() >= 4:  # Spark 4 takes Arrow tables as they are
        return spark.createDataFrame(arrow, schema=schema)
    return spark.createDataFrame(arrow.to_pandas(), schema=schema)  # Arrow-backed when enabled


def _spark_major() -> int:
    import pyspark

    return int(pyspark.__version__.split(".")[0])


def _peak(hod: Column, peaks: Sequence[tuple[int, int]]) -> Column:
    from pyspark.sql import functions as sf

    terms = [(hod >= a) & (hod < b) for a, b in peaks]
    return reduce(lambda x, y: x | y, terms) if terms else sf.lit(False)


def _nullif0(c: Column) -> Column:
    """``nullif(c, 0)``."""
    from pyspark.sql import functions as sf

    return sf.when(c != 0, c)


def _ieee_div(num: Column, den: Column) -> Column:
    """``num / den`` as DuckDB divides doubles: ±inf or NaN where ``den`` is 0."""
    from pyspark.sql import functions as sf

    return (
        sf.when(den != 0, num / den)
        .when(num > 0, sf.lit(math.inf))
        .when(num < 0, sf.lit(-math.inf))
        .otherwise(sf.lit(math.nan))
    )


def _mean_where(cond: Column) -> Column:
    """``sum(s) FILTER (WHERE cond) / sum(n) FILTER (WHERE cond)``: NULL where no hour matches."""
    from pyspark.sql import functions as sf

    return sf.sum(sf.when(cond, sf.col("s"))) / sf.sum(sf.when(cond, sf.col("n")))


def _cycle_amplitude(profile: DataFrame, key: str, period: int, divisor: Column) -> Column:
    """``2 * sqrt(sum(p cos)^2 + sum(p sin)^2) / divisor``: the fundamental of a mean profile."""
    from pyspark.sql import functions as sf

    angle = sf.lit(2 * math.pi) * profile[key] / period
    re = sf.sum(profile["p"] * sf.cos(angle))
    im = sf.sum(profile["p"] * sf.sin(angle))
    return sf.lit(2.0) * sf.sqrt(sf.pow(re, 2) + sf.pow(im, 2)) / divisor


def compute_features_spark(
    readings: DataFrame, peaks: Sequence[tuple[int, int]] = PEAK_HOURS
) -> DataFrame:
    """Features of every account in ``readings`` (columns of
    :data:`~minewatch.power.features.FEATURE_COLUMNS`), as
    :func:`~minewatch.power.features.compute_features` computes them on DuckDB.

    ``readings`` has ``account_id``, ``ts_utc`` (timestamps), ``utc_offset_min``, ``kw`` and
    optionally ``kvar``, ``ia``, ``ib``, ``ic``. The result is lazy and sorted by account;
    ``n_readings`` is a long, ``first_ts``/``last_ts``/``step_onset`` are timestamps (instants,
    shown in the session time zone), everything else doubles.

    The readings are first reduced to hourly sums; the hourly table is then partitioned by
    account, so that later aggregates, windows and joins (all keyed by account) mostly run
    within their partition, and the SQL's joins of per-account or per-day values back onto
    the hours (``daily``, ``dips``, ``onoff``, ``offclock``) are window aggregates here.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    col = sf.col
    r = readings
    for name in _OPTIONAL:
        if name not in r.columns:
            r = r.withColumn(name, sf.lit(None).cast("double"))

    # hourly: local clock hours as integers (hours since 1970-01-01 00:00 local).
    kw, kvar, ia, ib, ic = (col(c) for c in ("kw", *_OPTIONAL))
    pf_ok = kvar.isNotNull() & (kw > 0)
    phase_sum = ia + ib + ic
    im_ok = phase_sum > 0
    hourly = (
        r.where(kw.isNotNull())
        .withColumn("us", sf.unix_micros(col("ts_utc")))
        .withColumn("local_us", col("us") + col("utc_offset_min").cast("bigint") * _US_PER_MIN)
        .groupBy("account_id", sf.expr(f"local_us div {_US_PER_HOUR}").alias("lh"))
        .agg(
            sf.count(kw).alias("n"),
            sf.sum(kw).alias("s"),
            sf.sum(kw * kw).alias("q"),
            sf.min(kw).alias("lo"),
            sf.max(kw).alias("hi"),
            sf.min("us").alias("t0"),
            sf.max("us").alias("t1"),
            sf.first("utc_offset_min").alias("off"),
            sf.sum(sf.when(pf_ok, kw / sf.sqrt(kw * kw + kvar * kvar))).alias("pf_s"),
            sf.count(sf.when(pf_ok, 1)).alias("pf_n"),
            sf.sum(
                sf.when(im_ok, (sf.greatest(ia, ib, ic) - sf.least(ia, ib, ic)) / (phase_sum / 3))
            ).alias("im_s"),
            sf.count(sf.when(im_ok, 1)).alias("im_n"),
        )
        .repartition("account_id")
    )
    by_account = Window.partitionBy("account_id")
    by_day = Window.partitionBy("account_id", "ld")
    # h: 1970-01-01 was a Thursday (ISO day 4). hd: with the day's mean (daily) and the hour's
    # spread around it; onoff: whether the hour is far below the running level.
    s, n, hm = col("s"), col("n"), col("hm")
    hd = (
        hourly.withColumn("hod", col("lh") % 24)
        .withColumn("ld", sf.expr("lh div 24"))
        .withColumn("dow", (col("ld") + 3) % 7 + 1)
        .withColumn("hm", s / n)
        .withColumn("dm", sf.sum(s).over(by_day) / sf.sum(n).over(by_day))
        .withColumn("rq", col("q") - 2 * col("dm") * s + n * col("dm") * col("dm"))
        .withColumn("kw_mean_all", sf.sum(s).over(by_account) / sf.sum(n).over(by_account))
        .withColumn("run_level", sf.percentile(hm, 0.75).over(by_account))  # = quantile_cont
        .withColumn("off_hour", hm < 0.3 * col("run_level"))
        .withColumn("running", hm >= 0.7 * col("run_level"))
    )
    hod, dow, off_hour = col("hod"), col("dow"), col("off_hour")
    peak = _peak(hod, peaks)
    on_hm = sf.when(col("running"), hm)  # hours of switching are neither off nor running
    total_n = sf.sum(n)
    acc = (
        hd.withColumn(
            "off_rate",  # offclock
            sf.avg(sf.when(off_hour, 1.0).otherwise(0.0)).over(
                Window.partitionBy("account_id", "hod")
            ),
        )
        .groupBy("account_id")
        .agg(
            total_n.alias("n_readings"),
            sf.min("t0").alias("first_ts"),
            sf.max("t1").alias("last_ts"),
            (sf.sum(s) / total_n).alias("kw_mean"),
            sf.max("hi").alias("kw_max"),
            sf.sqrt(
                sf.greatest(sf.sum("q") / total_n - sf.pow(sf.sum(s) / total_n, 2), sf.lit(0.0))
            ).alias("kw_std"),
            sf.stddev_pop(hm).alias("hourly_std"),
            sf.sqrt(sf.greatest(sf.sum("rq"), sf.lit(0.0)) / total_n).alias("resid_std"),
            sf.percentile(sf.abs(hm - col("dm")), 0.5).alias("mad"),  # robust
            _mean_where((hod >= 8) & (hod < 20)).alias("kw_day"),
            _mean_where(hod < 6).alias("kw_night"),
            _mean_where(dow <= 5).alias("kw_weekday"),
            _mean_where(dow >= 6).alias("kw_weekend"),
            _mean_where(peak).alias("kw_peak"),
            _mean_where(~peak).alias("kw_offpeak"),
            sf.stddev_pop(sf.when(~peak, hm)).alias("offpeak_hourly_std"),
            (sf.sum("pf_s") / _nullif0(sf.sum("pf_n"))).alias("power_factor"),
            (sf.sum("im_s") / _nullif0(sf.sum("im_n"))).alias("phase_imbalance"),
            sf.first("off").alias("off"),
            # dips
            sf.avg(sf.when(col("lo") < 0.9 * col("kw_mean_all"), 1.0).otherwise(0.0)).alias(
                "dip_share"
            ),
            # curtail
            sf.avg(sf.when(off_hour, 1.0).otherwise(0.0)).alias("off_share"),
            sf.avg(sf.when(off_hour, sf.when(col("off_rate") >= 0.7, 1.0).otherwise(0.0))).alias(
                "off_on_schedule"
            ),
            (sf.stddev_pop(on_hm) / _nullif0(sf.avg(on_hm))).alias("cv_on"),
        )
    )

    # day_stats; cycle, week: the fundamental of the mean profile by hour of day and of week.
    daily_raw = hd.groupBy("account_id", "ld").agg(
        (sf.sum(s) / sf.sum(n)).alias("dm0"),
        sf.percentile(hm, 0.25).alias("dl0"),
        sf.sum("rq").alias("drq"),
        sf.sum(n).alias("dn"),
    )
    day_stats = daily_raw.groupBy("account_id").agg(sf.stddev_pop("dm0").alias("daily_std"))
    by_hod = hd.groupBy("account_id", "hod").agg((sf.sum(s) / sf.sum(n)).alias("p"))
    cycle = by_hod.groupBy("account_id").agg(
        _cycle_amplitude(by_hod, "hod", 24, sf.lit(24)).alias("amp24")
    )
    by_how = hd.groupBy("account_id", ((dow - 1) * 24 + hod).alias("how")).agg(
        (sf.sum(s) / sf.sum(n)).alias("p")
    )
    week = by_how.groupBy("account_id").agg(
        _cycle_amplitude(by_how, "how", 168, sf.count(sf.lit(1))).alias("amp7d")
    )

    # daily_raw, weekday_effect, daily_full: day means and base loads (lower quartile of the
    # hourly means) less each weekday's typical offset from its week (median over the weeks),
    # weeks counted from the account's first day. The split is searched on the base load.
    by_week = Window.partitionBy("account_id", "wk")
    by_weekday = Window.partitionBy("account_id", "dow0")
    daily_full = (
        daily_raw.withColumn("dow0", (col("ld") + 3) % 7)
        .withColumn("d_first", col("ld") - sf.min("ld").over(by_account))
        .withColumn("wk", sf.expr("d_first div 7"))
        .withColumn("wk_mean", sf.avg("dm0").over(by_week))
        .withColumn("wk_low", sf.avg("dl0").over(by_week))
        .withColumn("effect", sf.percentile(col("dm0") - col("wk_mean"), 0.5).over(by_weekday))
        .withColumn("low_effect", sf.percentile(col("dl0") - col("wk_low"), 0.5).over(by_weekday))
        .select(
            "account_id",
            "ld",
            (col("dl0") - sf.coalesce(col("low_effect"), sf.lit(0.0))).alias("dmean"),
            (col("dm0") - sf.coalesce(col("effect"), sf.lit(0.0))).alias("dday"),
            "drq",
            "dn",
        )
    )

    # split: every day boundary is a candidate onset, with running sums before it.
    wb = by_account.orderBy("ld").rowsBetween(Window.unboundedPreceding, -1)
    dmean, dday = col("dmean"), col("dday")
    split = daily_full.select(
        "account_id",
        "ld",
        sf.count(sf.lit(1)).over(wb).alias("n_b"),
        sf.sum(dmean).over(wb).alias("s_b"),
        sf.sum(dmean * dmean).over(wb).alias("q_b"),
        sf.sum(dday).over(wb).alias("m_b"),
        sf.sum(dday).over(by_account).alias("m_all"),
        sf.sum("drq").over(wb).alias("rq_b"),
        sf.sum("dn").over(wb).alias("nn_b"),
        sf.count(sf.lit(1)).over(by_account).alias("n_all"),
        sf.sum(dmean).over(by_account).alias("s_all"),
        sf.sum(dmean * dmean).over(by_account).alias("q_all"),
        sf.sum("drq").over(by_account).alias("rq_all"),
        sf.sum("dn").over(by_account).alias("nn_all"),
    )
    n_b, n_a = col("n_b"), col("n_all") - col("n_b")
    s_a, q_a = col("s_all") - col("s_b"), col("q_all") - col("q_b")
    split_stats = split.where((n_b >= MIN_SEGMENT_DAYS) & (n_a >= MIN_SEGMENT_DAYS)).select(
        "account_id",
        "ld",
        n_b.alias("n_b"),
        n_a.alias("n_a"),
        (col("s_b") / n_b).alias("mu_b"),
        (s_a / n_a).alias("mu_a"),
        ((col("m_all") - col("m_b")) / n_a - col("m_b") / n_b).alias("mean_step"),
        (col("m_b") / n_b).alias("mean_before"),
        sf.greatest(col("q_b") / n_b - sf.pow(col("s_b") / n_b, 2), sf.lit(0.0)).alias("var_b"),
        sf.greatest(q_a / n_a - sf.pow(s_a / n_a, 2), sf.lit(0.0)).alias("var_a"),
        sf.sqrt(sf.greatest(col("rq_b"), sf.lit(0.0)) / col("nn_b")).alias("rs_b"),
        sf.sqrt(
            sf.greatest(col("rq_all") - col("rq_b"), sf.lit(0.0)) / (col("nn_all") - col("nn_b"))
        ).alias("rs_a"),
    )
    mu_b, mu_a = col("mu_b"), col("mu_a")
    t = _ieee_div(
        mu_a - mu_b,
        sf.sqrt(col("var_b") / col("n_b") + col("var_a") / col("n_a") + 1e-12 * mu_b * mu_b),
    )
    # best_split: one max_by over a struct, so that every step column describes one split.
    best = sf.max_by(
        sf.struct(
            col("ld").alias("onset_day"),
            (mu_a - mu_b).alias("step_kw"),
            col("mean_step").alias("step_mean_kw"),
            (col("mean_step") / _nullif0(col("mean_before"))).alias("step_rel"),
            col("rs_b").alias("resid_std_before"),
            col("rs_a").alias("resid_std_after"),
        ),
        col("t"),
    )
    best_split = (
        split_stats.withColumn("t", t)
        .groupBy("account_id")
        .agg(best.alias("b"), sf.max("t").alias("step_t"))
        .select("account_id", "b.*", "step_t")
    )

    kw_mean = col("kw_mean")
    span = col("last_ts") - col("first_ts")
    out = (
        acc.join(day_stats, "account_id")
        .join(cycle, "account_id")
        .join(week, "account_id")
        .join(best_split, "account_id", "left")
    )
    columns: dict[str, Column] = {
        "account_id": col("account_id"),
        "n_readings": col("n_readings"),
        "interval_min": span / 60e6 / sf.greatest(col("n_readings") - 1, sf.lit(1)),
        "first_ts": sf.timestamp_micros(col("first_ts")),
        "last_ts": sf.timestamp_micros(col("last_ts")),
        "days": span / 86400e6,
        "kw_mean": kw_mean,
        "kw_max": col("kw_max"),
        "load_factor": kw_mean / _nullif0(col("kw_max")),
        "cv_interval": col("kw_std") / _nullif0(kw_mean),
        "cv_hourly": col("hourly_std") / _nullif0(kw_mean),
        "cv_daily": sf.coalesce(col("daily_std"), sf.lit(0.0)) / _nullif0(kw_mean),
        "day_night": col("kw_day") / _nullif0(col("kw_night")),
        "weekday_weekend": col("kw_weekday") / _nullif0(col("kw_weekend")),
        "spectral_24h": col("amp24") / _nullif0(kw_mean),
        "spectral_7d": col("amp7d") / _nullif0(kw_mean),
        "flatness_residual": col("resid_std") / _nullif0(kw_mean),
        "flatness_robust": col("mad") / _nullif0(kw_mean),
        "dip_share": col("dip_share"),
        "peak_share": col("kw_peak") / _nullif0(col("kw_offpeak")),
        "cv_offpeak": col("offpeak_hourly_std") / _nullif0(col("kw_offpeak")),
        "off_share": col("off_share"),
        "off_on_schedule": sf.coalesce(col("off_on_schedule"), sf.lit(0.0)),
        "cv_on": col("cv_on"),
        "power_factor": col("power_factor"),
        "phase_imbalance": col("phase_imbalance"),
        "step_onset": sf.timestamp_micros(
            col("onset_day") * _US_PER_DAY - col("off").cast("bigint") * _US_PER_MIN
        ),
        "step_kw": col("step_kw"),
        "step_mean_kw": col("step_mean_kw"),
        "step_rel": col("step_rel"),
        "step_t": col("step_t"),
        "resid_std_before": col("resid_std_before"),
        "resid_std_after": col("resid_std_after"),
    }
    if tuple(columns) != FEATURE_COLUMNS:  # pragma: no cover - features.py changed
        raise RuntimeError("the Spark port no longer matches minewatch.power.features")
    return out.select(*(c.alias(name) for name, c in columns.items())).orderBy("account_id")


def features_from_arrow(
    table: pa.Table, spark: SparkSession, peaks: Sequence[tuple[int, int]] = PEAK_HOURS
) -> DataFrame:
    """Features (a lazy Spark DataFrame) of an Arrow readings table, computed on ``spark``."""
    return compute_features_spark(readings_to_spark(table, spark), peaks)


def features_to_arrow(features: DataFrame) -> pa.Table:
    """Collect a features DataFrame to Arrow, timestamps as UTC instants (``timestamp[us, UTC]``).

    Spark 4 collects Arrow directly; Spark 3.5 goes through pandas, whose naive timestamps are
    wall-clock times in the session time zone.
    """
    utc = pa.timestamp("us", tz="UTC")
    if _spark_major() >= 4:
        table: pa.Table = features.toArrow()
        for name in _TIMESTAMPS:
            i = table.column_names.index(name)
            table = table.set_column(i, name, table.column(i).cast(utc))
        return table
    frame: Any = features.toPandas()
    zone = features.sparkSession.conf.get("spark.sql.session.timeZone") or "UTC"
    for name in _TIMESTAMPS:
        frame[name] = frame[name].dt.tz_localize(zone).dt.tz_convert("UTC")
    return pa.Table.from_pandas(frame, preserve_index=False)
