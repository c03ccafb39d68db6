/*
 * aggregator/ingest_int.h — what the ingest files share: the prepared
 * (validated, normalized, hashed) form of a batch around its
 * write-ahead-log record (prep.c; the record's codec is
 * storage/walrec.c), the merge of prepared batches into the store
 * (merge.c), expiry (retention.c), the pipeline's state (ingest.c) and
 * the parts of it kept in files of their own: the exactly-once set
 * (dedup.c), the rate limiter (ratelimit.c), the growth limits
 * (growth.c).
 * Private to aggregator/.
 */
#ifndef FDO_AGGREGATOR_INGEST_INT_H
#define FDO_AGGREGATOR_INGEST_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "aggregator/aggregator.h"
#include "aggregator/idset.h"
#include "common/buf.h"
#include "common/map.h"
#include "storage/storage.h"

/* A batch ready to be logged and merged. Owned by one thread at a time:
 * its submitter until the WAL writer takes it, then the merger. */
struct prep {
	struct store_walbatch b; /* what its WAL record holds */
	uint64_t digest; /* prep_digest, set by prep_build/prep_decode */

	struct store_wal_pos wal_end; /* position after its WAL record */
	uint64_t logno;		      /* order of logging, from 1 */
	struct agg_result *res;	      /* the submitter's, until done */
	size_t mem; /* bytes taken from FDO_MEM_INGEST for it (ingest.c) */
	int done;   /* guarded by the ingest lock */
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
/* Rebuild a prep from its WAL record (store_walbatch_decode) and digest.
 * The record is written with store_walbatch_encode(&p->b, ...). */
int prep_decode(const uint8_t *rec, size_t len, struct prep **out);

/* merge.c: the merger's state, owned by the merger thread. known: slots
 * of its set of stacks known to be stored (a power of two, 8 bytes each;
 * 0: 2^23); its set of addresses known to be pending or symbolized has
 * half as many. After each merge_apply the memory part
 * FDO_MEM_MERGE (common/mem.h) is what its buffers and sets hold. */
struct merge;
int merge_create(size_t known, struct merge **out);
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
 * merge_fill_step: one bounded step of the fill of table aggs, for the
 * merger's time between merges: finds a run (binary, label set, bucket)
 * whose bucket (width seconds) ended a minute before now (unix seconds)
 * or earlier and that has
 * no rows there (or rows of another totals row), sums its stacks a step
 * at a time (aggregator/reduce.c: red_fill_*), each step in a read
 * transaction of its own and ending once deadline (fdo_now_ns) passes,
 * and writes its rows (store_write_derived) once all are read. A run
 * whose counts change meanwhile is dropped; a pull never waits for it
 * (it computes what is missing itself). Its memory is charged to
 * FDO_MEM_BUILDS: it begins a run only while that part holds nothing
 * (pulls first), and gives up a run that would take it past its cap (a
 * pull is refused while it is full), or fails, until the run's totals
 * row changes. Returns
 * nonzero while there is more to do (call again soon), 0 when every run
 * over has its rows (the next scan is a minute later). Merger thread.
 */
struct merge_fill_stats {
	uint64_t runs;	  /* computed and stored */
	uint64_t stale;	  /* dropped: the counts changed meanwhile */
	uint64_t skipped; /* given up: past FDO_MEM_BUILDS's cap */
	uint64_t failed;  /* given up: an error */
};
int merge_fill_step(struct merge *m, store *st, uint32_t width, uint64_t now,
		    uint64_t deadline);
void merge_fill_stats(const struct merge *m, struct merge_fill_stats *s);

/*
 * merge_pending_full marks build-id id (interned) as over the pending
 * limit (full = 1: later merges do not make its new addresses pending)
 * or not any more (0). FDO_OK or FDO_ENOMEM. Merger thread only.
 */
int merge_pending_full(struct merge *m, uint32_t id, int full);

/*
 * What one merge or one retention slice changes in table totals: per
 * (binary, label set, bucket), in key order (counts are written and
 * deleted in key order, so one prefix is one run), the sums of the
 * entries' weight and samples and the entries added or deleted. Applied
 * once the counts are written, in the same transaction.
 */
struct totals_delta {
	struct store_totals_key k;
	struct store_totals d;
};

struct deltas {
	struct totals_delta *v;
	size_t n, cap; /* cap is kept from call to call */
};

/* deltas_note adds an entry's weight and samples (and entries, 1 for an
 * entry added or deleted, else 0) to the last delta of ds when it has the
 * same (binary, label set, bucket), else to a new one. FDO_OK, FDO_ENOMEM
 * or FDO_ELIMIT (weight overflow). */
int deltas_note(struct deltas *ds, uint32_t binary, uint32_t labelset,
		uint32_t bucket, wire_weight_t weight, uint64_t samples,
		uint64_t entries);
/* Add (sub 0) or take away (sub 1) every delta of ds. */
int deltas_apply(store_txn *t, const struct deltas *ds, int sub);

/* retention.c: expiry in the store, one write transaction a call. */
/* retention_sweep deletes batch records older than cutoff (unix seconds). */
int retention_sweep(store *st, uint64_t cutoff, size_t *deleted);
/*
 * retention_expire deletes up to a slice of counts and branches entries of
 * buckets starting before cutoff; *deleted says how many (call again while
 * it is not 0), *oldest the oldest bucket left (UINT32_MAX: none).
 */
int retention_expire(store *st, uint32_t cutoff, size_t *deleted,
		     uint32_t *oldest);

/*
 * prep_digest: a 64-bit digest of what a batch stores (binary, host,
 * labels, time_end, period, weight, every stack id and count, every branch
 * record), independent of the order of stacks and branches; never 0. A
 * resent (agent, seq) with another digest is a different batch (CONFLICT),
 * not a retry. The same on a prep from prep_build and from its WAL record.
 */
uint64_t prep_digest(const struct prep *p);

/* The key of a binary (or agent) name in the in-memory tables of ingest:
 * the dedup set, rate limits, growth limits. */
static inline uint64_t prep_name_hash(const char *name)
{
	return store_buildid_hash((const uint8_t *)name, strlen(name));
}

/* ------------------------------------------------- the ingest pipeline -- */

/* dedup.c: (agent, seq) of batches logged but not merged yet, with their
 * content digest (prep_digest). Guarded by the ingest lock (mu). */
struct dnode;
struct dedup {
	struct dnode *e; /* [n] of cap */
	size_t n, cap;
	struct fdo_map128 ix; /* (agent hash, seq) -> index in e */
};
/* Room for nb batches at first (it grows). FDO_OK or FDO_ENOMEM. */
int dedup_init(struct dedup *d, size_t nb);
void dedup_fini(struct dedup *d);
/* The digest of the logged batch (agent hash ah, seq), or 0 when none
 * is. */
uint64_t dedup_find(const struct dedup *d, uint64_t ah, uint64_t seq);
/* Note a logged batch (a digest of 0 is kept as 1). FDO_OK or
 * FDO_ENOMEM. */
int dedup_add(struct dedup *d, uint64_t ah, uint64_t seq, uint64_t digest);
/* Forget (ah, seq), once its merge committed. */
void dedup_del(struct dedup *d, uint64_t ah, uint64_t seq);

/* ratelimit.c: token buckets by key hash. Guarded by the ingest lock. */
struct rate_slot;
struct ratelimit {
	struct rate_slot *slots;
};
/* FDO_OK or FDO_ENOMEM. */
int ratelimit_init(struct ratelimit *r);
void ratelimit_fini(struct ratelimit *r);
/*
 * Take cost tokens from key's bucket (refilled at rate per second, holding
 * at most one second's worth; now in fdo_now_ns). Returns 0, or the
 * milliseconds to wait.
 */
uint32_t ratelimit_take(struct ratelimit *r, uint64_t key, double rate,
			double cost, uint64_t now);

/* growth.c: growth limits (--max-new-stacks, --max-pending). grow (guarded
 * by mu): stacks each binary stored for the first time in the current
 * hour, by name hash (a collision shares a slot: stricter, never looser).
 * pend, npend, cap_pend, pend_index (merger only): each build-id's
 * pending addresses as last counted plus those added since; a build-id at
 * the limit is recounted, at most every PENDING_RECOUNT_S, and is "full"
 * while over it. */
struct growth {
	struct grow_slot *grow;
	struct pend_est *pend;
	size_t npend, cap_pend;
	struct fdo_map64 pend_index; /* id + 1 -> index in pend */
};
/* FDO_OK or FDO_ENOMEM. */
int growth_init(struct growth *g);
void growth_fini(struct growth *g);

/* The pipeline's state (ingest.c; DESIGN there). */
struct agg_ingest {
	store *st;
	struct agg_ingest_opts o;
	const struct wire_limits *limits;
	store_wal *wal;
	pthread_mutex_t wal_mu;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;	  /* writer: queue not empty, or stopping */
	pthread_cond_t space_cv;  /* submitters: queue has room */
	pthread_cond_t done_cv;	  /* submitters: their group was logged */
	pthread_cond_t merge_cv;  /* merger: something was logged */
	pthread_cond_t merged_cv; /* flushers and the writer: a merge ended */
	struct prep *head, *tail; /* submitted, not logged */
	size_t queued;
	struct prep *mhead, *mtail; /* logged, not merged */
	size_t backlog;		    /* stacks in the merge queue */
	uint64_t logged, merged;    /* lognos */
	int merge_error;	    /* last merge failure, 0 after a success */
	int stopping, writer_done;
	unsigned flushers; /* agg_ingest_flush callers waiting */
	struct dedup dedup;
	struct agg_ingest_stats stats;
	pthread_t writer, merger;

