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
	uint64_t id;       /* store_stack_id */
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
	struct prep_map *maps;
	size_t nmaps;
	struct prep_frame *frames;
	size_t nframes;
	struct prep_stack *stacks;
	size_t nstacks;
	struct prep_branch *branches;
	size_t nbranches;

	struct store_wal_pos wal_end; /* position after its WAL record */
	uint64_t logno;               /* order of logging, from 1 */
	struct agg_result *res;       /* the submitter's, until done */
	int done;                     /* guarded by the ingest lock */
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
 * got new pending addresses are in *pending (count in *npending; valid until the
 * next call).
 */
int merge_apply(struct merge *m, store *st, struct prep **preps, size_t n,
		uint64_t now, const uint32_t **pending, size_t *npending);
/*
 * merge_expire deletes up to a slice of counts and branches entries of
 * buckets starting before cutoff; *deleted says how many (call again while
 * it is not 0), *oldest the oldest bucket left (UINT32_MAX: none).
 */
int merge_expire(store *st, uint32_t cutoff, size_t *deleted,
		 uint32_t *oldest);
/* merge_sweep deletes batch records older than cutoff (unix seconds). */
int merge_sweep(store *st, uint64_t cutoff, size_t *deleted);

/* Size of a value of table batches; layout in storage/codec.c. */
#define BATCH_VAL_SIZE 24

#endif
