/*
 * Tests for storage/counts.c: the chunk codec (round trip, every corrupt
 * form refused), the run writer (chunks of at most STORE_RUN_CHUNK_MAX,
 * ids increasing), the merged iterator (runs overlapping, equal ids
 * summed, runs ending at different places, buckets without runs, a
 * corrupt chunk refused with FDO_ECORRUPT and logged), and compaction in
 * small steps (sums, totals and aggs kept, what readers see unchanged
 * after every step, the entries count exact at the end).
 */
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"
#include "tests/unit/test.h"
#include "tests/unit/totals_scan.h"

static store *open_fresh(const char *name)
{
	struct store_opts o = {.dir = test_subdir(name)};
	store *s = NULL;
	return store_open(&o, &s) ? NULL : s;
}

TEST(chunk_round_trip_and_corrupt_forms)
{
	struct store_count_entry in[3] = {
		{5, 1, 1},
		{UINT64_MAX - 1, (wire_weight_t)7 << 100, 3},
		{UINT64_MAX, 0, 0},
	};
	uint8_t b[256];
	size_t len = 8;
	for (int i = 0; i < 3; i++)
		len += store_chunk_put(b + len, i ? in[i - 1].stack : 0, i == 0,
				       &in[i]);
	store_chunk_header(b, 3);
	struct store_chunk_reader r;
	struct store_count_entry e;
	REQUIRE(store_chunk_open(&r, b, len) == FDO_OK);
	for (int i = 0; i < 3; i++) {
		REQUIRE(store_chunk_next(&r, &e) == FDO_OK);
		CHECK(e.stack == in[i].stack && e.weight == in[i].weight &&
		      e.samples == in[i].samples);
	}
	CHECK_EQ_INT(store_chunk_next(&r, &e), FDO_ENOT_FOUND);
	struct store_totals sum;
	CHECK_EQ_INT(store_chunk_sums(b, len, &sum), FDO_OK);
	CHECK(sum.entries == 3 && sum.samples == 4 &&
	      sum.weight == ((wire_weight_t)7 << 100) + 1);

	/* Every cut is refused, never read past. */
	for (size_t cut = 0; cut < len; cut++)
		CHECK_EQ_INT(store_chunk_sums(b, cut, &sum), FDO_ECORRUPT);
	/* Trailing bytes, a wrong count, a bad format, zero entries. */
	uint8_t c[256];
	memcpy(c, b, len);
	c[len] = 0;
	CHECK_EQ_INT(store_chunk_sums(c, len + 1, &sum), FDO_ECORRUPT);
	store_chunk_header(c, 2);
	CHECK_EQ_INT(store_chunk_sums(c, len, &sum), FDO_ECORRUPT);
	store_chunk_header(c, 4);
	CHECK_EQ_INT(store_chunk_sums(c, len, &sum), FDO_ECORRUPT);
	store_chunk_header(c, 0);
	CHECK_EQ_INT(store_chunk_sums(c, 8, &sum), FDO_ECORRUPT);
	memcpy(c, b, len);
	c[0] = 2;
	CHECK_EQ_INT(store_chunk_sums(c, len, &sum), FDO_ECORRUPT);
	/* Ids not increasing: a step of 0. */
	struct store_count_entry same[2] = {{9, 1, 1}, {9, 1, 1}};
	len = 8;
	len += store_chunk_put(c + len, 0, 1, &same[0]);
	len += store_chunk_put(c + len, 9, 0, &same[1]);
	store_chunk_header(c, 2);
	CHECK_EQ_INT(store_chunk_sums(c, len, &sum), FDO_ECORRUPT);
}

/* The entries of runs written for one bucket, one run per list. */
struct run_spec {
	uint32_t binary, labelset, bucket;
	const struct store_count_entry *e;
	size_t n;
};

