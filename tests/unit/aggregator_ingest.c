/*
 * Tests for aggregator/ingest.c under the memory budget (common/mem.h) on
 * a real store: a batch that would overfill the ingest part is refused
 * with BUSY and a retry-after, nothing of it stored, and is stored once
 * when resent after room was made; a batch of any size gets into an empty
 * pipeline; the part comes back to what it held once everything is
 * merged; merges keep their buffers and estimated dirty pages within
 * their parts' caps while every batch is stored; a bucket whose hour is
 * over, written by several merges (a run each), is compacted into one run
 * with its sums unchanged and its totals' entries the distinct stacks.
 */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/aggregator.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/mem.h"
#include "tests/unit/test.h"

#define MIB (1u << 20)

/* A batch of agent's seq with n distinct stacks (first stack first) of
 * depth frames each, every stack counted twice. */
static unsigned long batch_ago; /* seconds before now the batches end */

static Fdod__SampleBatch *batch(const char *agent, unsigned seq, unsigned n,
				unsigned first, unsigned depth)
{
	struct fdo_buf t;
	fdo_buf_init(&t);
	unsigned long now = (unsigned long)time(NULL) - batch_ago;
	fdo_buf_printf(&t,
		       "agent %s\nseq %u\nhost h\nbinary memtest\n"
		       "event cpu-clock\nperiod 1000\nweight 1\ntime %lu %lu\n"
		       "mapping 0 %s 400000 40000000 0 /memtest\n",
		       agent, seq, now - 60, now,
		       "1122334455667788990011223344556677889900");
	for (unsigned i = 0; i < n; i++) {
		fdo_buf_puts(&t, "stack 2");
		for (unsigned k = 0; k < depth; k++)
			fdo_buf_printf(&t, " %x",
				       0x400000 +
					       ((first + i) * depth + k) * 16);
		fdo_buf_putc(&t, '\n');
	}
	Fdod__SampleBatch *b = NULL;
	char err[256];
	if (wire_batch_parse_text(t.data, t.len, NULL, &b, err, sizeof err))
		fprintf(stderr, "  parse: %s\n", err);
	fdo_buf_fini(&t);
	return b;
}

static void push(agg_ingest *ing, Fdod__SampleBatch *b, struct agg_result *r)
{
	agg_ingest_batch(ing, b, r);
	wire_batch_free(b);
}

static uint64_t stored_batches(store *st)
{
	store_txn *t;
	uint64_t n = 0;
	if (store_txn_begin(st, 0, &t) == FDO_OK) {
		store_count(t, STORE_BATCHES, &n);
		store_txn_abort(t);
	}
	return n;
}

/* The merger gives a merged batch's bytes back just after it wakes the
 * flushers: wait (a little) for the part to come back to want. */
static int ingest_back_to(uint64_t want)
{
	for (int i = 0; i < 200; i++) {
		if (fdo_mem_used(FDO_MEM_INGEST) == want)
			return 1;
		usleep(10000);
	}
	fprintf(stderr, "  ingest part holds %llu, want %llu\n",
		(unsigned long long)fdo_mem_used(FDO_MEM_INGEST),
		(unsigned long long)want);
	return 0;
}

static void caps(uint64_t ingest, uint64_t merge, uint64_t lmdb)
{
	for (int p = 0; p < FDO_MEM_PARTS; p++)
		fdo_mem_cap_set((enum fdo_mem_part)p, 0);
	fdo_mem_cap_set(FDO_MEM_INGEST, ingest);
	fdo_mem_cap_set(FDO_MEM_MERGE, merge);
	fdo_mem_cap_set(FDO_MEM_LMDB, lmdb);
	fdo_mem_set(FDO_MEM_LMDB, 0);
}

/* A fresh store in the test's directory and ingest over it, with the
 * caps in force. 1 on success. */
static int open_ingest(const char *name, store **st, agg_ingest **ing)
{
	struct store_opts o = {.dir = test_subdir(name)};
	if (store_open(&o, st))
		return 0;
	if (agg_ingest_create(*st, NULL, ing) == FDO_OK)
		return 1;
	store_close(*st);
	return 0;
}

