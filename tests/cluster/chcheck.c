/*
 * tests/cluster/chcheck.c — the two backends of storage/backend.h against
 * each other, driven by tests/cluster/test_clickhouse.py with real
 * ClickHouse servers (tests/cluster/chtest.py).
 *
 *   chcheck compare LMDB_DIR URL0 URL1 [SEED [BLOCKS]]
 *	creates the schema on both servers (URLs with ?cluster=: shards of
 *	one Distributed table); appends the same blocks of deltas to a new
 *	LMDB store in LMDB_DIR and, block by block, to URL0 and URL1 in
 *	turn; reads several windows and label-set lists back from LMDB and
 *	through the Distributed table of each URL and compares every row.
 *	Weights pass 2^64 (the 128-bit carry) and names hold quotes,
 *	backslashes and non-ASCII bytes (the SQL quoting). Prints the
 *	wall time each backend took (BLOCKS blocks of 3,000 deltas,
 *	default 6).
 *   chcheck recheck LMDB_DIR URL0 URL1
 *	the reads of compare again, appending nothing (after the test has
 *	had ClickHouse merge its parts).
 *   chcheck read URL...
 *	creates the schema on every URL, then one read through the first;
 *	prints the error and exits 3 when ClickHouse cannot be reached or
 *	refuses.
 *   chcheck node LMDB_DIR... URL
 *	the stores of fdod nodes run with --store URL (stopped; 1 to 8)
 *	against ClickHouse: every binary and label set of the stores read
 *	over all time from each store, summed, and from ClickHouse, every
 *	row compared (the read through the Distributed table with a
 *	?cluster= URL); prints the rows and samples.
 *   chcheck drop URL BEFORE
 *	retention on URL's server: drops the days of counts_local that end
 *	at or before unix time BEFORE, prints how many.
 *
 * Exit 0 when everything matched, 1 on a mismatch, 2 on usage, 3 on a
 * backend error (its message on stderr).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "storage/backend.h"
#include "storage/clickhouse.h"

#define NBLOCKS	 6 /* default; argument BLOCKS */
#define NDELTAS	 3000
#define NSTACKS	 500
#define T0	 1765065600u /* a day boundary (2025-12-07) */
#define HOUR	 3600u
#define NBUCKETS 30 /* crosses two day partitions */

static const char *const binaries[] = {"/usr/bin/app", "/opt/it's\\a\xc3\xa9"};
static const char *const labelsets[] = {"", "dc=x'1",
					"dc=\\y,zone=\xe2\x82\xac"};

struct rows {
	struct backend_sum *v;
	size_t n, cap;
};

static int collect(void *arg, const struct backend_sum *s)
{
	struct rows *r = arg;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 1024;
		void *p = realloc(r->v, cap * sizeof *r->v);
		if (!p)
			return FDO_ENOMEM;
		r->v = p;
		r->cap = cap;
	}
	r->v[r->n++] = *s;
	return FDO_OK;
}

/* Wall-clock milliseconds each side spent (a shared host: noisy). */
static double ms_lmdb_append, ms_ch_append, ms_lmdb_read, ms_ch_read;
static int nblocks = NBLOCKS;

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int append_all(struct backend *lm, struct backend *ch[2], uint64_t seed)
{
	struct backend_group g[2 * 3 * NBUCKETS];
	size_t ng = 0;
	for (size_t b = 0; b < 2; b++)
		for (size_t l = 0; l < 3; l++)
			for (uint32_t k = 0; k < NBUCKETS; k++)
				g[ng++] = (struct backend_group){binaries[b],
								 labelsets[l],
								 T0 + k * HOUR};
	static struct backend_delta d[NDELTAS];
	char err[512];
	for (int blk = 0; blk < nblocks; blk++) {
		for (size_t i = 0; i < NDELTAS; i++) {
			uint64_t r = rng(&seed);
			/* Weights up to 2^100: sums pass 2^64, stay far
			 * from 2^128. */
			wire_weight_t w = (wire_weight_t)rng(&seed) << (r % 37);
			d[i] = (struct backend_delta){
				(uint32_t)(r % ng), rng(&seed) % NSTACKS * 7919,
				w, 1 + r % 100};
		}
		/* Stack 1 (no random stack is) gets 3 x 2^125 in blocks 0
		 * and 2, both to server 0: its sum, 2^127 + 2^126, is past
		 * Decimal(38, 0)'s signed range, in one GROUP BY and, after
		 * OPTIMIZE, in one merged row. */
		if (blk == 0 || blk == 2)
			d[0] = (struct backend_delta){
				0, 1, (wire_weight_t)3 << 125, 1};
		struct backend_block b = {g, ng, d, NDELTAS};
		double t0 = now_ms();
		if (lm->ops->append(lm->self, &b, err, sizeof err)) {
			fprintf(stderr, "chcheck: append: %s\n", err);
			return 3;
		}
		double t1 = now_ms();
		if (ch[blk % 2]->ops->append(ch[blk % 2]->self, &b, err,
					     sizeof err)) {
			fprintf(stderr, "chcheck: append: %s\n", err);
			return 3;
		}
		ms_lmdb_append += t1 - t0;
		ms_ch_append += now_ms() - t1;
	}
	return 0;
}