	/* Writer only. */
	struct idset logged_stacks; /* stack ids whose frames are durable in
				       the log or the store */
	struct fdo_buf rec;

	/* Merger only. */
	struct merge *merge;
	uint64_t merge_fixed; /* bytes of its known sets (FDO_MEM_MERGE) */
	double drain_bps;     /* bytes of batches merges free per second
				 (smoothed); guarded by mu */
	size_t logged_mem;    /* bytes of logged_stacks (FDO_MEM_INGEST) */
	time_t last_sweep, last_expire;
	/* Compaction of counts' runs (aggregator/compact.c): buckets to look
	 * at, in order, and the job under way. */
	struct store_totals_key *ccands;
	size_t nccands, capccands, ccand_at;
	struct fdo_map64 cqueued; /* hashes of the buckets queued */
	struct store_compact cjob;
	int cjob_active;
	uint64_t compact_steps, compact_bytes;

	struct ratelimit rates; /* guarded by mu */
	struct growth growth;	/* see struct growth */
};

/* compact.c, merger thread: compact_note queues the buckets the last
 * merge wrote (merge_touched); compact_all queues every bucket of the
 * store (at start); compact_run works on them for about budget_ns, in
 * steps of bounded bytes, each its own transaction, within what the
 * budget's merge part has left; 1 when work is left that can go on now,
 * 0 when there is none or the merge part has no room for a step. */
void compact_note(agg_ingest *ing);
void compact_all(agg_ingest *ing);
int compact_run(agg_ingest *ing, uint64_t budget_ns);
void compact_free(agg_ingest *ing);

/* merge.c: the (binary, label set, bucket) the last merge_apply wrote
 * counts for, in key order; valid until the next call. */
void merge_touched(const struct merge *m, const struct store_totals_key **k,
		   size_t *n, size_t *stride);

/* ingest.c: count a refused batch by its status. Call with mu held. */
void ingest_count_refusal(agg_ingest *ing, int status);

/* retention.c, from the merger thread when idle: batch records past
 * --dedup-ttl go (every SWEEP_INTERVAL_S), then counts past --retention
 * and, while the store exceeds --store-budget, the oldest bucket. */
void ingest_sweep(agg_ingest *ing);
void ingest_expire(agg_ingest *ing);

/* growth.c. growth_over, with mu held: has binary p->binary stored
 * --max-new-stacks new stacks this hour? 0, or 1 with the reason in why,
 * *retry_ms set and the refusal counted. */
int growth_over(agg_ingest *ing, const struct prep *p, char *why, size_t whylen,
		uint32_t *retry_ms);
/* After a merge, with mu held: count what it stored for the first
 * time. */
void growth_note(agg_ingest *ing, const struct merge_growth *g);
/* After a merge, merger only, mu not held: the addresses it made pending,
 * per build-id, against --max-pending. */
void growth_pending(agg_ingest *ing, const struct merge_growth *g);
/* Merger only, when idle: recount build-ids over --max-pending. */
void growth_recheck(agg_ingest *ing);

#endif
