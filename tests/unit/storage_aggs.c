/*
 * Tests for storage/aggs.c: a run encoded in memory reads back as it was
 * written, from memory and from the table, whole or one leaf build-id;
 * the encoder refuses what is out of order; rows of another totals row,
 * or damaged anywhere, are refused whole (nothing visited, no crash); a
 * change to the run's totals row drops its rows in the same transaction;
 * a run whose totals row changed is not written.
 */
#include <stdlib.h>

#include "storage/storage.h"
#include "tests/unit/test.h"

static store *open_dir(const char *dir)
{
	struct store_opts o = {.dir = dir};
	store *s = NULL;
	return store_open(&o, &s) ? NULL : s;
}

/* What a visit saw, as text (one line per record). */
struct seen {
	char text[1 << 18];
	size_t len;
	unsigned parts, leaves, pairs;
};

static void say(struct seen *s, const char *fmt, unsigned long long a,
		unsigned long long b, unsigned long long c,
		unsigned long long d)
{
	if (s->len < sizeof s->text)
		s->len += (size_t)snprintf(s->text + s->len,
					   sizeof s->text - s->len, fmt, a, b,
					   c, d);
}

static int v_part(void *arg, const struct store_aggs_part *p)
{
	struct seen *s = arg;
	s->parts++;
	say(s, "part %llu w=%llu s=%llu n=%llu\n", p->leaf_bid,
	    (unsigned long long)p->weight, p->samples, p->stacks);
	return FDO_OK;
}

static int v_leaf(void *arg, const struct store_frame *f, wire_weight_t w,
		  uint64_t samples)
{
	struct seen *s = arg;
	s->leaves++;
	say(s, "leaf %llu:%llx w=%llu s=%llu\n", f->build_id, f->offset,
	    (unsigned long long)w, samples);
	return FDO_OK;
}

static int v_pair(void *arg, const struct store_frame *ce,
		  const struct store_frame *cr, wire_weight_t w)
{
	struct seen *s = arg;
	s->pairs++;
	say(s, "pair %llu:%llx <- %llu:%llx", ce->build_id, ce->offset,
	    cr->build_id, cr->offset);
	say(s, " w=%llu%.0llu%.0llu%.0llu\n", (unsigned long long)w, 0, 0, 0);
	return FDO_OK;
}

static const struct store_totals_key K = {7, 3, 1763719200};
static const struct store_totals SEEN = {(wire_weight_t)1 << 70, 500, 9};

/* Two partitions (leaf build-ids 2 and 5); enough pairs for several
 * chunks; one weight past 2^64. */
static void encode(struct store_aggs_run *r, size_t npairs)
{
	store_aggs_run_init(r, &K, &SEEN);
	struct store_aggs_part p2 = {2, 1000, 10, 4, 3, npairs};
	CHECK_EQ_INT(store_aggs_run_part(r, &p2), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_leaf(r, 0, 1, 1), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_leaf(r, 0x400, (wire_weight_t)1 << 66, 2),
		     FDO_OK);
	CHECK_EQ_INT(store_aggs_run_leaf(r, UINT64_MAX, 3, 3), FDO_OK);
	for (size_t i = 0; i < npairs; i++) {
		struct store_frame ce = {2 + (uint32_t)(i / 100),
					 0x1000 + i % 100 * 8},
				   cr = {1 + (uint32_t)(i % 3), 0x9000 - i};
		CHECK_EQ_INT(store_aggs_run_pair(r, &ce, &cr, 100 + i), FDO_OK);
	}
	struct store_aggs_part p5 = {5, 7, 1, 1, 1, 1};
	CHECK_EQ_INT(store_aggs_run_part(r, &p5), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_leaf(r, 0x55, 7, 1), FDO_OK);
	struct store_frame a = {5, 0x55}, b = {2, 0x10};
	CHECK_EQ_INT(store_aggs_run_pair(r, &a, &b, 7), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_finish(r), FDO_OK);
}

static int put_run(store_txn *t, void *arg)
{
	int stale;
	int rc = store_aggs_run_put(t, arg, &stale);
	return rc ? rc : stale ? FDO_EEXISTS : FDO_OK;
}

static int add_totals(store_txn *t, void *arg)
{
	return store_totals_add(t, &K, arg, 0);
}