static int write_runs(store_txn *t, void *arg)
{
	const struct run_spec *r = arg;
	store_run_writer *w;
	int rc = store_run_writer_open(t, &w);
	for (; !rc && r->binary; r++) {
		uint64_t id;
		if ((rc = store_run_id_next(t, &id)))
			break;
		struct store_run_key k = {r->binary, r->labelset, r->bucket, id,
					  0};
		store_run_writer_start(w, &k);
		struct store_totals d = {0};
		for (size_t i = 0; i < r->n && !rc; i++) {
			rc = store_run_writer_add(w, &r->e[i]);
			d.weight += r->e[i].weight;
			d.samples += r->e[i].samples;
		}
		if (!rc)
			rc = store_run_writer_finish(w);
		d.entries = store_run_writer_entries(w);
		struct store_totals_key tk = {r->binary, r->labelset,
					      r->bucket};
		if (!rc && d.entries)
			rc = store_totals_add(t, &tk, &d, 0);
	}
	store_run_writer_close(w);
	return rc;
}

struct got {
	struct store_counts_key k[16];
	struct store_weight w[16];
	size_t n;
};

static int collect(store *s, const void *prefix, size_t plen, struct got *g)
{
	store_txn *t;
	memset(g, 0, sizeof *g);
	int rc = store_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	store_counts_iter *it;
	if (!(rc = store_counts_iter_open(t, prefix, plen, &it))) {
		while (g->n < 16 && !(rc = store_counts_iter_next(
					      it, &g->k[g->n], &g->w[g->n])))
			g->n++;
		store_counts_iter_close(it);
	}
	store_txn_abort(t);
	return rc == FDO_ENOT_FOUND ? FDO_OK : rc;
}

TEST(iterator_merges_runs_summing_equal_ids)
{
	store *s = open_fresh("iter");
	REQUIRE(s);
	static const struct store_count_entry a[] = {
		{1, 10, 1}, {4, 40, 4}, {9, 90, 9}};
	static const struct store_count_entry b[] = {{4, 400, 40},
						     {5, 500, 50}};
	static const struct store_count_entry c[] = {{0, 7, 7},
						     {UINT64_MAX, 8, 8}};
	static const struct store_count_entry d[] = {{3, 3, 3}};
	const struct run_spec runs[] = {
		{2, 1, 3600, a, 3},    {2, 1, 3600, b, 2}, {2, 1, 3600, c, 2},
		{2, 1, 3600, NULL, 0}, /* an empty run: nothing written */
		{2, 1, 7200, d, 1},    {3, 1, 3600, d, 1}, {1, 9, 3600, d, 1},
		{0, 0, 0, NULL, 0},
	};
	REQUIRE(store_write(s, write_runs, (void *)runs) == FDO_OK);
	struct got g;
	uint8_t p[12];
	fdo_put_be32(p, 2);
	REQUIRE(collect(s, p, 4, &g) == FDO_OK);
	static const uint64_t ids[] = {0, 1, 4, 5, 9, UINT64_MAX, 3};
	static const uint64_t samples[] = {7, 1, 44, 50, 9, 8, 3};
	REQUIRE(g.n == 7);
	for (size_t i = 0; i < 7; i++) {
		CHECK(g.k[i].binary == 2 && g.k[i].labelset == 1);
		CHECK(g.k[i].bucket == (i < 6 ? 3600u : 7200u));
		CHECK(g.k[i].stack == ids[i]);
		CHECK_EQ_INT(g.w[i].samples, samples[i]);
	}
	CHECK(g.w[2].weight == 440);
	/* One bucket by a 12-byte prefix; none for a binary without runs. */
	fdo_put_be32(p + 4, 1);
	fdo_put_be32(p + 8, 7200);
	REQUIRE(collect(s, p, 12, &g) == FDO_OK);
	CHECK(g.n == 1 && g.k[0].stack == 3 && g.k[0].bucket == 7200);
	fdo_put_be32(p, 4);
	REQUIRE(collect(s, p, 4, &g) == FDO_OK);
	CHECK_EQ_INT(g.n, 0);
	/* Everything, in key order. */
	REQUIRE(collect(s, NULL, 0, &g) == FDO_OK);
	CHECK(g.n == 9 && g.k[0].binary == 1 && g.k[8].binary == 3);
	CHECK(totals_match_scan(s));
	store_close(s);
}

static int put_raw(store_txn *t, void *arg)
{
	struct store_run_key k = {5, 1, 3600, 99, 0};
	uint8_t key[STORE_RUN_KEY_SIZE];
	store_run_key_encode(key, &k);
	/* A header that claims two entries over one. */
	uint8_t v[16];
	struct store_count_entry e = {3, 1, 1};
	size_t len = 8 + store_chunk_put(v + 8, 0, 1, &e);
	store_chunk_header(v, 2);
	(void)arg;
	return store_put(t, STORE_COUNTS, key, sizeof key, v, len, 0);
}

