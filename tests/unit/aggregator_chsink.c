/*
 * tests/unit/aggregator_chsink.c — aggregator/chsink.c without a server
 * (its URL points at a closed loopback port): what a merge's transaction
 * stages, what an aborted one leaves, the outbox's bound, what a restart
 * keeps, and the outbox file's coding. Against a real ClickHouse:
 * tests/cluster/test_fdod_store.py.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/chsink.h"
#include "common/common.h"
#include "storage/backend.h"
#include "tests/unit/test.h"

#define URL "clickhouse://127.0.0.1:1/fdod"

struct stage {
	chsink *s;
	struct entries counts, stacks;
	int fail;  /* the transaction fails after staging */
	int extra; /* stacks 100.. added on day 3 */
};

static int stage_txn(store_txn *t, void *arg)
{
	struct stage *x = arg;
	uint32_t bin = 0, lab = 0;
	int rc = store_intern_binary(t, "app", 3, 1, &bin);
	if (!rc)
		rc = store_intern_labelset(t, "zone=a'b", 8, 1, &lab);
	x->counts.n = 0;
	/* Two days, a stack twice (summed), sorted as flush_runs leaves
	 * them. */
	uint64_t k0[4] = {(uint64_t)bin << 32 | lab, 86400 * 3 + 3600, 7, 0};
	uint64_t k1[4] = {(uint64_t)bin << 32 | lab, 86400 * 4, 9, 0};
	if (!rc)
		rc = entries_add(&x->counts, k0, 10, 1);
	if (!rc)
		rc = entries_add(&x->counts, k0, 5, 2);
	for (int i = 0; !rc && i < x->extra; i++) {
		uint64_t k[4] = {(uint64_t)bin << 32 | lab, 86400 * 3 + 7200,
				 100 + (uint64_t)i, 0};
		rc = entries_add(&x->counts, k, 1, 1);
	}
	if (!rc)
		rc = entries_add(&x->counts, k1, 1, 1);
	if (!rc)
		rc = chsink_stage(x->s, t, NULL, &x->counts, &x->stacks);
	return rc ? rc : x->fail ? FDO_EIO : FDO_OK;
}

/* A store in test_subdir(name) and a sink on it (x zeroed first). */
static store *open_both(const char *dir, struct stage *x)
{
	struct store_opts o = {.dir = dir};
	store *st = NULL;
	char err[512] = "";
	memset(x, 0, sizeof *x);
	if (store_open(&o, &st) ||
	    chsink_open(URL, st, dir, &x->s, err, sizeof err)) {
		fprintf(stderr, "open %s: %s\n", dir, err);
		exit(2);
	}
	return st;
}

static void close_both(store *st, struct stage *x)
{
	chsink_close(x->s);
	free(x->counts.v);
	free(x->counts.tmp);
	store_close(st);
}

/* The outbox's files, sorted names into names[0..n). */
static size_t outbox(const char *dir, char names[32][64])
{
	char path[600];
	snprintf(path, sizeof path, "%s/clickhouse-outbox", dir);
	DIR *d = opendir(path);
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && n < 32)
			snprintf(names[n++], 64, "%.63s", e->d_name);
	if (d)
		closedir(d);
	qsort(names, n, 64, (int (*)(const void *, const void *))strcmp);
	return n;
}

struct seen {
	int n;
	uint32_t days[8];
	size_t lens[8];
	const uint8_t *bodies[8];
};

static int piece(void *arg, int kind, uint32_t day, const uint8_t *body,
		 size_t n)
{
	struct seen *x = arg;
	if (kind != CHSINK_COUNTS || x->n == 8)
		return FDO_EINVAL;
	x->days[x->n] = day;
	x->bodies[x->n] = body;
	x->lens[x->n++] = n;
	return FDO_OK;
}

/* The outbox's one file, name, into buf (cap bytes): its length; its
 * sequence number in *seq. */
static size_t read_only_file(const char *dir, const char *name, uint8_t *buf,
			     size_t cap, uint64_t *seq)
{
	char path[700];
	snprintf(path, sizeof path, "%s/clickhouse-outbox/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "open %s\n", path);
		exit(2);
	}
	size_t len = fread(buf, 1, cap, f);
	fclose(f);
	*seq = strtoull(name, NULL, 16);
	return len;
}

TEST(aborted_stage_leaves_no_file_committed_one_stays)
{
	const char *dir = test_subdir("abort");
	struct stage x;
	store *st = open_both(dir, &x);
	char err[512] = "";
	char names[32][64];
	x.fail = 1;
	CHECK_EQ_INT(store_write(st, stage_txn, &x), FDO_EIO);
	CHECK_EQ_INT(outbox(dir, names), 1); /* until the next stage */
	x.fail = 0;
	REQUIRE(store_write(st, stage_txn, &x) == FDO_OK);
	chsink_committed(x.s);
	REQUIRE(outbox(dir, names) == 1);
	CHECK(strstr(names[0], ".blk") != NULL);

	/* The file: one counts piece per day, the stack's deltas summed,
	 * each piece ending with its marker row. */
	static uint8_t buf[4096];
	uint64_t seq;
	size_t len = read_only_file(dir, names[0], buf, sizeof buf, &seq);
	struct seen seen = {0};
	CHECK_EQ_INT(chsink_file_decode(buf, len, seq, piece, &seen, err,
					sizeof err),
		     FDO_OK);
	CHECK_EQ_INT(seen.n, 2);
	CHECK_EQ_INT(seen.days[0], 3);
	CHECK_EQ_INT(seen.days[1], 4);
	/* One row (1+"app" 1+"zone=a'b" 4+8+16+8 = 49 bytes) and the
	 * marker (1+"" 1+"node="+32 hex 4+8+16+8 = 75 bytes). */
	CHECK_EQ_INT(seen.lens[0], 49 + 75);
	const uint8_t *r = seen.bodies[0];
	CHECK(!memcmp(r,
		      "\x03"
		      "app"
		      "\x08"
		      "zone=a'b",
		      13));
	CHECK_EQ_INT(r[17], 7);	 /* stack */
	CHECK_EQ_INT(r[25], 15); /* weight 10 + 5 */
	CHECK_EQ_INT(r[41], 3);	 /* samples 1 + 2 */
	CHECK(!memcmp(r + 49, "\x00\x25node=", 7));
	CHECK_EQ_INT(chsink_file_decode(buf, len, seq + 1, piece, &seen, err,
					sizeof err),
		     FDO_ECORRUPT);
	buf[len - 1] ^= 1;
	CHECK_EQ_INT(chsink_file_decode(buf, len, seq, piece, &seen, err,
					sizeof err),
		     FDO_ECORRUPT);
	CHECK(strstr(err, "does not check") != NULL);
	close_both(st, &x);
}

