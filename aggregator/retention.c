/*
 * aggregator/retention.c — what leaves the store, and when: batch records
 * (the exactly-once record of each (agent, seq)) after --dedup-ttl, and
 * counts and branches of buckets older than --retention or, while the
 * store's live data exceeds --store-budget, of the oldest bucket.
 *
 * Workload: a store of days of hourly buckets, each of millions of counts
 * entries; expiry runs in the merger's idle time and must cost what it
 * deletes, not the size of the store, and must not hold the write lock
 * long: each call deletes at most a slice in one write transaction (the
 * callers loop), and counts are found by the ranges table totals names.
 *
 * Threads: ingest_sweep and ingest_expire run on the merger thread (no
 * merge is running meanwhile); they take the ingest lock only to update
 * the stats. retention_sweep and retention_expire take the store's write
 * transaction (store_write), so they may run from any thread, one writer
 * at a time.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "common/common.h"

#define SWEEP_INTERVAL_S 60

/* ------------------------------------------------ exactly-once expiry -- */

struct sweep {
	uint64_t cutoff;
	size_t deleted;
};

#define SWEEP_MAX_DELETES 20000

static int sweep_batches(store_txn *t, void *arg)
{
	struct sweep *sw = arg;
	store_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	sw->deleted = 0;
	uint8_t(*victims)[STORE_BATCHES_KEY_SIZE] =
		malloc(SWEEP_MAX_DELETES * sizeof *victims);
	if (!victims)
		return FDO_ENOMEM;
	int rc = store_cursor_open(t, STORE_BATCHES, &c);
	if (rc) {
		free(victims);
		return rc;
	}
	/* Collect first, delete after: no deletes under an open cursor. */
	rc = store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
	while (rc == FDO_OK && sw->deleted < SWEEP_MAX_DELETES) {
		struct store_batch b;
		if (kl == STORE_BATCHES_KEY_SIZE &&
		    !store_batches_decode(v, vl, &b) &&
		    b.committed < sw->cutoff)
			memcpy(victims[sw->deleted++], k, kl);
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	if (rc != FDO_OK && rc != FDO_ENOT_FOUND) {
		free(victims);
		return rc;
	}
	rc = FDO_OK;
	for (size_t i = 0; i < sw->deleted && !rc; i++) {
		rc = store_del(t, STORE_BATCHES, victims[i],
			       STORE_BATCHES_KEY_SIZE);
		if (rc == FDO_ENOT_FOUND)
			rc = FDO_OK;
	}
	free(victims);
	return rc;
}

int retention_sweep(store *st, uint64_t cutoff, size_t *deleted)
{
	struct sweep sw = {.cutoff = cutoff};
	int rc = store_write(st, sweep_batches, &sw);
	*deleted = sw.deleted;
	return rc;
}

/* ------------------------------------------ retention and store budget -- */

/*
 * Delete counts and branches entries whose bucket starts before cutoff, at
 * most EXPIRE_MAX_DELETES per transaction (the caller loops), and report
 * the oldest bucket still stored. Stacks and symbolization results stay:
 * they are shared, immutable and small next to the counts. The deleted
 * counts are taken away from table totals in the same transaction.
 */
#define EXPIRE_MAX_DELETES 50000

struct expire {
	uint32_t cutoff;
	size_t deleted;
	uint32_t oldest;      /* out: oldest bucket left, UINT32_MAX if none */
	struct deltas totals; /* what the deleted counts take away */
};

/*
 * expire_counts: the counts entries of every (binary, label set, bucket)
 * older than the cutoff, found from table totals (one row per prefix, and
 * a prefix is one key range of counts), so only the ranges that go are
 * read, not the whole table: retention and the budget cost what they
 * delete. Notes the oldest bucket left, and what the victims take away
 * from totals.
 */
static int expire_counts(store_txn *t, struct expire *ex,
			 uint8_t (*victims)[32], size_t *nv)
{
	struct store_totals_key *old = NULL;
	size_t nold = 0, cap = 0;
	store_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int rc = store_cursor_open(t, STORE_TOTALS, &c);
	if (rc)
		return rc;
	rc = store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
	for (; rc == FDO_OK; rc = store_cursor_next(c, &k, &kl, &v, &vl)) {
		struct store_totals_key tk;
		if (store_totals_key_decode(k, kl, &tk))
			continue;
		if (tk.bucket >= ex->cutoff) {
			if (tk.bucket < ex->oldest)
				ex->oldest = tk.bucket;
			continue;
		}
		if (fdo_grow(old, cap, nold + 1)) {
			rc = FDO_ENOMEM;
			break;
		}
		old[nold++] = tk;
	}
	store_cursor_close(c);
	c = NULL;
	rc = rc == FDO_ENOT_FOUND ? FDO_OK : rc;
	if (!rc && nold)
		rc = store_cursor_open(t, STORE_COUNTS, &c);
	/* Whole chunks of the buckets' runs (storage/counts.c), each taking
	 * its sums and entries away from the bucket's totals row. */
	for (size_t i = 0; !rc && i < nold && *nv < EXPIRE_MAX_DELETES; i++) {
		uint8_t start[STORE_RUN_KEY_SIZE] = {0};
		store_totals_key_encode(start, &old[i]);
		rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v,
				       &vl);
		for (; rc == FDO_OK && *nv < EXPIRE_MAX_DELETES;
		     rc = store_cursor_next(c, &k, &kl, &v, &vl)) {
			struct store_run_key ck;
			if (store_run_key_decode(k, kl, &ck) ||
			    ck.binary != old[i].binary ||
			    ck.labelset != old[i].labelset ||
			    ck.bucket != old[i].bucket)
				break;
			memcpy(victims[(*nv)++], k, kl);
			/* A chunk that does not decode was never summed
			 * (the merge writes only what it encodes, the
			 * upgrade skips it): nothing to take away. */
			struct store_totals cs;
			if (!store_chunk_sums(v, vl, &cs) &&
			    (rc = deltas_note(&ex->totals, ck.binary,
					      ck.labelset, ck.bucket, cs.weight,
					      cs.samples, cs.entries)))
				break;
		}
		rc = rc == FDO_ENOT_FOUND ? FDO_OK : rc;
	}
	if (c)
		store_cursor_close(c);
	free(old);
	return rc;
}

