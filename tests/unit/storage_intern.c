/* Tests for storage/intern.c: dictionaries round trip both ways, are
 * idempotent, survive reopen; label sets are canonical; build-id records. */
#include "storage/storage.h"
#include "tests/unit/test.h"
#include "tests/unit/totals_scan.h"

static store *open_fresh(const char *name)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
	struct store_opts o = {.dir = dir, .initial_size = 64 * 1024};
	store *s = NULL;
	if (store_open(&o, &s))
		return NULL;
	return s;
}

struct names {
	enum store_dict dict;
	const char *const *v;
	size_t n;
	uint32_t ids[16];
};

static int intern_all(store_txn *t, void *arg)
{
	struct names *a = arg;
	for (size_t i = 0; i < a->n; i++) {
		int rc = store_intern(t, a->dict, a->v[i], strlen(a->v[i]), 1,
				      &a->ids[i]);
		if (rc)
			return rc;
	}
	return FDO_OK;
}

TEST(strings_round_trip_and_are_idempotent)
{
	store *s = open_fresh("strings");
	REQUIRE(s);
	const char *v[] = {"main", "", "foo.c", "main", "a\0b"};
	struct names a = {STORE_DICT_STRINGS, v, 5, {0}};
	REQUIRE(store_write(s, intern_all, &a) == FDO_OK);
	CHECK_EQ_INT(a.ids[0], 1);
	CHECK_EQ_INT(a.ids[1], 2);
	CHECK_EQ_INT(a.ids[2], 3);
	CHECK_EQ_INT(a.ids[3], a.ids[0]); /* same name, same id */
	CHECK_EQ_INT(a.ids[4], 4);	  /* "a" (strlen stops at NUL) */

	/* Again, in a second transaction: nothing new. */
	struct names b = {STORE_DICT_STRINGS, v, 5, {0}};
	REQUIRE(store_write(s, intern_all, &b) == FDO_OK);
	CHECK(!memcmp(a.ids, b.ids, sizeof a.ids));

	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	const void *name;
	size_t len;
	REQUIRE(store_intern_name(t, STORE_DICT_STRINGS, 3, &name, &len) ==
		FDO_OK);
	CHECK(len == 5 && !memcmp(name, "foo.c", 5));
	REQUIRE(store_intern_name(t, STORE_DICT_STRINGS, 2, &name, &len) ==
		FDO_OK);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(store_intern_name(t, STORE_DICT_STRINGS, 99, &name, &len),
		     FDO_ENOT_FOUND);
	uint32_t id;
	CHECK_EQ_INT(store_intern_string(t, "bar", 3, 0, &id), FDO_ENOT_FOUND);
	CHECK_EQ_INT(store_intern_string(t, "foo.c", 5, 0, &id), FDO_OK);
	CHECK_EQ_INT(id, 3);
	/* Creating needs a write transaction. */
	CHECK_EQ_INT(store_intern_string(t, "bar", 3, 1, &id), FDO_EINVAL);
	uint64_t n;
	REQUIRE(store_count(t, STORE_STRINGS, &n) == FDO_OK);
	CHECK_EQ_INT(n, 8); /* 4 names, both directions */
	store_txn_abort(t);
	store_close(s);
}