TEST(a_full_ingest_part_refuses_with_retry_after_and_loses_nothing)
{
	caps(1 * MIB, 0, 0);
	uint64_t before = fdo_mem_used(FDO_MEM_INGEST);
	store *st;
	agg_ingest *ing;
	REQUIRE(open_ingest("full", &st, &ing));
	uint64_t idle = fdo_mem_used(FDO_MEM_INGEST);
	CHECK(idle > before);		 /* the logged-stack set */
	CHECK(idle - before <= MIB / 4); /* at most a quarter of the part */
	struct agg_result r;
	push(ing, batch("a", 1, 100, 0, 4), &r);
	CHECK_EQ_INT(r.status, FDO_OK);
	CHECK_EQ_INT(r.samples_accepted, 200);
	CHECK_EQ_INT(agg_ingest_flush(ing, 10000), FDO_OK);
	CHECK(ingest_back_to(idle));

	/* Other batches hold the whole part: the next is refused. */
	fdo_mem_take(FDO_MEM_INGEST, MIB);
	push(ing, batch("a", 2, 100, 100, 4), &r);
	CHECK_EQ_INT(r.status, FDO_EBUSY);
	CHECK(r.retry_after_ms >= 200 && r.retry_after_ms <= 12000);
	CHECK(strstr(r.message, "memory budget") != NULL);
	CHECK_EQ_INT(r.samples_accepted, 0);
	struct agg_ingest_stats s;
	agg_ingest_stats(ing, &s);
	CHECK_EQ_INT(s.memory_refused, 1);
	CHECK_EQ_INT(s.refused_by[FDO_EBUSY], 1);
	CHECK_EQ_INT(fdo_mem_used(FDO_MEM_INGEST), idle + MIB);

	/* Room again: the resent batch is stored, once. */
	fdo_mem_give(FDO_MEM_INGEST, MIB);
	push(ing, batch("a", 2, 100, 100, 4), &r);
	CHECK_EQ_INT(r.status, FDO_OK);
	CHECK_EQ_INT(r.duplicate, 0);
	push(ing, batch("a", 2, 100, 100, 4), &r);
	CHECK_EQ_INT(r.status, FDO_OK);
	CHECK_EQ_INT(r.duplicate, 1);
	CHECK_EQ_INT(agg_ingest_flush(ing, 10000), FDO_OK);
	CHECK(ingest_back_to(idle));
	agg_ingest_stats(ing, &s);
	CHECK_EQ_INT(s.batches, 2);
	CHECK_EQ_INT(s.samples, 400);
	CHECK_EQ_INT(stored_batches(st), 2);
	agg_ingest_destroy(ing);
	store_close(st);
	CHECK_EQ_INT(fdo_mem_used(FDO_MEM_INGEST), before);
}

TEST(a_batch_of_any_size_gets_into_an_empty_pipeline)
{
	caps(64 << 10, 0, 0);
	uint64_t before = fdo_mem_used(FDO_MEM_INGEST);
	store *st;
	agg_ingest *ing;
	REQUIRE(open_ingest("big", &st, &ing));
	uint64_t idle = fdo_mem_used(FDO_MEM_INGEST);
	/* ~2000 x 24 + 8000 x 16 bytes: more than the whole part. */
	struct agg_result r;
	push(ing, batch("b", 1, 2000, 0, 4), &r);
	CHECK_EQ_INT(r.status, FDO_OK);
	CHECK_EQ_INT(agg_ingest_flush(ing, 10000), FDO_OK);
	CHECK(ingest_back_to(idle));
	CHECK_EQ_INT(stored_batches(st), 1);
	agg_ingest_destroy(ing);
	store_close(st);
	CHECK_EQ_INT(fdo_mem_used(FDO_MEM_INGEST), before);
}

