/*
 * storage/totals.c — table totals: per (binary, label set, bucket), the
 * sums of the counts entries with that prefix (weight, samples, how many
 * entries). Layout in storage/codec.c.
 *
 * Workload: the merge changes one row per (binary, label set, bucket) it
 * wrote counts for (a handful per merge, against up to a million counts
 * entries); retention takes away what it deletes. Readers (readiness,
 * /v1/binaries, the web page) read a binary's rows: buckets x label sets,
 * thousands, where the counts of the same binary are millions. The whole
 * table is computed from counts once, when a store of an older layout is
 * opened (store_totals_build). Any change to a row drops the run's leaf
 * and pair sums of table aggs (storage/aggs.c) in the same transaction:
 * they described the counts before it.
 */
#include <string.h>
#include <time.h>

#include "storage/storage_int.h"

struct totals_walk {
	store_totals_fn fn;
	void *arg;
};

static int totals_row(void *arg, const void *k, size_t kl, const void *v,
		      size_t vl)
{
	struct totals_walk *w = arg;
	struct store_totals_key tk;
	struct store_totals tv;
	if (store_totals_key_decode(k, kl, &tk) ||
	    store_totals_decode(v, vl, &tv)) {
		fdo_error("store: a totals row of binary %u does not decode",
			  fdo_get_be32(k));
		return FDO_ECORRUPT;
	}
	return w->fn(w->arg, &tk, &tv);
}

int store_totals_each(store_txn *t, uint32_t binary, store_totals_fn fn,
		      void *arg)
{
	struct totals_walk w = {fn, arg};
	return store_walk_binary(t, STORE_TOTALS, binary, totals_row, &w);
}

int store_totals_add(store_txn *t, const struct store_totals_key *k,
		     const struct store_totals *d, int sub)
{
	uint8_t key[STORE_TOTALS_KEY_SIZE], val[STORE_TOTALS_VAL_SIZE];
	store_totals_key_encode(key, k);
	struct store_totals cur = {0};
	const void *v;
	size_t vl;
	const char *why = NULL;
	int rc = store_get(t, STORE_TOTALS, key, sizeof key, &v, &vl);
	if (rc == FDO_OK) {
		if (store_totals_decode(v, vl, &cur))
			why = "does not decode";
		else if (sub &&
			 (cur.entries < d->entries || cur.weight < d->weight ||
			  cur.samples < d->samples))
			why = "holds less than the deleted entries";
	} else if (rc == FDO_ENOT_FOUND) {
		if (sub)
			why = "is missing";
	} else {
		return rc;
	}
	if (why) {
		fdo_error("store: %s: totals row (binary %u, label set %u, "
			  "bucket %u) %s: the table no longer matches counts",
			  t->s->dir, k->binary, k->labelset, k->bucket, why);
		return FDO_ECORRUPT;
	}
	/* The run's leaf and pair sums described the counts before this
	 * change (a late batch, retention): they go with it. */
	if ((rc = store_aggs_drop(t, k)))
		return rc;
	if (sub) {
		cur.weight -= d->weight;
		cur.samples -= d->samples;
		cur.entries -= d->entries;
		if (!cur.entries)
			return store_del(t, STORE_TOTALS, key, sizeof key);
	} else {
		if (wire_weight_add(&cur.weight, d->weight))
			return FDO_ELIMIT;
		cur.samples += d->samples;
		cur.entries += d->entries;
	}
	store_totals_encode(val, &cur);
	return store_put(t, STORE_TOTALS, key, sizeof key, val, sizeof val, 0);
}