/* A merge's day of more rows than a piece holds: several pieces (one
 * INSERT, one part each), each with its own marker, the day's start plus
 * the piece's index; every row in exactly one. */
TEST(a_large_day_is_cut_into_pieces_each_with_its_marker)
{
	const char *dir = test_subdir("pieces");
	struct stage x;
	store *st = open_both(dir, &x);
	char err[512] = "";
	char names[32][64];
	chsink_set_piece_rows(x.s, 2);
	x.extra = 4; /* day 3: stack 7 and 100..103, five rows */
	REQUIRE(store_write(st, stage_txn, &x) == FDO_OK);
	chsink_committed(x.s);
	REQUIRE(outbox(dir, names) == 1);
	static uint8_t buf[8192];
	uint64_t seq;
	size_t len = read_only_file(dir, names[0], buf, sizeof buf, &seq);
	struct seen seen = {0};
	REQUIRE(chsink_file_decode(buf, len, seq, piece, &seen, err,
				   sizeof err) == FDO_OK);
	/* Day 3: 2 + 2 + 1 rows; day 4: 1 row. */
	CHECK_EQ_INT(seen.n, 4);
	uint32_t want_day[4] = {3, 3, 3, 4}, want_k[4] = {0, 1, 2, 0};
	size_t want_rows[4] = {2, 2, 1, 1};
	for (int i = 0; i < seen.n && i < 4; i++) {
		CHECK_EQ_INT(seen.days[i], want_day[i]);
		CHECK_EQ_INT(seen.lens[i], want_rows[i] * 49 + 75);
		/* The marker: the piece's last 75 bytes, its bucket after
		 * the two names (1 + 0, 1 + 37 bytes). */
		const uint8_t *m = seen.bodies[i] + seen.lens[i] - 75;
		uint32_t bucket = (uint32_t)m[39] | (uint32_t)m[40] << 8 |
				  (uint32_t)m[41] << 16 | (uint32_t)m[42] << 24;
		CHECK_EQ_INT(bucket, want_day[i] * 86400 + want_k[i]);
		CHECK(!memcmp(m, "\x00\x25node=", 7));
	}
	close_both(st, &x);
}

TEST(outbox_bound_then_restart_keeps_committed_files_only)
{
	const char *dir = test_subdir("bound");
	struct stage x;
	store *st = open_both(dir, &x);
	char err[512] = "";
	char names[32][64];
	for (int i = 0; i < CHSINK_MAX_FILES; i++) {
		CHECK_EQ_INT(chsink_room(x.s), FDO_OK);
		REQUIRE(store_write(st, stage_txn, &x) == FDO_OK);
		chsink_committed(x.s);
	}
	/* ClickHouse does not answer: full; the next merge waits. */
	CHECK_EQ_INT(chsink_room(x.s), FDO_EBUSY);
	struct chsink_stats s;
	chsink_stats(x.s, &s);
	CHECK_EQ_INT(s.files, CHSINK_MAX_FILES);
	CHECK_EQ_INT(s.sent, 0);
	/* A stage whose transaction does not commit, then a stop. */
	x.fail = 1;
	CHECK_EQ_INT(store_write(st, stage_txn, &x), FDO_EIO);
	CHECK_EQ_INT(outbox(dir, names), CHSINK_MAX_FILES + 1);
	chsink_close(x.s);
	/* The next start deletes it and keeps the committed ones, in order:
	 * names are increasing sequence numbers. */
	REQUIRE(chsink_open(URL, st, dir, &x.s, err, sizeof err) == FDO_OK);
	CHECK_EQ_INT(outbox(dir, names), CHSINK_MAX_FILES);
	chsink_stats(x.s, &s);
	CHECK_EQ_INT(s.files, CHSINK_MAX_FILES);
	CHECK_EQ_INT(chsink_room(x.s), FDO_EBUSY);
	close_both(st, &x);
}

TEST(url_refused_before_anything_is_created)
{
	const char *dir = test_subdir("url");
	struct store_opts o = {.dir = dir};
	store *st;
	REQUIRE(store_open(&o, &st) == FDO_OK);
	chsink *s = NULL;
	char err[512] = "";
	CHECK_EQ_INT(chsink_open("clickhouse://h/db", st, dir, &s, err,
				 sizeof err),
		     FDO_EINVAL);
	CHECK(strstr(err, "clickhouse://HOST:PORT/DB") != NULL);
	char names[32][64];
	CHECK_EQ_INT(outbox(dir, names), 0);
	store_close(st);
}
