"""Conversation features on Apache Spark: the same query as the embedded engine, at cluster scale.

Why the same text: a regulator's flow archive (months of NetFlow from a province) does not fit
one machine, but its verdicts must match what ``minewatch`` computes on a laptop from the same
records. :func:`conversation_features_spark` therefore runs the very :data:`FEATURE_SQL` that
:func:`~minewatch.net.behaviour.features.conversation_features` runs on DuckDB, read from that
module at call time (never copied), over a Spark DataFrame registered as the temporary view
``flows``. ``tests/net/behaviour/test_spark.py`` holds both engines to the same rows and values.

No dialect shim is applied: the query is written in the subset both engines share, and every
division in it is guarded (Spark 4's ANSI mode raises on division by zero where DuckDB returns
inf/NaN). One difference remains in the *types* of the result, not in the values: DuckDB sums
``BIGINT`` into ``HUGEINT`` (Arrow ``decimal128(38, 0)``), Spark into ``bigint``
(``packets_up``, ``packets_down``, ``bytes_up``, ``bytes_down``).

Records come from an Arrow table (any table :func:`~minewatch.net.flowrec.table.conform`
accepts), from any Spark DataFrame with the flow columns, or from Parquet files written from
flow tables (:func:`read_flow_parquet`, which lets Spark split and prune the files itself).
pyspark is imported inside the functions only: importing this module needs no Spark.

Example::

    >>> spark = spark_session()                                      # doctest: +SKIP
    >>> flows = read_flow_parquet(["/data/flows/2026-03/"], spark)   # doctest: +SKIP
    >>> features = conversation_features_spark(flows, spark)         # doctest: +SKIP
    >>> features.write.parquet("/data/features/2026-03/")            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from minewatch.errors import InputError
from minewatch.net.flowrec.table import FLOW_SCHEMA, conform
from minewatch.power.spark import spark_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = [
    "FLOWS_VIEW",
    "conform_spark",
    "conversation_features_spark",
    "features_to_arrow",
    "flow_spark_schema",
    "flows_to_spark",
    "read_flow_parquet",
    "spark_session",
]

FLOWS_VIEW = "flows"
"""The table name :data:`FEATURE_SQL` reads; registered as a temporary view for each query."""


def _spark_type(arrow_type: pa.DataType) -> DataType:
    """The Spark type that holds ``arrow_type`` without loss (the types FLOW_SCHEMA uses)."""
    from pyspark.sql import types as st

    simple: dict[pa.DataType, DataType] = {
        pa.int8(): st.ByteType(),
        pa.int16(): st.ShortType(),
        pa.int32(): st.IntegerType(),
        pa.int64(): st.LongType(),
        pa.float32(): st.FloatType(),
        pa.float64(): st.DoubleType(),
        pa.bool_(): st.BooleanType(),
        pa.string(): st.StringType(),
        pa.large_string(): st.StringType(),
        pa.binary(): st.BinaryType(),
    }
    if arrow_type in simple:
        return simple[arrow_type]
    from pyspark.sql.pandas.types import from_arrow_type

    converted: DataType = from_arrow_type(arrow_type)
    return converted


def flow_spark_schema() -> StructType:
    """:data:`~minewatch.net.flowrec.table.FLOW_SCHEMA` as a Spark schema (same names, order,
    nullability), built from the current contract each time so new columns carry over."""
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, _spark_type(f.type), f.nullable) for f in FLOW_SCHEMA])


def conform_spark(flows: DataFrame) -> DataFrame:
    """``flows`` with exactly the flow columns, in order and cast to the contract's types.

    Absent optional columns become typed NULL columns (a NetFlow archive has no payload counts
    or TLS names); an absent required column raises :class:`InputError` naming it, here at the
    edge rather than deep inside the query plan. Columns beyond the contract are dropped.
    """
    from pyspark.sql import functions as sf

    present = set(flows.columns)
    missing = [f.name for f in FLOW_SCHEMA if f.name not in present and not f.nullable]
    if missing:
        raise InputError(
            f"flow records lack the columns {', '.join(missing)}; they have "
            f"{', '.join(flows.columns) or 'no columns'}"
        )
    columns = []
    for field in FLOW_SCHEMA:
        spark_type = _spark_type(field.type)
        column = sf.col(field.name) if field.name in present else sf.lit(None)
        columns.append(column.cast(spark_type).alias(field.name))
    return flows.select(*columns)


def flows_to_spark(flows: pa.Table, spark: SparkSession) -> DataFrame:
    """A Spark DataFrame of an Arrow flow table (conformed to FLOW_SCHEMA first)."""
    table = conform(flows)
    schema = flow_spark_schema()
    if _spark_major() >= 4:  # Spark 4 takes Arrow tables as they are
        return spark.createDataFrame(table, schema=schema)
    return spark.createDataFrame(table.to_pandas(), schema=schema)  # pragma: no cover - 3.5


def read_flow_parquet(paths: Iterable[str | Path], spark: SparkSession) -> DataFrame:
    """Flow records from Parquet files or folders of them (e.g. written with
    ``pyarrow.parquet.write_table`` from any flow source), as a lazy, conformed DataFrame.

    Spark lists, splits and reads the files in parallel and reads only the columns the query
    uses. Files may lack optional columns or store narrower/wider integers; a path that does not
    exist or holds no Parquet raises :class:`InputError`.
    """
    from pyspark.errors import AnalysisException

    names = [str(p) for p in paths]
    if not names:
        raise InputError("no Parquet flow files given")
    try:
        frame = spark.read.option("mergeSchema", "true").parquet(*names)
    except AnalysisException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot read Parquet flow records from {', '.join(names)}: {first}"
        ) from exc
    return conform_spark(frame)


def conversation_features_spark(
    flows: DataFrame | pa.Table, spark: SparkSession | None = None
) -> DataFrame:
    """Run :data:`~minewatch.net.behaviour.features.FEATURE_SQL` on Spark over ``flows``.

    ``flows`` is an Arrow flow table or a Spark DataFrame with the flow columns; ``spark``
    defaults to the DataFrame's session, else the active session, else a new local one
    (:func:`spark_session`). Returns a lazy DataFrame with the columns and row order of
    :func:`~minewatch.net.behaviour.features.conversation_features`.

    The records are registered as the temporary view ``flows`` (replacing a view of that name in
    the session) only while Spark analyses the query; the returned plan keeps its own reference,
    so the view is dropped again before returning.
    """
    # read at call time: features.py is the one place the query lives
    from minewatch.net.behaviour.features import FEATURE_SQL

    if isinstance(flows, pa.Table):
        session = spark if spark is not None else _active_or_new_session()
        frame = flows_to_spark(flows, session)
    else:
        session = spark if spark is not None else flows.sparkSession
        frame = conform_spark(flows)
    frame.createOrReplaceTempView(FLOWS_VIEW)
    try:
        return session.sql(FEATURE_SQL)
    finally:
        session.catalog.dropTempView(FLOWS_VIEW)


def features_to_arrow(features: DataFrame) -> pa.Table:
    """Collect a features DataFrame into an Arrow table (through pandas on Spark 3.5)."""
    if _spark_major() >= 4:
        table: pa.Table = features.toArrow()
        return table
    frame: Any = features.toPandas()  # pragma: no cover - Spark 3.5
    return pa.Table.from_pandas(frame, preserve_index=False)  # pragma: no cover


def _active_or_new_session() -> SparkSession:
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    return active if active is not None else spark_session("minewatch-flows")


def _spark_major() -> int:
    import pyspark

    return int(pyspark.__version__.split(".")[0])
