/*
 * tests/unit/storage_clickhouse.c — storage/clickhouse.c without a server:
 * the store URL, SQL quoting, the RowBinary answer decoder, an unreachable
 * server; and the LMDB side of storage/backend.h. The two backends against
 * real ClickHouse servers: tests/cluster/test_clickhouse.py.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include "common/common.h"
#include "storage/backend.h"
#include "storage/clickhouse.h"
#include "tests/unit/test.h"

TEST(url_parses)
{
	struct ch_url u;
	char err[256] = "";
	CHECK_EQ_INT(ch_url_parse("clickhouse://127.0.0.1:8123/fdod", &u, err,
				  sizeof err),
		     FDO_OK);
	CHECK_EQ_STR(u.host, "127.0.0.1");
	CHECK_EQ_INT(u.port, 8123);
	CHECK_EQ_STR(u.db, "fdod");
	CHECK_EQ_STR(u.cluster, "");
	CHECK_EQ_INT(ch_url_parse("clickhouse://ch-1.example:1/d_2?cluster=c1",
				  &u, err, sizeof err),
		     FDO_OK);
	CHECK_EQ_STR(u.host, "ch-1.example");
	CHECK_EQ_INT(u.port, 1);
	CHECK_EQ_STR(u.cluster, "c1");
	CHECK_EQ_INT(ch_url_parse("clickhouse://[::1]:65535/x", &u, err,
				  sizeof err),
		     FDO_OK);
	CHECK_EQ_STR(u.host, "[::1]");
}

TEST(url_refuses)
{
	static const char *const bad[] = {
		NULL,
		"",
		"http://127.0.0.1:8123/fdod",
		"clickhouse://",
		"clickhouse://127.0.0.1/fdod",
		"clickhouse://127.0.0.1:/fdod",
		"clickhouse://127.0.0.1:0/fdod",
		"clickhouse://127.0.0.1:65536/fdod",
		"clickhouse://127.0.0.1:123456/fdod",
		"clickhouse://127.0.0.1:8123",
		"clickhouse://127.0.0.1:8123/",
		"clickhouse://127.0.0.1:8123/1db",
		"clickhouse://127.0.0.1:8123/db;DROP",
		"clickhouse://127.0.0.1:8123/db?cluster=",
		"clickhouse://127.0.0.1:8123/db?cluster=a b",
		"clickhouse://127.0.0.1:8123/db?user=x",
		"clickhouse://user@127.0.0.1:8123/db",
		"clickhouse://[::1:8123/db",
		"clickhouse://a'b:8123/db",
		"clickhouse://127.0.0.1:8123/"
		"a12345678901234567890123456789012345678901234567890123456789"
		"0123456",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct ch_url u;
		char err[256] = "";
		int rc = ch_url_parse(bad[i], &u, err, sizeof err);
		if (rc != FDO_EINVAL || !strstr(err, "store URL")) {
			fprintf(stderr, "  %s: %d %s\n",
				bad[i] ? bad[i] : "(null)", rc, err);
			CHECK(0);
		}
	}
}

TEST(quotes_sql)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	ch_sql_quote(&b, "a'b\\c\n\x01\xff", 8);
	CHECK_EQ_STR(fdo_buf_cstr(&b), "'a\\'b\\\\c\\x0a\\x01\\xff'");
	fdo_buf_fini(&b);
}

struct rows {
	struct backend_sum v[16];
	size_t n;
};

static int collect(void *arg, const struct backend_sum *s)
{
	struct rows *r = arg;
	if (r->n == 16)
		return FDO_ELIMIT;
	r->v[r->n++] = *s;
	return FDO_OK;
}

static void put_row(uint8_t *p, uint32_t l, uint32_t b, uint64_t s,
		    wire_weight_t w, uint64_t n)
{
	uint64_t f[5] = {l | (uint64_t)b << 32, s, (uint64_t)w,
			 (uint64_t)(w >> 64), n};
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 8; j++)
			p[8 * i + j] = (uint8_t)(f[i] >> (8 * j));
}

TEST(decodes_sums)
{
	uint8_t a[3 * CH_SUM_ROW_SIZE];
	wire_weight_t big = ((wire_weight_t)1 << 127) + 5;
	put_row(a, 0, 3600, 9, big, 7);
	put_row(a + 40, 0, 7200, 1, 3, 1);
	put_row(a + 80, 1, 0, 0, 0, 0);
	struct rows r = {0};
	char err[256] = "";
	CHECK_EQ_INT(ch_sums_decode(a, sizeof a, 2, collect, &r, err,
				    sizeof err),
		     FDO_OK);
	REQUIRE(r.n == 3);
	CHECK(r.v[0].weight == big);
	CHECK_EQ_INT(r.v[0].bucket, 3600);
	CHECK_EQ_INT(r.v[0].stack, 9);
	CHECK_EQ_INT(r.v[0].samples, 7);
	CHECK_EQ_INT(r.v[2].label, 1);
	/* Empty answer: no rows. */
	r.n = 0;
	CHECK_EQ_INT(ch_sums_decode(NULL, 0, 2, collect, &r, err, sizeof err),
		     FDO_OK);
	CHECK_EQ_INT(r.n, 0);
	/* Not whole rows; a label set out of range; out of order. */
	CHECK_EQ_INT(ch_sums_decode(a, sizeof a - 1, 2, collect, &r, err,
				    sizeof err),
		     FDO_ECORRUPT);
	CHECK_EQ_INT(ch_sums_decode(a, sizeof a, 1, collect, &r, err,
				    sizeof err),
		     FDO_ECORRUPT);
	CHECK(strstr(err, "label set") != NULL);
	put_row(a + 40, 0, 3600, 9, 1, 1);
	CHECK_EQ_INT(ch_sums_decode(a, sizeof a, 2, collect, &r, err,
				    sizeof err),
		     FDO_ECORRUPT);
	CHECK(strstr(err, "out of order") != NULL);
}

