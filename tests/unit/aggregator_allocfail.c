/*
 * Allocation-failure injection in the codecs: every allocation that the
 * text parser and printer, the protobuf encoder and decoder, batch
 * normalization and the write-ahead-log record codec make is failed, one
 * at a time; each must return FDO_ENOMEM (never crash, never leak: the
 * sanitizer run checks leaks) and, once nothing fails, give the same
 * result as an uninjected run.
 *
 * This binary is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
 * (Makefile: LDFLAGS_aggregator_allocfail), so every call from the archives
 * goes through the counters below.
 */
#include <stdlib.h>

#include "aggregator/ingest_int.h"
#include "tests/unit/test.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

static long alloc_seen;	/* allocations counted since arm() */
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
	/* open_memstream allocates inside libc, out of our reach. */
	CHECK(sweep("print", op_print, b) >= 0);
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
		if (p->nstacks != 3)
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
	int rc = prep_encode(c->p, &out);
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
		if (q->nstacks != c->p->nstacks || q->seq != c->p->seq)
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
	REQUIRE(prep_encode(c.p, &c.rec) == FDO_OK);
	CHECK(sweep("prep_encode", op_wal_encode, &c) >= 1);
	CHECK(sweep("prep_decode", op_wal_decode, &c) > 0);
	fdo_buf_fini(&c.rec);
	prep_free(c.p);
}