TEST(aggs_round_trip_from_memory_and_table)
{
	struct store_aggs_run r;
	encode(&r, 3000);
	static struct seen a, b, c;
	struct store_aggs_visit va = {v_part, v_leaf, v_pair, &a},
				vb = {v_part, v_leaf, v_pair, &b},
				vc = {v_part, v_leaf, v_pair, &c};
	CHECK_EQ_INT(store_aggs_run_read(&r, 0, &va), FDO_OK);
	CHECK_EQ_INT(a.parts, 2);
	CHECK_EQ_INT(a.leaves, 4);
	CHECK_EQ_INT(a.pairs, 3001);
	CHECK(strstr(a.text, "leaf 2:ffffffffffffffff w=3 s=3\n") != NULL);
	CHECK(strstr(a.text, "pair 4:1318 <- 3:8ed5 w=399\n") != NULL);
	CHECK(strstr(a.text, "pair 31:1318 <- 3:8449 w=3099\n") != NULL);
	/* One leaf build-id only. */
	CHECK_EQ_INT(store_aggs_run_read(&r, 5, &vc), FDO_OK);
	CHECK_EQ_INT(c.parts, 1);
	CHECK_EQ_INT(c.pairs, 1);
	CHECK(strstr(c.text, "pair 5:55 <- 2:10 w=7\n") != NULL);

	store *s = open_dir(test_subdir("rt"));
	REQUIRE(s != NULL);
	/* No totals row: stale, nothing written. */
	CHECK_EQ_INT(store_write(s, put_run, &r), FDO_EEXISTS);
	struct store_totals seen = SEEN;
	REQUIRE(store_write(s, add_totals, &seen) == FDO_OK);
	CHECK_EQ_INT(store_write(s, put_run, &r), FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	CHECK_EQ_INT(store_aggs_read(t, &K, &SEEN, 0, &vb), FDO_OK);
	CHECK_EQ_INT(b.len, a.len);
	CHECK(!memcmp(a.text, b.text, a.len));
	/* The partition headers alone (store_aggs_parts): the same
	 * partitions, no leaf or pair; of another totals row refused. */
	static struct seen ph;
	struct store_aggs_visit vp = {v_part, v_leaf, v_pair, &ph};
	CHECK_EQ_INT(store_aggs_parts(t, &K, &SEEN, &vp), FDO_OK);
	CHECK_EQ_INT(ph.parts, 2);
	CHECK_EQ_INT(ph.leaves + ph.pairs, 0);
	CHECK(strstr(ph.text, "part 2 w=1000 s=10 n=4\npart 5 w=7 s=1 n=1\n") ==
	      ph.text);
	struct store_totals other_parts = SEEN;
	other_parts.entries++;
	ph.parts = 0;
	CHECK_EQ_INT(store_aggs_parts(t, &K, &other_parts, &vp), FDO_ECORRUPT);
	CHECK_EQ_INT(ph.parts, 0);
	/* Of another totals row: refused, nothing visited. */
	struct store_totals other = SEEN;
	other.samples++;
	static struct seen d;
	struct store_aggs_visit vd = {v_part, v_leaf, v_pair, &d};
	CHECK_EQ_INT(store_aggs_read(t, &K, &other, 0, &vd), FDO_ECORRUPT);
	CHECK_EQ_INT(d.parts + d.leaves + d.pairs, 0);
	struct store_totals_key k2 = K;
	k2.bucket += 3600;
	CHECK_EQ_INT(store_aggs_read(t, &k2, &SEEN, 0, &vd), FDO_ENOT_FOUND);
	uint64_t rows;
	CHECK_EQ_INT(store_count(t, STORE_AGGS, &rows), FDO_OK);
	CHECK(rows >= 8); /* header, 2 partitions, several chunks of pairs */
	store_txn_abort(t);

	/* A change to the totals row (a late batch) drops the rows. */
	struct store_totals late = {5, 1, 1};
	REQUIRE(store_write(s, add_totals, &late) == FDO_OK);
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	CHECK_EQ_INT(store_count(t, STORE_AGGS, &rows), FDO_OK);
	CHECK_EQ_INT(rows, 0);
	CHECK_EQ_INT(store_aggs_read(t, &K, &SEEN, 0, &vd), FDO_ENOT_FOUND);
	store_txn_abort(t);
	/* ... and a run computed before it is not written. */
	CHECK_EQ_INT(store_write(s, put_run, &r), FDO_EEXISTS);
	store_close(s);
	store_aggs_run_fini(&r);
}

/* Every record of layout l, partition after partition, as text. */
static void walk(struct store_aggs_layout *l, struct seen *out)
{
	for (size_t i = 0; i < l->nsrcs; i++) {
		struct store_aggs_iter it;
		store_aggs_iter_init(&it, l, i);
		struct store_frame a, b;
		wire_weight_t w;
		uint64_t samples;
		while (store_aggs_iter_leaf(&it, &a, &w, &samples))
			v_leaf(out, &a, w, samples);
		while (store_aggs_iter_pair(&it, &a, &b, &w))
			v_pair(out, &a, &b, w);
	}
}

/*
 * Pages of the map forgotten (store_map_forget: a layout's chunks once
 * checked and once walked) read the same bytes again; only the store's
 * map is touched, nothing outside it.
 */
TEST(aggs_forgotten_pages_read_the_same)
{
	struct store_aggs_run r;
	encode(&r, 6000); /* several chunks, over several pages */
	static struct seen mem, first, again;
	struct store_aggs_layout lm = {0}, l = {0};
	CHECK_EQ_INT(store_aggs_run_layout_add(&r, 0, &lm), FDO_OK);
	walk(&lm, &mem);
	store *s = open_dir(test_subdir("forget"));
	REQUIRE(s != NULL);
	struct store_totals seen = SEEN;
	REQUIRE(store_write(s, add_totals, &seen) == FDO_OK);
	REQUIRE(store_write(s, put_run, &r) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	struct store_map m;
	store_map_of(t, &m);
	CHECK(m.lo && m.hi > m.lo && m.lo % 4096 == 0);
	CHECK_EQ_INT(store_aggs_layout_add(t, &K, &SEEN, 0, &l), FDO_OK);
	CHECK(l.map.lo == m.lo && l.map.hi == m.hi);
	CHECK(l.nchunks > 2 && (uintptr_t)l.chunks[0].p >= m.lo &&
	      (uintptr_t)l.chunks[0].p < m.hi);
	walk(&l, &first);
	walk(&l, &again);
	CHECK(mem.len > 0 && first.len == mem.len && again.len == mem.len);
	CHECK(!memcmp(first.text, mem.text, mem.len));
	CHECK(!memcmp(again.text, mem.text, mem.len));
	/* The whole map forgotten: still read alike. */
	store_map_forget(&m, (const void *)m.lo, m.hi - m.lo);
	again.len = 0;
	walk(&l, &again);
	CHECK(again.len == mem.len && !memcmp(again.text, mem.text, mem.len));
	/* Memory outside the map (a run encoded in memory) is left alone. */
	uint8_t before[64];
	memcpy(before, r.buf, sizeof before);
	store_map_forget(&m, r.buf, r.len);
	CHECK(!memcmp(before, r.buf, sizeof before));
	mem.len = 0;
	walk(&lm, &mem);
	CHECK(mem.len == first.len && !memcmp(first.text, mem.text, mem.len));
	store_txn_abort(t);
	store_aggs_layout_fini(&l);
	store_aggs_layout_fini(&lm);
	store_close(s);
	store_aggs_run_fini(&r);
}

TEST(aggs_encoder_refuses_what_is_out_of_order)
{
	struct store_aggs_run r;
	struct store_aggs_part p = {3, 1, 1, 1, 2, 2};
	store_aggs_run_init(&r, &K, &SEEN);
	CHECK_EQ_INT(store_aggs_run_leaf(&r, 1, 1, 1), FDO_EINVAL);
	store_aggs_run_fini(&r);
	store_aggs_run_init(&r, &K, &SEEN);
	CHECK_EQ_INT(store_aggs_run_part(&r, &p), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_leaf(&r, 8, 1, 1), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_leaf(&r, 8, 1, 1), FDO_EINVAL);
	store_aggs_run_fini(&r);
	store_aggs_run_init(&r, &K, &SEEN);
	CHECK_EQ_INT(store_aggs_run_part(&r, &p), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_leaf(&r, 8, 1, 1), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_leaf(&r, 9, 1, 1), FDO_OK);
	struct store_frame a = {3, 10}, b = {3, 5};
	CHECK_EQ_INT(store_aggs_run_pair(&r, &a, &b, 1), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_pair(&r, &a, &b, 1), FDO_EINVAL);
	store_aggs_run_fini(&r);
	/* Fewer records than declared; partitions out of order. */
	store_aggs_run_init(&r, &K, &SEEN);
	CHECK_EQ_INT(store_aggs_run_part(&r, &p), FDO_OK);
	CHECK_EQ_INT(store_aggs_run_finish(&r), FDO_EINVAL);
	store_aggs_run_fini(&r);
	store_aggs_run_init(&r, &K, &SEEN);
	struct store_aggs_part e = {3, 0, 0, 0, 0, 0};
	CHECK_EQ_INT(store_aggs_run_part(&r, &e), FDO_OK);
	e.leaf_bid = 2;
	CHECK_EQ_INT(store_aggs_run_part(&r, &e), FDO_EINVAL);
	store_aggs_run_fini(&r);
	/* An empty run (every stack missing) is a header alone. */
	store_aggs_run_init(&r, &K, &SEEN);
	CHECK_EQ_INT(store_aggs_run_finish(&r), FDO_OK);
	struct seen z = {0};
	struct store_aggs_visit vz = {v_part, v_leaf, v_pair, &z};
	CHECK_EQ_INT(store_aggs_run_read(&r, 0, &vz), FDO_OK);
	CHECK_EQ_INT(z.parts, 0);
	store_aggs_run_fini(&r);
}

/* Every byte of the encoded rows changed in turn, and every length cut:
 * the decoder either reads it (a change that still decodes as a valid
 * run: a weight, a sample count) or refuses it whole; it never visits
 * part of a run it then refuses. */
TEST(aggs_damaged_rows_are_refused_whole)
{
	struct store_aggs_run r;
	encode(&r, 150);
	struct seen want = {0};
	struct store_aggs_visit vw = {v_part, v_leaf, v_pair, &want};
	REQUIRE(store_aggs_run_read(&r, 0, &vw) == FDO_OK);
	uint8_t *orig = malloc(r.len);
	REQUIRE(orig != NULL);
	memcpy(orig, r.buf, r.len);
	size_t len = r.len;
	unsigned refused = 0, read = 0;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(r.buf, orig, len);
			r.buf[i] ^= (uint8_t)(1u << bit);
			struct seen got = {0};
			struct store_aggs_visit vg = {v_part, v_leaf, v_pair,
						      &got};
			int rc = store_aggs_run_read(&r, 0, &vg);
			if (rc == FDO_OK) {
				read++;
			} else {
				CHECK(rc == FDO_ECORRUPT ||
				      rc == FDO_ENOT_FOUND);
				CHECK_EQ_INT(got.parts + got.leaves + got.pairs,
					     0);
				refused++;
			}
		}
	}
	memcpy(r.buf, orig, len);
	for (size_t cut = 0; cut < len; cut += 7) {
		r.len = cut;
		struct seen got = {0};
		struct store_aggs_visit vg = {v_part, v_leaf, v_pair, &got};
		int rc = store_aggs_run_read(&r, 0, &vg);
		CHECK(rc == FDO_ECORRUPT || rc == FDO_ENOT_FOUND);
		CHECK_EQ_INT(got.parts + got.leaves + got.pairs, 0);
	}
	r.len = len;
	CHECK(refused > 0 && read > 0);
	free(orig);
	store_aggs_run_fini(&r);
}

