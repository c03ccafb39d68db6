/*
 * storage/clickhouse.h — fdod's client of ClickHouse's HTTP interface
 * (libcurl): the URL of --store clickhouse://..., the schema of
 * schemas/clickhouse.sql, RowBinary inserts of a block of count deltas
 * into the shard-local table, and per-bucket sums read back with GROUP BY
 * through the Distributed table (docs/clickhouse.md).
 *
 * A client is one keep-alive connection: one thread at a time.
 */
#ifndef FDO_STORAGE_CLICKHOUSE_H
#define FDO_STORAGE_CLICKHOUSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "storage/backend.h"

#define CH_HOST_MAX 253
#define CH_NAME_MAX 64

/* clickhouse://HOST:PORT/DB[?cluster=NAME]: HOST a DNS name or IPv4
 * address, or [IPv6]; PORT (HTTP) 1-65535, required; DB and NAME
 * identifiers ([A-Za-z_][A-Za-z0-9_]*, at most CH_NAME_MAX). cluster ""
 * when not given: one server, reads from its local tables. */
struct ch_url {
	char host[CH_HOST_MAX + 3]; /* with the brackets of an IPv6 address */
	unsigned port;
	char db[CH_NAME_MAX + 1];
	char cluster[CH_NAME_MAX + 1];
};
/* FDO_OK, or FDO_EINVAL with what is wrong in err. */
int ch_url_parse(const char *s, struct ch_url *u, char *err, size_t errlen);

struct ch_opts {
	long connect_ms;   /* 0: 2000 */
	long timeout_ms;   /* a whole request; 0: 30000 */
	size_t max_answer; /* bytes of an answer; 0: 256 MiB */
};

typedef struct ch_client ch_client;
/* ch_open parses url and sets up the client (no request yet): FDO_OK,
 * FDO_EINVAL, FDO_ENOMEM. */
int ch_open(const char *url, const struct ch_opts *o, ch_client **out,
	    char *err, size_t errlen);
void ch_close(ch_client *c);
const struct ch_url *ch_client_url(const ch_client *c);

/* ch_set_query_id: the query_id of the client's next requests (NULL or
 * "": none), letters, digits and '-' only, at most CH_QUERY_ID_MAX bytes
 * (FDO_EINVAL otherwise). ClickHouse refuses a query while another of the
 * same id runs (Code 216), so a request given up on (a timeout) cannot
 * race its own retry or a lookup of what it did. */
#define CH_QUERY_ID_MAX 100
int ch_set_query_id(ch_client *c, const char *id);

/*
 * ch_query sends sql (with body after it as the INSERT's data when body is
 * not NULL) and appends the answer to out (may be NULL). FDO_OK;
 * FDO_ETRANSPORT (no connection, timeout: curl's message in err);
 * FDO_ESTORE (ClickHouse answered an error: its first line in err);
 * FDO_ELIMIT (answer larger than max_answer); FDO_ENOMEM.
 */
int ch_query(ch_client *c, const char *sql, const void *body, size_t blen,
	     struct fdo_buf *out, char *err, size_t errlen);

/* ch_create_schema runs schemas/clickhouse.sql on the client's server
 * (idempotent: IF NOT EXISTS); the Distributed tables only with a cluster. */
int ch_create_schema(ch_client *c, char *err, size_t errlen);

/* The two tables fdod inserts into (shard-local). */
enum ch_table { CH_COUNTS, CH_STACKS };

/* ch_count_row appends one RowBinary row of counts_local to body. */
void ch_count_row(struct fdo_buf *body, const char *binary, const char *labels,
		  uint32_t bucket, uint64_t stack, wire_weight_t weight,
		  uint64_t samples);
/* ch_counts_encode appends b's deltas, summed and sorted
 * (backend_block_sum), to body as rows of counts_local: the same deltas
 * always give the same bytes. FDO_OK or as backend_block_sum. */
int ch_counts_encode(const struct backend_block *b, struct fdo_buf *body,
		     char *err, size_t errlen);

/* A frame of stacks_local: a raw build-id (1..64 bytes) and a file offset. */
struct ch_frame {
	const uint8_t *build_id;
	size_t build_id_len;
	uint64_t offset;
};
/* ch_stack_row appends one RowBinary row of stacks_local (frames leaf
 * first) to body. */
void ch_stack_row(struct fdo_buf *body, uint64_t stack,
		  const struct ch_frame *f, size_t n);

/* ch_insert sends body (RowBinary rows of table) as one INSERT into the
 * table's shard-local table: one atomic part per partition it touches.
 * Nothing sent for an empty body. As ch_query. */
int ch_insert(ch_client *c, enum ch_table table, const void *body, size_t len,
	      char *err, size_t errlen);

