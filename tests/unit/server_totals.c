/*
 * Tests for the answers that read table totals (server/routes.c
 * /v1/binaries and /v1/binaries/{b}, server/readiness.c): each is
 * built twice over the same store, from table totals and from the full
 * scan of counts they replaced (tests/unit/totals_scan.h), and the JSON
 * bytes must be the same, for several label sets, buckets, windows and
 * rules, before and after retention deletes a bucket.
 */
#include <time.h>
#include <unistd.h>

#include "server/app.h"
#include "tests/unit/test.h"
#include "tests/unit/totals_scan.h"

static const char bid[] = "5f3c1e2d4b5a69788796a5b4c3d2e1f001020304";

/* One batch: binary, labels ("k=v" lines or ""), time, a few stacks. */
static int push(agg_ingest *ing, const char *agent, int seq, const char *binary,
		const char *labels, unsigned long t0, int n)
{
	char text[4096];
	int len = snprintf(text, sizeof text,
			   "agent %s\nseq %d\nhost %s-host\nbinary %s\n%s"
			   "event cpu-clock\nperiod 1000\nweight 1.5\n"
			   "time %lu %lu\nmapping 0 %s 400000 500000 0 /x\n",
			   agent, seq, agent, binary, labels, t0, t0 + 60, bid);
	for (int i = 0; i < n; i++)
		len += snprintf(text + len, sizeof text - (size_t)len,
				"stack %d %x 401000\n", 3 + i * seq,
				0x400100 + 0x10 * i);
	Fdod__SampleBatch *b;
	char err[256];
	if (wire_batch_parse_text(text, (size_t)len, NULL, &b, err,
				  sizeof err)) {
		fprintf(stderr, "  parse: %s\n", err);
		return 0;
	}
	struct agg_result res;
	agg_ingest_batch(ing, b, &res);
	wire_batch_free(b);
	if (res.status)
		fprintf(stderr, "  ingest: %s\n", res.message);
	return res.status == 0;
}

static srv_handler route(const char *pattern)
{
	for (const struct srv_route *r = srv_routes; r->pattern; r++)
		if (!strcmp(r->method, "GET") && !strcmp(r->pattern, pattern))
			return r->fn;
	return NULL;
}

/* The answer of GET pattern (param, query) as "status body". */
static void answer(struct srv_app *app, const char *pattern, const char *param,
		   const char *query, struct fdo_buf *out)
{
	struct srv_req req = {.method = "GET",
			      .path = pattern,
			      .query = query,
			      .body_fd = -1};
	req.param[0] = param;
	req.nparam = param ? 1 : 0;
	struct srv_resp resp = {.status = 200, .body_fd = -1};
	fdo_buf_init(&resp.body);
	fdo_buf_init(&resp.headers);
	route(pattern)(app, &req, &resp);
	fdo_buf_printf(out, "%d ", resp.status);
	fdo_buf_append(out, resp.body.data, resp.body.len);
	fdo_buf_fini(&resp.body);
	fdo_buf_fini(&resp.headers);
}

/* Every answer, from table totals and from the scan: the same bytes. */
static int same_both_ways(struct srv_app *app)
{
	static const struct {
		const char *pattern, *param, *query;
	} asks[] = {
		{"/v1/binaries", NULL, ""},
		{"/v1/binaries/{}", "web", ""},
		{"/v1/binaries/{}", "db", ""},
		{"/v1/binaries/{}", "none", ""},
		{"/v1/binaries/{}/readiness", "web", ""},
		{"/v1/binaries/{}/readiness", "web", "window=0"},
		{"/v1/binaries/{}/readiness", "web", "window=2h"},
		{"/v1/binaries/{}/readiness", "web", "window=3d&min_samples=1"},
		{"/v1/binaries/{}/readiness", "web",
		 "min_samples=10&min_span=2h&min_hosts=2"},
		{"/v1/binaries/{}/readiness", "db", "window=30d"},
		{"/v1/binaries/{}/readiness", "none", ""},
	};
	int ok = 1;
	for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
		struct fdo_buf a, b;
		fdo_buf_init(&a);
		fdo_buf_init(&b);
		app->totals_walk = NULL;
		answer(app, asks[i].pattern, asks[i].param, asks[i].query, &a);
		app->totals_walk = scan_entries_each;
		answer(app, asks[i].pattern, asks[i].param, asks[i].query, &b);
		app->totals_walk = NULL;
		if (a.len != b.len || memcmp(a.data, b.data, a.len)) {
			fprintf(stderr,
				"  %s %s?%s differs:\n  totals: %.*s\n  "
				"scan:   %.*s\n",
				asks[i].pattern,
				asks[i].param ? asks[i].param : "",
				asks[i].query, (int)a.len, a.data, (int)b.len,
				b.data);
			ok = 0;
		}
		fdo_buf_fini(&a);
		fdo_buf_fini(&b);
	}
	return ok;
}