/* A loopback port nothing listens on: bound, never listened to. */
static int closed_port(int *fd)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t al = sizeof a;
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) ||
	    getsockname(*fd, (struct sockaddr *)&a, &al))
		return 0;
	return ntohs(a.sin_port);
}

TEST(unreachable_is_an_error)
{
	int fd;
	int port = closed_port(&fd);
	REQUIRE(port > 0);
	char url[128], err[512] = "";
	snprintf(url, sizeof url, "clickhouse://127.0.0.1:%d/fdod", port);
	struct ch_opts o = {.connect_ms = 500, .timeout_ms = 2000};
	ch_client *c;
	REQUIRE(ch_open(url, &o, &c, err, sizeof err) == FDO_OK);
	CHECK_EQ_INT(ch_create_schema(c, err, sizeof err), FDO_ETRANSPORT);
	CHECK(strstr(err, "ClickHouse http://127.0.0.1:") != NULL);
	struct backend_group g = {"b", "", 3600};
	struct backend_delta d = {0, 1, 2, 3};
	struct backend_block blk = {&g, 1, &d, 1};
	CHECK_EQ_INT(ch_append(c, &blk, err, sizeof err), FDO_ETRANSPORT);
	const char *labels[] = {""};
	struct backend_read rd = {"b", labels, 1, 0, 7200};
	struct rows r = {0};
	CHECK_EQ_INT(ch_read_sums(c, &rd, collect, &r, err, sizeof err),
		     FDO_ETRANSPORT);
	CHECK_EQ_INT(r.n, 0);
	ch_close(c);
	close(fd);
	/* backend_open creates the schema: the same error. */
	struct backend be;
	CHECK_EQ_INT(backend_open(url, &be, err, sizeof err), FDO_ETRANSPORT);
	CHECK_EQ_INT(backend_open("lmdb", &be, err, sizeof err), FDO_EINVAL);
}

TEST(silent_server_times_out)
{
	/* A socket that listens but never answers: the kernel completes
	 * the connection, the request is sent, no answer comes. */
	int fd;
	int port = closed_port(&fd);
	REQUIRE(port > 0);
	REQUIRE(listen(fd, 4) == 0);
	char url[128], err[512] = "";
	snprintf(url, sizeof url, "clickhouse://127.0.0.1:%d/fdod", port);
	struct ch_opts o = {.connect_ms = 500, .timeout_ms = 300};
	ch_client *c;
	REQUIRE(ch_open(url, &o, &c, err, sizeof err) == FDO_OK);
	CHECK_EQ_INT(ch_create_schema(c, err, sizeof err), FDO_ETRANSPORT);
	CHECK(strstr(err, "imed out") != NULL);
	ch_close(c);
	close(fd);
}