/* A store of layout version 4 (the checked-in fixture) opens as the
 * current version (6) with table aggs empty, and says so. */
TEST(version_4_fixture_is_upgraded_with_aggs_empty)
{
	const char *dir = test_subdir("v4");
	char cmd[1024];
	snprintf(
		cmd, sizeof cmd,
		"mkdir -p %s/store && cp tests/fixtures/store-v4/store/data.mdb "
		"%s/store/",
		dir, dir);
	REQUIRE(system(cmd) == 0);
	const char *logpath = test_subdir("v4.log");
	REQUIRE(test_stderr_to(logpath) == 0);
	store *s = open_dir(dir);
	test_stderr_restore();
	REQUIRE(s != NULL);
	char buf[4096] = {0};
	FILE *f = fopen(logpath, "r");
	REQUIRE(f);
	buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
	fclose(f);
	CHECK(strstr(buf, "upgraded from version 4 to 6") != NULL);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	const void *v;
	size_t vl;
	REQUIRE(store_get(t, STORE_META, "version", 7, &v, &vl) == FDO_OK);
	CHECK(vl == 4 && fdo_get_be32(v) == STORE_VERSION);
	uint64_t n;
	CHECK_EQ_INT(store_count(t, STORE_AGGS, &n), FDO_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(store_count(t, STORE_TOTALS, &n), FDO_OK);
	CHECK(n > 0);
	store_txn_abort(t);
	store_close(s);
}
