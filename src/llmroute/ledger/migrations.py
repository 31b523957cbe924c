"""The ledger's schema as an ordered list of named migrations, one SQL text per backend.

Each store applies the migrations missing from its `llmroute_migrations` table, in order, under a
lock (SQLite: an immediate transaction; PostgreSQL: an advisory lock), so two processes starting at
once apply each migration exactly once. A migration, once released, is never edited: add a new one.

Money columns are exact: TEXT in SQLite (the Decimal's plain string) and unconstrained NUMERIC in
PostgreSQL (any scale, so a cost like 0.00000001875 is not rounded as NUMERIC(20,10) would round it).
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

MIGRATIONS_TABLE = "llmroute_migrations"
REQUESTS_TABLE = "llmroute_requests"
ALERTS_TABLE = "llmroute_alerts"
#: The migration that creates the rollup tables (the store rolls up existing rows after it).
ROLLUPS_MIGRATION = "0004_rollups"
#: The migrations after which a store rebuilds its rollups from the raw rows (once, after every
#: pending migration has run): 0004 creates them, 0008 and 0009 add columns older rows have
#: numbers for.
REBUILD_AFTER: frozenset[str] = frozenset({ROLLUPS_MIGRATION, "0008_cache", "0009_counts"})


class Migration(NamedTuple):
    """One named schema change, written once for each backend."""

    name: str
    sqlite_sql: str
    postgres_sql: str


_REQUESTS_SQLITE = """
CREATE TABLE llmroute_requests (
    request_id         TEXT PRIMARY KEY,
    ts                 TEXT NOT NULL,
    key_name           TEXT,
    user_name          TEXT,
    session_id         TEXT,
    policy             TEXT,
    router             TEXT,
    tier               TEXT,
    confidence         REAL,
    reason             TEXT,
    experiment_arm     TEXT,
    model              TEXT,
    attempts           TEXT NOT NULL DEFAULT '[]',
    status             TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    http_status        INTEGER NOT NULL,
    error_type         TEXT,
    error_code         TEXT,
    stream             INTEGER NOT NULL DEFAULT 0,
    latency_s          REAL NOT NULL,
    ttft_s             REAL,
    upstream_latency_s REAL,
    input_tokens       INTEGER,
    output_tokens      INTEGER,
    cached_tokens      INTEGER,
    cost_usd           TEXT,
    baseline_cost_usd  TEXT,
    baseline_model     TEXT,
    prompt_text        TEXT,
    response_text      TEXT,
    user_rating        INTEGER CHECK (user_rating BETWEEN 1 AND 5),
    task_success       INTEGER,
    feedback_comment   TEXT,
    feedback_ts        TEXT
);
CREATE INDEX llmroute_requests_ts ON llmroute_requests (ts);
CREATE INDEX llmroute_requests_key_ts ON llmroute_requests (key_name, ts);
CREATE INDEX llmroute_requests_model_ts ON llmroute_requests (model, ts);
"""

_REQUESTS_POSTGRES = """
CREATE TABLE llmroute_requests (
    request_id         TEXT PRIMARY KEY,
    ts                 TIMESTAMPTZ NOT NULL,
    key_name           TEXT,
    user_name          TEXT,
    session_id         TEXT,
    policy             TEXT,
    router             TEXT,
    tier               TEXT,
    confidence         DOUBLE PRECISION,
    reason             TEXT,
    experiment_arm     TEXT,
    model              TEXT,
    attempts           JSONB NOT NULL DEFAULT '[]'::jsonb,
    status             TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    http_status        INTEGER NOT NULL,
    error_type         TEXT,
    error_code         TEXT,
    stream             BOOLEAN NOT NULL DEFAULT FALSE,
    latency_s          DOUBLE PRECISION NOT NULL,
    ttft_s             DOUBLE PRECISION,
    upstream_latency_s DOUBLE PRECISION,
    input_tokens       BIGINT,
    output_tokens      BIGINT,
    cached_tokens      BIGINT,
    cost_usd           NUMERIC,
    baseline_cost_usd  NUMERIC,
    baseline_model     TEXT,
    prompt_text        TEXT,
    response_text      TEXT,
    user_rating        SMALLINT CHECK (user_rating BETWEEN 1 AND 5),
    task_success       BOOLEAN,
    feedback_comment   TEXT,
    feedback_ts        TIMESTAMPTZ
);
CREATE INDEX llmroute_requests_ts ON llmroute_requests (ts);
CREATE INDEX llmroute_requests_key_ts ON llmroute_requests (key_name, ts);
CREATE INDEX llmroute_requests_model_ts ON llmroute_requests (model, ts);
"""

# Alert history (control/alert_store.py): one row per alert raised, delivered or not.
_ALERTS_SQLITE = """
CREATE TABLE llmroute_alerts (
    id         TEXT PRIMARY KEY,
    ts         TEXT NOT NULL,
    rule       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    message    TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    dedup_key  TEXT NOT NULL DEFAULT '',
    delivered  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX llmroute_alerts_ts ON llmroute_alerts (ts);
"""

_ALERTS_POSTGRES = """
CREATE TABLE llmroute_alerts (
    id         TEXT PRIMARY KEY,
    ts         TIMESTAMPTZ NOT NULL,
    rule       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    message    TEXT NOT NULL,
    data       JSONB NOT NULL DEFAULT '{}'::jsonb,
    dedup_key  TEXT NOT NULL DEFAULT '',
    delivered  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX llmroute_alerts_ts ON llmroute_alerts (ts);
"""

#: Rollups (see `rollups`): hour and day aggregates kept as entries and feedback are written. Rows
#: already in the ledger are rolled up by the store right after this migration.
_ROLLUPS_SQLITE = """
CREATE TABLE llmroute_rollups (
    grain TEXT NOT NULL,
    start TEXT NOT NULL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL,
    policy TEXT NOT NULL,
    key_name TEXT NOT NULL,
    experiment_arm TEXT NOT NULL,
    baseline_model TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    judged BIGINT NOT NULL DEFAULT 0,
    successes BIGINT NOT NULL DEFAULT 0,
    priced BIGINT NOT NULL DEFAULT 0,
    compared BIGINT NOT NULL DEFAULT 0,
    rated BIGINT NOT NULL DEFAULT 0,
    rating_points BIGINT NOT NULL DEFAULT 0,
    rated_cost_points BIGINT NOT NULL DEFAULT 0,
    judged_cost_successes BIGINT NOT NULL DEFAULT 0,
    cost_usd TEXT NOT NULL DEFAULT '0',
    compared_cost_usd TEXT NOT NULL DEFAULT '0',
    baseline_cost_usd TEXT NOT NULL DEFAULT '0',
    rated_cost_usd TEXT NOT NULL DEFAULT '0',
    judged_cost_usd TEXT NOT NULL DEFAULT '0',
    cost_sq REAL NOT NULL DEFAULT 0,
    rating_sq BIGINT NOT NULL DEFAULT 0,
    pair_n BIGINT NOT NULL DEFAULT 0,
    pair_cost_sq REAL NOT NULL DEFAULT 0,
    pair_rating_sq BIGINT NOT NULL DEFAULT 0,
    pair_cross REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (grain, start, model, tier, policy, key_name, experiment_arm, baseline_model)
) WITHOUT ROWID;
CREATE TABLE llmroute_rollup_latency (
    dim   TEXT NOT NULL,
    grain TEXT NOT NULL,
    start TEXT NOT NULL,
    value TEXT NOT NULL,
    hist  BLOB NOT NULL,
    PRIMARY KEY (dim, grain, start, value)
);
"""

_ROLLUPS_POSTGRES = """
CREATE TABLE llmroute_rollups (
    grain TEXT NOT NULL,
    start TIMESTAMPTZ NOT NULL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL,
    policy TEXT NOT NULL,
    key_name TEXT NOT NULL,
    experiment_arm TEXT NOT NULL,
    baseline_model TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    judged BIGINT NOT NULL DEFAULT 0,
    successes BIGINT NOT NULL DEFAULT 0,
    priced BIGINT NOT NULL DEFAULT 0,
    compared BIGINT NOT NULL DEFAULT 0,
    rated BIGINT NOT NULL DEFAULT 0,
    rating_points BIGINT NOT NULL DEFAULT 0,
    rated_cost_points BIGINT NOT NULL DEFAULT 0,
    judged_cost_successes BIGINT NOT NULL DEFAULT 0,
    cost_usd NUMERIC NOT NULL DEFAULT 0,
    compared_cost_usd NUMERIC NOT NULL DEFAULT 0,
    baseline_cost_usd NUMERIC NOT NULL DEFAULT 0,
    rated_cost_usd NUMERIC NOT NULL DEFAULT 0,
    judged_cost_usd NUMERIC NOT NULL DEFAULT 0,
    cost_sq DOUBLE PRECISION NOT NULL DEFAULT 0,
    rating_sq BIGINT NOT NULL DEFAULT 0,
    pair_n BIGINT NOT NULL DEFAULT 0,
    pair_cost_sq DOUBLE PRECISION NOT NULL DEFAULT 0,
    pair_rating_sq BIGINT NOT NULL DEFAULT 0,
    pair_cross DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (grain, start, model, tier, policy, key_name, experiment_arm, baseline_model)
);
CREATE TABLE llmroute_rollup_latency (
    dim   TEXT NOT NULL,
    grain TEXT NOT NULL,
    start TIMESTAMPTZ NOT NULL,
    value TEXT NOT NULL,
    hist  BYTEA NOT NULL,
    PRIMARY KEY (dim, grain, start, value)
);
"""

#: PostgreSQL: `llmroute_requests` becomes a table partitioned by month of `ts` (see `partitions`),
#: so pruning drops whole months. The rows move over in the migration's transaction; the primary
#: key becomes (request_id, ts), as a partitioned table's must hold the partition key (a replayed
#: entry has both the same, so it still conflicts); lookups by request_id use its leading column.
#: SQLite keeps its table: it prunes by deleting in chunks.
_PARTITIONS_POSTGRES = """
ALTER TABLE llmroute_requests RENAME TO llmroute_requests_unpartitioned;
ALTER INDEX llmroute_requests_pkey RENAME TO llmroute_requests_unpartitioned_pkey;
CREATE TABLE llmroute_requests
    (LIKE llmroute_requests_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (ts);
CREATE TABLE llmroute_requests_default PARTITION OF llmroute_requests DEFAULT;
DO $$
DECLARE
    month timestamp;
BEGIN
    FOR month IN SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC')
                 FROM llmroute_requests_unpartitioned LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF llmroute_requests FOR VALUES FROM (%L) TO (%L)',
                       'llmroute_requests_' || to_char(month, 'YYYY_MM'),
                       to_char(month, 'YYYY-MM-DD"T"HH24:MI:SS"+00"'),
                       to_char(month + interval '1 month', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'));
    END LOOP;
END
$$;
INSERT INTO llmroute_requests SELECT * FROM llmroute_requests_unpartitioned;
DROP TABLE llmroute_requests_unpartitioned;
ALTER TABLE llmroute_requests ADD CONSTRAINT llmroute_requests_pkey PRIMARY KEY (request_id, ts);
CREATE INDEX llmroute_requests_ts ON llmroute_requests (ts);
CREATE INDEX llmroute_requests_key_ts ON llmroute_requests (key_name, ts);
CREATE INDEX llmroute_requests_model_ts ON llmroute_requests (model, ts);
CREATE INDEX llmroute_requests_arm_ts ON llmroute_requests (experiment_arm, ts);
"""

#: Learning online (issue 13): whether the request explored, the prompt latent feedback updates the
#: router with, and an index for the learner's poll of new feedback on requests that have one.
_ONLINE_SQLITE = """
ALTER TABLE llmroute_requests ADD COLUMN explored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llmroute_requests ADD COLUMN latent TEXT;
CREATE INDEX llmroute_requests_learn ON llmroute_requests (feedback_ts, request_id)
    WHERE latent IS NOT NULL;
"""
_ONLINE_POSTGRES = """
ALTER TABLE llmroute_requests ADD COLUMN explored BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE llmroute_requests ADD COLUMN latent TEXT;
CREATE INDEX llmroute_requests_learn ON llmroute_requests (feedback_ts, request_id)
    WHERE latent IS NOT NULL;
"""
ONLINE_MIGRATION = "0006_online"
#: Issue 14: the LLM router's classification calls' cost, apart (it is also in cost_usd), on
#: each request and summed in the rollups (0 for the rows before it: they made no such call).
ROUTING_COST_MIGRATION = "0007_routing_cost"
#: Issue 15: provider prompt-cache writes and savings, and the response cache's mark on each
#: request (`LedgerEntry.cache*`); in the rollups, the response cache's counts, the prompt
#: cache's tokens (read: `cached_tokens`, an older column; written) and both savings. The store
#: rebuilds the rollups after it (`REBUILD_AFTER`): the rows before it have cached tokens.
CACHE_MIGRATION = "0008_cache"
#: The rollup columns 0008 adds: (name, SQLite type and default, PostgreSQL type and default).
CACHE_ROLLUP_COLUMNS: tuple[tuple[str, str, str], ...] = (
    *((name, "BIGINT NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0")
      for name in ("cache_hits", "cache_semantic_hits", "cache_misses", "cache_bypasses",
                   "cached_tokens", "cache_write_tokens")),
    *((name, "TEXT NOT NULL DEFAULT '0'", "NUMERIC NOT NULL DEFAULT 0")
      for name in ("prompt_cache_saved_usd", "cache_saved_usd")),
)
_CACHE_SQLITE = """
ALTER TABLE llmroute_requests ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE llmroute_requests ADD COLUMN prompt_cache_saved_usd TEXT;
ALTER TABLE llmroute_requests ADD COLUMN cache TEXT;
ALTER TABLE llmroute_requests ADD COLUMN cache_saved_usd TEXT;
ALTER TABLE llmroute_requests ADD COLUMN cached_from TEXT;
ALTER TABLE llmroute_requests ADD COLUMN cache_similarity REAL;
""" + "".join(f"ALTER TABLE llmroute_rollups ADD COLUMN {name} {sql};\n"
              for name, sql, _ in CACHE_ROLLUP_COLUMNS)
_CACHE_POSTGRES = """
ALTER TABLE llmroute_requests ADD COLUMN cache_write_tokens BIGINT;
ALTER TABLE llmroute_requests ADD COLUMN prompt_cache_saved_usd NUMERIC;
ALTER TABLE llmroute_requests ADD COLUMN cache TEXT;
ALTER TABLE llmroute_requests ADD COLUMN cache_saved_usd NUMERIC;
ALTER TABLE llmroute_requests ADD COLUMN cached_from TEXT;
ALTER TABLE llmroute_requests ADD COLUMN cache_similarity DOUBLE PRECISION;
""" + "".join(f"ALTER TABLE llmroute_rollups ADD COLUMN {name} {sql};\n"
              for name, _, sql in CACHE_ROLLUP_COLUMNS)

#: Issue 16: each request's `unpriced` (its cost is unknown although it made a paid call) and
#: `fallback` (answered by a model other than the first one tried) marks, as `LedgerEntry.unpriced`
#: and `.fallback` define them, backfilled here from the stored columns and attempts; their
#: counts in the rollups (rebuilt after it, `REBUILD_AFTER`); and the indexes the request
#: explorer's filters use (`explore`: policy, status and cache with ts; model and key have theirs).
COUNTS_MIGRATION = "0009_counts"
COUNTS_ROLLUP_COLUMNS: tuple[str, ...] = ("unpriced", "fallbacks")
_EXPLORER_INDEXES = """
CREATE INDEX llmroute_requests_policy_ts ON llmroute_requests (policy, ts);
CREATE INDEX llmroute_requests_status_ts ON llmroute_requests (status, ts);
CREATE INDEX llmroute_requests_cache_ts ON llmroute_requests (cache, ts);
"""
_COUNTS_SQLITE = """
ALTER TABLE llmroute_requests ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llmroute_requests ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0;
UPDATE llmroute_requests SET unpriced = 1 WHERE cost_usd IS NULL AND (
    status = 'ok' OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL
    OR EXISTS (SELECT 1 FROM json_each(attempts)
               WHERE json_extract(value, '$.router') = 1
                 AND json_extract(value, '$.error_kind') IS NULL
                 AND json_extract(value, '$.skipped') IS NOT 1));
UPDATE llmroute_requests SET fallback = 1 WHERE model <> '' AND model <> (
    SELECT json_extract(value, '$.model') FROM json_each(attempts)
    WHERE json_extract(value, '$.router') IS NOT 1 AND json_extract(value, '$.skipped') IS NOT 1
    ORDER BY CAST(key AS INTEGER) LIMIT 1);
""" + _EXPLORER_INDEXES + "".join(
    f"ALTER TABLE llmroute_rollups ADD COLUMN {name} BIGINT NOT NULL DEFAULT 0;\n"
    for name in COUNTS_ROLLUP_COLUMNS)
_COUNTS_POSTGRES = """
ALTER TABLE llmroute_requests ADD COLUMN unpriced BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE llmroute_requests ADD COLUMN fallback BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE llmroute_requests SET unpriced = TRUE WHERE cost_usd IS NULL AND (
    status = 'ok' OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL
    OR EXISTS (SELECT 1 FROM jsonb_array_elements(attempts) AS a
               WHERE a->>'router' = 'true' AND a->>'error_kind' IS NULL
                 AND a->>'skipped' IS DISTINCT FROM 'true'));
UPDATE llmroute_requests SET fallback = TRUE WHERE model <> '' AND model <> (
    SELECT a->>'model' FROM jsonb_array_elements(attempts) WITH ORDINALITY AS t(a, i)
    WHERE a->>'router' IS DISTINCT FROM 'true' AND a->>'skipped' IS DISTINCT FROM 'true'
    ORDER BY i LIMIT 1);
""" + _EXPLORER_INDEXES + "".join(
    f"ALTER TABLE llmroute_rollups ADD COLUMN {name} BIGINT NOT NULL DEFAULT 0;\n"
    for name in COUNTS_ROLLUP_COLUMNS)

#: Issue 17: the learner's index (0006) holds only rows with feedback. Its poll (`rated`) reads
#: `latent IS NOT NULL AND feedback_ts IS NOT NULL`, so a row without feedback (nearly every row
#: when it is written) was an index entry no read could use, and one at a random place: NULL
#: feedback times sort by request id, a random key, so each new row dirtied its own leaf page (in
#: SQLite, a page written to the WAL and copied again at the checkpoint). Feedback adds the row.
RATED_INDEX_MIGRATION = "0010_rated_index"
_RATED_INDEX = """
DROP INDEX IF EXISTS llmroute_requests_learn;
CREATE INDEX llmroute_requests_learn ON llmroute_requests (feedback_ts, request_id)
    WHERE latent IS NOT NULL AND feedback_ts IS NOT NULL;
"""

#: Every migration, oldest first. Append only.
MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_create_requests", _REQUESTS_SQLITE, _REQUESTS_POSTGRES),
    Migration("0002_control",
              "ALTER TABLE llmroute_requests ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;\n"
              "ALTER TABLE llmroute_requests ADD COLUMN shadow TEXT;\n"
              "CREATE INDEX llmroute_requests_arm_ts ON llmroute_requests (experiment_arm, ts);",
              "ALTER TABLE llmroute_requests ADD COLUMN usage_estimated BOOLEAN NOT NULL "
              "DEFAULT FALSE;\nALTER TABLE llmroute_requests ADD COLUMN shadow JSONB;\n"
              "CREATE INDEX llmroute_requests_arm_ts ON llmroute_requests (experiment_arm, ts);"),
    Migration("0003_alerts", _ALERTS_SQLITE, _ALERTS_POSTGRES),
    Migration(ROLLUPS_MIGRATION, _ROLLUPS_SQLITE, _ROLLUPS_POSTGRES),
    Migration("0005_partitions", "SELECT 1;", _PARTITIONS_POSTGRES),
    Migration(ONLINE_MIGRATION, _ONLINE_SQLITE, _ONLINE_POSTGRES),
    Migration(ROUTING_COST_MIGRATION,
              "ALTER TABLE llmroute_requests ADD COLUMN routing_cost_usd TEXT;\n"
              "ALTER TABLE llmroute_rollups ADD COLUMN routing_cost_usd TEXT NOT NULL DEFAULT '0';",
              "ALTER TABLE llmroute_requests ADD COLUMN routing_cost_usd NUMERIC;\n"
              "ALTER TABLE llmroute_rollups ADD COLUMN routing_cost_usd NUMERIC NOT NULL "
              "DEFAULT 0;"),
    Migration(CACHE_MIGRATION, _CACHE_SQLITE, _CACHE_POSTGRES),
    Migration(COUNTS_MIGRATION, _COUNTS_SQLITE, _COUNTS_POSTGRES),
    Migration(RATED_INDEX_MIGRATION, _RATED_INDEX, _RATED_INDEX),
)


def sqlite_statements(sql: str) -> list[str]:
    """Split a SQLite script into single statements (sqlite3's `execute` runs one at a time, and
    `executescript` would commit the surrounding transaction)."""
    statements: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n\t;"):
        raise ValueError(f"incomplete SQL statement at the end of the script: {pending.strip()!r}")
    return statements
