/* Tests for storage/wal.c: append, sync, replay, torn tail, rotation, trim. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/unit/test.h"

static const char *fresh_dir(const char *name)
{
	static char dir[512];
	snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
	mkdir(dir, 0755);
	return dir;
}

struct seen {
	int n;
	size_t bytes;
	struct store_wal_pos last;
	int stop_at;
};

static int count_rec(void *arg, const void *rec, size_t len,
		     struct store_wal_pos end)
{
	struct seen *s = arg;
	const unsigned char *p = rec;
	for (size_t i = 0; i < len; i++)
		if (p[i] != (unsigned char)(s->n + i))
			return FDO_ECORRUPT;
	s->n++;
	s->bytes += len;
	s->last = end;
	return s->stop_at && s->n == s->stop_at ? 99 : FDO_OK;
}

static void rec_for(int i, unsigned char *buf, size_t len)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (unsigned char)(i + k);
}

TEST(append_sync_replay_round_trip)
{
	const char *dir = fresh_dir("a");
	store_wal *w;
	REQUIRE(store_wal_open(dir, 0, &w) == FDO_OK);
	unsigned char buf[3000];
	struct store_wal_pos mid = {0, 0};
	for (int i = 0; i < 100; i++) {
		rec_for(i, buf, 10 + (size_t)i * 7);
		struct store_wal_pos e;
		REQUIRE(store_wal_append(w, buf, 10 + (size_t)i * 7, &e) ==
			FDO_OK);
		if (i == 49)
			mid = e;
	}
	REQUIRE(store_wal_sync(w) == FDO_OK);
	store_wal_close(w);
	REQUIRE(store_wal_open(dir, 0, &w) == FDO_OK);
	struct seen s = {0};
	CHECK_EQ_INT(store_wal_replay(w, (struct store_wal_pos){0, 0},
				      count_rec, &s),
		     FDO_OK);
	CHECK_EQ_INT(s.n, 100);
	/* From the middle: records 50.. (the checker expects n from 50). */
	struct seen s2 = {.n = 50};
	CHECK_EQ_INT(store_wal_replay(w, mid, count_rec, &s2), FDO_OK);
	CHECK_EQ_INT(s2.n, 100);
	struct seen s3 = {.stop_at = 5};
	CHECK_EQ_INT(store_wal_replay(w, (struct store_wal_pos){0, 0},
				      count_rec, &s3),
		     99);
	CHECK(store_wal_append(w, buf, 0, NULL) == FDO_EINVAL);
	store_wal_close(w);
}

TEST(torn_tail_is_cut_and_appends_continue)
{
	const char *dir = fresh_dir("b");
	store_wal *w;
	REQUIRE(store_wal_open(dir, 0, &w) == FDO_OK);
	unsigned char buf[100];
	for (int i = 0; i < 3; i++) {
		rec_for(i, buf, sizeof buf);
		REQUIRE(store_wal_append(w, buf, sizeof buf, NULL) == FDO_OK);
	}
	REQUIRE(store_wal_sync(w) == FDO_OK);
	store_wal_close(w);
	/* A crash mid-append: half a record header and some payload. */
	char path[600];
	snprintf(path, sizeof path, "%s/wal/%016llx.wal", dir, 1ull);
	int fd = open(path, O_WRONLY | O_APPEND);
	REQUIRE(fd >= 0);
	unsigned char junk[] = {0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7};
	CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
	close(fd);
	REQUIRE(store_wal_open(dir, 0, &w) == FDO_OK);
	rec_for(3, buf, sizeof buf);
	REQUIRE(store_wal_append(w, buf, sizeof buf, NULL) == FDO_OK);
	REQUIRE(store_wal_sync(w) == FDO_OK);
	struct seen s = {0};
	CHECK_EQ_INT(store_wal_replay(w, (struct store_wal_pos){0, 0},
				      count_rec, &s),
		     FDO_OK);
	CHECK_EQ_INT(s.n, 4);
	store_wal_close(w);
}

