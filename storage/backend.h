/*
 * storage/backend.h — the storage seam (issue 27, first increment; a
 * proposal: nothing in the aggregator or the server goes through it yet).
 *
 * Two operations every counts backend offers: append a block of a merge's
 * summed deltas, and read the per-bucket sums of a binary's label sets
 * over a window (what a profile is built from; decay stays in C). Two
 * implementations: LMDB (storage/backend.c, on the run writer and
 * store_counts_iter of storage/counts.c) and ClickHouse
 * (storage/clickhouse.c). Both read back the same sums for the same
 * appended deltas (tests/cluster/test_clickhouse.py). docs/clickhouse.md
 * says what the seam still lacks (intern, stacks, symcache, published).
 *
 * Keys are names, not the ids one LMDB store interns: ClickHouse is shared
 * by nodes whose ids differ. Stack ids are store_stack_id, a hash of raw
 * build-ids and offsets, so every node computes the same id.
 */
#ifndef FDO_STORAGE_BACKEND_H
#define FDO_STORAGE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

/* One (binary, label set, bucket) of a block. labels is a canonical label
 * set text (store_labelset_canon), "" for none; bucket is its start, unix
 * seconds. */
struct backend_group {
	const char *binary;
	const char *labels;
	uint32_t bucket;
};

/* A delta: what one stack of group gained. */
struct backend_delta {
	uint32_t group; /* index into the block's groups */
	uint64_t stack; /* store_stack_id */
	wire_weight_t weight;
	uint64_t samples;
};

/* A block: what one merge appends, in one atomic write. Deltas in any
 * order; equal (group, stack) are summed. */
struct backend_block {
	const struct backend_group *groups;
	size_t ngroups;
	const struct backend_delta *deltas;
	size_t ndeltas;
};

/* A read: binary's label sets labels[0..nlabels), buckets in [from, to). */
struct backend_read {
	const char *binary;
	const char *const *labels;
	size_t nlabels;
	uint32_t from, to;
};

/* One row of a read: the sum of everything appended for (labels[label],
 * bucket, stack). Rows come in (label, bucket, stack) order, each key
 * once. */
struct backend_sum {
	uint32_t label; /* index into the read's labels */
	uint32_t bucket;
	uint64_t stack;
	wire_weight_t weight;
	uint64_t samples;
};
/* A nonzero return ends the read and is returned. */
typedef int (*backend_sum_fn)(void *arg, const struct backend_sum *s);

/*
 * Every operation returns FDO_OK or an FDO_E* code with a message in err
 * (errlen bytes, NUL-terminated): FDO_EINVAL (a group index out of range,
 * a name with a NUL...), FDO_ELIMIT, FDO_ENOMEM, FDO_ETRANSPORT (the
 * backend cannot be reached or timed out), FDO_ESTORE (it refused),
 * FDO_ECORRUPT (its answer does not decode), or the store's codes. A
 * failed append leaves nothing of its block stored (one transaction; one
 * INSERT, one part).
 */
struct backend_ops {
	const char *name;
	int (*append)(void *self, const struct backend_block *b, char *err,
		      size_t errlen);
	int (*read_sums)(void *self, const struct backend_read *r,
			 backend_sum_fn fn, void *arg, char *err,
			 size_t errlen);
	void (*close)(void *self);
};

struct backend {
	const struct backend_ops *ops;
	void *self;
};

/* backend_lmdb wraps an open store (not owned: close leaves it open). */
int backend_lmdb(store *st, struct backend *out);

/* backend_open: spec "clickhouse://..." (storage/clickhouse.h) opens a
 * ClickHouse client and creates the schema on its server; FDO_EINVAL with
 * a message for any other spec. */
int backend_open(const char *spec, struct backend *out, char *err,
		 size_t errlen);

void backend_close(struct backend *b);

/* backend_read_check: what both backends ask of a read: a binary, 1 to
 * BACKEND_READ_LABELS_MAX label sets, none twice. FDO_EINVAL, err set. */
#define BACKEND_READ_LABELS_MAX 4096
int backend_read_check(const struct backend_read *r, char *err, size_t errlen);

/* backend_block_sum checks b (group indexes, names, no delta of zero weight and
 * samples) and hands back its
 * deltas sorted by (group, stack) with equal keys summed, in a malloc'd
 * array (*out, *n; free it): what both backends write. FDO_OK, FDO_EINVAL,
 * FDO_ELIMIT (a weight passes 2^128 or samples 2^64), FDO_ENOMEM; err set. */
int backend_block_sum(const struct backend_block *b, struct backend_delta **out,
		      size_t *n, char *err, size_t errlen);

/* backend_fail writes the message into err (when errlen > 0) and returns
 * rc: how both backends report. */
int backend_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * The LMDB store's bookkeeping of fdod --store clickhouse:// (meta keys,
 * coded in storage/backend.c; aggregator/chsink.c). backend_meta_node:
 * the store's node id, created (random) on first use in write
 * transaction t. backend_meta_staged_get/put: the sequence number of the
 * last outbox file a committed merge wrote (0 when none). FDO_OK,
 * FDO_ECORRUPT, FDO_EIO (no randomness) or the store's codes.
 */
#define BACKEND_NODE_ID_SIZE 16
int backend_meta_node(store_txn *t, uint8_t id[BACKEND_NODE_ID_SIZE]);
int backend_meta_staged_get(store_txn *t, uint64_t *seq);
int backend_meta_staged_put(store_txn *t, uint64_t seq);

#endif
