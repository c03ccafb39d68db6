/*
 * Tests for aggregator/merge.c (included whole, for its static parts).
 * Merging itself is tested end to end by tests/ingest; here, that new
 * stacks and addresses are written once, and that table totals stay equal
 * to a full scan of counts through merges and retention
 * (aggregator/retention.c). The key sort has its own tests
 * (aggregator_keysort.c).
 */
#include "aggregator/merge.c"
#include "tests/unit/test.h"
#include "tests/unit/totals_scan.h"

/* ------------------------------------------------- merge_apply, whole -- */

static const uint8_t test_bid[20] = {0x11, 0x22, 0x33, 0x44, 0x55};

/* A batch of agent "a" with sequence seq and one mapping: stacks given as
 * frame offsets, a 0 ending each stack, "\0\0" the list; 2 samples each. */
static struct prep *make_prep(uint64_t seq, const uint64_t *offs)
{
	struct prep *p = calloc(1, sizeof *p);
	p->b.agent = strdup("a");
	p->b.binary = strdup("bin");
	p->b.host = strdup("h");
	p->b.labels = strdup("");
	p->b.seq = seq;
	p->b.time_end = 1700000000;
	p->b.period = 10;
	p->b.wq = WIRE_WEIGHT_SCALE;
	p->b.maps = calloc(1, sizeof *p->b.maps);
	memcpy(p->b.maps[0].build_id, test_bid, sizeof test_bid);
	p->b.maps[0].build_id_len = sizeof test_bid;
	p->b.nmaps = 1;
	p->b.frames = calloc(64, sizeof *p->b.frames);
	p->b.stacks = calloc(16, sizeof *p->b.stacks);
	for (size_t i = 0; offs[i] || offs[i + 1]; i++) {
		struct store_walstack *s = &p->b.stacks[p->b.nstacks++];
		struct store_hframe h[16];
		s->first = (uint32_t)p->b.nframes;
		for (; offs[i]; i++) {
			h[s->n].build_id_hash =
				store_buildid_hash(test_bid, 20);
			h[s->n].offset = offs[i];
			p->b.frames[p->b.nframes++].offset = offs[i];
			s->n++;
		}
		s->id = store_stack_id(h, s->n);
		s->samples = 2;
	}
	return p;
}

struct merge_probe {
	uint32_t bid;
	uint64_t stacks, pending, counts;
	int pending_at[0x60];
};

static int probe_txn(store_txn *t, void *arg)
{
	struct merge_probe *pr = arg;
	int rc = store_intern_buildid(t, test_bid, 20, 1, &pr->bid);
	if (!rc)
		rc = store_count(t, STORE_STACKS, &pr->stacks);
	if (!rc)
		rc = store_count(t, STORE_PENDING, &pr->pending);
	if (!rc)
		rc = count_entries(t, &pr->counts);
	for (uint64_t off = 0; off < 0x60 && !rc; off++) {
		struct store_frame f = {pr->bid, off};
		uint8_t k[STORE_ADDR_KEY_SIZE];
		const void *v;
		size_t vl;
		store_addr_key_encode(k, &f);
		rc = store_get(t, STORE_PENDING, k, sizeof k, &v, &vl);
		pr->pending_at[off] = rc == FDO_OK;
		if (rc == FDO_ENOT_FOUND)
			rc = FDO_OK;
	}
	return rc;
}

/* Symbolize offset off: what the symbolizer workers do. */
static uint64_t sym_off;
static int symbolize_txn(store_txn *t, void *arg)
{
	struct merge_probe *pr = arg;
	struct store_frame f = {pr->bid, sym_off};
	uint8_t k[STORE_ADDR_KEY_SIZE];
	store_addr_key_encode(k, &f);
	int rc = store_put(t, STORE_SYMCACHE, k, sizeof k, "x", 1, 0);
	if (!rc)
		rc = store_del(t, STORE_PENDING, k, sizeof k);
	return rc == FDO_ENOT_FOUND ? FDO_OK : rc;
}

