/*
 * Allocation-failure injection in the codecs: every allocation that the
 * text parser and printer, the protobuf encoder and decoder, batch
 * normalization, the write-ahead-log record codec, the pprof decoder and
 * the bounded gunzip make is failed, one at a time; each must return
 * FDO_ENOMEM (never crash, never leak: the sanitizer run checks leaks;
 * the pprof decoder and gunzip with a message) and, once nothing fails,
 * give the same result as an uninjected run.
 *
 * This binary is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
 * (Makefile: LDFLAGS_aggregator_allocfail), so every call from the archives
 * goes through the counters below.
 */
#include <stdlib.h>
#include <zlib.h>

#include "aggregator/ingest_int.h"
#include "schemas/pprof.pb-c.h"
#include "tests/unit/test.h"
#include "tests/unit/totals_scan.h"
#include "tests/unit/prof_same.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

static long alloc_seen;		/* allocations counted since arm() */
static long alloc_fail_at = -1; /* fail this one; -1: none */
static long alloc_failed;	/* failures injected since arm() */

static int inject(void)
{
	if (alloc_fail_at < 0)
		return 0;
	if (alloc_seen++ == alloc_fail_at) {
		alloc_failed++;
		return 1;
	}
	return 0;
}

void *__wrap_malloc(size_t n)
{
	return inject() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return inject() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return inject() ? NULL : __real_realloc(p, n);
}

static void arm(long at)
{
	alloc_seen = 0;
	alloc_failed = 0;
	alloc_fail_at = at;
}

static void disarm(void)
{
	alloc_fail_at = -1;
}

static const char *BATCH =
	"agent a1\nseq 7\nhost h\nbinary web\nlabel mode=serving\n"
	"label zone=eu%2Dwest\n"
	"event cpu-clock\nperiod 1000\nweight 2.5\ntime 7200 7260\n"
	"mapping 0 aabbccdd 1000 2000 100 /bin/web\n"
	"mapping 1 eeff 5000 6000 0 /lib/libc\n"
	"stack 3 1010 5020 1800\n"
	"stack 4 9999\n"
	"stack 5 1010 9999\n"
	"stack 2 1010 5020 1800\n"
	"branch 1010 1020 6\n"
	"branch 1010 5020 2\n";

/*
 * Runs op once per allocation it makes, failing that allocation; op
 * returns an FDO_* code. Every injected run must fail with FDO_ENOMEM (or
 * succeed if the failed allocation had a fallback); the loop ends with a
 * run in which no allocation was left to fail.
 */
static long sweep(const char *what, int (*op)(void *arg), void *arg)
{
	for (long at = 0; at < 100000; at++) {
		arm(at);
		int rc = op(arg);
		long failed = alloc_failed;
		disarm();
		if (!failed) {
			if (rc != FDO_OK)
				fprintf(stderr, "  %s: uninjected run: %s\n",
					what, fdo_strerror(rc));
			CHECK(rc == FDO_OK);
			return at;
		}
		if (rc != FDO_ENOMEM && rc != FDO_OK) {
			fprintf(stderr, "  %s: allocation %ld failed -> %s\n",
				what, at, fdo_strerror(rc));
			CHECK(rc == FDO_ENOMEM);
		}
	}
	CHECK(!"never ran without an injected failure");
	return -1;
}

static Fdod__SampleBatch *parse_ok(void);

/* Is text the batch as printed without injection? */
static int same_as_canonical(const char *text, size_t len)
{
	static char canonical[4096];
	static size_t canonical_len;
	if (!canonical_len) {
		long saved = alloc_fail_at;
		disarm();
		Fdod__SampleBatch *b = parse_ok();
		char *out = NULL;
		size_t n = 0;
		if (b && wire_batch_print_text(b, &out, &n) == FDO_OK &&
		    n < sizeof canonical) {
			memcpy(canonical, out, n);
			canonical_len = n;
		}
		free(out);
		wire_batch_free(b);
		alloc_fail_at = saved;
	}
	return canonical_len && len == canonical_len &&
	       !memcmp(text, canonical, len);
}

static Fdod__SampleBatch *parse_ok(void)
{
	Fdod__SampleBatch *b = NULL;
	char err[256];
	if (wire_batch_parse_text(BATCH, strlen(BATCH), NULL, &b, err,
				  sizeof err))
		return NULL;
	return b;
}

static int op_parse(void *arg)
{
	Fdod__SampleBatch *b = NULL;
	char err[256];
	int rc = wire_batch_parse_text(BATCH, strlen(BATCH), NULL, &b, err,
				       sizeof err);
	if (rc == FDO_OK)
		wire_batch_free(b);
	else if (b)
		return FDO_EINVAL; /* out must stay untouched on error */
	return rc;
}