TEST(block_checks)
{
	struct backend_group g[2] = {{"b", "", 3600}, {"", "", 3600}};
	struct backend_delta d[3] = {{0, 5, 1, 1}, {0, 2, 2, 1}, {0, 5, 3, 2}};
	struct backend_block blk = {g, 1, d, 3};
	struct backend_delta *out;
	size_t n;
	char err[256];
	REQUIRE(backend_block_sum(&blk, &out, &n, err, sizeof err) == FDO_OK);
	REQUIRE(n == 2);
	CHECK_EQ_INT(out[0].stack, 2);
	CHECK_EQ_INT(out[1].stack, 5);
	CHECK(out[1].weight == 4);
	CHECK_EQ_INT(out[1].samples, 3);
	free(out);
	d[1].group = 1; /* past ngroups */
	CHECK_EQ_INT(backend_block_sum(&blk, &out, &n, err, sizeof err),
		     FDO_EINVAL);
	blk.ngroups = 2; /* now group 1 has an empty binary name */
	CHECK_EQ_INT(backend_block_sum(&blk, &out, &n, err, sizeof err),
		     FDO_EINVAL);
	d[1].group = 0;
	d[0].weight = ~(wire_weight_t)0;
	blk.ngroups = 1;
	CHECK_EQ_INT(backend_block_sum(&blk, &out, &n, err, sizeof err),
		     FDO_ELIMIT);
	d[0].weight = 1;
	d[0].samples = UINT64_MAX; /* + d[2]'s 2 passes 2^64 */
	CHECK_EQ_INT(backend_block_sum(&blk, &out, &n, err, sizeof err),
		     FDO_ELIMIT);
	/* a row of zeros: SummingMergeTree would drop it, LMDB keep it */
	d[0].samples = 0;
	d[0].weight = 0;
	CHECK_EQ_INT(backend_block_sum(&blk, &out, &n, err, sizeof err),
		     FDO_EINVAL);
	CHECK(strstr(err, "zero") != NULL);
}

TEST(read_checks)
{
	const char *two[2] = {"a=1", "a=1"};
	struct backend_read r = {"b", two, 2, 0, 10};
	char err[256];
	CHECK_EQ_INT(backend_read_check(&r, err, sizeof err), FDO_EINVAL);
	CHECK(strstr(err, "the same") != NULL);
	two[1] = "a=2";
	CHECK_EQ_INT(backend_read_check(&r, err, sizeof err), FDO_OK);
	r.nlabels = 0;
	CHECK_EQ_INT(backend_read_check(&r, err, sizeof err), FDO_EINVAL);
	r.nlabels = 2;
	r.binary = "";
	CHECK_EQ_INT(backend_read_check(&r, err, sizeof err), FDO_EINVAL);
}

TEST(lmdb_backend_sums)
{
	struct store_opts so = {.dir = test_subdir("lmdb")};
	store *st;
	REQUIRE(store_open(&so, &st) == FDO_OK);
	struct backend be;
	backend_lmdb(st, &be);
	char err[256] = "";
	struct backend_group g[3] = {
		{"bin", "", 3600}, {"bin", "k=v", 3600}, {"bin", "", 7200}};
	struct backend_delta d[4] = {
		{0, 9, 10, 1}, {1, 9, 20, 2}, {2, 4, 30, 3}, {0, 3, 40, 4}};
	struct backend_block blk = {g, 3, d, 4};
	REQUIRE(be.ops->append(be.self, &blk, err, sizeof err) == FDO_OK);
	/* Twice: the second run of each bucket sums with the first. */
	REQUIRE(be.ops->append(be.self, &blk, err, sizeof err) == FDO_OK);
	const char *labels[] = {"k=v", "", "none=here"};
	struct backend_read rd = {"bin", labels, 3, 3600, 7200};
	struct rows r = {0};
	REQUIRE(be.ops->read_sums(be.self, &rd, collect, &r, err, sizeof err) ==
		FDO_OK);
	REQUIRE(r.n == 3);
	CHECK(r.v[0].label == 0 && r.v[0].stack == 9 && r.v[0].weight == 40 &&
	      r.v[0].samples == 4);
	CHECK(r.v[1].label == 1 && r.v[1].stack == 3 && r.v[1].weight == 80);
	CHECK(r.v[2].label == 1 && r.v[2].stack == 9 && r.v[2].weight == 20);
	rd.binary = "other";
	r.n = 0;
	CHECK_EQ_INT(be.ops->read_sums(be.self, &rd, collect, &r, err,
				       sizeof err),
		     FDO_OK);
	CHECK_EQ_INT(r.n, 0);
	backend_close(&be);
	store_close(st);
}