TEST(dictionaries_are_separate_and_survive_reopen)
{
	store *s = open_fresh("dicts");
	REQUIRE(s);
	const char *v[] = {"webserver", "db"};
	struct names bin = {STORE_DICT_BINARIES, v, 2, {0}};
	struct names str = {STORE_DICT_STRINGS, v + 1, 1, {0}};
	REQUIRE(store_write(s, intern_all, &bin) == FDO_OK);
	REQUIRE(store_write(s, intern_all, &str) == FDO_OK);
	CHECK_EQ_INT(bin.ids[1], 2);
	CHECK_EQ_INT(str.ids[0], 1); /* own counter */
	store_close(s);

	char dir[512];
	snprintf(dir, sizeof dir, "%s/dicts", test_tmpdir());
	struct store_opts o = {.dir = dir};
	REQUIRE(store_open(&o, &s) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	uint32_t id;
	CHECK_EQ_INT(store_intern_binary(t, "db", 2, 0, &id), FDO_OK);
	CHECK_EQ_INT(id, 2);
	const void *name;
	size_t len;
	REQUIRE(store_intern_name(t, STORE_DICT_BINARIES, 1, &name, &len) ==
		FDO_OK);
	CHECK(len == 9 && !memcmp(name, "webserver", 9));
	store_txn_abort(t);
	/* New ids continue after the old ones. */
	const char *w[] = {"cache"};
	struct names more = {STORE_DICT_BINARIES, w, 1, {0}};
	REQUIRE(store_write(s, intern_all, &more) == FDO_OK);
	CHECK_EQ_INT(more.ids[0], 3);
	store_close(s);
}

static int try_bad_names(store_txn *t, void *arg)
{
	uint32_t id;
	char big[STORE_NAME_MAX + 2];
	memset(big, 'x', sizeof big);
	CHECK_EQ_INT(store_intern_binary(t, "", 0, 1, &id), FDO_EINVAL);
	CHECK_EQ_INT(store_intern_string(t, big, STORE_NAME_MAX + 1, 1, &id),
		     FDO_ELIMIT);
	CHECK_EQ_INT(store_intern_string(t, big, STORE_NAME_MAX, 1, &id),
		     FDO_OK);
	CHECK_EQ_INT(store_intern_buildid(t, big, 0, 1, &id),
		     FDO_EBAD_BUILD_ID);
	CHECK_EQ_INT(store_intern_buildid(t, big, 65, 1, &id),
		     FDO_EBAD_BUILD_ID);
	CHECK_EQ_INT(store_intern_labelset(t, "b=1,a=2", 7, 1, &id),
		     FDO_EINVAL);
	CHECK_EQ_INT(store_intern_labelset(t, "a=1,a=2", 7, 1, &id),
		     FDO_EINVAL);
	CHECK_EQ_INT(store_intern_labelset(t, "a=1,", 4, 1, &id), FDO_EINVAL);
	CHECK_EQ_INT(store_intern_labelset(t, "=1", 2, 1, &id), FDO_EINVAL);
	CHECK_EQ_INT(store_intern_labelset(t, "a", 1, 1, &id), FDO_EINVAL);
	CHECK_EQ_INT(store_intern_labelset(t, "a=1,b=x=y", 9, 1, &id), FDO_OK);
	CHECK_EQ_INT(store_intern_labelset(t, "", 0, 1, &id), FDO_OK);
	return FDO_OK;
}

TEST(bad_names_are_refused)
{
	store *s = open_fresh("bad");
	REQUIRE(s);
	CHECK_EQ_INT(store_write(s, try_bad_names, NULL), FDO_OK);
	store_close(s);
}

TEST(labelset_canon_sorts_and_validates)
{
	char out[64];
	size_t len;
	const char *l1[] = {"region=eu", "mode=serving", "az=b"};
	REQUIRE(store_labelset_canon(l1, 3, out, sizeof out, &len) == FDO_OK);
	CHECK_EQ_STR(out, "az=b,mode=serving,region=eu");
	CHECK_EQ_INT(len, strlen(out));
	/* Key order, not whole-string order: "a" sorts before "a.b". */
	const char *l2[] = {"a.b=1", "a=2"};
	REQUIRE(store_labelset_canon(l2, 2, out, sizeof out, &len) == FDO_OK);
	CHECK_EQ_STR(out, "a=2,a.b=1");
	REQUIRE(store_labelset_canon(NULL, 0, out, sizeof out, &len) == FDO_OK);
	CHECK_EQ_STR(out, "");
	const char *dup[] = {"a=1", "a=2"};
	CHECK_EQ_INT(store_labelset_canon(dup, 2, out, sizeof out, &len),
		     FDO_EINVAL);
	const char *comma[] = {"a=1,b=2"};
	CHECK_EQ_INT(store_labelset_canon(comma, 1, out, sizeof out, &len),
		     FDO_EINVAL);
	const char *noeq[] = {"mode"};
	CHECK_EQ_INT(store_labelset_canon(noeq, 1, out, sizeof out, &len),
		     FDO_EINVAL);
	const char *ctl[] = {"a=\n"};
	CHECK_EQ_INT(store_labelset_canon(ctl, 1, out, sizeof out, &len),
		     FDO_EINVAL);
	CHECK_EQ_INT(store_labelset_canon(l1, 3, out, 10, &len), FDO_ELIMIT);
	/* Exactly fitting: text + NUL. */
	CHECK_EQ_INT(store_labelset_canon(l1, 3, out, 28, &len), FDO_OK);
	CHECK_EQ_INT(store_labelset_canon(l1, 3, out, 27, &len), FDO_ELIMIT);
}

struct bid_arg {
	uint8_t id[20];
	uint32_t got, again;
};

static int bid_intern(store_txn *t, void *arg)
{
	struct bid_arg *a = arg;
	int rc = store_intern_buildid(t, a->id, sizeof a->id, 1, &a->got);
	if (!rc)
		rc = store_intern_buildid(t, a->id, sizeof a->id, 1, &a->again);
	if (!rc)
		rc = store_buildid_seen(t, a->got, 1000);
	if (!rc)
		rc = store_buildid_seen(t, a->got, 900);
	if (!rc)
		rc = store_buildid_seen(t, a->got, 1100);
	return rc;
}

TEST(buildid_widen_keeps_last_seen_to_the_step)
{
	struct store_buildid r = {0};
	CHECK(store_buildid_widen(&r, 1000, 60) == 1);
	CHECK(r.first_seen == 1000 && r.last_seen == 1000);
	CHECK(store_buildid_widen(&r, 1059, 60) == 0); /* within the minute */
	CHECK(r.last_seen == 1000);
	CHECK(store_buildid_widen(&r, 1060, 60) == 1);
	CHECK(r.last_seen == 1060);
	CHECK(store_buildid_widen(&r, 990, 60) == 1); /* earlier: first */
	CHECK(r.first_seen == 990 && r.last_seen == 1060);
	CHECK(store_buildid_widen(&r, 1061, 1) == 1);
	CHECK(store_buildid_widen(&r, 1061, 0) == 0); /* step 0 is 1 */
}

static int bid_update(store_txn *t, void *arg)
{
	struct bid_arg *a = arg;
	struct store_buildid r;
	int rc = store_buildid_get(t, a->got, &r);
	if (rc)
		return rc;
	r.binary = 7;
	r.sym_state = STORE_SYM_EXECUTABLE | STORE_SYM_DWARF;
	rc = store_buildid_put(t, a->got, &r);
	if (rc)
		return rc;
	/* The bytes of a build-id never change. */
	r.build_id[0] ^= 1;
	CHECK_EQ_INT(store_buildid_put(t, a->got, &r), FDO_EINVAL);
	CHECK_EQ_INT(store_buildid_put(t, 999, &r), FDO_ENOT_FOUND);
	return FDO_OK;
}

TEST(buildid_records)
{
	store *s = open_fresh("buildids");
	REQUIRE(s);
	struct bid_arg a;
	for (int i = 0; i < 20; i++)
		a.id[i] = (uint8_t)(0xa0 + i);
	REQUIRE(store_write(s, bid_intern, &a) == FDO_OK);
	CHECK_EQ_INT(a.got, 1);
	CHECK_EQ_INT(a.again, 1);
	REQUIRE(store_write(s, bid_update, &a) == FDO_OK);

	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	struct store_buildid r;
	REQUIRE(store_buildid_get(t, 1, &r) == FDO_OK);
	CHECK_EQ_INT(r.build_id_len, 20);
	CHECK(!memcmp(r.build_id, a.id, 20));
	CHECK_EQ_INT(r.first_seen, 900);
	CHECK_EQ_INT(r.last_seen, 1100);
	CHECK_EQ_INT(r.binary, 7);
	CHECK_EQ_INT(r.sym_state, STORE_SYM_EXECUTABLE | STORE_SYM_DWARF);
	const void *name;
	size_t len;
	REQUIRE(store_intern_name(t, STORE_DICT_BUILDIDS, 1, &name, &len) ==
		FDO_OK);
	CHECK(len == 20 && !memcmp(name, a.id, 20));
	uint32_t id;
	CHECK_EQ_INT(store_intern_buildid(t, a.id, 20, 0, &id), FDO_OK);
	CHECK_EQ_INT(id, 1);
	CHECK_EQ_INT(store_intern_buildid(t, a.id, 19, 0, &id), FDO_ENOT_FOUND);
	CHECK_EQ_INT(store_buildid_get(t, 2, &r), FDO_ENOT_FOUND);

	/* Raw layout of the record (storage/codec.c). */
	uint8_t k[5] = {'i', 0, 0, 0, 1};
	const void *v;
	size_t vl;
	REQUIRE(store_get(t, STORE_BUILDIDS, k, 5, &v, &vl) == FDO_OK);
	const uint8_t *p = v;
	CHECK_EQ_INT(vl, 24 + 20);
	CHECK_EQ_INT(p[0], 1);
	CHECK_EQ_INT(p[1], STORE_SYM_EXECUTABLE | STORE_SYM_DWARF);
	CHECK_EQ_INT(p[2], 20);
	CHECK_EQ_INT(fdo_get_be32(p + 4), 7);
	CHECK_EQ_INT(fdo_get_be64(p + 8), 900);
	CHECK_EQ_INT(fdo_get_be64(p + 16), 1100);
	CHECK_EQ_INT(p[24], 0xa0);
	store_txn_abort(t);
	store_close(s);
}

struct many {
	uint32_t base, n;
};

static int intern_many(store_txn *t, void *arg)
{
	struct many *m = arg;
	for (uint32_t i = m->base; i < m->base + m->n; i++) {
		char name[64];
		int len = snprintf(name, sizeof name, "function_%08u", i);
		uint32_t id;
		int rc = store_intern_string(t, name, (size_t)len, 1, &id);
		if (rc)
			return rc;
		if (id != i + 1)
			return FDO_ECORRUPT;
	}
	return FDO_OK;
}

TEST(interning_across_map_growth_keeps_ids_dense)
{
	/* A retried write (after growth) must not burn ids. */
	store *s = open_fresh("dense");
	REQUIRE(s);
	struct many m = {0, 20000};
	CHECK_EQ_INT(store_write(s, intern_many, &m), FDO_OK);
	struct many m2 = {20000, 100};
	CHECK_EQ_INT(store_write(s, intern_many, &m2), FDO_OK);
	store_close(s);
}

/* Counts of binaries 1..3: binary 2 has three entries, one of them with a
 * value that does not decode. */
static int put_counts(store_txn *t, void *arg)
{
	static const struct store_counts_key keys[] = {
		{1, 1, 100, 7}, {2, 1, 100, 5}, {2, 1, 200, 5},
		{2, 3, 100, 9}, {3, 1, 100, 1},
	};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		struct store_weight w = {(wire_weight_t)(i + 1) * 10, i + 1};
		int rc = put_count_entry(t, &keys[i], &w);
		if (rc)
			return rc;
	}
	return FDO_OK;
}