/* Wait (at most 5 s) until the merger's compaction has left one run of
 * one chunk per totals row: a bucket written by two merges holds two runs
 * until then, and a totals row counts each run's entries, so an answer
 * read from totals before a compaction step and the scan after it would
 * differ in "stacks" (it did, 18 against 15, in a fresh clone). */
static int settled(store *st)
{
	for (int i = 0; i < 500; i++) {
		store_txn *t;
		uint64_t chunks = 0, rows = 0;
		if (store_txn_begin(st, 0, &t) == FDO_OK) {
			store_count(t, STORE_COUNTS, &chunks);
			store_count(t, STORE_TOTALS, &rows);
			store_txn_abort(t);
		}
		if (rows && chunks == rows)
			return 1;
		usleep(10000);
	}
	fprintf(stderr, "  compaction did not leave one run per row\n");
	return 0;
}

TEST(binaries_and_readiness_answer_the_same_from_totals_as_from_a_scan)
{
	struct store_opts so = {.dir = test_subdir("data")};
	store *st;
	REQUIRE(store_open(&so, &st) == FDO_OK);
	struct agg_ingest_opts io = {.retention = 0};
	agg_ingest *ing;
	REQUIRE(agg_ingest_create(st, &io, &ing) == FDO_OK);
	struct srv_app app;
	memset(&app, 0, sizeof app);
	app.st = st;
	app.ingest = ing;
	app.cfg.bucket = 3600;
	app.cfg.min_samples = 1000;
	app.cfg.min_hosts = 1;
	app.cfg.min_span = 0;

	unsigned long now = (unsigned long)time(NULL), h = 3600;
	unsigned long t0 = now - now % h;
	/* web: three label sets over 5 buckets, two hosts; db: one. */
	CHECK(push(ing, "a", 1, "web", "label mode=serving\n", t0 - 4 * h, 3));
	CHECK(push(ing, "a", 2, "web", "label mode=serving\n", t0 - 4 * h, 4));
	CHECK(push(ing, "a", 3, "web", "label mode=serving\n", t0, 2));
	CHECK(push(ing, "b", 1, "web", "label mode=serving\nlabel region=eu\n",
		   t0 - 2 * h, 3));
	CHECK(push(ing, "b", 2, "web", "label mode=batch\n", t0 - 50 * h, 5));
	CHECK(push(ing, "b", 3, "web", "", t0 - h, 1));
	CHECK(push(ing, "c", 1, "db", "", t0 - 3 * h, 2));
	REQUIRE(agg_ingest_flush(ing, 10000) == FDO_OK);
	CHECK(settled(st));
	CHECK(totals_match_scan(st));
	CHECK(same_both_ways(&app));

	/* A sample of the answers, to know the comparison saw real figures. */
	struct fdo_buf a;
	fdo_buf_init(&a);
	answer(&app, "/v1/binaries/{}", "web", "", &a);
	fdo_buf_putc(&a, 0);
	CHECK(!strncmp(a.data, "200 {\"name\":\"web\"", 17));
	CHECK(strstr(a.data, "\"stacks\":") && !strstr(a.data, "\"stacks\":0"));
	fdo_buf_fini(&a);

	/* Retention drops the two oldest buckets of web: both ways agree. */
	agg_ingest_destroy(ing);
	struct agg_ingest_opts io2 = {.retention = 49 * h, .housekeeping = 1};
	REQUIRE(agg_ingest_create(st, &io2, &ing) == FDO_OK);
	app.ingest = ing;
	CHECK(push(ing, "c", 2, "db", "", t0, 1));
	REQUIRE(agg_ingest_flush(ing, 10000) == FDO_OK);
	/* The merger expires in its idle time, at most once a second. */
	int expired = 0;
	for (int i = 0; i < 100 && !expired; i++) {
		store_txn *t;
		uint32_t web;
		static struct scan_rows r;
		memset(&r, 0, sizeof r);
		REQUIRE(store_txn_begin(st, 0, &t) == FDO_OK);
		int rc = store_intern_binary(t, "web", 3, 0, &web);
		if (!rc)
			rc = store_totals_each(t, web, scan_row, &r);
		store_txn_abort(t);
		expired = !rc && r.n;
		for (size_t k = 0; k < r.n; k++)
			if (r.k[k].bucket <= t0 - 50 * h)
				expired = 0;
		if (!expired)
			usleep(50000);
	}
	CHECK(expired);
	CHECK(settled(st));
	CHECK(totals_match_scan(st));
	CHECK(same_both_ways(&app));
	agg_ingest_destroy(ing);
	store_close(st);
}
