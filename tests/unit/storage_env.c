/* Tests for storage/env.c: open/reopen, version stamp, map growth, the
 * max_size limit, direct and retried write transactions, cursors, and
 * concurrent readers during growth. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/unit/test.h"

static const char *subdir(const char *name)
{
	static char buf[8][512];
	static int next;
	char *b = buf[next++ % 8];
	snprintf(b, 512, "%s/%s", test_tmpdir(), name);
	return b;
}

static int open_at(const char *dir, uint64_t init, uint64_t max, store **s)
{
	struct store_opts o = {
		.dir = dir, .initial_size = init, .max_size = max};
	return store_open(&o, s);
}

struct kv {
	uint32_t first, n;
	size_t vsize;
};

/* put_range writes keys first..first+n-1 with vsize-byte values. */
static int put_range(store_txn *t, void *arg)
{
	struct kv *kv = arg;
	static uint8_t val[65536];
	for (uint32_t i = kv->first; i < kv->first + kv->n; i++) {
		uint8_t k[4];
		fdo_put_be32(k, i);
		memset(val, (int)(i & 0xff), kv->vsize);
		int rc = store_put(t, STORE_COUNTS, k, 4, val, kv->vsize, 0);
		if (rc)
			return rc;
	}
	return FDO_OK;
}

/* has_key: key i is present with the value put_range gives it. */
static int has_key(store *s, uint32_t i, size_t vsize)
{
	store_txn *t;
	if (store_txn_begin(s, 0, &t))
		return -1;
	uint8_t k[4];
	fdo_put_be32(k, i);
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_COUNTS, k, 4, &v, &vl);
	int ok = rc == FDO_OK && vl == vsize &&
		 (vsize == 0 || ((const uint8_t *)v)[vsize - 1] == (i & 0xff));
	store_txn_abort(t);
	return rc == FDO_ENOT_FOUND ? 0 : ok ? 1 : -1;
}

TEST(open_close_reopen)
{
	const char *dir = subdir("reopen");
	store *s;
	REQUIRE(open_at(dir, 0, 0, &s) == FDO_OK);
	CHECK_EQ_STR(store_dir(s), dir);
	struct kv kv = {1, 10, 100};
	CHECK_EQ_INT(store_write(s, put_range, &kv), FDO_OK);
	store_close(s);
	REQUIRE(open_at(dir, 0, 0, &s) == FDO_OK);
	for (uint32_t i = 1; i <= 10; i++)
		CHECK_EQ_INT(has_key(s, i, 100), 1);
	CHECK_EQ_INT(has_key(s, 11, 100), 0);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	const void *v;
	size_t vl;
	REQUIRE(store_get(t, STORE_META, "version", 7, &v, &vl) == FDO_OK);
	CHECK_EQ_INT(vl, 4);
	CHECK_EQ_INT(fdo_get_be32(v), STORE_VERSION);
	uint64_t n;
	CHECK_EQ_INT(store_count(t, STORE_COUNTS, &n), FDO_OK);
	CHECK_EQ_INT(n, 10);
	store_txn_abort(t);
	store_close(s);
	CHECK(access(subdir("reopen/store/data.mdb"), F_OK) == 0);
}

TEST(table_names_are_the_design_names)
{
	const char *want[] = {"meta",	 "buildids", "binaries",  "labelsets",
			      "strings", "stacks",   "countruns", "branches",
			      "pending", "symcache", "batches",	  "published",
			      "hosts",	 "totals",   "aggs"};
	CHECK_EQ_INT(sizeof want / sizeof want[0], STORE_NTABLES);
	for (int i = 0; i < STORE_NTABLES; i++)
		CHECK_EQ_STR(store_table_name(i), want[i]);
}

/* Stamps the store with the version *arg. */
static int put_version(store_txn *t, void *arg)
{
	uint8_t v[4];
	fdo_put_be32(v, *(const uint32_t *)arg);
	return store_put(t, STORE_META, "version", 7, v, 4, 0);
}

static int get_version(store_txn *t, void *arg)
{
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_META, "version", 7, &v, &vl);
	if (rc == FDO_OK && vl == 4)
		*(uint32_t *)arg = fdo_get_be32(v);
	return rc;
}