TEST(rotation_and_trim)
{
	const char *dir = fresh_dir("c");
	store_wal *w;
	REQUIRE(store_wal_open(dir, 4096, &w) == FDO_OK);
	unsigned char buf[1000];
	struct store_wal_pos e = {0, 0}, at20 = {0, 0};
	for (int i = 0; i < 40; i++) {
		rec_for(i, buf, sizeof buf);
		REQUIRE(store_wal_append(w, buf, sizeof buf, &e) == FDO_OK);
		if (i == 19)
			at20 = e;
	}
	REQUIRE(store_wal_sync(w) == FDO_OK);
	uint64_t segs, bytes;
	store_wal_stats(w, &segs, &bytes);
	CHECK(segs >= 10);
	REQUIRE(store_wal_trim(w, at20) == FDO_OK);
	uint64_t segs2;
	store_wal_stats(w, &segs2, &bytes);
	CHECK(segs2 < segs);
	/* What is left still replays from at20 on. */
	struct seen s = {.n = 20};
	CHECK_EQ_INT(store_wal_replay(w, at20, count_rec, &s), FDO_OK);
	CHECK_EQ_INT(s.n, 40);
	store_wal_close(w);
}

TEST(damage_in_an_old_segment_is_corruption)
{
	const char *dir = fresh_dir("d");
	store_wal *w;
	REQUIRE(store_wal_open(dir, 4096, &w) == FDO_OK);
	unsigned char buf[1000];
	for (int i = 0; i < 12; i++) {
		rec_for(i, buf, sizeof buf);
		REQUIRE(store_wal_append(w, buf, sizeof buf, NULL) == FDO_OK);
	}
	REQUIRE(store_wal_sync(w) == FDO_OK);
	store_wal_close(w);
	char path[600];
	snprintf(path, sizeof path, "%s/wal/%016llx.wal", dir, 1ull);
	int fd = open(path, O_WRONLY);
	REQUIRE(fd >= 0);
	CHECK(pwrite(fd, "XXXX", 4, 100) == 4);
	close(fd);
	REQUIRE(store_wal_open(dir, 4096, &w) == FDO_OK);
	struct seen s = {0};
	CHECK_EQ_INT(store_wal_replay(w, (struct store_wal_pos){0, 0},
				      count_rec, &s),
		     FDO_ECORRUPT);
	store_wal_close(w);
}

TEST(applied_position_round_trip)
{
	const char *dir = fresh_dir("e");
	struct store_opts o = {.dir = dir};
	store *st;
	REQUIRE(store_open(&o, &st) == FDO_OK);
	store_txn *t;
	REQUIRE(store_txn_begin(st, 1, &t) == FDO_OK);
	struct store_wal_pos p;
	CHECK_EQ_INT(store_wal_applied_get(t, &p), FDO_OK);
	CHECK(p.segment == 0 && p.offset == 0);
	CHECK_EQ_INT(store_wal_applied_put(t, (struct store_wal_pos){7, 1234}),
		     FDO_OK);
	REQUIRE(store_txn_commit(t) == FDO_OK);
	REQUIRE(store_txn_begin(st, 0, &t) == FDO_OK);
	CHECK_EQ_INT(store_wal_applied_get(t, &p), FDO_OK);
	CHECK(p.segment == 7 && p.offset == 1234);
	store_txn_abort(t);
	store_close(st);
}

TEST(start_after_an_applied_position_beyond_the_log)
{
	const char *dir = fresh_dir("f");
	store_wal *w;
	REQUIRE(store_wal_open(dir, 0, &w) == FDO_OK);
	unsigned char buf[100];
	rec_for(0, buf, sizeof buf);
	struct store_wal_pos e;
	REQUIRE(store_wal_append(w, buf, sizeof buf, &e) == FDO_OK);
	REQUIRE(store_wal_sync(w) == FDO_OK);
	/* Behind the end: nothing changes. */
	CHECK_EQ_INT(store_wal_start_after(w, (struct store_wal_pos){1, 16}),
		     FDO_OK);
	struct store_wal_pos e2;
	REQUIRE(store_wal_append(w, buf, sizeof buf, &e2) == FDO_OK);
	CHECK(e2.segment == 1);
	/* A restored store applied (7, 5000): new records go past it. */
	CHECK_EQ_INT(store_wal_start_after(w, (struct store_wal_pos){7, 5000}),
		     FDO_OK);
	REQUIRE(store_wal_append(w, buf, sizeof buf, &e2) == FDO_OK);
	CHECK(e2.segment == 8);
	REQUIRE(store_wal_sync(w) == FDO_OK);
	struct seen s = {0};
	CHECK_EQ_INT(store_wal_replay(w, (struct store_wal_pos){7, 5000},
				      count_rec, &s),
		     FDO_OK);
	CHECK_EQ_INT(s.n, 1);
	store_wal_close(w);
}