/* ch_count_rows: how many rows counts_local holds (unmerged parts counted
 * each) with exactly this key, in *n. As ch_query; FDO_ECORRUPT when the
 * answer is not one UInt64. */
int ch_count_rows(ch_client *c, const char *binary, const char *labels,
		  uint32_t bucket, uint64_t stack, uint64_t *n, char *err,
		  size_t errlen);

/* As struct backend_ops (storage/backend.h): one INSERT of the block,
 * summed and sorted, into counts_local; the sums of a read through
 * counts (or counts_local without a cluster). */
int ch_append(ch_client *c, const struct backend_block *b, char *err,
	      size_t errlen);
int ch_read_sums(ch_client *c, const struct backend_read *r, backend_sum_fn fn,
		 void *arg, char *err, size_t errlen);

/* ch_drop_before drops, on the client's server only (partitions are per
 * shard: every shard's node runs it), the partitions of counts_local of
 * the UTC days that end at or before `before` (unix seconds): *dropped
 * gets how many. FDO_OK or as ch_query; FDO_ECORRUPT when the list of
 * partitions does not decode. */
int ch_drop_before(ch_client *c, uint32_t before, uint32_t *dropped, char *err,
		   size_t errlen);

/* ch_days_decode decodes the RowBinary list of partitions ch_drop_before
 * asks for: UInt32 day numbers, strictly increasing, each below `below`,
 * at most cap. FDO_OK with *n set; FDO_ECORRUPT (not whole numbers, out of
 * order, not below `below`); FDO_ELIMIT (more than cap). */
int ch_days_decode(const void *p, size_t len, uint32_t below, uint32_t *days,
		   size_t cap, size_t *n, char *err, size_t errlen);

/* ch_sql_quote appends p[0..len) to b as a ClickHouse string literal
 * (quotes, backslashes and every byte outside printable ASCII escaped). */
void ch_sql_quote(struct fdo_buf *b, const void *p, size_t len);

/*
 * ch_sums_decode decodes a read's RowBinary answer: rows of (UInt32 label,
 * UInt32 bucket, UInt64 stack, Decimal(38,0) weight as 16 bytes read as
 * unsigned, UInt64 samples), CH_SUM_ROW_SIZE bytes each, and calls fn with
 * each. FDO_OK; FDO_ECORRUPT when len is not a whole number of rows, a
 * label is not below nlabels, or rows are not in strictly increasing
 * (label, bucket, stack) order; fn's nonzero return.
 */
#define CH_SUM_ROW_SIZE 40
int ch_sums_decode(const void *p, size_t len, size_t nlabels, backend_sum_fn fn,
		   void *arg, char *err, size_t errlen);

/*
 * Reads of the profile builder (aggregator/profile.c, fdod --store):
 * ch_read_labels: the label sets binary has counts of in buckets [from,
 * to), through counts (or counts_local without a cluster), each once, in
 * byte order: a malloc'd array of malloc'd strings (*labels, *n; free with
 * ch_labels_free). ch_read_stacks: the frames of stacks ids[0..n) (sorted,
 * distinct; at most CH_READ_STACKS_MAX a call) from stacks (any copy of
 * an id: LIMIT 1 BY stack), fn called per stack found, in id order; an id
 * not there is not called. As ch_query; FDO_ECORRUPT when the answer does
 * not decode; fn's nonzero return.
 *
 * ch_labels_decode: RowBinary Strings, strictly increasing, none with a
 * NUL, none longer than CH_LABELS_LEN_MAX, at most BACKEND_READ_LABELS_MAX
 * (FDO_ELIMIT past it). ch_stacks_decode: rows (UInt64 stack,
 * Array(String) raw build-ids, Array(UInt64) offsets), ids strictly
 * increasing, the arrays of one length from 1 to STORE_STACK_MAX_FRAMES,
 * each build-id 1 to FDO_BUILD_ID_MAX bytes. Both FDO_ECORRUPT otherwise.
 */
#define CH_LABELS_LEN_MAX  65536
#define CH_READ_STACKS_MAX 4096
int ch_labels_decode(const void *p, size_t len, char ***labels, size_t *n,
		     char *err, size_t errlen);
void ch_labels_free(char **labels, size_t n);
int ch_read_labels(ch_client *c, const char *binary, uint32_t from, uint32_t to,
		   char ***labels, size_t *n, char *err, size_t errlen);
typedef int (*ch_stack_fn)(void *arg, uint64_t stack, const struct ch_frame *f,
			   size_t n);
int ch_stacks_decode(const void *p, size_t len, ch_stack_fn fn, void *arg,
		     char *err, size_t errlen);
int ch_read_stacks(ch_client *c, const uint64_t *ids, size_t n, ch_stack_fn fn,
		   void *arg, char *err, size_t errlen);

#endif