TEST(corrupt_chunk_is_refused_and_logged)
{
	store *s = open_fresh("corrupt");
	REQUIRE(s);
	static const struct store_count_entry a[] = {{1, 10, 1}, {4, 40, 4}};
	const struct run_spec runs[] = {{5, 1, 3600, a, 2}, {0, 0, 0, NULL, 0}};
	REQUIRE(store_write(s, write_runs, (void *)runs) == FDO_OK);
	REQUIRE(store_write(s, put_raw, NULL) == FDO_OK);
	const char *logpath = test_subdir("corrupt.log");
	REQUIRE(test_stderr_to(logpath) == 0);
	uint8_t p[4];
	fdo_put_be32(p, 5);
	struct got g;
	int rc = collect(s, p, 4, &g);
	test_stderr_restore();
	CHECK_EQ_INT(rc, FDO_ECORRUPT);
	char buf[4096] = {0};
	FILE *f = fopen(logpath, "r");
	REQUIRE(f);
	buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
	fclose(f);
	CHECK(strstr(buf, "counts chunk (binary 5, label set 1, bucket 3600, "
			  "run 99, chunk 0) does not decode") != NULL);
	store_close(s);
}

/* Many runs of one bucket, overlapping, with aggs header of its totals. */
static int many_runs(store_txn *t, void *arg)
{
	size_t nruns = *(size_t *)arg;
	struct store_count_entry *e = malloc(4000 * sizeof *e);
	if (!e)
		return FDO_ENOMEM;
	int rc = FDO_OK;
	for (size_t r = 0; r < nruns && !rc; r++) {
		size_t n = 0;
		/* Run r: ids of k + 500 r, hashed: ranges that overlap the
		 * others, so ids repeat across runs. */
		for (uint64_t k = 0; k < 3000; k++)
			e[n++] = (struct store_count_entry){
				(k + r * 500) * 0x9e3779b97f4a7c15ull >> 8,
				(wire_weight_t)(k + 1) << 70 | r, k % 5 + 1};
		/* By id (insertion sort: the ids are nearly sorted). */
		for (size_t i = 1; i < n; i++) {
			struct store_count_entry x = e[i];
			size_t j = i;
			while (j && e[j - 1].stack > x.stack) {
				e[j] = e[j - 1];
				j--;
			}
			e[j] = x;
		}
		/* Drop repeats within the run (a run has each id once). */
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (!m || e[m - 1].stack != e[i].stack)
				e[m++] = e[i];
		const struct run_spec one[] = {{7, 2, 3600, e, m},
					       {0, 0, 0, NULL, 0}};
		rc = write_runs(t, (void *)one);
	}
	free(e);
	return rc;
}

struct digest {
	wire_weight_t weight;
	uint64_t samples, n, xor;
};

static int digest_of(store *s, struct digest *d)
{
	memset(d, 0, sizeof *d);
	store_txn *t;
	int rc = store_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	store_counts_iter *it;
	if (!(rc = store_counts_iter_open(t, NULL, 0, &it))) {
		struct store_counts_key k;
		struct store_weight w;
		while (!(rc = store_counts_iter_next(it, &k, &w))) {
			d->weight += w.weight;
			d->samples += w.samples;
			d->n++;
			d->xor ^= k.stack * 31 + (uint64_t)w.weight +
				  (uint64_t)(w.weight >> 64) * 7 + w.samples;
		}
		store_counts_iter_close(it);
	}
	store_txn_abort(t);
	return rc == FDO_ENOT_FOUND ? FDO_OK : rc;
}

static int runs_of(store *s, const struct store_totals_key *g, size_t *n)
{
	store_txn *t;
	struct store_run_info info[64];
	int rc = store_txn_begin(s, 0, &t);
	if (!rc) {
		rc = store_counts_runs(t, g, info, 64, n);
		store_txn_abort(t);
	}
	return rc;
}

