/*
 * Tests for storage/totals.c: rows are added to and taken away from, a row
 * goes when its last entry does, a walk keeps to one binary in key order,
 * inconsistencies are refused; a store of version 2 (the checked-in
 * fixture tests/fixtures/store-v2, README there) is upgraded on open with
 * totals equal to a full scan of its counts, and an upgrade that cannot
 * finish leaves the store as it was.
 */
#include <stdlib.h>
#include <sys/stat.h>

#include "storage/storage.h"
#include "tests/unit/test.h"
#include "tests/unit/totals_scan.h"

static store *open_dir(const char *dir, uint64_t initial, uint64_t max)
{
	struct store_opts o = {
		.dir = dir, .initial_size = initial, .max_size = max};
	store *s = NULL;
	return store_open(&o, &s) ? NULL : s;
}

/* One counts entry written and its totals added, as the merge does. */
struct put_entry {
	struct store_counts_key k;
	struct store_weight w;
};

static int put_entries(store_txn *t, void *arg)
{
	const struct put_entry *e = arg;
	for (; e->k.binary; e++) {
		int rc = put_count_entry(t, &e->k, &e->w);
		struct store_totals_key tk = {e->k.binary, e->k.labelset,
					      e->k.bucket};
		struct store_totals d = {e->w.weight, e->w.samples, 1};
		if (rc || (rc = store_totals_add(t, &tk, &d, 0)))
			return rc;
	}
	return FDO_OK;
}

struct change {
	struct store_totals_key k;
	struct store_totals d;
	int sub;
};

static int apply_change(store_txn *t, void *arg)
{
	struct change *c = arg;
	return store_totals_add(t, &c->k, &c->d, c->sub);
}

static int get_row(store *s, const struct store_totals_key *k,
		   struct store_totals *v)
{
	store_txn *t;
	if (store_txn_begin(s, 0, &t))
		return FDO_ESTORE;
	uint8_t key[STORE_TOTALS_KEY_SIZE];
	store_totals_key_encode(key, k);
	const void *p;
	size_t len;
	int rc = store_get(t, STORE_TOTALS, key, sizeof key, &p, &len);
	if (!rc)
		rc = store_totals_decode(p, len, v);
	store_txn_abort(t);
	return rc;
}

TEST(codec_round_trips_and_refuses_bad_sizes)
{
	struct store_totals_key k = {0x01020304, 0xa0b0c0d0, 1763719200}, k2;
	uint8_t kb[STORE_TOTALS_KEY_SIZE];
	store_totals_key_encode(kb, &k);
	CHECK(kb[0] == 1 && kb[3] == 4 && kb[4] == 0xa0);
	CHECK_EQ_INT(store_totals_key_decode(kb, sizeof kb, &k2), FDO_OK);
	CHECK(!memcmp(&k, &k2, sizeof k));
	CHECK_EQ_INT(store_totals_key_decode(kb, sizeof kb - 1, &k2),
		     FDO_ECORRUPT);
	struct store_totals v = {(wire_weight_t)7 << 100 | 9, 1ull << 40, 3},
			    v2;
	uint8_t vb[STORE_TOTALS_VAL_SIZE];
	store_totals_encode(vb, &v);
	CHECK_EQ_INT(store_totals_decode(vb, sizeof vb, &v2), FDO_OK);
	CHECK(v2.weight == v.weight && v2.samples == v.samples &&
	      v2.entries == 3);
	CHECK_EQ_INT(store_totals_decode(vb, sizeof vb + 1, &v2), FDO_ECORRUPT);
	/* A row sums at least one entry. */
	v.entries = 0;
	store_totals_encode(vb, &v);
	CHECK_EQ_INT(store_totals_decode(vb, sizeof vb, &v2), FDO_ECORRUPT);
}