/* Pushers of their own agent: 50 batches of 100 new stacks each. */
struct pusher {
	agg_ingest *ing;
	char agent[8];
	unsigned first, failed;
};

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	for (unsigned i = 0; i < 50; i++) {
		struct agg_result r;
		push(p->ing, batch(p->agent, i + 1, 100, p->first + i * 100, 4),
		     &r);
		p->failed += r.status != FDO_OK;
	}
	return NULL;
}

TEST(merges_keep_within_the_merge_and_lmdb_parts)
{
	caps(0, 4 * MIB, 2 * MIB);
	store *st;
	agg_ingest *ing;
	REQUIRE(open_ingest("merge", &st, &ing));
	struct pusher ps[4];
	pthread_t th[4];
	for (unsigned i = 0; i < 4; i++) {
		ps[i] = (struct pusher){ing, "", i * 100000, 0};
		snprintf(ps[i].agent, sizeof ps[i].agent, "m%u", i);
		REQUIRE(pthread_create(&th[i], NULL, pusher_main, &ps[i]) == 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(ps[i].failed, 0);
	}
	CHECK_EQ_INT(agg_ingest_flush(ing, 30000), FDO_OK);
	struct agg_ingest_stats s;
	agg_ingest_stats(ing, &s);
	CHECK_EQ_INT(s.samples, 4 * 50 * 200);
	CHECK_EQ_INT(stored_batches(st), 200);
	/* What the merger's buffers hold (measured) and the most dirty
	 * pages a merge held (estimated), within their caps. */
	uint64_t merge = fdo_mem_used(FDO_MEM_MERGE);
	uint64_t lmdb = fdo_mem_used(FDO_MEM_LMDB);
	CHECK(merge > 0 && merge <= 4 * MIB);
	CHECK(lmdb > 0 && lmdb <= 2 * MIB);
	agg_ingest_destroy(ing);
	CHECK_EQ_INT(fdo_mem_used(FDO_MEM_MERGE), 0);
	store_close(st);
}

/* Runs and totals of the one bucket the store holds. */
static int bucket_of(store *st, size_t *runs, struct store_totals *v)
{
	store_txn *t;
	if (store_txn_begin(st, 0, &t))
		return 0;
	store_cursor *c;
	const void *k, *vp;
	size_t kl, vl;
	struct store_totals_key g;
	int ok = store_cursor_open(t, STORE_TOTALS, &c) == FDO_OK;
	if (ok) {
		ok = store_cursor_seek(c, NULL, 0, &k, &kl, &vp, &vl) ==
			     FDO_OK &&
		     !store_totals_key_decode(k, kl, &g) &&
		     !store_totals_decode(vp, vl, v);
		store_cursor_close(c);
	}
	struct store_run_info info[32];
	ok = ok && store_counts_runs(t, &g, info, 32, runs) == FDO_OK;
	store_txn_abort(t);
	return ok;
}

TEST(a_closed_bucket_written_by_several_merges_ends_as_one_run)
{
	caps(0, 0, 0);
	store *st;
	agg_ingest *ing;
	REQUIRE(open_ingest("closed", &st, &ing));
	batch_ago = 3 * 3600; /* a bucket whose hour is over */
	/* Five merges of 200 stacks each, overlapping by half: 600
	 * distinct stacks, counted twice each per batch. */
	for (unsigned i = 0; i < 5; i++) {
		struct agg_result r;
		push(ing, batch("c", i + 1, 200, i * 100, 4), &r);
		CHECK_EQ_INT(r.status, 0);
		CHECK_EQ_INT(agg_ingest_flush(ing, 30000), FDO_OK);
	}
	batch_ago = 0;
	size_t runs = 0;
	struct store_totals v = {0};
	for (int i = 0; i < 300; i++) {
		if (bucket_of(st, &runs, &v) && runs == 1)
			break;
		usleep(10000);
	}
	CHECK_EQ_INT(runs, 1);
	CHECK_EQ_INT(v.entries, 600);
	CHECK_EQ_INT(v.samples, 5 * 200 * 2);
	agg_ingest_destroy(ing);
	store_close(st);
}