TEST(decodes_days)
{
	uint8_t a[12] = {1, 0, 0, 0, 2, 0, 0, 0, 0xcd, 0x4f, 0, 0};
	uint32_t d[3];
	size_t n;
	char err[256];
	CHECK_EQ_INT(ch_days_decode(a, 12, 20430, d, 3, &n, err, sizeof err),
		     FDO_OK);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(d[2], 20429);
	CHECK_EQ_INT(ch_days_decode(a, 12, 20429, d, 3, &n, err, sizeof err),
		     FDO_ECORRUPT);
	CHECK_EQ_INT(ch_days_decode(a, 11, 20430, d, 3, &n, err, sizeof err),
		     FDO_ECORRUPT);
	CHECK_EQ_INT(ch_days_decode(a, 12, 20430, d, 2, &n, err, sizeof err),
		     FDO_ELIMIT);
	a[4] = 1; /* 1, 1: not increasing */
	CHECK_EQ_INT(ch_days_decode(a, 12, 20430, d, 3, &n, err, sizeof err),
		     FDO_ECORRUPT);
}

TEST(decodes_label_sets)
{
	char **l;
	size_t n;
	char err[256];
	/* "", "a=b", "zone=c\d" */
	const uint8_t ok[] = {0,   3,	'a', '=', 'b', 8,    'z',
			      'o', 'n', 'e', '=', 'c', '\\', 'd'};
	REQUIRE(ch_labels_decode(ok, sizeof ok, &l, &n, err, sizeof err) ==
		FDO_OK);
	CHECK_EQ_INT(n, 3);
	CHECK(!strcmp(l[0], "") && !strcmp(l[1], "a=b") &&
	      !strcmp(l[2], "zone=c\\d"));
	ch_labels_free(l, n);
	CHECK_EQ_INT(ch_labels_decode(ok, 0, &l, &n, err, sizeof err), FDO_OK);
	CHECK_EQ_INT(n, 0);
	ch_labels_free(l, n);
	/* cut short, out of order, repeated, a NUL, a varint past 64 bits */
	CHECK_EQ_INT(ch_labels_decode(ok, sizeof ok - 1, &l, &n, err,
				      sizeof err),
		     FDO_ECORRUPT);
	CHECK(l == NULL && n == 0);
	const uint8_t unordered[] = {1, 'b', 1, 'a'};
	const uint8_t twice[] = {1, 'a', 1, 'a'};
	const uint8_t nul[] = {2, 'a', 0};
	const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0xff,
			       0xff, 0xff, 0xff, 0xff, 0x7f};
	CHECK_EQ_INT(ch_labels_decode(unordered, 4, &l, &n, err, sizeof err),
		     FDO_ECORRUPT);
	CHECK_EQ_INT(ch_labels_decode(twice, 4, &l, &n, err, sizeof err),
		     FDO_ECORRUPT);
	CHECK_EQ_INT(ch_labels_decode(nul, 3, &l, &n, err, sizeof err),
		     FDO_ECORRUPT);
	CHECK_EQ_INT(ch_labels_decode(big, sizeof big, &l, &n, err, sizeof err),
		     FDO_ECORRUPT);
}

struct got_stacks {
	uint64_t id[4];
	size_t n[4], k;
	uint64_t last_offset;
	uint8_t first_bid;
};