TEST(rows_add_take_away_and_go_with_their_last_entry)
{
	store *s = open_dir(test_subdir("add"), 64 * 1024, 0);
	REQUIRE(s);
	struct change c = {{2, 1, 3600}, {1000, 10, 2}, 0};
	REQUIRE(store_write(s, apply_change, &c) == FDO_OK);
	c.d = (struct store_totals){500, 5, 1};
	REQUIRE(store_write(s, apply_change, &c) == FDO_OK);
	struct store_totals v;
	REQUIRE(get_row(s, &c.k, &v) == FDO_OK);
	CHECK(v.weight == 1500 && v.samples == 15 && v.entries == 3);

	/* Taking away more than the row holds is refused, nothing changes. */
	c.sub = 1;
	c.d = (struct store_totals){2000, 1, 1};
	CHECK_EQ_INT(store_write(s, apply_change, &c), FDO_ECORRUPT);
	c.d = (struct store_totals){1, 1, 4};
	CHECK_EQ_INT(store_write(s, apply_change, &c), FDO_ECORRUPT);
	REQUIRE(get_row(s, &c.k, &v) == FDO_OK);
	CHECK(v.weight == 1500 && v.entries == 3);

	c.d = (struct store_totals){1000, 10, 2};
	REQUIRE(store_write(s, apply_change, &c) == FDO_OK);
	REQUIRE(get_row(s, &c.k, &v) == FDO_OK);
	CHECK(v.weight == 500 && v.samples == 5 && v.entries == 1);
	c.d = (struct store_totals){500, 5, 1};
	REQUIRE(store_write(s, apply_change, &c) == FDO_OK);
	CHECK_EQ_INT(get_row(s, &c.k, &v), FDO_ENOT_FOUND);
	/* A row that is not there has nothing to take away. */
	CHECK_EQ_INT(store_write(s, apply_change, &c), FDO_ECORRUPT);

	/* 2^128 is the limit of a weight, as of a counts entry. */
	c = (struct change){{2, 1, 7200}, {~(wire_weight_t)0, 1, 1}, 0};
	REQUIRE(store_write(s, apply_change, &c) == FDO_OK);
	c.d.weight = 1;
	CHECK_EQ_INT(store_write(s, apply_change, &c), FDO_ELIMIT);
	store_close(s);
}

struct seen {
	struct store_totals_key k[8];
	size_t n;
};

static int see(void *arg, const struct store_totals_key *k,
	       const struct store_totals *v)
{
	struct seen *s = arg;
	if (s->n < 8)
		s->k[s->n] = *k;
	s->n++;
	return FDO_OK;
}

TEST(each_walks_one_binary_in_key_order)
{
	store *s = open_dir(test_subdir("each"), 64 * 1024, 0);
	REQUIRE(s);
	const struct put_entry e[] = {{{3, 1, 7200, 5}, {10, 1}},
				      {{2, 2, 3600, 5}, {10, 1}},
				      {{2, 1, 7200, 9}, {10, 1}},
				      {{2, 1, 3600, 5}, {10, 1}},
				      {{2, 1, 3600, 6}, {30, 2}},
				      {{1, 9, 3600, 5}, {10, 1}},
				      {{0}, {0}}};
	REQUIRE(store_write(s, put_entries, (void *)e) == FDO_OK);
	CHECK(totals_match_scan(s));
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	struct seen a = {0};
	CHECK_EQ_INT(store_totals_each(t, 2, see, &a), FDO_OK);
	CHECK_EQ_INT(a.n, 3);
	CHECK(a.k[0].labelset == 1 && a.k[0].bucket == 3600);
	CHECK(a.k[1].labelset == 1 && a.k[1].bucket == 7200);
	CHECK(a.k[2].labelset == 2 && a.k[2].bucket == 3600);
	struct seen none = {0};
	CHECK_EQ_INT(store_totals_each(t, 4, see, &none), FDO_OK);
	CHECK_EQ_INT(none.n, 0);
	store_txn_abort(t);
	struct store_totals v;
	REQUIRE(get_row(s, &(struct store_totals_key){2, 1, 3600}, &v) ==
		FDO_OK);
	CHECK(v.weight == 40 && v.samples == 3 && v.entries == 2);
	store_close(s);
}