/* expire_branches: the same for the branches table, by a walk of all of
 * it (branch records have no totals; without LBR the table is empty). */
static int expire_branches(store_txn *t, struct expire *ex,
			   uint8_t (*victims)[32], size_t *nv)
{
	store_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int rc = store_cursor_open(t, STORE_BRANCHES, &c);
	if (rc)
		return rc;
	rc = store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
	for (; rc == FDO_OK; rc = store_cursor_next(c, &k, &kl, &v, &vl)) {
		struct store_branches_key bk;
		if (store_branches_key_decode(k, kl, &bk))
			continue;
		if (bk.bucket < ex->cutoff && *nv < EXPIRE_MAX_DELETES)
			memcpy(victims[(*nv)++], k, kl);
		else if (bk.bucket >= ex->cutoff && bk.bucket < ex->oldest)
			ex->oldest = bk.bucket;
	}
	store_cursor_close(c);
	return rc == FDO_ENOT_FOUND ? FDO_OK : rc;
}

static int expire_txn(store_txn *t, void *arg)
{
	struct expire *ex = arg;
	uint8_t(*victims)[32] = malloc(EXPIRE_MAX_DELETES * sizeof *victims);
	if (!victims)
		return FDO_ENOMEM;
	ex->deleted = 0;
	ex->oldest = UINT32_MAX;
	ex->totals.n = 0;
	static const enum store_table tables[] = {STORE_COUNTS, STORE_BRANCHES};
	static const size_t klen[] = {STORE_RUN_KEY_SIZE,
				      STORE_BRANCHES_KEY_SIZE};
	int rc = FDO_OK;
	for (size_t i = 0; i < 2 && !rc; i++) {
		size_t nv = 0;
		rc = tables[i] == STORE_COUNTS
			     ? expire_counts(t, ex, victims, &nv)
			     : expire_branches(t, ex, victims, &nv);
		for (size_t k = 0; k < nv && !rc; k++) {
			rc = store_del(t, tables[i], victims[k], klen[i]);
			if (rc == FDO_ENOT_FOUND)
				rc = FDO_OK;
		}
		if (!rc && tables[i] == STORE_COUNTS)
			rc = deltas_apply(t, &ex->totals, 1);
		ex->deleted += nv;
	}
	free(victims);
	return rc;
}

