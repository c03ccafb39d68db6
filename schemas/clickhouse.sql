-- schemas/clickhouse.sql — fdod's tables in ClickHouse (docs/clickhouse.md).
--
-- storage/clickhouse.c compiles this file in and runs its statements, in
-- order, on the server of a --store clickhouse://HOST:PORT/DB[?cluster=C]
-- URL, with ${DB} replaced by DB and ${CLUSTER} by C. The statements that
-- mention ${CLUSTER} (the Distributed tables) run only when a cluster is
-- named. Statements end with a semicolon at the end of a line; lines that
-- start with "--" are comments. Kept to SQL that ClickHouse 18.16
-- (Debian 12) and current releases both accept: new-style MergeTree
-- clauses, no UInt128, no LowCardinality, no JSON types, no query
-- parameters (values are escaped literals or RowBinary).
--
-- Every *_local table is shard-local: a node inserts a block into the
-- local table of the server it talks to (one INSERT = one atomic part);
-- reads go through the Distributed table of the same name without
-- "_local", which asks every shard and merges. Nothing is inserted through
-- a Distributed table (they have no sharding key, so ClickHouse refuses).

CREATE DATABASE IF NOT EXISTS ${DB};

-- counts: the summed deltas of merges, one row per (binary, label set,
-- bucket, stack) and insert; equal keys are summed by merges of parts and
-- by the GROUP BY of every read. weight is fdod's exact unsigned 128-bit
-- weight (schemas/schemas.h wire_weight_t) carried as the 16 bytes of a
-- Decimal(38, 0): sums wrap mod 2^128, so read back as unsigned they are
-- the exact sums LMDB keeps (see docs/clickhouse.md). A partition is a
-- UTC day (days since 1970-01-01, whatever the server's time zone):
-- retention drops whole days (ch_drop_before). fdod --store ends each
-- INSERT with a marker row of its own (binary '', labels 'node=ID', stack
-- the block's sequence number, weight 0, samples 1: docs/clickhouse.md),
-- so a query over every binary must filter binary != ''.
CREATE TABLE IF NOT EXISTS ${DB}.counts_local (
    binary String,
    labels String,
    bucket DateTime,
    stack UInt64,
    weight Decimal(38, 0),
    samples UInt64
) ENGINE = SummingMergeTree()
PARTITION BY intDiv(toUInt32(bucket), 86400)
ORDER BY (binary, labels, bucket, stack);

-- stacks: stack id -> frames (leaf first) as parallel arrays of raw
-- build-ids and file offsets. Immutable per id: duplicates (two nodes, a
-- replay) collapse in part merges; readers take any row of an id.
CREATE TABLE IF NOT EXISTS ${DB}.stacks_local (
    stack UInt64,
    build_ids Array(String),
    offsets Array(UInt64)
) ENGINE = ReplacingMergeTree()
ORDER BY stack;

-- symcache: (raw build-id, file offset) -> inline chain, innermost first,
-- as parallel arrays (empty arrays: the address has no symbol).
CREATE TABLE IF NOT EXISTS ${DB}.symcache_local (
    build_id String,
    offset UInt64,
    functions Array(String),
    files Array(String),
    lines Array(UInt32),
    columns Array(UInt32),
    discriminators Array(UInt32),
    start_lines Array(UInt32)
) ENGINE = ReplacingMergeTree()
ORDER BY (build_id, offset);

-- published: one frozen profile per (binary, version), written once.
CREATE TABLE IF NOT EXISTS ${DB}.published_local (
    binary String,
    version UInt32,
    format UInt8,
    created DateTime,
    sha256 FixedString(32),
    inputs String,
    profile String
) ENGINE = ReplacingMergeTree()
ORDER BY (binary, version);

CREATE TABLE IF NOT EXISTS ${DB}.counts AS ${DB}.counts_local
ENGINE = Distributed(${CLUSTER}, ${DB}, counts_local);

CREATE TABLE IF NOT EXISTS ${DB}.stacks AS ${DB}.stacks_local
ENGINE = Distributed(${CLUSTER}, ${DB}, stacks_local);

CREATE TABLE IF NOT EXISTS ${DB}.symcache AS ${DB}.symcache_local
ENGINE = Distributed(${CLUSTER}, ${DB}, symcache_local);

CREATE TABLE IF NOT EXISTS ${DB}.published AS ${DB}.published_local
ENGINE = Distributed(${CLUSTER}, ${DB}, published_local);