TEST(version_1_is_upgraded_in_place)
{
	const char *dir = subdir("version1");
	store *s;
	REQUIRE(open_at(dir, 0, 0, &s) == FDO_OK);
	REQUIRE(store_write(s, put_version, &(uint32_t){1}) == FDO_OK);
	store_close(s);
	REQUIRE(open_at(dir, 0, 0, &s) == FDO_OK);
	uint32_t ver = 0;
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	CHECK_EQ_INT(get_version(t, &ver), FDO_OK);
	store_txn_abort(t);
	CHECK_EQ_INT(ver, STORE_VERSION);
	store_close(s);
}

TEST(version_mismatch_is_refused_with_both_versions)
{
	const char *dir = subdir("version");
	store *s;
	REQUIRE(open_at(dir, 0, 0, &s) == FDO_OK);
	REQUIRE(store_write(s, put_version, &(uint32_t){99}) == FDO_OK);
	store_close(s);

	/* Capture the log line. */
	char logpath[600];
	snprintf(logpath, sizeof logpath, "%s/version.log", test_tmpdir());
	fflush(stderr);
	int saved = dup(2);
	int lf = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	REQUIRE(saved >= 0 && lf >= 0);
	dup2(lf, 2);
	int rc = open_at(dir, 0, 0, &s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(lf);
	CHECK_EQ_INT(rc, FDO_ESTORE_VERSION);
	CHECK(s == NULL);
	char buf[2048] = {0};
	FILE *f = fopen(logpath, "r");
	REQUIRE(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	CHECK(strstr(buf, "version 99") != NULL);
	char mine[64];
	snprintf(mine, sizeof mine, "version %d", STORE_VERSION);
	CHECK(strstr(buf, mine) != NULL);
	/* Refusing wrote nothing: still refused next time. */
	CHECK_EQ_INT(open_at(dir, 0, 0, &s), FDO_ESTORE_VERSION);
}

TEST(map_grows_from_64k_to_hold_many_mb)
{
	const char *dir = subdir("grow");
	store *s;
	REQUIRE(open_at(dir, 64 * 1024, 256u << 20, &s) == FDO_OK);
	struct store_stats st;
	store_stats(s, &st);
	CHECK(st.map_size <= 64 * 1024);
	/* 8 MiB in 32 transactions of 256 KiB. */
	for (uint32_t b = 0; b < 32; b++) {
		struct kv kv = {b * 64, 64, 4096};
		REQUIRE(store_write(s, put_range, &kv) == FDO_OK);
	}
	/* And one transaction of 4 MiB, bigger than the map at its start. */
	struct kv big = {100000, 1024, 4096};
	REQUIRE(store_write(s, put_range, &big) == FDO_OK);
	store_stats(s, &st);
	CHECK(st.map_size >= (12u << 20));
	CHECK(st.used_size >= (12u << 20));
	for (uint32_t i = 0; i < 32 * 64; i += 37)
		CHECK_EQ_INT(has_key(s, i, 4096), 1);
	CHECK_EQ_INT(has_key(s, 100000 + 1023, 4096), 1);
	store_close(s);
	/* Reopening with a tiny initial size keeps the data. */
	REQUIRE(open_at(dir, 64 * 1024, 256u << 20, &s) == FDO_OK);
	CHECK_EQ_INT(has_key(s, 2047, 4096), 1);
	store_close(s);
}

TEST(max_size_gives_store_full_and_keeps_earlier_data)
{
	const char *dir = subdir("full");
	store *s;
	REQUIRE(open_at(dir, 64 * 1024, 1u << 20, &s) == FDO_OK);
	uint32_t next = 0;
	int rc = FDO_OK, batches = 0;
	while (batches < 1000) {
		struct kv kv = {next, 16, 1024};
		rc = store_write(s, put_range, &kv);
		if (rc)
			break;
		next += 16;
		batches++;
	}
	CHECK_EQ_INT(rc, FDO_ESTORE_FULL);
	CHECK(batches > 10);
	struct store_stats st;
	store_stats(s, &st);
	CHECK(st.map_size <= (1u << 20));
	/* Everything committed before is intact, nothing of the failed one. */
	for (uint32_t i = 0; i < next; i++)
		if (has_key(s, i, 1024) != 1) {
			CHECK_EQ_INT(has_key(s, i, 1024), 1);
			break;
		}
	for (uint32_t i = next; i < next + 16; i++)
		CHECK_EQ_INT(has_key(s, i, 1024), 0);
	/* A write too big for max_size at once fails whole. */
	struct kv huge = {500000, 2048, 1024};
	CHECK_EQ_INT(store_write(s, put_range, &huge), FDO_ESTORE_FULL);
	CHECK_EQ_INT(has_key(s, 500000, 1024), 0);
	/* Small writes that fit still work after reopen. */
	store_close(s);
	REQUIRE(open_at(dir, 64 * 1024, 1u << 20, &s) == FDO_OK);
	CHECK_EQ_INT(has_key(s, 0, 1024), 1);
	store_close(s);
}

static int put_then_fail(store_txn *t, void *arg)
{
	int rc = store_put(t, STORE_PENDING, "k", 1, "", 0, 0);
	return rc ? rc : FDO_EINVAL;
}

TEST(failed_write_function_leaves_nothing)
{
	store *s;
	REQUIRE(open_at(subdir("fnfail"), 0, 0, &s) == FDO_OK);
	CHECK_EQ_INT(store_write(s, put_then_fail, NULL), FDO_EINVAL);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	const void *v;
	size_t vl;
	CHECK_EQ_INT(store_get(t, STORE_PENDING, "k", 1, &v, &vl),
		     FDO_ENOT_FOUND);
	/* Writes in a read transaction are refused. */
	CHECK_EQ_INT(store_put(t, STORE_PENDING, "k", 1, "", 0, 0), FDO_EINVAL);
	CHECK_EQ_INT(store_get(t, STORE_PENDING, "", 0, &v, &vl), FDO_EINVAL);
	store_txn_abort(t);
	store_close(s);
}

TEST(no_overwrite_and_delete)
{
	store *s;
	REQUIRE(open_at(subdir("noover"), 0, 0, &s) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 1, &t) == FDO_OK);
	CHECK_EQ_INT(store_put(t, STORE_STACKS, "a", 1, "1", 1, 0), FDO_OK);
	CHECK_EQ_INT(store_put(t, STORE_STACKS, "a", 1, "2", 1,
			       STORE_NOOVERWRITE),
		     FDO_EEXISTS);
	CHECK_EQ_INT(store_del(t, STORE_STACKS, "a", 1), FDO_OK);
	CHECK_EQ_INT(store_del(t, STORE_STACKS, "a", 1), FDO_ENOT_FOUND);
	CHECK_EQ_INT(store_txn_commit(t), FDO_OK);
	store_close(s);
}

TEST(direct_write_txn_grows_for_the_retry)
{
	store *s;
	REQUIRE(open_at(subdir("direct"), 64 * 1024, 64u << 20, &s) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 1, &t) == FDO_OK);
	struct kv kv = {0, 256, 4096};
	int rc = put_range(t, &kv);
	CHECK_EQ_INT(rc, FDO_ESTORE_FULL);
	/* The dead transaction refuses more work, then ends. */
	CHECK_EQ_INT(store_put(t, STORE_COUNTS, "x", 1, "", 0, 0),
		     FDO_ESTORE_FULL);
	CHECK_EQ_INT(store_txn_commit(t), FDO_ESTORE_FULL);
	CHECK_EQ_INT(has_key(s, 0, 4096), 0);
	struct store_stats st;
	store_stats(s, &st);
	CHECK(st.map_size > 64 * 1024);
	store_close(s);
}