static int same(const struct rows *a, const struct rows *b, const char *what)
{
	if (a->n != b->n) {
		fprintf(stderr,
			"chcheck: %s: %zu rows from LMDB, %zu from "
			"ClickHouse\n",
			what, a->n, b->n);
		return 0;
	}
	for (size_t i = 0; i < a->n; i++) {
		const struct backend_sum *x = &a->v[i], *y = &b->v[i];
		if (!(x->label == y->label && x->bucket == y->bucket &&
		      x->stack == y->stack && x->weight == y->weight &&
		      x->samples == y->samples)) {
			fprintf(stderr,
				"chcheck: %s: row %zu differs: LMDB (%u %u "
				"%" PRIu64 " %" PRIu64 ") ClickHouse (%u %u "
				"%" PRIu64 " %" PRIu64 ")\n",
				what, i, x->label, x->bucket, x->stack,
				x->samples, y->label, y->bucket, y->stack,
				y->samples);
			return 0;
		}
	}
	return 1;
}

/* The LMDB store in dir (created when missing) and its backend. */
static int open_lmdb(const char *dir, store **st, struct backend *lm)
{
	struct store_opts so = {.dir = dir};
	if (store_open(&so, st)) {
		fprintf(stderr, "chcheck: cannot open a store in %s\n", dir);
		return 3;
	}
	backend_lmdb(*st, lm);
	return 0;
}

static int compare(const char *dir, const char *url0, const char *url1,
		   uint64_t seed, int append)
{
	store *st;
	char err[512];
	struct backend lm, c0, c1, *ch[2] = {&c0, &c1};
	if (open_lmdb(dir, &st, &lm))
		return 3;
	if (backend_open(url0, &c0, err, sizeof err)) {
		fprintf(stderr, "chcheck: %s\n", err);
		store_close(st);
		return 3;
	}
	if (backend_open(url1, &c1, err, sizeof err)) {
		fprintf(stderr, "chcheck: %s\n", err);
		backend_close(&c0);
		store_close(st);
		return 3;
	}
	int rc = append ? append_all(&lm, ch, seed) : 0;
	static const struct {
		const char *bin;
		const char *labels[3];
		size_t n;
		uint32_t from, to;
	} reads[] = {
		{"/usr/bin/app",
		 {"", "dc=x'1", "dc=\\y,zone=\xe2\x82\xac"},
		 3,
		 0,
		 UINT32_MAX},
		{"/opt/it's\\a\xc3\xa9",
		 {"dc=\\y,zone=\xe2\x82\xac", ""},
		 2,
		 T0 + 5 * HOUR,
		 T0 + 26 * HOUR},
		{"/opt/it's\\a\xc3\xa9",
		 {"dc=x'1", "no=such"},
		 2,
		 T0 + HOUR,
		 T0 + 2 * HOUR},
		{"/usr/bin/none", {""}, 1, 0, UINT32_MAX},
	};
	size_t total = 0;
	for (size_t i = 0; i < sizeof reads / sizeof reads[0] && !rc; i++) {
		struct backend_read r = {reads[i].bin, reads[i].labels,
					 reads[i].n, reads[i].from,
					 reads[i].to};
		struct rows a = {0}, b[2] = {{0}, {0}};
		char what[64];
		double t0 = now_ms(), t1 = 0, t2 = 0;
		if (lm.ops->read_sums(lm.self, &r, collect, &a, err,
				      sizeof err) ||
		    (t1 = now_ms(),
		     c0.ops->read_sums(c0.self, &r, collect, &b[0], err,
				       sizeof err)) ||
		    (t2 = now_ms(),
		     c1.ops->read_sums(c1.self, &r, collect, &b[1], err,
				       sizeof err))) {
			fprintf(stderr, "chcheck: read %zu: %s\n", i, err);
			rc = 3;
		}
		for (int s = 0; s < 2 && !rc; s++) {
			snprintf(what, sizeof what,
				 "read %zu through server %d", i, s);
			if (!same(&a, &b[s], what))
				rc = 1;
		}
		ms_lmdb_read += t1 - t0;
		ms_ch_read += t2 - t1;
		printf("read %zu: %zu rows\n", i, a.n);
		total += a.n;
		free(a.v);
		free(b[0].v);
		free(b[1].v);
	}
	if (!rc && total == 0) {
		fprintf(stderr, "chcheck: every read was empty\n");
		rc = 1;
	}
	backend_close(&c0);
	backend_close(&c1);
	store_close(st);
	if (!rc)
		printf("same sums from LMDB and ClickHouse: %zu rows\n"
		       "wall ms (shared host, noisy): %d blocks of %d deltas: "
		       "append LMDB %.1f, ClickHouse %.1f; reads LMDB %.1f, "
		       "ClickHouse through server 0 %.1f\n",
		       total, nblocks, NDELTAS, ms_lmdb_append, ms_ch_append,
		       ms_lmdb_read, ms_ch_read);
	return rc;
}

