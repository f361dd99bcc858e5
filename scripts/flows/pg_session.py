#!/usr/bin/env python3
"""A PostgreSQL client session over TLS: small queries every few seconds on one connection.

Why: application servers, job queues and monitoring agents hold database connections open for
hours and run short queries on a timer; with ``sslmode=require`` that is a long-lived TLS flow
with small requests and small-to-medium answers. Real ``psycopg`` 3 against a real PostgreSQL 15.

Usage::

    python3 pg_session.py --host 127.0.24.1 --port 35432 --period 4 --seconds 400
"""

from __future__ import annotations

import argparse
import sys

import psycopg
from rhythm import Pacer

__all__ = ["main"]

QUERIES = [
    "SELECT now()",
    "SELECT count(*) FROM jobs WHERE state = 'queued'",
    "SELECT id, payload FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 5",
    "UPDATE jobs SET state = 'done' WHERE id = (SELECT min(id) FROM jobs WHERE state = 'queued')",
    "INSERT INTO jobs (state, payload) VALUES ('queued', md5(random()::text))",
    "SELECT state, count(*) FROM jobs GROUP BY state",
    "SELECT pg_database_size(current_database())",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--dbname", default="postgres")
    parser.add_argument("--period", type=float, default=4.0)
    parser.add_argument("--jitter", type=float, default=0.3)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", default="pg")
    args = parser.parse_args(argv)
    pacer = Pacer(args.period, args.jitter, args.seconds, args.seed)
    with psycopg.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        dbname=args.dbname,
        sslmode="require",
        application_name="jobrunner",
        autocommit=True,
    ) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id serial PRIMARY KEY, state text, payload text)"
        )
        conn.execute(
            "INSERT INTO jobs (state, payload) "
            "SELECT 'queued', md5(g::text) FROM generate_series(1, 50) g"
        )
        while True:
            with conn.cursor() as cur:
                cur.execute(pacer.choice(QUERIES).encode())
                if cur.description:
                    cur.fetchall()
            if not pacer.wait():
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