TEST(text_parser)
{
	CHECK(sweep("parse", op_parse, NULL) > 0);
}

static int op_print(void *arg)
{
	char *out = NULL;
	size_t len = 0;
	int rc = wire_batch_print_text(arg, &out, &len);
	if (rc == FDO_OK) {
		if (!same_as_canonical(out, len))
			rc = FDO_EINVAL; /* must equal the uninjected output */
		free(out);
	}
	return rc;
}

TEST(text_printer)
{
	Fdod__SampleBatch *b = parse_ok();
	REQUIRE(b);
	/* The printer's buffer grows a few times: each growth is failed. */
	CHECK(sweep("print", op_print, b) > 1);
	wire_batch_free(b);
}

struct wire_bytes {
	uint8_t *buf;
	size_t len;
};

static int op_encode(void *arg)
{
	uint8_t *out = NULL;
	size_t len = 0;
	int rc = wire_batch_encode(arg, NULL, &out, &len);
	free(out);
	return rc;
}

static int op_decode(void *arg)
{
	struct wire_bytes *w = arg;
	Fdod__SampleBatch *b = NULL;
	int rc = wire_batch_decode(w->buf, w->len, NULL, &b);
	if (rc == FDO_OK) {
		rc = wire_batch_validate(b, NULL, NULL, 0);
		char *text = NULL;
		size_t len = 0;
		disarm(); /* compare outside the injection */
		if (!rc && (wire_batch_print_text(b, &text, &len) != FDO_OK ||
			    !same_as_canonical(text, len)))
			rc = FDO_EINVAL;
		free(text);
		wire_batch_free(b);
	}
	return rc;
}

TEST(protobuf_encode_and_decode)
{
	Fdod__SampleBatch *b = parse_ok();
	REQUIRE(b);
	CHECK(sweep("encode", op_encode, b) >= 1);
	struct wire_bytes w = {0};
	REQUIRE(wire_batch_encode(b, NULL, &w.buf, &w.len) == FDO_OK);
	wire_batch_free(b);
	CHECK(sweep("decode", op_decode, &w) > 0);
	free(w.buf);
}

static int op_prep(void *arg)
{
	struct prep *p = NULL;
	struct agg_result res;
	memset(&res, 0, sizeof res);
	int rc = prep_build(arg, &wire_limits_default, 3600, &p, &res);
	if (rc == FDO_OK) {
		if (p->b.nstacks != 3)
			rc = FDO_EINVAL;
		prep_free(p);
	}
	return rc;
}

TEST(normalization)
{
	Fdod__SampleBatch *b = parse_ok();
	REQUIRE(b);
	CHECK(sweep("prep_build", op_prep, b) > 0);
	wire_batch_free(b);
}

struct wal_case {
	struct prep *p;
	struct fdo_buf rec;
};

static int op_wal_encode(void *arg)
{
	struct wal_case *c = arg;
	struct fdo_buf out;
	fdo_buf_init(&out);
	int rc = store_walbatch_encode(&c->p->b, &out);
	if (rc == FDO_OK &&
	    (out.len != c->rec.len || memcmp(out.data, c->rec.data, out.len)))
		rc = FDO_EINVAL;
	fdo_buf_fini(&out);
	return rc;
}

static int op_wal_decode(void *arg)
{
	struct wal_case *c = arg;
	struct prep *q = NULL;
	int rc = prep_decode((const uint8_t *)c->rec.data, c->rec.len, &q);
	if (rc == FDO_OK) {
		if (q->b.nstacks != c->p->b.nstacks || q->b.seq != c->p->b.seq)
			rc = FDO_EINVAL;
		prep_free(q);
	}
	return rc;
}

TEST(write_ahead_log_records)
{
	Fdod__SampleBatch *b = parse_ok();
	REQUIRE(b);
	struct wal_case c;
	struct agg_result res;
	memset(&res, 0, sizeof res);
	c.p = NULL;
	REQUIRE(prep_build(b, &wire_limits_default, 3600, &c.p, &res) ==
		FDO_OK);
	wire_batch_free(b);
	fdo_buf_init(&c.rec);
	REQUIRE(store_walbatch_encode(&c.p->b, &c.rec) == FDO_OK);
	CHECK(sweep("store_walbatch_encode", op_wal_encode, &c) >= 1);
	CHECK(sweep("prep_decode", op_wal_decode, &c) > 0);
	fdo_buf_fini(&c.rec);
	prep_free(c.p);
}

/* ------------------------------------------- pprof profiles and gzip -- */