/* The schema created on every URL (each shard needs its tables), then
 * one read through the first. */
static int read_one(char **urls, int n)
{
	struct backend c;
	char err[512];
	for (int i = n - 1; i >= 0; i--) {
		if (backend_open(urls[i], &c, err, sizeof err)) {
			fprintf(stderr, "chcheck: %s\n", err);
			return 3;
		}
		if (i > 0)
			backend_close(&c);
	}
	const char *labels[] = {""};
	struct backend_read r = {"/usr/bin/app", labels, 1, 0, UINT32_MAX};
	struct rows a = {0};
	int rc = c.ops->read_sums(c.self, &r, collect, &a, err, sizeof err);
	if (rc)
		fprintf(stderr, "chcheck: %s\n", err);
	else
		printf("%zu rows\n", a.n);
	free(a.v);
	backend_close(&c);
	return rc ? 3 : 0;
}

/* The names of dictionary d, ids 1 up to the first missing one. */
static int names(store *st, enum store_dict d, char ***out, size_t *n)
{
	store_txn *t;
	int rc = store_txn_begin(st, 0, &t);
	*out = NULL;
	*n = 0;
	for (uint32_t id = 1; !rc; id++) {
		const void *p;
		size_t len;
		int r = store_intern_name(t, d, id, &p, &len);
		if (r == FDO_ENOT_FOUND)
			break;
		char **v = realloc(*out, (*n + 1) * sizeof *v);
		if (r || !v || !(v[*n] = strndup(p, len))) {
			if (v)
				*out = v;
			rc = r ? r : FDO_ENOMEM;
			break;
		}
		*out = v;
		(*n)++;
	}
	store_txn_abort(t);
	return rc;
}

/* Add name to v[0..*n) unless there. */
static int add_name(char ***v, size_t *n, char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i], name)) {
			free(name);
			return 0;
		}
	char **w = realloc(*v, (*n + 1) * sizeof *w);
	if (!w) {
		free(name);
		return FDO_ENOMEM;
	}
	*v = w;
	w[(*n)++] = name;
	return 0;
}

/* The names of dictionary d of every store, once each. */
static int all_names(store **st, int nst, enum store_dict d, char ***out,
		     size_t *n)
{
	*out = NULL;
	*n = 0;
	for (int s = 0; s < nst; s++) {
		char **v;
		size_t k;
		if (names(st[s], d, &v, &k))
			return 3;
		int rc = 0;
		for (size_t i = 0; i < k; i++)
			if (rc || (rc = add_name(out, n, v[i])))
				free(v[i]);
		free(v);
		if (rc)
			return 3;
	}
	return 0;
}

