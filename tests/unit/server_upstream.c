/*
 * Tests for server/upstream.c: fetches through libdebuginfod from a
 * file:// upstream tree the test lays out (debuginfo then executable, a
 * miss answered by the negative cache and asked again after the retry
 * period, a file with another build-id rejected), the table under many
 * build-ids, and a hanging loopback "server" for the timeout and a prompt
 * stop. tests/ingest/test_upstream.py does the same against a real
 * debuginfod.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "server/upstream.h"
#include "tests/unit/test.h"
#include "tests/unit/storage_fixtures.h"

static char datadir[600], updir[600];
static uint32_t fetched_id;
static int fetched_n;

static void on_fetched(void *arg, uint32_t id)
{
	fetched_id = id;
	__atomic_add_fetch(&fetched_n, 1, __ATOMIC_SEQ_CST);
}

static int build_id_of(const char *path, uint8_t *bid, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	struct store_elf_info info;
	int rc = store_elf_inspect(fd, &info, NULL, 0);
	close(fd);
	memcpy(bid, info.build_id, info.build_id_len);
	*len = info.build_id_len;
	return rc;
}

/* Puts file as upstream's <kind> of build-id bid. */
static int publish(const uint8_t *bid, size_t len, const char *kind,
		   const char *file)
{
	char hex[2 * FDO_BUILD_ID_MAX + 1], cmd[2048];
	fdo_hex_encode(bid, len, hex);
	snprintf(cmd, sizeof cmd,
		 "mkdir -p '%s/buildid/%s' && cp '%s' '%s/buildid/%s/%s'",
		 updir, hex, file, updir, hex, kind);
	return system(cmd);
}

struct pend {
	const uint8_t *bid;
	size_t len;
	uint32_t id;
};

static int pend_fn(store_txn *t, void *arg)
{
	struct pend *p = arg;
	int rc = store_intern_buildid(t, p->bid, p->len, 1, &p->id);
	if (rc)
		return rc;
	uint8_t key[STORE_ADDR_KEY_SIZE];
	struct store_frame a = {p->id, 0x1234};
	store_addr_key_encode(key, &a);
	return store_put(t, STORE_PENDING, key, sizeof key, "", 0, 0);
}

/* Interns bid with one pending address; returns its id (0 on error). */
static uint32_t pending(store *st, const uint8_t *bid, size_t len)
{
	struct pend p = {bid, len, 0};
	return store_write(st, pend_fn, &p) == FDO_OK ? p.id : 0;
}

static unsigned sym_state(store *st, uint32_t id)
{
	store_txn *t;
	struct store_buildid rec = {0};
	if (store_txn_begin(st, 0, &t) == FDO_OK) {
		store_buildid_get(t, id, &rec);
		store_txn_abort(t);
	}
	return rec.sym_state;
}

/* A fresh data directory and store, upstream at url. */
static store *setup(const char *name, const char *url, unsigned timeout,
		    uint64_t retry, srv_upstream **u)
{
	(void)fx_write; /* the fixture header's helpers this file needs not */
	(void)fx_read;
	snprintf(datadir, sizeof datadir, "%s/%s", test_tmpdir(), name);
	snprintf(updir, sizeof updir, "%s/%s-up", test_tmpdir(), name);
	mkdir(updir, 0755);
	char file_url[700];
	if (!url) {
		snprintf(file_url, sizeof file_url, "file://%s", updir);
		url = file_url;
	}
	store *st;
	struct store_opts so = {.dir = datadir};
	if (store_open(&so, &st))
		return NULL;
	struct srv_upstream_opts o = {
		.urls = url,
		.datadir = datadir,
		.timeout = timeout,
		.fetches = 2,
		.retry = retry,
		.st = st,
		.fetched_cb = on_fetched,
	};
	/* No fetch thread runs between cases: setenv is safe here. */
	if (srv_upstream_env(&o) || srv_upstream_create(&o, u)) {
		store_close(st);
		return NULL;
	}
	fetched_n = 0;
	return st;
}

/* Polls until *field of the stats reaches want (at most 10 s). */
#define WAIT_STAT(u, field, want)                                              \
	do {                                                                   \
		struct srv_upstream_stats s_;                                  \
		for (int i_ = 0; i_ < 1000; i_++) {                            \
			srv_upstream_stats(u, &s_);                            \
			if (s_.field >= (want))                                \
				break;                                         \
			usleep(10000);                                         \
		}                                                              \
		CHECK_EQ_INT(s_.field, want);                                  \
	} while (0)

static int client_cache_empty(void)
{
	char cmd[800];
	snprintf(cmd, sizeof cmd,
		 "test -z \"$(ls '%s/debuginfod-client' | grep -E "
		 "'^[0-9a-f]+$')\"",
		 datadir);
	return system(cmd) == 0;
}

TEST(debug_file_then_executable_are_fetched_and_stored)
{
	REQUIRE(fx("exe"));
	srv_upstream *u;
	store *st = setup("fetch", NULL, 10, 600, &u);
	REQUIRE(st);
	uint8_t bid[FDO_BUILD_ID_MAX];
	size_t len;
	REQUIRE(build_id_of(fx("exe"), bid, &len) == FDO_OK);
	REQUIRE(publish(bid, len, "debuginfo", fx("debug")) == 0);
	REQUIRE(publish(bid, len, "executable", fx("stripped")) == 0);
	uint32_t id = pending(st, bid, len);
	REQUIRE(id);
	srv_upstream_want(u, id, bid, len);
	WAIT_STAT(u, ok, 1);
	CHECK_EQ_INT(fetched_n, 1);
	CHECK_EQ_INT(fetched_id, id);
	CHECK_EQ_INT(sym_state(st, id) &
			     (STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO),
		     STORE_SYM_EXECUTABLE | STORE_SYM_DEBUGINFO);
	CHECK(srv_upstream_state(u, id) == NULL); /* done: forgotten */
	/* Asked again (symbols now there): nothing is fetched. */
	srv_upstream_want(u, id, bid, len);
	usleep(200000);
	struct srv_upstream_stats s;
	srv_upstream_stats(u, &s);
	CHECK_EQ_INT(s.ok, 1);
	CHECK_EQ_INT(s.queued + s.running + s.missing + s.failed, 0);
	CHECK(client_cache_empty());
	srv_upstream_destroy(u);
	store_close(st);
}