TEST(merge_writes_each_new_stack_once_and_its_new_addresses_pending)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/merge", test_tmpdir());
	struct store_opts o = {.dir = dir};
	store *st;
	REQUIRE(store_open(&o, &st) == FDO_OK);
	struct merge_probe pr;
	REQUIRE(store_write(st, probe_txn, &pr) == FDO_OK);
	/* 0x40 is symbolized before any sample arrives. */
	sym_off = 0x40;
	REQUIRE(store_write(st, symbolize_txn, &pr) == FDO_OK);

	/* Two batches of one merge share stack {0x10, 0x20}. */
	static const uint64_t a[] = {0x10, 0x20, 0, 0x10, 0x30, 0, 0, 0};
	static const uint64_t b[] = {0x10, 0x20, 0, 0x40, 0x30, 0, 0, 0};
	struct prep *pa = make_prep(1, a), *pb = make_prep(2, b);
	struct prep *batch[2] = {pa, pb};
	struct merge *m;
	REQUIRE(merge_create(0, &m) == FDO_OK);
	const uint32_t *pending;
	size_t np;
	REQUIRE(merge_apply(m, st, batch, 2, 1700000000, &pending, &np) ==
		FDO_OK);
	CHECK(np == 1 && pending[0] == pr.bid);
	REQUIRE(store_write(st, probe_txn, &pr) == FDO_OK);
	CHECK(pr.stacks == 3);
	CHECK(pr.counts == 3);
	CHECK(pr.pending == 3);
	CHECK(pr.pending_at[0x10] && pr.pending_at[0x20] &&
	      pr.pending_at[0x30]);
	CHECK(!pr.pending_at[0x40]);

	/* The same batches again change nothing (exactly once); a stack
	 * stored before, sent to a merger that knows nothing yet (as after
	 * a restart, or once its known sets were cleared), is not written
	 * again; only the truly new address becomes pending. */
	sym_off = 0x10;
	REQUIRE(store_write(st, symbolize_txn, &pr) == FDO_OK);
	struct merge *m2;
	REQUIRE(merge_create(0, &m2) == FDO_OK);
	REQUIRE(merge_apply(m2, st, batch, 2, 1700000000, &pending, &np) ==
		FDO_OK);
	CHECK(np == 0);
	static const uint64_t c[] = {0x10, 0x20, 0, 0x20, 0x50,
				     0,	   0x30, 0, 0,	  0};
	struct prep *pc = make_prep(3, c);
	REQUIRE(merge_apply(m2, st, &pc, 1, 1700000000, &pending, &np) ==
		FDO_OK);
	CHECK(np == 1 && pending[0] == pr.bid);
	REQUIRE(store_write(st, probe_txn, &pr) == FDO_OK);
	CHECK(pr.stacks == 5);
	CHECK(pr.counts == 5);
	CHECK(pr.pending == 3);
	CHECK(!pr.pending_at[0x10] && pr.pending_at[0x20] &&
	      pr.pending_at[0x30] && pr.pending_at[0x50]);

	/* Nothing new: nothing pending to announce. */
	struct prep *pd = make_prep(4, c);
	REQUIRE(merge_apply(m2, st, &pd, 1, 1700000000, &pending, &np) ==
		FDO_OK);
	CHECK(np == 0);
	merge_destroy(m);
	merge_destroy(m2);
	prep_free(pa);
	prep_free(pb);
	prep_free(pc);
	prep_free(pd);
	store_close(st);
}

/* merge_apply of preps[0..n) at one time, pending ids not looked at. */
static int merge_all(struct merge *m, store *st, struct prep **preps, size_t n)
{
	const uint32_t *pending;
	size_t np;
	return merge_apply(m, st, preps, n, 1700000000, &pending, &np);
}

/*
 * Table totals follow the counts through merges (new entries, entries that
 * grow, batches merged again), and through retention, which takes away
 * exactly what it deletes: after each step the table equals a full scan.
 */