struct seen {
	struct store_counts_key k[8];
	uint64_t samples[8];
	size_t n, stop_at;
};

static int see(void *arg, const struct store_counts_key *k,
	       const struct store_weight *w)
{
	struct seen *s = arg;
	if (s->n == s->stop_at)
		return FDO_EBUSY;
	s->k[s->n] = *k;
	s->samples[s->n++] = w->samples;
	return FDO_OK;
}

TEST(counts_each_walks_one_binary_in_key_order)
{
	store *s = open_fresh("counts");
	REQUIRE(s);
	REQUIRE(store_write(s, put_counts, NULL) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	struct seen a = {.stop_at = 8};
	CHECK_EQ_INT(store_counts_each(t, 2, see, &a), FDO_OK);
	REQUIRE(a.n == 3);
	CHECK(a.k[0].binary == 2 && a.k[0].labelset == 1 &&
	      a.k[0].bucket == 100 && a.k[0].stack == 5);
	CHECK_EQ_INT(a.samples[0], 2);
	CHECK(a.k[1].labelset == 1 && a.k[1].bucket == 200 &&
	      a.k[1].stack == 5);
	CHECK_EQ_INT(a.samples[1], 3);
	CHECK(a.k[2].labelset == 3 && a.k[2].stack == 9);
	CHECK_EQ_INT(a.samples[2], 4);

	struct seen none = {.stop_at = 8};
	CHECK_EQ_INT(store_counts_each(t, 4, see, &none), FDO_OK);
	CHECK_EQ_INT(none.n, 0);

	/* fn's error ends the walk and is returned */
	struct seen one = {.stop_at = 1};
	CHECK_EQ_INT(store_counts_each(t, 2, see, &one), FDO_EBUSY);
	CHECK_EQ_INT(one.n, 1);
	store_txn_abort(t);
	store_close(s);
}