int retention_expire(store *st, uint32_t cutoff, size_t *deleted,
		     uint32_t *oldest)
{
	struct expire ex = {.cutoff = cutoff};
	int rc = store_write(st, expire_txn, &ex);
	free(ex.totals.v);
	*deleted = ex.deleted;
	*oldest = ex.oldest;
	return rc;
}

/* -------------------------------------------- when, from the merger -- */

void ingest_sweep(agg_ingest *ing)
{
	time_t now = time(NULL);
	if (now - ing->last_sweep < SWEEP_INTERVAL_S)
		return;
	ing->last_sweep = now;
	uint64_t cutoff = (uint64_t)now > ing->o.dedup_ttl
				  ? (uint64_t)now - ing->o.dedup_ttl
				  : 0;
	size_t deleted = 0;
	int rc = retention_sweep(ing->st, cutoff, &deleted);
	if (rc)
		fdo_warn("ingest: expiring batch records: %s",
			 fdo_strerror(rc));
	else if (deleted)
		fdo_info("ingest: expired %zu batch records", deleted);
}

/*
 * Retention and the store budget, in the merger's idle time: buckets past
 * the retention age go; then, while the live data exceeds the budget, the
 * oldest bucket goes, with a log line.
 */
void ingest_expire(agg_ingest *ing)
{
	time_t now = time(NULL);
	uint64_t every = ing->o.housekeeping ? ing->o.housekeeping : 600;
	if ((!ing->o.retention && !ing->o.store_budget) ||
	    (uint64_t)(now - ing->last_expire) < every)
		return;
	ing->last_expire = now;
	size_t deleted, total = 0;
	uint32_t oldest = UINT32_MAX;
	int rc = FDO_OK;
	if (ing->o.retention && (uint64_t)now > ing->o.retention) {
		uint32_t cutoff = (uint32_t)((uint64_t)now - ing->o.retention);
		for (int i = 0; i < 1000; i++) {
			if ((rc = retention_expire(ing->st, cutoff, &deleted,
						   &oldest)) ||
			    !deleted)
				break;
			total += deleted;
		}
		if (total)
			fdo_info(
				"retention: dropped %zu counts older than %llu s",
				total, (unsigned long long)ing->o.retention);
		pthread_mutex_lock(&ing->mu);
		ing->stats.expired += total;
		pthread_mutex_unlock(&ing->mu);
	}
	for (int round = 0; !rc && ing->o.store_budget && round < 1000;
	     round++) {
		store_txn *t;
		uint64_t live = 0;
		if ((rc = store_txn_begin(ing->st, 0, &t)))
			break;
		rc = store_live_bytes(t, &live);
		store_txn_abort(t);
		if (rc || live <= ing->o.store_budget)
			break;
		if ((rc = retention_expire(ing->st, 0, &deleted, &oldest)) ||
		    oldest == UINT32_MAX)
			break;
		uint32_t cutoff = oldest + ing->o.bucket_seconds;
		total = 0;
		do {
			if ((rc = retention_expire(ing->st, cutoff, &deleted,
						   &oldest)))
				break;
			total += deleted;
		} while (deleted);
		fdo_warn("store over its budget (%llu > %llu live bytes): "
			 "dropped the oldest bucket (%u, %zu counts)",
			 (unsigned long long)live,
			 (unsigned long long)ing->o.store_budget,
			 cutoff - ing->o.bucket_seconds, total);
		pthread_mutex_lock(&ing->mu);
		ing->stats.budget_dropped += total;
		pthread_mutex_unlock(&ing->mu);
	}
	if (rc)
		fdo_warn("retention: %s", fdo_strerror(rc));
}