TEST(totals_follow_counts_through_merges_and_expiry)
{
	struct store_opts o = {.dir = test_subdir("totals")};
	store *st;
	REQUIRE(store_open(&o, &st) == FDO_OK);
	static const uint64_t a[] = {0x10, 0x20, 0, 0x10, 0x30, 0, 0, 0};
	static const uint64_t b[] = {0x10, 0x20, 0, 0x40, 0x30, 0, 0, 0};
	struct prep *pa = make_prep(1, a), *pb = make_prep(2, b);
	struct prep *pc = make_prep(3, b), *pd = make_prep(4, a);
	pa->b.bucket = pb->b.bucket = 3600;
	pc->b.bucket = 7200; /* a second bucket */
	pd->b.bucket = 7200;
	free(pd->b.labels);
	pd->b.labels = strdup("mode=batch"); /* and a second label set */
	struct prep *first[2] = {pa, pb}, *second[2] = {pc, pd};
	struct merge *m;
	REQUIRE(merge_create(0, &m) == FDO_OK);
	REQUIRE(merge_all(m, st, first, 2) == FDO_OK);
	CHECK(totals_match_scan(st));
	REQUIRE(merge_all(m, st, second, 2) == FDO_OK);
	CHECK(totals_match_scan(st));
	/* Merged again: counted once, totals unchanged. */
	REQUIRE(merge_all(m, st, first, 2) == FDO_OK);
	CHECK(totals_match_scan(st));
	/* New seq, stacks already stored in that bucket: entries grow, the
	 * row's entry count does not. */
	struct prep *pe = make_prep(5, a);
	pe->b.bucket = 3600;
	REQUIRE(merge_all(m, st, &pe, 1) == FDO_OK);
	CHECK(totals_match_scan(st));
	store_txn *t;
	uint64_t rows = 0, entries = 0;
	REQUIRE(store_txn_begin(st, 0, &t) == FDO_OK);
	CHECK_EQ_INT(store_count(t, STORE_TOTALS, &rows), FDO_OK);
	CHECK_EQ_INT(count_entries(t, &entries), FDO_OK);
	store_txn_abort(t);
	CHECK_EQ_INT(rows, 3);	  /* (3600, ""), (7200, ""), (7200, batch) */
	CHECK_EQ_INT(entries, 7); /* 3 + 2 + 2 distinct stacks */

	/* Retention drops the first bucket, then everything. */
	size_t deleted;
	uint32_t oldest;
	REQUIRE(retention_expire(st, 7200, &deleted, &oldest) == FDO_OK);
	CHECK_EQ_INT(deleted, 2); /* the bucket's 2 runs, a chunk each */
	CHECK_EQ_INT(oldest, 7200);
	CHECK(totals_match_scan(st));
	REQUIRE(store_txn_begin(st, 0, &t) == FDO_OK);
	CHECK_EQ_INT(store_count(t, STORE_TOTALS, &rows), FDO_OK);
	store_txn_abort(t);
	CHECK_EQ_INT(rows, 2);
	REQUIRE(retention_expire(st, 10800, &deleted, &oldest) == FDO_OK);
	CHECK(totals_match_scan(st));
	REQUIRE(store_txn_begin(st, 0, &t) == FDO_OK);
	CHECK_EQ_INT(store_count(t, STORE_TOTALS, &rows), FDO_OK);
	store_txn_abort(t);
	CHECK_EQ_INT(rows, 0);
	merge_destroy(m);
	prep_free(pa);
	prep_free(pb);
	prep_free(pc);
	prep_free(pd);
	prep_free(pe);
	store_close(st);
}

/* Table batches as the sweep sees it: records of both sizes (24 bytes,
 * from before the digest, and 32) older than the cutoff go, newer ones
 * stay, and a value that does not decode is left alone. */
static int batches_txn(store_txn *t, void *arg)
{
	(void)arg;
	static const struct {
		uint64_t seq, committed;
		size_t len;
	} recs[] = {{1, 100, STORE_BATCHES_VAL_SIZE_V1},
		    {2, 150, STORE_BATCHES_VAL_SIZE},
		    {3, 250, STORE_BATCHES_VAL_SIZE},
		    {4, 100, 17}};
	int rc = FDO_OK;
	for (size_t i = 0; i < 4 && !rc; i++) {
		uint8_t k[STORE_BATCHES_KEY_SIZE], v[STORE_BATCHES_VAL_SIZE];
		store_batches_key_encode(k, 9, recs[i].seq);
		store_batches_encode(v, &(struct store_batch){recs[i].committed,
							      5, 0, 77});
		rc = store_put(t, STORE_BATCHES, k, sizeof k, v, recs[i].len,
			       0);
	}
	return rc;
}

TEST(sweep_deletes_batch_records_of_both_sizes_by_commit_time)
{
	struct store_opts o = {.dir = test_subdir("sweep")};
	store *st;
	REQUIRE(store_open(&o, &st) == FDO_OK);
	REQUIRE(store_write(st, batches_txn, NULL) == FDO_OK);
	size_t deleted = 0;
	REQUIRE(retention_sweep(st, 200, &deleted) == FDO_OK);
	CHECK_EQ_INT(deleted, 2);
	store_txn *t;
	REQUIRE(store_txn_begin(st, 0, &t) == FDO_OK);
	for (uint64_t seq = 1; seq <= 4; seq++) {
		uint8_t k[STORE_BATCHES_KEY_SIZE];
		const void *v;
		size_t vl;
		store_batches_key_encode(k, 9, seq);
		CHECK_EQ_INT(store_get(t, STORE_BATCHES, k, sizeof k, &v, &vl),
			     seq <= 2 ? FDO_ENOT_FOUND : FDO_OK);
	}
	store_txn_abort(t);
	store_close(st);
}