/* A Go-like CPU profile: samples/count and cpu/nanoseconds, a mapping
 * with a GNU build-id, a leaf and its caller. Packed (outside injection). */
static uint8_t *pprof_bytes(size_t *len)
{
	static const char *const str[] = {
		"",
		"samples",
		"count",
		"cpu",
		"nanoseconds",
		"/bin/web",
		"0123456789abcdef0123456789abcdef01234567"};
	ProtobufCBinaryData tab[7];
	for (int i = 0; i < 7; i++)
		tab[i] = (ProtobufCBinaryData){strlen(str[i]),
					       (uint8_t *)str[i]};
	Perftools__Profiles__ValueType vt[2], *vtp[2] = {&vt[0], &vt[1]};
	for (int i = 0; i < 2; i++) {
		perftools__profiles__value_type__init(&vt[i]);
		vt[i].type = 1 + 2 * i;
		vt[i].unit = 2 + 2 * i;
	}
	Perftools__Profiles__Mapping m, *mp = &m;
	perftools__profiles__mapping__init(&m);
	m.id = 1, m.memory_start = 0x400000, m.memory_limit = 0x500000;
	m.filename = 5, m.build_id = 6;
	Perftools__Profiles__Location l[2], *lp[2] = {&l[0], &l[1]};
	for (int i = 0; i < 2; i++) {
		perftools__profiles__location__init(&l[i]);
		l[i].id = (uint64_t)i + 1;
		l[i].mapping_id = 1;
		l[i].address = 0x401000 + 0x100 * (uint64_t)i;
	}
	uint64_t ids[2] = {1, 2};
	int64_t vals[2] = {3, 30000000};
	Perftools__Profiles__Sample s, *sp = &s;
	perftools__profiles__sample__init(&s);
	s.location_id = ids, s.n_location_id = 2;
	s.value = vals, s.n_value = 2;
	Perftools__Profiles__Profile p;
	perftools__profiles__profile__init(&p);
	p.sample_type = vtp, p.n_sample_type = 2;
	p.sample = &sp, p.n_sample = 1;
	p.mapping = &mp, p.n_mapping = 1;
	p.location = lp, p.n_location = 2;
	p.string_table = tab, p.n_string_table = 7;
	p.period = 10000000;
	p.time_nanos = 1700000000ll * 1000000000ll;
	*len = perftools__profiles__profile__get_packed_size(&p);
	uint8_t *buf = malloc(*len);
	if (buf)
		perftools__profiles__profile__pack(&p, buf);
	return buf;
}

static int op_pprof(void *arg)
{
	struct wire_bytes *w = arg;
	static const char *labels[] = {"mode=test"};
	struct wire_pprof_opts o = {.agent_id = "pprof/a",
				    .host = "h",
				    .labels = labels,
				    .n_labels = 1};
	Fdod__SampleBatch *b = NULL;
	char err[256] = "";
	int rc = wire_pprof_decode(w->buf, w->len, &o, &b, NULL, err,
				   sizeof err);
	if (rc == FDO_OK) {
		if (b->n_stacks != 1 || b->stacks[0]->count != 3)
			rc = FDO_EINVAL;
		wire_batch_free(b);
	} else if (b || !err[0]) {
		/* An error hands out nothing and always says why. */
		fprintf(stderr, "  pprof: %s without a message\n",
			fdo_strerror(rc));
		rc = FDO_EINVAL;
	}
	return rc;
}

TEST(pprof_decode_says_out_of_memory)
{
	struct wire_bytes w = {0};
	w.buf = pprof_bytes(&w.len);
	REQUIRE(w.buf);
	CHECK(sweep("pprof", op_pprof, &w) > 0);
	free(w.buf);
}

static int op_gunzip(void *arg)
{
	struct wire_bytes *w = arg;
	uint8_t *out = NULL;
	size_t n = 0;
	char err[256] = "";
	int rc = wire_gunzip(w->buf, w->len, 1u << 20, &out, &n, err,
			     sizeof err);
	if (rc == FDO_OK) {
		if (n != 300000)
			rc = FDO_EINVAL;
		free(out);
	} else if (!err[0]) {
		fprintf(stderr, "  gunzip: %s without a message\n",
			fdo_strerror(rc));
		rc = FDO_EINVAL;
	}
	return rc;
}

TEST(gunzip_says_out_of_memory)
{
	/* 300,000 bytes: the output buffer grows (64 KiB, doubling). */
	size_t n = 300000;
	uint8_t *raw = calloc(1, n);
	REQUIRE(raw);
	z_stream z;
	memset(&z, 0, sizeof z);
	REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8,
			     Z_DEFAULT_STRATEGY) == Z_OK);
	struct wire_bytes w = {0};
	size_t cap = deflateBound(&z, (uLong)n);
	w.buf = malloc(cap);
	REQUIRE(w.buf);
	z.next_in = raw;
	z.avail_in = (uInt)n;
	z.next_out = w.buf;
	z.avail_out = (uInt)cap;
	REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
	w.len = cap - z.avail_out;
	deflateEnd(&z);
	free(raw);
	CHECK(sweep("gunzip", op_gunzip, &w) > 0);
	free(w.buf);
}