/* Copy the version 2 fixture into dir/store/. */
static int copy_fixture(const char *dir)
{
	const char *root = getenv("FDOD_ROOT");
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
		 "mkdir -p '%s/store' && cp '%s/tests/fixtures/store-v2/store/"
		 "data.mdb' '%s/store/data.mdb'",
		 dir, root ? root : ".", dir);
	return system(cmd) == 0;
}

static uint32_t version_of(store *s)
{
	store_txn *t;
	const void *v;
	size_t vl;
	uint32_t ver = 0;
	if (store_txn_begin(s, 0, &t))
		return 0;
	if (store_get(t, STORE_META, "version", 7, &v, &vl) == FDO_OK &&
	    vl == 4)
		ver = fdo_get_be32(v);
	store_txn_abort(t);
	return ver;
}

TEST(version_2_fixture_is_upgraded_with_totals_of_its_counts)
{
	const char *dir = test_subdir("v2");
	REQUIRE(copy_fixture(dir));
	store *s = open_dir(dir, 0, 0);
	REQUIRE(s);
	CHECK_EQ_INT(version_of(s), STORE_VERSION);
	CHECK(totals_match_scan(s));
	/* What the fixture holds (its README): 2 binaries, 12 entries in 4
	 * (binary, label set, bucket). */
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	uint64_t rows = 0, entries = 0;
	CHECK_EQ_INT(store_count(t, STORE_TOTALS, &rows), FDO_OK);
	CHECK_EQ_INT(count_entries(t, &entries), FDO_OK);
	CHECK_EQ_INT(rows, 4);
	CHECK_EQ_INT(entries, 12);
	uint32_t web;
	REQUIRE(store_intern_binary(t, "webserver", 9, 0, &web) == FDO_OK);
	struct seen a = {0};
	CHECK_EQ_INT(store_totals_each(t, web, see, &a), FDO_OK);
	CHECK_EQ_INT(a.n, 3);
	store_txn_abort(t);
	store_close(s);
	/* Opened again: the current version as it is, nothing recomputed. */
	REQUIRE((s = open_dir(dir, 0, 0)));
	CHECK_EQ_INT(version_of(s), STORE_VERSION);
	CHECK(totals_match_scan(s));
	store_close(s);
}

TEST(upgrade_that_cannot_finish_leaves_version_2)
{
	const char *dir = test_subdir("v2full");
	REQUIRE(copy_fixture(dir));
	struct stat st;
	char path[600];
	snprintf(path, sizeof path, "%s/store/data.mdb", dir);
	REQUIRE(stat(path, &st) == 0);
	/* A map the size of the data: no room for the upgrade's pages. */
	struct store_opts o = {.dir = dir,
			       .initial_size = (uint64_t)st.st_size,
			       .max_size = (uint64_t)st.st_size};
	store *s = NULL;
	CHECK_EQ_INT(store_open(&o, &s), FDO_ESTORE_FULL);
	CHECK(s == NULL);
	/* Given room, the same store upgrades: it was still version 2. */
	const char *logpath = test_subdir("v2full.log");
	REQUIRE(test_stderr_to(logpath) == 0);
	s = open_dir(dir, 0, 0);
	test_stderr_restore();
	REQUIRE(s);
	char buf[4096] = {0};
	FILE *f = fopen(logpath, "r");
	REQUIRE(f);
	buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
	fclose(f);
	CHECK(strstr(buf, "upgraded from version 2 to 6: 4 totals rows from "
			  "12 counts entries") != NULL);
	CHECK_EQ_INT(version_of(s), STORE_VERSION);
	CHECK(totals_match_scan(s));
	store_close(s);
}