static int sum_cmp(const void *a, const void *b)
{
	const struct backend_sum *x = a, *y = b;
	if (x->label != y->label)
		return x->label < y->label ? -1 : 1;
	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/* Several stores' rows as one node's: sorted, equal keys summed. */
static void merge_rows(struct rows *r)
{
	if (r->n == 0)
		return;
	qsort(r->v, r->n, sizeof *r->v, sum_cmp);
	size_t k = 0;
	for (size_t i = 1; i < r->n; i++) {
		if (!sum_cmp(&r->v[k], &r->v[i])) {
			r->v[k].weight += r->v[i].weight;
			r->v[k].samples += r->v[i].samples;
		} else {
			r->v[++k] = r->v[i];
		}
	}
	r->n = k + 1;
}

#define NODES_MAX 8

/* The stores of fdod nodes run with --store URL (stopped) against
 * ClickHouse: every row of their summed sums compared. */
static int node(char **dirs, int nst, const char *url)
{
	store *st[NODES_MAX];
	struct backend lm[NODES_MAX], ch;
	char err[512];
	int opened = 0, rc = 0;
	while (opened < nst &&
	       !open_lmdb(dirs[opened], &st[opened], &lm[opened]))
		opened++;
	if (opened < nst || backend_open(url, &ch, err, sizeof err)) {
		if (opened == nst)
			fprintf(stderr, "chcheck: %s\n", err);
		for (int s = 0; s < opened; s++)
			store_close(st[s]);
		return 3;
	}
	char **bins = NULL, **labs = NULL;
	size_t nb = 0, nl = 0, total = 0;
	uint64_t samples = 0;
	rc = all_names(st, nst, STORE_DICT_BINARIES, &bins, &nb) ||
			     all_names(st, nst, STORE_DICT_LABELSETS, &labs,
				       &nl)
		     ? 3
		     : 0;
	for (size_t i = 0; i < nb && !rc; i++) {
		struct backend_read r = {bins[i], (const char *const *)labs, nl,
					 0, UINT32_MAX};
		struct rows a = {0}, b = {0};
		for (int s = 0; s < nst && !rc; s++)
			if (lm[s].ops->read_sums(lm[s].self, &r, collect, &a,
						 err, sizeof err)) {
				fprintf(stderr, "chcheck: %s\n", err);
				rc = 3;
			}
		merge_rows(&a);
		if (!rc && ch.ops->read_sums(ch.self, &r, collect, &b, err,
					     sizeof err)) {
			fprintf(stderr, "chcheck: %s\n", err);
			rc = 3;
		} else if (!rc && !same(&a, &b, bins[i])) {
			rc = 1;
		}
		for (size_t k = 0; k < a.n; k++)
			samples += a.v[k].samples;
		total += a.n;
		free(a.v);
		free(b.v);
	}
	for (size_t i = 0; i < nb; i++)
		free(bins[i]);
	for (size_t i = 0; i < nl; i++)
		free(labs[i]);
	free(bins);
	free(labs);
	backend_close(&ch);
	for (int s = 0; s < nst; s++)
		store_close(st[s]);
	if (!rc)
		printf("same sums: %zu binaries, %zu rows, %" PRIu64
		       " samples\n",
		       nb, total, samples);
	return rc;
}

/* Retention on one server: the days ending at or before `before`. */
static int drop(const char *url, uint32_t before)
{
	ch_client *c;
	char err[512];
	uint32_t n;
	if (ch_open(url, NULL, &c, err, sizeof err) ||
	    ch_drop_before(c, before, &n, err, sizeof err)) {
		fprintf(stderr, "chcheck: %s\n", err);
		return 3;
	}
	printf("dropped %u days\n", n);
	ch_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 6)
		nblocks = atoi(argv[6]) > 0 ? atoi(argv[6]) : NBLOCKS;
	if (argc >= 5 && !strcmp(argv[1], "compare"))
		return compare(argv[2], argv[3], argv[4],
			       argc > 5 ? strtoull(argv[5], NULL, 0)
					: 88172645463325252ull,
			       1);
	if (argc == 5 && !strcmp(argv[1], "recheck"))
		return compare(argv[2], argv[3], argv[4], 0, 0);
	if (argc >= 4 && argc - 3 <= NODES_MAX && !strcmp(argv[1], "node"))
		return node(argv + 2, argc - 3, argv[argc - 1]);
	if (argc == 4 && !strcmp(argv[1], "drop"))
		return drop(argv[2], (uint32_t)strtoul(argv[3], NULL, 0));
	if (argc >= 3 && !strcmp(argv[1], "read"))
		return read_one(argv + 2, argc - 2);
	fprintf(stderr,
		"usage: chcheck compare LMDB_DIR URL0 URL1 [SEED [BLOCKS]] | "
		"chcheck recheck LMDB_DIR URL0 URL1 | chcheck read URL... | chcheck drop URL BEFORE\n");
	return 2;
}