static int got_stack(void *arg, uint64_t stack, const struct ch_frame *f,
		     size_t n)
{
	struct got_stacks *g = arg;
	if (g->k == 4)
		return FDO_EEXISTS;
	g->id[g->k] = stack;
	g->n[g->k++] = n;
	g->last_offset = f[n - 1].offset;
	g->first_bid = f[0].build_id[0];
	return FDO_OK;
}

TEST(decodes_stacks)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	const uint8_t bid[2][3] = {{0x5e, 1, 2}, {0x7a, 3, 4}};
	for (uint64_t id = 5; id <= 9; id += 4) {
		for (int i = 0; i < 8; i++)
			fdo_buf_putc(&b, (char)(id >> (8 * i)));
		fdo_buf_uleb(&b, 2);
		for (int k = 0; k < 2; k++) {
			fdo_buf_uleb(&b, 3);
			fdo_buf_append(&b, bid[k], 3);
		}
		fdo_buf_uleb(&b, 2);
		for (uint64_t off = 0x10; off <= 0x20; off += 0x10)
			for (int i = 0; i < 8; i++)
				fdo_buf_putc(&b, (char)((off + id) >> (8 * i)));
	}
	REQUIRE(!b.oom);
	char err[256];
	struct got_stacks g = {0};
	CHECK_EQ_INT(ch_stacks_decode(b.data, b.len, got_stack, &g, err,
				      sizeof err),
		     FDO_OK);
	CHECK_EQ_INT(g.k, 2);
	CHECK(g.id[0] == 5 && g.id[1] == 9 && g.n[0] == 2 && g.n[1] == 2);
	CHECK(g.last_offset == 0x29 && g.first_bid == 0x5e);
	/* every cut is refused */
	for (size_t len = 1; len < b.len; len++) {
		struct got_stacks h = {0};
		if (ch_stacks_decode(b.data, len, got_stack, &h, err,
				     sizeof err) != FDO_ECORRUPT &&
		    len != b.len / 2)
			CHECK(!"a cut answer decoded");
	}
	/* ids not increasing; arrays of two lengths; no frame */
	uint8_t *p = (uint8_t *)b.data;
	size_t half = b.len / 2;
	p[half] = 5;
	struct got_stacks h = {0};
	CHECK_EQ_INT(ch_stacks_decode(p, b.len, got_stack, &h, err, sizeof err),
		     FDO_ECORRUPT);
	p[half] = 9;
	p[8 + 1 + 4 + 4] = 3; /* three offsets */
	CHECK_EQ_INT(ch_stacks_decode(p, half, got_stack, &h, err, sizeof err),
		     FDO_ECORRUPT);
	p[8 + 1 + 4 + 4] = 2;
	p[8] = 0;
	CHECK_EQ_INT(ch_stacks_decode(p, half, got_stack, &h, err, sizeof err),
		     FDO_ECORRUPT);
	fdo_buf_fini(&b);
}

TEST(query_id_checked)
{
	ch_client *c;
	char err[256];
	REQUIRE(ch_open("clickhouse://127.0.0.1:1/d", NULL, &c, err,
			sizeof err) == FDO_OK);
	CHECK_EQ_INT(ch_set_query_id(c, "fdod-0a1b-00000001-20430"), FDO_OK);
	CHECK_EQ_INT(ch_set_query_id(c, NULL), FDO_OK);
	CHECK_EQ_INT(ch_set_query_id(c, ""), FDO_OK);
	CHECK_EQ_INT(ch_set_query_id(c, "a&query=DROP"), FDO_EINVAL);
	CHECK_EQ_INT(ch_set_query_id(c, "a b"), FDO_EINVAL);
	CHECK_EQ_INT(ch_set_query_id(c, "a%20"), FDO_EINVAL);
	char lng[CH_QUERY_ID_MAX + 2];
	memset(lng, 'a', sizeof lng - 1);
	lng[sizeof lng - 1] = 0;
	CHECK_EQ_INT(ch_set_query_id(c, lng), FDO_EINVAL);
	lng[CH_QUERY_ID_MAX] = 0;
	CHECK_EQ_INT(ch_set_query_id(c, lng), FDO_OK);
	ch_close(c);
}