TEST(growth_while_this_thread_holds_a_txn_is_busy)
{
	store *s;
	REQUIRE(open_at(subdir("busy"), 64 * 1024, 64u << 20, &s) == FDO_OK);
	store_txn *r;
	REQUIRE(store_txn_begin(s, 0, &r) == FDO_OK);
	struct kv kv = {0, 256, 4096};
	CHECK_EQ_INT(store_write(s, put_range, &kv), FDO_EBUSY);
	store_txn_abort(r);
	CHECK_EQ_INT(store_write(s, put_range, &kv), FDO_OK);
	store_close(s);
}

TEST(cursor_walks_in_key_order)
{
	store *s;
	REQUIRE(open_at(subdir("cursor"), 0, 0, &s) == FDO_OK);
	struct kv kv = {1, 300, 8};
	REQUIRE(store_write(s, put_range, &kv) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	store_cursor *c;
	REQUIRE(store_cursor_open(t, STORE_COUNTS, &c) == FDO_OK);
	const void *k, *v;
	size_t kl, vl;
	uint8_t from[4];
	fdo_put_be32(from, 256);
	int rc = store_cursor_seek(c, from, 4, &k, &kl, &v, &vl);
	uint32_t want = 256, seen = 0;
	while (rc == FDO_OK) {
		CHECK_EQ_INT(kl, 4);
		CHECK_EQ_INT(fdo_get_be32(k), want);
		want++;
		seen++;
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	CHECK_EQ_INT(rc, FDO_ENOT_FOUND);
	CHECK_EQ_INT(seen, 45);
	CHECK_EQ_INT(store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl), FDO_OK);
	CHECK_EQ_INT(fdo_get_be32(k), 1);
	/* A read transaction's cursor cannot write. */
	CHECK_EQ_INT(store_cursor_put(c, from, 4, "x", 1, 0), FDO_EINVAL);
	store_cursor_close(c);
	store_txn_abort(t);

	/* Writing through a cursor: a new key, a replacement in place of
	 * the entry the cursor is on, and a refused overwrite. */
	REQUIRE(store_txn_begin(s, 1, &t) == FDO_OK);
	REQUIRE(store_cursor_open(t, STORE_COUNTS, &c) == FDO_OK);
	uint8_t nk[4];
	fdo_put_be32(nk, 1000);
	CHECK_EQ_INT(store_cursor_put(c, nk, 4, "new", 3, 0), FDO_OK);
	fdo_put_be32(from, 7);
	REQUIRE(store_cursor_seek(c, from, 4, &k, &kl, &v, &vl) == FDO_OK);
	CHECK_EQ_INT(store_cursor_put(c, from, 4, "seven", 5, STORE_CURRENT),
		     FDO_OK);
	CHECK_EQ_INT(store_cursor_put(c, from, 4, "no", 2, STORE_NOOVERWRITE),
		     FDO_EEXISTS);
	CHECK_EQ_INT(store_cursor_put(c, nk, 0, "x", 1, 0), FDO_EINVAL);
	store_cursor_close(c);
	REQUIRE(store_txn_commit(t) == FDO_OK);
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	REQUIRE(store_get(t, STORE_COUNTS, from, 4, &v, &vl) == FDO_OK);
	CHECK(vl == 5 && memcmp(v, "seven", 5) == 0);
	REQUIRE(store_get(t, STORE_COUNTS, nk, 4, &v, &vl) == FDO_OK);
	CHECK(vl == 3 && memcmp(v, "new", 3) == 0);
	fdo_put_be32(from, 8);
	REQUIRE(store_get(t, STORE_COUNTS, from, 4, &v, &vl) == FDO_OK);
	CHECK_EQ_INT(vl, 8);
	store_txn_abort(t);
	store_close(s);
}

struct reader_arg {
	store *s;
	int iterations;
	int errors;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	unsigned seed = (unsigned)(uintptr_t)p;
	for (int i = 0; i < a->iterations; i++) {
		uint32_t k = (uint32_t)(rand_r(&seed) % 500);
		if (has_key(a->s, k, 512) != 1)
			a->errors++;
	}
	return NULL;
}

struct writer_arg {
	store *s;
	int rc;
};

static void *writer(void *p)
{
	struct writer_arg *a = p;
	for (uint32_t b = 0; b < 40 && !a->rc; b++) {
		struct kv kv = {10000 + b * 64, 64, 4096};
		a->rc = store_write(a->s, put_range, &kv);
	}
	return NULL;
}

TEST(concurrent_readers_while_the_map_grows)
{
	store *s;
	REQUIRE(open_at(subdir("threads"), 64 * 1024, 256u << 20, &s) ==
		FDO_OK);
	struct kv kv = {0, 500, 512};
	REQUIRE(store_write(s, put_range, &kv) == FDO_OK);
	struct store_stats before;
	store_stats(s, &before);
	enum { NREADERS = 4 };
	pthread_t th[NREADERS + 1];
	struct reader_arg ra[NREADERS];
	struct writer_arg wa = {s, 0};
	for (int i = 0; i < NREADERS; i++) {
		ra[i] = (struct reader_arg){s, 3000, 0};
		REQUIRE(pthread_create(&th[i], NULL, reader, &ra[i]) == 0);
	}
	REQUIRE(pthread_create(&th[NREADERS], NULL, writer, &wa) == 0);
	for (int i = 0; i <= NREADERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NREADERS; i++)
		CHECK_EQ_INT(ra[i].errors, 0);
	CHECK_EQ_INT(wa.rc, FDO_OK);
	struct store_stats after;
	store_stats(s, &after);
	CHECK(after.map_size > before.map_size);
	CHECK_EQ_INT(has_key(s, 10000 + 39 * 64 + 63, 4096), 1);
	store_close(s);
}

/* A read transaction begun on one thread may be held while another thread
 * writes; its snapshot does not change. */
struct snap_arg {
	store *s;
	int rc;
};

static void *snap_writer(void *p)
{
	struct snap_arg *a = p;
	struct kv kv = {7000, 1, 16};
	a->rc = store_write(a->s, put_range, &kv);
	return NULL;
}

TEST(read_snapshot_is_stable_while_another_thread_writes)
{
	store *s;
	REQUIRE(open_at(subdir("snap"), 0, 0, &s) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	struct snap_arg a = {s, -1};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, snap_writer, &a) == 0);
	pthread_join(th, NULL);
	CHECK_EQ_INT(a.rc, FDO_OK);
	uint8_t k[4];
	fdo_put_be32(k, 7000);
	const void *v;
	size_t vl;
	CHECK_EQ_INT(store_get(t, STORE_COUNTS, k, 4, &v, &vl), FDO_ENOT_FOUND);
	store_txn_abort(t);
	CHECK_EQ_INT(has_key(s, 7000, 16), 1);
	store_close(s);
}