TEST(a_miss_is_asked_once_until_the_retry_period_is_over)
{
	srv_upstream *u;
	store *st = setup("miss", NULL, 10, 1, &u);
	REQUIRE(st);
	uint8_t bid[20];
	memset(bid, 0xab, sizeof bid);
	uint32_t id = pending(st, bid, sizeof bid);
	REQUIRE(id);
	srv_upstream_want(u, id, bid, sizeof bid);
	WAIT_STAT(u, missing, 1);
	CHECK_EQ_STR(srv_upstream_state(u, id), "not found upstream");
	for (int i = 0; i < 5; i++)
		srv_upstream_want(u, id, bid, sizeof bid);
	struct srv_upstream_stats s;
	srv_upstream_stats(u, &s);
	CHECK_EQ_INT(s.negative_hits, 5);
	CHECK_EQ_INT(s.missing, 1);
	/* After the retry period it is asked again without being wanted. */
	WAIT_STAT(u, missing, 2);
	CHECK(client_cache_empty());
	srv_upstream_destroy(u);
	store_close(st);
}

TEST(a_file_with_another_build_id_is_rejected)
{
	REQUIRE(fx("exe"));
	srv_upstream *u;
	store *st = setup("liar", NULL, 10, 600, &u);
	REQUIRE(st);
	uint8_t bid[20], other[FDO_BUILD_ID_MAX];
	size_t olen;
	memset(bid, 0xcd, sizeof bid);
	REQUIRE(build_id_of(fx("exe"), other, &olen) == FDO_OK);
	REQUIRE(publish(bid, sizeof bid, "debuginfo", fx("exe")) == 0);
	uint32_t id = pending(st, bid, sizeof bid);
	REQUIRE(id);
	srv_upstream_want(u, id, bid, sizeof bid);
	WAIT_STAT(u, rejected, 1);
	CHECK_EQ_STR(srv_upstream_state(u, id), "rejected");
	CHECK_EQ_INT(sym_state(st, id), 0);
	CHECK_EQ_INT(fetched_n, 0);
	char hex[2 * FDO_BUILD_ID_MAX + 1], path[1400];
	fdo_hex_encode(other, olen, hex);
	snprintf(path, sizeof path, "%s/symbols/%.2s/%s", datadir, hex, hex);
	CHECK(access(path, F_OK) != 0);
	CHECK(client_cache_empty());
	srv_upstream_destroy(u);
	store_close(st);
}

TEST(thousands_of_ids_pass_through_the_table)
{
	srv_upstream *u;
	store *st = setup("many", NULL, 10, 600, &u);
	REQUIRE(st);
	/* Ids with no pending addresses: each is taken and dropped, so the
	 * table grows, then empties through every removal path. */
	uint8_t bid[20] = {0};
	for (uint32_t id = 1; id <= 3000; id++) {
		memcpy(bid, &id, sizeof id);
		srv_upstream_want(u, id * 64, bid, sizeof bid);
	}
	struct srv_upstream_stats s;
	for (int i = 0; i < 1000; i++) {
		srv_upstream_stats(u, &s);
		if (!s.queued && !s.running)
			break;
		usleep(10000);
	}
	CHECK_EQ_INT(s.queued, 0);
	CHECK_EQ_INT(s.running, 0);
	CHECK_EQ_INT(s.ok + s.missing + s.failed + s.rejected, 0);
	for (uint32_t id = 1; id <= 3000; id += 7)
		CHECK(srv_upstream_state(u, id * 64) == NULL);
	srv_upstream_destroy(u);
	store_close(st);
}

/* A loopback port that accepts connections and never answers. */
static int hanging_port(int *fd)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof a;
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) ||
	    listen(*fd, 16) || getsockname(*fd, (struct sockaddr *)&a, &alen))
		return -1;
	return ntohs(a.sin_port);
}

TEST(a_silent_server_times_out_and_stop_is_prompt)
{
	int lfd, port = hanging_port(&lfd);
	REQUIRE(port > 0);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	srv_upstream *u;
	store *st = setup("silent", url, 1, 600, &u);
	REQUIRE(st);
	uint8_t bid[20];
	memset(bid, 0xef, sizeof bid);
	uint32_t id = pending(st, bid, sizeof bid);
	REQUIRE(id);
	uint64_t t0 = fdo_now_ns();
	srv_upstream_want(u, id, bid, sizeof bid);
	WAIT_STAT(u, failed, 1);
	double took = (fdo_now_ns() - t0) / 1e9;
	CHECK(took >= 0.9 && took < 4);
	CHECK_EQ_STR(srv_upstream_state(u, id), "fetch failed");
	srv_upstream_destroy(u);
	store_close(st);

	/* A long timeout: stopping does not wait for it. */
	st = setup("silent2", url, 60, 600, &u);
	REQUIRE(st);
	id = pending(st, bid, sizeof bid);
	srv_upstream_want(u, id, bid, sizeof bid);
	WAIT_STAT(u, running, 1);
	t0 = fdo_now_ns();
	srv_upstream_destroy(u);
	took = (fdo_now_ns() - t0) / 1e9;
	CHECK(took < 2.5);
	store_close(st);
	close(lfd);
}
