/*
 * tests/unit/totals_scan.h — the full scan that table totals replaced, kept
 * here (and only here) to check the table against it. Include after test.h.
 *
 *   scan_entries_each  one row per chunk of counts' runs (its sums and
 *                      entries), computed from counts as readiness and
 *                      /v1/binaries read them before table totals; a
 *                      srv_totals_walk
 *   totals_match_scan  does table totals hold exactly one row per (binary,
 *                      label set, bucket) of counts, with the sums of its
 *                      runs' chunks (and their entries), and do the runs
 *                      merged by store_counts_iter give the same sums?
 *                      Prints the first difference.
 */
#ifndef FDO_TOTALS_SCAN_H
#define FDO_TOTALS_SCAN_H

#include "storage/storage.h"

/* One row per chunk of the binary's runs, with the chunk's sums and
 * entries: an independent computation of what table totals holds. */
static inline int scan_entries_each(store_txn *t, uint32_t binary,
				    store_totals_fn fn, void *arg)
{
	store_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	uint8_t start[4];
	fdo_put_be32(start, binary);
	int rc = store_cursor_open(t, STORE_COUNTS, &c);
	if (rc)
		return rc;
	rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v, &vl);
	for (; rc == FDO_OK; rc = store_cursor_next(c, &k, &kl, &v, &vl)) {
		struct store_run_key rk;
		struct store_totals tv;
		if (store_run_key_decode(k, kl, &rk) || rk.binary != binary)
			break;
		if (store_chunk_sums(v, vl, &tv))
			continue;
		struct store_totals_key tk = {rk.binary, rk.labelset,
					      rk.bucket};
		if ((rc = fn(arg, &tk, &tv)))
			break;
	}
	store_cursor_close(c);
	return rc == FDO_ENOT_FOUND ? FDO_OK : rc;
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
			/* A chunk of a run: its sums, and its entries (a
			 * totals row counts run entries). */
			struct store_run_key ck;
			if (store_run_key_decode(k, kl, &ck) ||
			    store_chunk_sums(v, vl, &tv))
				continue; /* as every reader skips it */
			tk = (struct store_totals_key){ck.binary, ck.labelset,
						       ck.bucket};
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

/* One counts entry written as a run of its own (a merge of one stack),
 * in write transaction t; the caller adds its totals. */
static inline int put_count_entry(store_txn *t,
				  const struct store_counts_key *k,
				  const struct store_weight *w)
{
	uint64_t run;
	store_run_writer *wr;
	int rc = store_run_id_next(t, &run);
	if (rc || (rc = store_run_writer_open(t, &wr)))
		return rc;
	struct store_run_key rk = {k->binary, k->labelset, k->bucket, run, 0};
	struct store_count_entry e = {k->stack, w->weight, w->samples};
	store_run_writer_start(wr, &rk);
	if (!(rc = store_run_writer_add(wr, &e)))
		rc = store_run_writer_finish(wr);
	store_run_writer_close(wr);
	return rc;
}

/* *n: the counts entries the readers see (runs merged). */
static inline int count_entries(store_txn *t, uint64_t *n)
{
	store_counts_iter *it;
	*n = 0;
	int rc = store_counts_iter_open(t, NULL, 0, &it);
	if (rc)
		return rc;
	struct store_counts_key k;
	struct store_weight w;
	while ((rc = store_counts_iter_next(it, &k, &w)) == FDO_OK)
		++*n;
	store_counts_iter_close(it);
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
	static struct scan_rows merged;
	memset(&merged, 0, sizeof merged);
	int ok = walk_table(t, STORE_COUNTS, &want) == FDO_OK &&
		 walk_table(t, STORE_TOTALS, &got) == FDO_OK;
	/* The readers' path: the runs merged by store_counts_iter give the
	 * same sums per row. */
	store_counts_iter *it = NULL;
	if (ok && store_counts_iter_open(t, NULL, 0, &it) == FDO_OK) {
		struct store_counts_key ck;
		struct store_weight w;
		int rc;
		while ((rc = store_counts_iter_next(it, &ck, &w)) == FDO_OK) {
			struct store_totals_key tk = {ck.binary, ck.labelset,
						      ck.bucket};
			struct store_totals tv = {w.weight, w.samples, 1};
			if (scan_row(&merged, &tk, &tv))
				break;
		}
		ok = rc == FDO_ENOT_FOUND;
		store_counts_iter_close(it);
	} else {
		ok = 0;
	}
	store_txn_abort(t);
	if (ok && merged.n != want.n) {
		fprintf(stderr,
			"  the merged runs give %zu rows, the chunks "
			"%zu\n",
			merged.n, want.n);
		return 0;
	}
	for (size_t i = 0; ok && i < want.n; i++)
		if (memcmp(&want.k[i], &merged.k[i], sizeof want.k[i]) ||
		    want.v[i].weight != merged.v[i].weight ||
		    want.v[i].samples != merged.v[i].samples) {
			fprintf(stderr,
				"  row %zu: the merged runs' sums differ "
				"from the chunks'\n",
				i);
			return 0;
		}
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