TEST(table_bytes_count_one_tables_pages_and_live_bytes_all)
{
	store *s;
	REQUIRE(open_at(subdir("tbytes"), 0, 256u << 20, &s) == FDO_OK);
	/* 64 values of 4 KiB: each an overflow page or two. */
	struct kv kv = {0, 64, 4096};
	REQUIRE(store_write(s, put_range, &kv) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(s, 0, &t) == FDO_OK);
	uint64_t counts = 0, stacks = 1, live = 0, n = 0;
	CHECK_EQ_INT(store_table_bytes(t, STORE_COUNTS, &counts), FDO_OK);
	CHECK_EQ_INT(store_table_bytes(t, STORE_STACKS, &stacks), FDO_OK);
	CHECK_EQ_INT(store_live_bytes(t, &live), FDO_OK);
	CHECK_EQ_INT(store_count(t, STORE_COUNTS, &n), FDO_OK);
	CHECK(counts >= 64 * 4096);
	CHECK(counts <= 3 * 64 * 4096);
	CHECK_EQ_INT(stacks, 0);
	CHECK(live >= counts);
	CHECK_EQ_INT(n, 64);
	CHECK_EQ_INT(store_table_bytes(t, STORE_NTABLES, &counts), FDO_EINVAL);
	CHECK_EQ_INT(store_count(t, STORE_NTABLES, &n), FDO_EINVAL);
	store_txn_abort(t);
	store_close(s);
}