/* ------------------------------------------ compile-time profile build -- */

/* Two closed buckets of three stacks over two build-ids, written as the
 * merge writes them (stacks, counts, totals). */
static int put_profile_store(store_txn *t, void *arg)
{
	uint32_t bin, ls, b1, b2;
	int rc;
	if ((rc = store_intern_binary(t, "alloc", 5, 1, &bin)) ||
	    (rc = store_intern_labelset(t, "mode=a", 6, 1, &ls)) ||
	    (rc = store_intern_buildid(t, "\xaa\xbb", 2, 1, &b1)) ||
	    (rc = store_intern_buildid(t, "\xcc\xdd", 2, 1, &b2)))
		return rc;
	const struct store_frame st[3][3] = {
		{{b1, 0x10}, {b1, 0x20}, {b1, 0x30}},
		{{b2, 0x40}, {b1, 0x20}, {b1, 0x30}},
		{{b1, 0x10}, {b2, 0x50}, {b1, 0x30}}};
	for (uint32_t bucket = 3600; bucket <= 7200; bucket += 3600)
		for (uint64_t i = 0; i < 3; i++) {
			uint8_t key[STORE_STACK_KEY_SIZE], val[64];
			size_t vl;
			store_stack_key_encode(key, 100 + i);
			if ((rc = store_stack_encode(st[i], 3, val, sizeof val,
						     &vl)) ||
			    (rc = store_put(t, STORE_STACKS, key, sizeof key,
					    val, vl, 0)))
				return rc;
			struct store_counts_key ck = {bin, ls, bucket, 100 + i};
			struct store_weight w = {
				(wire_weight_t)(i + 1) * 1000 + bucket, i + 1};
			struct store_totals_key tk = {bin, ls, bucket};
			struct store_totals d = {w.weight, w.samples, 1};
			if ((rc = put_count_entry(t, &ck, &w)) ||
			    (rc = store_totals_add(t, &tk, &d, 0)))
				return rc;
		}
	return FDO_OK;
}

struct build_arg {
	store *st;
	struct agg_profile_query q;
	struct prof p;
};

static int build_reduced(void *arg)
{
	struct build_arg *b = arg;
	char err[256] = "";
	int rc = agg_profile_build(b->st, NULL, test_tmpdir(), &b->q, &b->p,
				   err, sizeof err);
	prof_fini(&b->p);
	return rc;
}

/*
 * The compile-time build (every run from the stacks, stored after the
 * build, then read back) with every allocation failed in turn: FDO_ENOMEM
 * or a profile, never a crash or a leak, and whatever runs it stored are
 * the full scan's sums.
 */
TEST(compile_time_profile_build)
{
	char dir[600];
	snprintf(dir, sizeof dir, "%s/prof", test_tmpdir());
	struct store_opts o = {.dir = dir};
	struct build_arg b = {0};
	REQUIRE(store_open(&o, &b.st) == FDO_OK);
	REQUIRE(store_write(b.st, put_profile_store, NULL) == FDO_OK);
	b.q = (struct agg_profile_query){
		.binary = "alloc", .now = 7200 + 3600, .reduced = 1};
	long n = sweep("compile-time build", build_reduced, &b);
	CHECK(n > 20);
	uint64_t rows = 0;
	store_txn *t;
	REQUIRE(store_txn_begin(b.st, 0, &t) == FDO_OK);
	CHECK(store_count(t, STORE_AGGS, &rows) == FDO_OK && rows > 0);
	store_txn_abort(t);
	/* Reading the stored runs, every allocation failed in turn. */
	sweep("compile-time build from table aggs", build_reduced, &b);
	struct prof full, stored;
	char err[256];
	b.q.full_scan = 1;
	REQUIRE(agg_profile_build(b.st, NULL, dir, &b.q, &full, err,
				  sizeof err) == FDO_OK);
	b.q.full_scan = 0;
	REQUIRE(agg_profile_build(b.st, NULL, dir, &b.q, &stored, err,
				  sizeof err) == FDO_OK);
	CHECK(full.npairs == 5 && full.nleaves == 2);
	CHECK(prof_same_reduced(&full, &stored));
	prof_fini(&full);
	prof_fini(&stored);
	store_close(b.st);
}
