/*
 * aggregator/ingest_int.h — what the ingest files share: the prepared
 * (validated, normalized, hashed) form of a batch, its write-ahead-log
 * record codec, and the merge of prepared batches into the store.
 * Private to aggregator/.
 */
#ifndef FDO_AGGREGATOR_INGEST_INT_H
#define FDO_AGGREGATOR_INGEST_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aggregator/aggregator.h"
#include "common/buf.h"
#include "storage/storage.h"

struct prep_map {
	uint8_t build_id[FDO_BUILD_ID_MAX];
	uint8_t build_id_len;
	uint8_t main;  /* the mapped file's name is the binary's name */
	uint64_t hash; /* store_buildid_hash */
	uint32_t id;   /* interned; set by the merge */
};

struct prep_frame {
	uint32_t map; /* index into maps */
	uint64_t offset;
};

struct prep_stack {
	uint64_t id;	   /* store_stack_id */
	uint64_t samples;  /* raw count; weight = samples x period x wq */
	uint32_t first, n; /* frames[first .. first+n); n = 0 after a replay
			      when an earlier record carried the frames */
};

struct prep_branch {
	uint32_t map;
	uint64_t from, to, samples;
};

/* A batch ready to be logged and merged. Owned by one thread at a time:
 * its submitter until the WAL writer takes it, then the merger. */
struct prep {
	char *agent, *binary, *host, *labels;
	uint64_t seq;
	uint32_t bucket;
	uint64_t time_end;
	uint64_t period, wq; /* wq = round(weight x WIRE_WEIGHT_SCALE) */
	uint64_t digest;     /* prep_digest, set by prep_build/prep_decode */
	struct prep_map *maps;
	size_t nmaps;
	struct prep_frame *frames;
	size_t nframes;
	struct prep_stack *stacks;
	size_t nstacks;
	struct prep_branch *branches;
	size_t nbranches;

	struct store_wal_pos wal_end; /* position after its WAL record */
	uint64_t logno;		      /* order of logging, from 1 */
	struct agg_result *res;	      /* the submitter's, until done */
	int done;		      /* guarded by the ingest lock */
	struct prep *next;
};

/* prep.c */
int prep_build(const Fdod__SampleBatch *b, const struct wire_limits *limits,
	       uint32_t bucket_seconds, struct prep **out,
	       struct agg_result *res);
void prep_free(struct prep *p);
/*
 * prep_compact drops the frames of every stack for which keep(arg, id)
 * says no (an earlier WAL record or the store has them): such a stack gets
 * n = 0, and the frame array shrinks to what is left.
 */
int prep_compact(struct prep *p, int (*keep)(void *arg, uint64_t id),
		 void *arg);
/* Serialize p as a WAL record (frames of stacks with n > 0 only). */
int prep_encode(const struct prep *p, struct fdo_buf *out);
/* Rebuild a prep from a WAL record (bounds-checked). */
int prep_decode(const uint8_t *rec, size_t len, struct prep **out);

/* merge.c: the merger's state, owned by the merger thread. */
struct merge;
int merge_create(struct merge **out);
void merge_destroy(struct merge *m);
/*
 * merge_apply writes preps[0..n) into the store in one transaction,
 * with the WAL position after the last one, via store_write (so it may be
 * retried from scratch after map growth). On success the build-ids that
 * got new pending addresses are in *pending (count in *npending; valid until
 * the next call).
 */
int merge_apply(struct merge *m, store *st, struct prep **preps, size_t n,
		uint64_t now, const uint32_t **pending, size_t *npending);
/*
 * merge_expire deletes up to a slice of counts and branches entries of
 * buckets starting before cutoff; *deleted says how many (call again while
 * it is not 0), *oldest the oldest bucket left (UINT32_MAX: none).
 */
int merge_expire(store *st, uint32_t cutoff, size_t *deleted, uint32_t *oldest);
/*
 * What the last successful merge_apply added, for the growth limits
 * (aggregator/ingest.c): per binary (prep_name_hash of its name) the
 * stacks stored for the first time, per build-id (interned id) the
 * addresses that became pending. Valid until the next merge_apply.
 */
struct merge_growth {
	const uint64_t *bin_hash, *bin_new;
	size_t nbin;
	const uint32_t *pending;
	const uint64_t *pending_added;
	size_t npending;
	uint64_t dropped; /* addresses not made pending: build-id over the
			     pending limit (merge_pending_full) */
};
void merge_growth(const struct merge *m, struct merge_growth *g);
/*
 * merge_pending_full marks build-id id (interned) as over the pending
 * limit (full = 1: later merges do not make its new addresses pending)
 * or not any more (0). FDO_OK or FDO_ENOMEM. Merger thread only.
 */
int merge_pending_full(struct merge *m, uint32_t id, int full);

/* merge_sweep deletes batch records older than cutoff (unix seconds). */
int merge_sweep(store *st, uint64_t cutoff, size_t *deleted);

/*
 * prep_digest: a 64-bit digest of what a batch stores (binary, host,
 * labels, time_end, period, weight, every stack id and count, every branch
 * record), independent of the order of stacks and branches; never 0. A
 * resent (agent, seq) with another digest is a different batch (CONFLICT),
 * not a retry. The same on a prep from prep_build and from its WAL record.
 */
uint64_t prep_digest(const struct prep *p);

/* The key of a binary (or agent) name in the in-memory tables of ingest:
 * rate limits, growth limits. */
static inline uint64_t prep_name_hash(const char *name)
{
	return store_buildid_hash((const uint8_t *)name, strlen(name));
}

#endif