/* One write: table, a key that begins with binary's id (4 bytes + 4). */
struct one_write {
	enum store_table table;
	uint32_t binary;
};

static int write_one(store_txn *t, void *arg)
{
	const struct one_write *w = arg;
	uint8_t k[12] = {0};
	fdo_put_be32(k, w->binary);
	return store_put(t, w->table, k, sizeof k, "v", 1, 0);
}

static int write_nothing(store_txn *t, void *arg)
{
	return FDO_OK;
}

static int set_sym_state(store_txn *t, void *arg)
{
	uint32_t id;
	struct store_buildid rec;
	int rc = store_intern_buildid(t, "\x01\x02", 2, 1, &id);
	if (!rc)
		rc = store_buildid_get(t, id, &rec);
	if (rc)
		return rc;
	rec.sym_state = *(uint32_t *)arg;
	rec.last_seen++;
	return store_buildid_put(t, id, &rec);
}

/*
 * A binary's generation moves with writes of its own rows (counts,
 * totals, branches, hosts), of symbolization results and of build-id
 * symbol states, and with commits of other processes; not with other
 * binaries' rows, table aggs, batch records, first/last seen, or a write
 * that changed nothing.
 */
TEST(generation_of_a_binary_moves_with_what_its_profile_reads)
{
	store *s;
	REQUIRE(open_at(subdir("gen"), 0, 0, &s) == FDO_OK);
	uint64_t g1 = store_generation_of(s, 1), g2 = store_generation_of(s, 2);
	CHECK(g1 >> 63 && g2 >> 63);
	struct one_write w = {STORE_COUNTS, 1};
	REQUIRE(store_write(s, write_one, &w) == FDO_OK);
	CHECK(store_generation_of(s, 1) != g1);
	CHECK_EQ_INT(store_generation_of(s, 2), g2);
	g1 = store_generation_of(s, 1);
	static const enum store_table others[] = {STORE_BRANCHES, STORE_HOSTS,
						  STORE_TOTALS};
	for (size_t i = 0; i < 3; i++) {
		w = (struct one_write){others[i], 2};
		REQUIRE(store_write(s, write_one, &w) == FDO_OK);
		CHECK_EQ_INT(store_generation_of(s, 1), g1);
		CHECK(store_generation_of(s, 2) != g2);
		g2 = store_generation_of(s, 2);
	}
	struct store_stats st0, st1;
	store_stats(s, &st0);
	w = (struct one_write){STORE_AGGS, 1};
	REQUIRE(store_write_derived(s, write_one, &w) == FDO_OK);
	store_stats(s, &st1);
	CHECK_EQ_INT(st1.generation, st0.generation);
	w = (struct one_write){STORE_BATCHES, 1};
	REQUIRE(store_write(s, write_one, &w) == FDO_OK);
	REQUIRE(store_write(s, write_nothing, NULL) == FDO_OK);
	CHECK_EQ_INT(store_generation_of(s, 1), g1);
	CHECK_EQ_INT(store_generation_of(s, 2), g2);
	/* Symbols: every binary. */
	w = (struct one_write){STORE_SYMCACHE, 9};
	REQUIRE(store_write(s, write_one, &w) == FDO_OK);
	CHECK(store_generation_of(s, 1) != g1 &&
	      store_generation_of(s, 2) != g2);
	uint32_t state = 0;
	g1 = store_generation_of(s, 1);
	REQUIRE(store_write(s, set_sym_state, &state) == FDO_OK);
	CHECK_EQ_INT(store_generation_of(s, 1), g1); /* a new build-id */
	REQUIRE(store_write(s, set_sym_state, &state) == FDO_OK);
	CHECK_EQ_INT(store_generation_of(s, 1), g1); /* last seen only */
	state = STORE_SYM_EXECUTABLE;
	REQUIRE(store_write(s, set_sym_state, &state) == FDO_OK);
	CHECK(store_generation_of(s, 1) != g1);
	g1 = store_generation_of(s, 1);
	/* Another process's commit, of any table. */
	pid_t pid = fork();
	if (pid == 0) {
		store *c;
		struct one_write cw = {STORE_BATCHES, 7};
		_exit(open_at(subdir("gen"), 0, 0, &c) ||
		      store_write(c, write_one, &cw));
	}
	int status;
	REQUIRE(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(store_generation_of(s, 1) != g1);
	store_close(s);
}
