/*
 * tests/unit/totals_scan.h — the full scan that table totals replaced, kept
 * here (and only here) to check the table against it. Include after test.h.
 *
 *   scan_entries_each  the readers' old path: one row per counts entry
 *                      (entries = 1), as readiness and /v1/binaries read
 *                      the counts before table totals; a srv_totals_walk
 *   totals_match_scan  does table totals hold exactly one row per (binary,
 *                      label set, bucket) of counts, with the sums of its
 *                      entries? Prints the first difference.
 */
#ifndef FDO_TOTALS_SCAN_H
#define FDO_TOTALS_SCAN_H

#include "storage/storage.h"

struct entry_walk {
	store_totals_fn fn;
	void *arg;
};

static inline int entry_as_row(void *arg, const struct store_counts_key *ck,
			       const struct store_weight *w)
{
	struct entry_walk *ew = arg;
	struct store_totals_key k = {ck->binary, ck->labelset, ck->bucket};
	struct store_totals v = {w->weight, w->samples, 1};
	return ew->fn(ew->arg, &k, &v);
}

static inline int scan_entries_each(store_txn *t, uint32_t binary,
				    store_totals_fn fn, void *arg)
{
	struct entry_walk ew = {fn, arg};
	return store_counts_each(t, binary, entry_as_row, &ew);
}

/* The rows a scan of counts gives, in key order. */
struct scan_rows {
	struct store_totals_key k[256];
	struct store_totals v[256];
	size_t n;
	int overflow;
};

static inline int scan_row(void *arg, const struct store_totals_key *k,
			   const struct store_totals *v)
{
	struct scan_rows *r = arg;
	struct store_totals_key *last = r->n ? &r->k[r->n - 1] : NULL;
	if (!last || last->binary != k->binary ||
	    last->labelset != k->labelset || last->bucket != k->bucket) {
		if (r->n == 256) {
			r->overflow = 1;
			return FDO_ELIMIT;
		}
		r->k[r->n] = *k;
		memset(&r->v[r->n], 0, sizeof r->v[r->n]);
		r->n++;
	}
	r->v[r->n - 1].weight += v->weight;
	r->v[r->n - 1].samples += v->samples;
	r->v[r->n - 1].entries += v->entries;
	return FDO_OK;
}

/* Every row of table (counts: one per entry, summed by scan_row). */
static inline int walk_table(store_txn *t, enum store_table table,
			     struct scan_rows *r)
{
	store_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int rc = store_cursor_open(t, table, &c);
	if (rc)
		return rc;
	rc = store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
	for (; rc == FDO_OK; rc = store_cursor_next(c, &k, &kl, &v, &vl)) {
		struct store_totals_key tk;
		struct store_totals tv;
		if (table == STORE_COUNTS) {
			struct store_counts_key ck;
			struct store_weight w;
			if (store_counts_key_decode(k, kl, &ck) ||
			    store_weight_decode(v, vl, &w))
				continue; /* as every reader skips it */
			tk = (struct store_totals_key){ck.binary, ck.labelset,
						       ck.bucket};
			tv = (struct store_totals){w.weight, w.samples, 1};
		} else if (store_totals_key_decode(k, kl, &tk) ||
			   store_totals_decode(v, vl, &tv)) {
			rc = FDO_ECORRUPT;
			break;
		}
		if ((rc = scan_row(r, &tk, &tv)))
			break;
	}
	store_cursor_close(c);
	return rc == FDO_ENOT_FOUND ? FDO_OK : rc;
}

static inline int totals_match_scan(store *st)
{
	store_txn *t;
	if (store_txn_begin(st, 0, &t))
		return 0;
	static struct scan_rows want, got;
	memset(&want, 0, sizeof want);
	memset(&got, 0, sizeof got);
	int ok = walk_table(t, STORE_COUNTS, &want) == FDO_OK &&
		 walk_table(t, STORE_TOTALS, &got) == FDO_OK;
	store_txn_abort(t);
	if (!ok) {
		fprintf(stderr, "  totals_match_scan: walk failed\n");
		return 0;
	}
	if (want.n != got.n) {
		fprintf(stderr,
			"  totals: %zu rows; the scan of counts gives %zu\n",
			got.n, want.n);
		return 0;
	}
	for (size_t i = 0; i < want.n; i++)
		if (memcmp(&want.k[i], &got.k[i], sizeof want.k[i]) ||
		    want.v[i].weight != got.v[i].weight ||
		    want.v[i].samples != got.v[i].samples ||
		    want.v[i].entries != got.v[i].entries) {
			fprintf(stderr,
				"  totals row %zu (binary %u, label set %u, "
				"bucket %u): %llu samples in %llu entries, "
				"the scan gives %llu in %llu\n",
				i, got.k[i].binary, got.k[i].labelset,
				got.k[i].bucket,
				(unsigned long long)got.v[i].samples,
				(unsigned long long)got.v[i].entries,
				(unsigned long long)want.v[i].samples,
				(unsigned long long)want.v[i].entries);
			return 0;
		}
	return 1;
}

#endif
