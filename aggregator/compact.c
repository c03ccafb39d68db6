/*
 * aggregator/compact.c — compaction of table counts' runs, in the merger
 * thread, between merges (storage/counts.c does the merging of runs).
 *
 * Every merge writes one run per (binary, label set, bucket) it touches;
 * the buckets it wrote are queued here, and so, at start, is every bucket
 * of the store. For each, store_counts_compact_plan decides: a bucket
 * whose hour is over (with a minute of grace for late batches) and that
 * has two runs or more is merged into one; an open one is compacted
 * size-tiered (four runs of a tier, sizes in powers of 4 chunks, become
 * one of the next, so a byte is rewritten about log4(bucket / chunk)
 * times; past 16 runs the smallest are merged down to 8). A job goes in
 * steps of COMPACT_STEP_BYTES of output, each its own write transaction
 * of a few ms, so a merge waits at most one step; compact_run is given
 * the time until the next merge is due, or, when merges run back to
 * back, as long as the last merge took. Acks never wait for it (they wait
 * for the WAL only). Readers see exact sums after every step. A failed
 * step is logged and its job dropped; what was done stays valid.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/mem.h"

#define COMPACT_STEP_BYTES (1u << 20)
#define COMPACT_STEP_MIN   (64u << 10)
#define CLOSED_GRACE_S	   60

/* A queued bucket's key in cqueued (never 0). Two buckets of one hash
 * (2^-64) would leave the second unqueued until a merge writes it again
 * or fdod starts. */
static uint64_t cand_hash(const struct store_totals_key *k)
{
	return fdo_mix64(((uint64_t)k->binary << 32 | k->labelset) ^
			 fdo_mix64(k->bucket)) |
	       1;
}

static void cand_add(agg_ingest *ing, const struct store_totals_key *k)
{
	/* Consecutive merges write the same buckets: a bucket is queued
	 * once (the queue holds at most the store's buckets). */
	uint32_t v;
	int found;
	if (fdo_map64_get(&ing->cqueued, cand_hash(k), &v))
		return;
	if (ing->ccand_at && ing->ccand_at == ing->nccands)
		ing->ccand_at = ing->nccands = 0;
	if (fdo_grow(ing->ccands, ing->capccands, ing->nccands + 1) ||
	    fdo_map64_put(&ing->cqueued, cand_hash(k), 1, &v, &found))
		return; /* looked at when the bucket is next written */
	ing->ccands[ing->nccands++] = *k;
}

void compact_note(agg_ingest *ing)
{
	const struct store_totals_key *k;
	size_t n, stride;
	merge_touched(ing->merge, &k, &n, &stride);
	for (size_t i = 0; i < n; i++)
		cand_add(ing, (const struct store_totals_key
				       *)(const void *)((const char *)k +
							i * stride));
}

static int all_row(void *arg, const void *k, size_t kl, const void *v,
		   size_t vl)
{
	(void)v;
	(void)vl;
	struct store_totals_key tk;
	if (!store_totals_key_decode(k, kl, &tk))
		cand_add(arg, &tk);
	return FDO_OK;
}

void compact_all(agg_ingest *ing)
{
	store_txn *t;
	if (store_txn_begin(ing->st, 0, &t))
		return;
	store_cursor *c;
	if (!store_cursor_open(t, STORE_TOTALS, &c)) {
		const void *k, *v;
		size_t kl, vl;
		int rc = store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
		for (; rc == FDO_OK;
		     rc = store_cursor_next(c, &k, &kl, &v, &vl))
			all_row(ing, k, kl, v, vl);
		store_cursor_close(c);
	}
	store_txn_abort(t);
}

int compact_run(agg_ingest *ing, uint64_t budget_ns)
{
	uint64_t until = fdo_now_ns() + budget_ns;
	uint64_t now_s = (uint64_t)time(NULL);
	do {
		if (!ing->cjob_active) {
			if (ing->ccand_at == ing->nccands) {
				ing->ccand_at = ing->nccands = 0;
				return 0;
			}
			struct store_totals_key k =
				ing->ccands[ing->ccand_at++];
			fdo_map64_del(&ing->cqueued, cand_hash(&k));
			int closed = (uint64_t)k.bucket +
					     ing->o.bucket_seconds +
					     CLOSED_GRACE_S <=
				     now_s;
			int rc = store_counts_compact_plan(ing->st, &k, closed,
							   &ing->cjob);
			if (rc)
				fdo_warn("ingest: planning the compaction of a "
					 "bucket of binary %u failed: %s",
					 k.binary, fdo_strerror(rc));
			ing->cjob_active = !rc && ing->cjob.nin >= 2;
			continue;
		}
		/* The step's output within what the merge part has left (a
		 * step holds twice its output, two chunks more, and a chunk
		 * per input: store_counts_compact_step); with less room than
		 * the smallest step, compaction waits for the merge part. */
		uint64_t step = COMPACT_STEP_BYTES,
			 cap = fdo_mem_cap(FDO_MEM_MERGE);
		if (cap) {
			/* The known sets at their full size (merge_fixed), as
			 * a merge counts them: they grow after the step. */
			uint64_t used = fdo_mem_used(FDO_MEM_MERGE);
			if (used < ing->merge_fixed)
				used = ing->merge_fixed;
			uint64_t fixed = (ing->cjob.nin + 4) *
					 (uint64_t)STORE_RUN_CHUNK_MAX;
			uint64_t room = cap > used + fixed
						? (cap - used - fixed) / 2
						: 0;
			if (room < step)
				step = room;
			if (step < COMPACT_STEP_MIN)
				return 0;
		}
		int done = 0;
		int rc = store_counts_compact_step(ing->st, &ing->cjob,
						   (size_t)step, &done);
		if (rc) {
			/* A full store is the budget's and retention's to
			 * handle (and logged by them): the runs stay. */
			if (rc == FDO_ESTORE_FULL)
				fdo_debug("ingest: compaction waits for room");
			else
				fdo_warn("ingest: compacting counts of binary "
					 "%u (bucket %u) failed: %s; left as "
					 "it is",
					 ing->cjob.g.binary, ing->cjob.g.bucket,
					 fdo_strerror(rc));
			ing->cjob_active = 0;
			return 1;
		}
		ing->compact_steps++;
		if (done) {
			ing->compact_bytes += ing->cjob.bytes;
			fdo_debug("ingest: compacted %zu runs of binary %u "
				  "(bucket %u) into one: %llu bytes, %llu "
				  "entries merged, %llu steps",
				  ing->cjob.nin, ing->cjob.g.binary,
				  ing->cjob.g.bucket,
				  (unsigned long long)ing->cjob.bytes,
				  (unsigned long long)ing->cjob.merged,
				  (unsigned long long)ing->cjob.steps);
			ing->cjob_active = 0;
		}
	} while (fdo_now_ns() < until);
	return 1;
}

void compact_free(agg_ingest *ing)
{
	free(ing->ccands);
	fdo_map64_fini(&ing->cqueued);
	ing->ccands = NULL;
	ing->nccands = ing->capccands = ing->ccand_at = 0;
}