static int totals_of(store *s, const struct store_totals_key *g,
		     struct store_totals *v)
{
	store_txn *t;
	int rc = store_txn_begin(s, 0, &t);
	if (rc)
		return rc;
	uint8_t key[STORE_TOTALS_KEY_SIZE];
	store_totals_key_encode(key, g);
	const void *p;
	size_t vl;
	if (!(rc = store_get(t, STORE_TOTALS, key, sizeof key, &p, &vl)))
		rc = store_totals_decode(p, vl, v);
	store_txn_abort(t);
	return rc;
}

/* An aggs run header of the totals row as it is (as a pull would leave). */
static int put_aggs(store_txn *t, void *arg)
{
	const struct store_totals_key *g = arg;
	struct store_aggs_run r;
	struct store_totals now;
	uint8_t key[STORE_TOTALS_KEY_SIZE];
	store_totals_key_encode(key, g);
	const void *p;
	size_t vl;
	int rc = store_get(t, STORE_TOTALS, key, sizeof key, &p, &vl);
	if (rc || (rc = store_totals_decode(p, vl, &now)))
		return rc;
	store_aggs_run_init(&r, g, &now);
	int stale;
	if (!(rc = store_aggs_run_finish(&r)))
		rc = store_aggs_run_put(t, &r, &stale);
	store_aggs_run_fini(&r);
	return rc;
}

TEST(compaction_in_steps_keeps_sums_totals_and_aggs)
{
	store *s = open_fresh("compact");
	REQUIRE(s);
	size_t nruns = 6;
	REQUIRE(store_write(s, many_runs, &nruns) == FDO_OK);
	struct store_totals_key g = {7, 2, 3600};
	REQUIRE(store_write(s, put_aggs, &g) == FDO_OK);
	struct digest before, now;
	REQUIRE(digest_of(s, &before) == FDO_OK);
	struct store_totals t0, t1;
	REQUIRE(totals_of(s, &g, &t0) == FDO_OK);
	CHECK(t0.entries > before.n); /* ids repeat across runs */
	size_t n = 0;
	REQUIRE(runs_of(s, &g, &n) == FDO_OK);
	CHECK_EQ_INT(n, 6);

	/* Open bucket, 6 small runs (one tier): 4 or more of a tier are
	 * merged. */
	struct store_compact job;
	REQUIRE(store_counts_compact_plan(s, &g, 0, &job) == FDO_OK);
	CHECK_EQ_INT(job.nin, 6);
	/* Closed: all of them, in steps of 4 KiB of output. */
	REQUIRE(store_counts_compact_plan(s, &g, 1, &job) == FDO_OK);
	REQUIRE(job.nin == 6);
	int done = 0, steps = 0;
	while (!done && steps < 1000) {
		REQUIRE(store_counts_compact_step(s, &job, 4096, &done) ==
			FDO_OK);
		steps++;
		/* Between steps readers see exactly the same. */
		REQUIRE(digest_of(s, &now) == FDO_OK);
		CHECK(now.n == before.n && now.weight == before.weight &&
		      now.samples == before.samples && now.xor == before.xor);
		CHECK(totals_match_scan(s));
	}
	CHECK(done);
	CHECK(steps > 10);
	REQUIRE(runs_of(s, &g, &n) == FDO_OK);
	CHECK_EQ_INT(n, 1);
	REQUIRE(totals_of(s, &g, &t1) == FDO_OK);
	CHECK(t1.weight == t0.weight && t1.samples == t0.samples);
	CHECK_EQ_INT(t1.entries, before.n); /* distinct stacks now */
	/* The aggs rows stay, their header following the entries. */
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	uint8_t key[STORE_AGGS_KEY_SIZE];
	store_aggs_key_encode(key, &(struct store_aggs_key){7, 2, 3600, 0, 0});
	const void *v;
	size_t vl;
	CHECK_EQ_INT(store_get(t, STORE_AGGS, key, sizeof key, &v, &vl),
		     FDO_OK);
	CHECK(vl >= 40 && fdo_get_be64((const uint8_t *)v + 32) == t1.entries);
	store_txn_abort(t);
	/* One run: nothing more to do, open or closed. */
	REQUIRE(store_counts_compact_plan(s, &g, 1, &job) == FDO_OK);
	CHECK_EQ_INT(job.nin, 0);
	store_close(s);
}