int store_totals_compacted(store_txn *t, const struct store_totals_key *k,
			   uint64_t fewer)
{
	uint8_t key[STORE_TOTALS_KEY_SIZE], val[STORE_TOTALS_VAL_SIZE];
	store_totals_key_encode(key, k);
	struct store_totals cur;
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_TOTALS, key, sizeof key, &v, &vl);
	if (rc && rc != FDO_ENOT_FOUND)
		return rc;
	if (rc || store_totals_decode(v, vl, &cur) || cur.entries <= fewer) {
		fdo_error("store: %s: totals row (binary %u, label set %u, "
			  "bucket %u) %s: the table no longer matches counts",
			  t->s->dir, k->binary, k->labelset, k->bucket,
			  rc ? "is missing"
			     : "holds fewer entries than "
			       "compaction merged");
		return FDO_ECORRUPT;
	}
	/* Compaction changes no sum: the run's aggs rows still describe
	 * it, and only their copy of the entries count follows. */
	if ((rc = store_aggs_reseen(t, k, cur.entries, cur.entries - fewer)))
		return rc;
	cur.entries -= fewer;
	store_totals_encode(val, &cur);
	return store_put(t, STORE_TOTALS, key, sizeof key, val, sizeof val, 0);
}

/* Write one row built by store_totals_build (keys come in order). */
static int put_row(store_cursor *c, const struct store_totals_key *k,
		   const struct store_totals *v)
{
	uint8_t key[STORE_TOTALS_KEY_SIZE], val[STORE_TOTALS_VAL_SIZE];
	store_totals_key_encode(key, k);
	store_totals_encode(val, v);
	return store_cursor_put(c, key, sizeof key, val, sizeof val, 0);
}

/*
 * One pass over every counts chunk, in key order, so each (binary, label
 * set, bucket) is one range of runs and becomes one row, written in key
 * order; its entries are the entries of its runs (distinct stacks once
 * the bucket is one run, as an upgraded one is). What is read is the whole counts table; what is written is only
 * the rows (about 50 bytes each), so even a store of a year of hourly
 * buckets of many binaries writes a few hundred MiB at most, which LMDB
 * spills to disk as the transaction grows. Entries whose key or value does
 * not decode are left out, as every reader of counts skips them.
 */
int store_totals_build(store_txn *t, uint64_t *rows, uint64_t *entries)
{
	*rows = *entries = 0;
	/* An earlier attempt cannot have left rows (it would have committed
	 * the version too), but start from nothing all the same. */
	int mrc = mdb_drop(t->txn, t->s->dbi[STORE_TOTALS], 0);
	if (mrc)
		return store_mdb_err(t, mrc, "empty table totals");
	store_cursor *in, *out;
	int rc = store_cursor_open(t, STORE_COUNTS, &in);
	if (rc)
		return rc;
	if ((rc = store_cursor_open(t, STORE_TOTALS, &out))) {
		store_cursor_close(in);
		return rc;
	}
	struct store_totals_key cur = {0};
	struct store_totals sum = {0};
	time_t last_log = time(NULL);
	const void *k, *v;
	size_t kl, vl;
	int crc = store_cursor_seek(in, NULL, 0, &k, &kl, &v, &vl);
	for (; crc == FDO_OK && !rc;
	     crc = store_cursor_next(in, &k, &kl, &v, &vl)) {
		struct store_run_key ck;
		struct store_totals cs;
		if (store_run_key_decode(k, kl, &ck) ||
		    store_chunk_sums(v, vl, &cs))
			continue;
		if (sum.entries &&
		    (ck.binary != cur.binary || ck.labelset != cur.labelset ||
		     ck.bucket != cur.bucket)) {
			if ((rc = put_row(out, &cur, &sum)))
				break;
			++*rows;
			memset(&sum, 0, sizeof sum);
		}
		cur = (struct store_totals_key){ck.binary, ck.labelset,
						ck.bucket};
		if (wire_weight_add(&sum.weight, cs.weight)) {
			rc = FDO_ELIMIT;
			break;
		}
		sum.samples += cs.samples;
		sum.entries += cs.entries;
		*entries += cs.entries;
		if (time(NULL) - last_log >= 10) {
			last_log = time(NULL);
			fdo_info("store: %s: computing totals: %llu counts "
				 "entries read",
				 t->s->dir, (unsigned long long)*entries);
		}
	}
	if (!rc && crc != FDO_OK && crc != FDO_ENOT_FOUND)
		rc = crc;
	if (!rc && sum.entries && !(rc = put_row(out, &cur, &sum)))
		++*rows;
	store_cursor_close(in);
	store_cursor_close(out);
	return rc;
}
