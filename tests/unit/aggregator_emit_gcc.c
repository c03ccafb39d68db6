/*
 * Tests for aggregator/emit_gcc.c: exact bytes of a tiny profile (the
 * layout pinned), a reader that walks the file the way gcc 12's
 * auto-profile.cc does, options, determinism, an empty profile, bad input;
 * and the peer tool: a program built by the test with gcc-12 -O2 -g, a
 * profile made from its own addresses through the symbolizer, then
 * gcc-12 -fauto-profile on the same source must accept it silently and
 * annotate the hot function with the counts.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aggregator/profile.h"
#include "common/common.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/emit_with.h"
#include "tests/unit/test.h"

/* ---------------------------------------------- in-memory fixtures -- */

static void *fx_grow(void *a, size_t n, size_t size)
{
	void *b = realloc(a, (n + 1) * size);
	if (!b)
		abort();
	return b;
}

/* A frame for fx_loc: function, line, discriminator, start line. */
struct fx_frame {
	const char *fn;
	uint32_t line, disc, start;
};

/* fx_loc adds a location whose inline chain is fr[0..n) (innermost first). */
static uint32_t fx_loc(struct prof *p, const struct fx_frame *fr, size_t n)
{
	p->locs = fx_grow(p->locs, p->nlocs, sizeof *p->locs);
	struct prof_loc *l = &p->locs[p->nlocs];
	memset(l, 0, sizeof *l);
	l->offset = p->nlocs; /* locations are distinct addresses */
	l->vaddr = UINT64_MAX;
	l->first_frame = (uint32_t)p->nframes;
	l->nframes = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		p->frames = fx_grow(p->frames, p->nframes, sizeof *p->frames);
		p->frames[p->nframes++] = (struct prof_frame){
			.function = prof_intern(p, fr[i].fn),
			.file = PROF_NONE,
			.line = fr[i].line,
			.discriminator = fr[i].disc,
			.start_line = fr[i].start,
		};
	}
	return (uint32_t)p->nlocs++;
}

/* fx_stack adds a stack of n locations, leaf first. */
static void fx_stack(struct prof *p, double count, size_t n, ...)
{
	va_list ap;
	va_start(ap, n);
	p->stacks = fx_grow(p->stacks, p->nstacks, sizeof *p->stacks);
	p->stacks[p->nstacks++] = (struct prof_stack){
		.first_loc = (uint32_t)p->nstack_locs,
		.nlocs = (uint32_t)n,
		.count = count,
		.samples = (uint64_t)count,
	};
	for (size_t i = 0; i < n; i++) {
		p->stack_locs = fx_grow(p->stack_locs, p->nstack_locs,
					sizeof *p->stack_locs);
		p->stack_locs[p->nstack_locs++] = va_arg(ap, uint32_t);
	}
	va_end(ap);
	p->count += count;
	p->samples += (uint64_t)count;
}

/*
 * The tiny profile: f (declared at line 10) has samples at line 12 and at
 * line 13 under two discriminators, and g.part.0 (a piece of g, declared
 * at 20) inlined at line 14; main (declared at 1) calls f from line 3.
 */
static void tiny(struct prof *p)
{
	prof_init(p);
	struct fx_frame f12[] = {{"f", 12, 0, 10}};
	struct fx_frame f13a[] = {{"f", 13, 1, 10}};
	struct fx_frame f13b[] = {{"f", 13, 2, 10}};
	struct fx_frame g21[] = {{"g.part.0", 21, 0, 20}, {"f", 14, 0, 10}};
	struct fx_frame m3[] = {{"main", 3, 0, 1}};
	uint32_t a = fx_loc(p, f12, 1), b = fx_loc(p, f13a, 1);
	uint32_t c = fx_loc(p, f13b, 1), d = fx_loc(p, g21, 2);
	uint32_t m = fx_loc(p, m3, 1);
	fx_stack(p, 2, 1, a);
	fx_stack(p, 3, 1, a);
	fx_stack(p, 7, 1, b);
	fx_stack(p, 4, 1, c);
	fx_stack(p, 6, 1, d);
	fx_stack(p, 2, 2, a, m); /* f called from main line 3 */
	fx_stack(p, 1, 1, m);
}

/* gcc_emit runs the gcc emitter with the model's line and head rules of
 * fdod before the shared model (line_count=sum, head=stacks: what these
 * cases were written for), then opts. The model's own rules are tested in
 * aggregator_emit_llvm and aggregator_model. */
static int gcc_emit(const struct prof *p, const char *opts, struct fdo_buf *out)
{
	char text[512];
	snprintf(text, sizeof text, "line_count=sum,head=stacks,%s",
		 opts ? opts : "");
	return emit_with(emit_gcc, p, text, out);
}

/* ----------------------------------------------------- expected bytes -- */

static void w32(struct fdo_buf *b, uint32_t v)
{
	uint8_t w[4] = {v, v >> 8, v >> 16, v >> 24};
	fdo_buf_append(b, w, 4);
}

static void w64(struct fdo_buf *b, uint64_t v)
{
	w32(b, (uint32_t)v);
	w32(b, (uint32_t)(v >> 32));
}

static void wstr(struct fdo_buf *b, const char *s)
{
	w32(b, (uint32_t)strlen(s) + 1);
	fdo_buf_append(b, s, strlen(s) + 1);
}

static void hexdiff(const struct fdo_buf *got, const struct fdo_buf *want)
{
	size_t n = got->len > want->len ? got->len : want->len;
	for (size_t i = 0; i < n; i += 4) {
		fprintf(stderr, "  %4zu:", i);
		for (size_t j = i; j < i + 4; j++)
			fprintf(stderr, j < got->len ? " %02x" : "   ",
				j < got->len ? (uint8_t)got->data[j] : 0);
		fprintf(stderr, "  |");
		for (size_t j = i; j < i + 4; j++)
			fprintf(stderr, j < want->len ? " %02x" : "   ",
				j < want->len ? (uint8_t)want->data[j] : 0);
		fprintf(stderr, "\n");
	}
}

TEST(tiny_exact_bytes)
{
	struct prof p;
	tiny(&p);
	struct fdo_buf got, want;
	fdo_buf_init(&got);
	fdo_buf_init(&want);
	CHECK_EQ_INT(gcc_emit(&p, NULL, &got), FDO_OK);

	w32(&want, 0x67636461); /* "gcda" */
	w32(&want, 2);		/* version */
	w32(&want, 0);		/* stamp */
	w32(&want, 0xaa000000); /* names */
	w32(&want, 25);		/* 4 + (4+2) + (4+2) + (4+5) */
	w32(&want, 3);
	wstr(&want, "f");    /* 0 */
	wstr(&want, "g");    /* 1: "g.part.0" cut at '.' */
	wstr(&want, "main"); /* 2 */
	w32(&want, 0xac000000);
	w32(&want, 144);
	w32(&want, 2); /* functions */
	/* f: head 2 (called from main), positions 12 and 13, g at 14 */
	w64(&want, 2);
	w32(&want, 0);
	w32(&want, 2);
	w32(&want, 1);
	w32(&want, 2 << 16); /* line 12: 2 + 3 + 2 */
	w32(&want, 0);
	w64(&want, 7);
	w32(&want, 3 << 16); /* line 13: max(7, 4) over discriminators */
	w32(&want, 0);
	w64(&want, 7);
	w32(&want, 4 << 16); /* call site at line 14 */
	w32(&want, 1);	     /* g */
	w32(&want, 1);
	w32(&want, 0);
	w32(&want, 1 << 16); /* g's line 21 */
	w32(&want, 0);
	w64(&want, 6);
	/* main: head 0, line 3 with a call target f */
	w64(&want, 0);
	w32(&want, 2);
	w32(&want, 1);
	w32(&want, 0);
	w32(&want, 2 << 16);
	w32(&want, 1);
	w64(&want, 1);
	w32(&want, 3); /* HIST_TYPE_INDIR_CALL */
	w64(&want, 0); /* f */
	w64(&want, 2);
	w32(&want, 0xae000000);
	w32(&want, 4);
	w32(&want, 0);

	CHECK_EQ_INT(got.len, want.len);
	int same = got.len == want.len && !memcmp(got.data, want.data, got.len);
	CHECK(same);
	if (!same)
		hexdiff(&got, &want);
	fdo_buf_fini(&got);
	fdo_buf_fini(&want);
	prof_fini(&p);
}

/* ----------------------------------------------- a reader, as gcc's -- */

struct rd {
	const uint8_t *d;
	size_t len, at;
	int bad;
	char **names;
	uint32_t nnames;
	struct fdo_buf text;
};

static uint32_t r32(struct rd *r)
{
	if (r->len - r->at < 4) {
		r->bad = 1;
		return 0;
	}
	const uint8_t *p = r->d + r->at;
	r->at += 4;
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t r64(struct rd *r)
{
	uint64_t lo = r32(r);
	return lo | (uint64_t)r32(r) << 32;
}

static const char *rname(struct rd *r, uint64_t i)
{
	if (i >= r->nnames) {
		r->bad = 1;
		return "?";
	}
	return r->names[i];
}

/* rinst renders one instance as "name[head]{off:count>target:count ...
 * @off:callee{...}}"; returns its total (the sum gcc computes). */
static uint64_t rinst(struct rd *r, int depth)
{
	if (depth > 64) {
		r->bad = 1;
		return 0;
	}
	uint32_t name = r32(r), np = r32(r), nc = r32(r);
	uint64_t total = 0;
	fdo_buf_printf(&r->text, "%s{", rname(r, name));
	for (uint32_t i = 0; i < np && !r->bad; i++) {
		uint32_t off = r32(r), nt = r32(r);
		uint64_t c = r64(r);
		total += c;
		fdo_buf_printf(&r->text, " %u", off >> 16);
		if (off & 0xffff)
			fdo_buf_printf(&r->text, ".%u", off & 0xffff);
		fdo_buf_printf(&r->text, ":%llu", (unsigned long long)c);
		for (uint32_t j = 0; j < nt && !r->bad; j++) {
			if (r32(r) != 3)
				r->bad = 1;
			const char *t = rname(r, r64(r));
			fdo_buf_printf(&r->text, ">%s:%llu", t,
				       (unsigned long long)r64(r));
		}
	}
	for (uint32_t i = 0; i < nc && !r->bad; i++) {
		uint32_t off = r32(r);
		fdo_buf_printf(&r->text, " @%u", off >> 16);
		if (off & 0xffff)
			fdo_buf_printf(&r->text, ".%u", off & 0xffff);
		fdo_buf_putc(&r->text, ':');
		total += rinst(r, depth + 1);
	}
	fdo_buf_puts(&r->text, " }");
	return total;
}

/* render parses a whole file; returns its text ("" and *ok = 0 if bad). */
static char *render(const struct fdo_buf *b, int *ok)
{
	struct rd r = {.d = (const uint8_t *)b->data, .len = b->len};
	fdo_buf_init(&r.text);
	if (r32(&r) != 0x67636461 || r32(&r) != 2)
		r.bad = 1;
	r32(&r);
	if (r32(&r) != 0xaa000000)
		r.bad = 1;
	uint32_t seclen = r32(&r);
	size_t sec0 = r.at;
	r.nnames = r32(&r);
	if (r.nnames > b->len)
		r.bad = 1;
	r.names = calloc(r.nnames + 1, sizeof *r.names);
	for (uint32_t i = 0; i < r.nnames && !r.bad; i++) {
		uint32_t n = r32(&r);
		if (!n || n > r.len - r.at || r.d[r.at + n - 1] ||
		    strlen((const char *)r.d + r.at) != n - 1) {
			r.bad = 1;
			break;
		}
		r.names[i] = (char *)r.d + r.at;
		r.at += n;
		if (i && strcmp(r.names[i - 1], r.names[i]) >= 0)
			r.bad = 1; /* sorted, each once */
	}
	if (r.at - sec0 != seclen || r32(&r) != 0xac000000)
		r.bad = 1;
	seclen = r32(&r);
	sec0 = r.at;
	uint32_t nf = r32(&r);
	for (uint32_t i = 0; i < nf && !r.bad; i++) {
		uint64_t head = r64(&r);
		size_t mark = r.text.len;
		uint64_t total = rinst(&r, 0);
		/* Put "total/head " in front of the function's text. */
		char pre[64];
		int n = snprintf(pre, sizeof pre, "%s%llu/%llu ", i ? "\n" : "",
				 (unsigned long long)total,
				 (unsigned long long)head);
		fdo_buf_reserve(&r.text, (size_t)n);
		memmove(r.text.data + mark + n, r.text.data + mark,
			r.text.len - mark);
		memcpy(r.text.data + mark, pre, (size_t)n);
		r.text.len += (size_t)n;
	}
	if (r.at - sec0 != seclen || r32(&r) != 0xae000000 || r32(&r) != 4 ||
	    r32(&r) != 0 || r.at != r.len)
		r.bad = 1;
	free(r.names);
	*ok = !r.bad;
	if (r.bad)
		fdo_buf_reset(&r.text);
	size_t len;
	fdo_buf_cstr(&r.text);
	char *s = fdo_buf_steal(&r.text, &len);
	return s ? s : strdup("");
}

static char *emit_text(const struct prof *p, const char *opts, int *rc)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	*rc = gcc_emit(p, opts, &b);
	int ok;
	char *s = render(&b, &ok);
	if (!ok && !*rc)
		*rc = -1;
	fdo_buf_fini(&b);
	return s;
}

TEST(tiny_reads_back)
{
	struct prof p;
	tiny(&p);
	int rc;
	char *s = emit_text(&p, "", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(s, "20/2 f{ 2:7 3:7 @4:g{ 1:6 } }\n"
			"1/0 main{ 2:1>f:2 }");
	free(s);
	prof_fini(&p);
}

TEST(discriminators_kept_on_request)
{
	struct prof p;
	tiny(&p);
	int rc;
	char *s = emit_text(&p, "discriminators=1", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(s, "24/2 f{ 2:7 3.1:7 3.2:4 @4:g{ 1:6 } }\n"
			"1/0 main{ 2:1>f:2 }");
	free(s);
	prof_fini(&p);
}

TEST(llvm_discriminators_decoded)
{
	struct prof p;
	prof_init(&p);
	/* clang's encoding: base 3 is stored as 3 << 1 = 6 (low bit 0 means
	 * "encoded"); with duplication factors, base 5 | dup 2 << 7 = 0x10a
	 * -> 5; an odd value has no base discriminator. */
	struct fx_frame a[] = {{"h", 7, 6, 5}};
	struct fx_frame b[] = {{"h", 7, 0x10a, 5}};
	struct fx_frame c[] = {{"h", 8, 7, 5}};
	fx_stack(&p, 4, 1, fx_loc(&p, a, 1));
	fx_stack(&p, 5, 1, fx_loc(&p, b, 1));
	fx_stack(&p, 9, 1, fx_loc(&p, c, 1));
	int rc;
	char *s = emit_text(&p, "discriminators=1,llvm_discriminators=1", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(s, "18/0 h{ 2.3:4 2.5:5 3:9 }");
	free(s);
	s = emit_text(&p, "discriminators=1", &rc);
	CHECK_EQ_STR(s, "18/0 h{ 2.6:4 2.266:5 3.7:9 }");
	free(s);
	s = emit_text(&p, NULL, &rc);
	CHECK_EQ_STR(s, "14/0 h{ 2:5 3:9 }");
	free(s);
	prof_fini(&p);
}

TEST(min_share_drops_small_functions)
{
	struct prof p;
	tiny(&p);
	int rc;
	/* f has 20 of 21: main (1/21 = 0.048) goes below 0.05, and with it
	 * the name "main" from the table. */
	char *s = emit_text(&p, "min_share=0.05", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(s, "20/2 f{ 2:7 3:7 @4:g{ 1:6 } }");
	free(s);
	s = emit_text(&p, "min_share=0.04", &rc);
	CHECK(strstr(s, "main{") != NULL);
	free(s);
	s = emit_text(&p, "min_share=1", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(s, "");
	free(s);
	struct fdo_buf b;
	fdo_buf_init(&b);
	fdo_buf_puts(&b, "keep");
	CHECK_EQ_INT(gcc_emit(&p, "min_share=2", &b), FDO_EINVAL);
	CHECK_EQ_INT(gcc_emit(&p, "min_share=x", &b), FDO_EINVAL);
	CHECK_EQ_INT(gcc_emit(&p, "discriminators=yes", &b), FDO_EINVAL);
	CHECK_EQ_INT(b.len, 4); /* untouched on error */
	CHECK_EQ_INT(gcc_emit(&p, "min_share=0;period=7", &b), FDO_OK);
	CHECK_EQ_INT(gcc_emit(&p, "other=1", &b), FDO_EINVAL);
	fdo_buf_fini(&b);
	prof_fini(&p);
}

TEST(deterministic_whatever_the_input_order)
{
	/* The same samples in two orders, with names interned in two
	 * orders, give the same bytes. */
	struct prof p1, p2;
	tiny(&p1);
	prof_init(&p2);
	prof_intern(&p2, "zzz");
	prof_intern(&p2, "main");
	struct fx_frame m3[] = {{"main", 3, 0, 1}};
	struct fx_frame g21[] = {{"g", 21, 0, 20}, {"f", 14, 0, 10}};
	struct fx_frame f13b[] = {{"f", 13, 2, 10}};
	struct fx_frame f13a[] = {{"f.cold", 13, 1, 10}};
	struct fx_frame f12[] = {{"f", 12, 0, 10}};
	uint32_t m = fx_loc(&p2, m3, 1), d = fx_loc(&p2, g21, 2);
	uint32_t c = fx_loc(&p2, f13b, 1), b = fx_loc(&p2, f13a, 1);
	uint32_t a = fx_loc(&p2, f12, 1);
	fx_stack(&p2, 1, 1, m);
	fx_stack(&p2, 2, 2, a, m);
	fx_stack(&p2, 6, 1, d);
	fx_stack(&p2, 4, 1, c);
	fx_stack(&p2, 7, 1, b);
	fx_stack(&p2, 3, 1, a);
	fx_stack(&p2, 2, 1, a);
	struct fdo_buf x, y, z;
	fdo_buf_init(&x);
	fdo_buf_init(&y);
	fdo_buf_init(&z);
	CHECK_EQ_INT(gcc_emit(&p1, NULL, &x), FDO_OK);
	CHECK_EQ_INT(gcc_emit(&p2, NULL, &y), FDO_OK);
	CHECK_EQ_INT(gcc_emit(&p1, NULL, &z), FDO_OK);
	CHECK(x.len == y.len && !memcmp(x.data, y.data, x.len));
	CHECK(x.len == z.len && !memcmp(x.data, z.data, x.len));
	fdo_buf_fini(&x);
	fdo_buf_fini(&y);
	fdo_buf_fini(&z);
	prof_fini(&p1);
	prof_fini(&p2);
}

TEST(empty_profile)
{
	struct prof p;
	prof_init(&p);
	struct fdo_buf b, want;
	fdo_buf_init(&b);
	fdo_buf_init(&want);
	CHECK_EQ_INT(gcc_emit(&p, NULL, &b), FDO_OK);
	uint32_t words[] = {0x67636461, 2, 0, 0xaa000000, 4, 0,
			    0xac000000, 4, 0, 0xae000000, 4, 0};
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		w32(&want, words[i]);
	CHECK(b.len == want.len && !memcmp(b.data, want.data, b.len));
	fdo_buf_fini(&b);
	fdo_buf_fini(&want);
	prof_fini(&p);
}

TEST(unplaceable_samples_are_skipped)
{
	struct prof p;
	prof_init(&p);
	struct fx_frame line0[] = {{"f", 0, 0, 10}};
	struct fx_frame noname[] = {{".", 5, 0, 1}};
	struct fx_frame site0[] = {{"g", 3, 0, 1}, {"f", 0, 0, 10}};
	struct fx_frame ok[] = {{"f", 11, 0, 10}};
	fx_stack(&p, 5, 1, fx_loc(&p, line0, 1));
	fx_stack(&p, 5, 1, fx_loc(&p, noname, 1));
	fx_stack(&p, 5, 1, fx_loc(&p, site0, 2));
	fx_stack(&p, 5, 1, fx_loc(&p, NULL, 0)); /* not symbolized */
	fx_stack(&p, 0.4, 1, fx_loc(&p, ok, 1)); /* summed, then rounded */
	fx_stack(&p, -3, 1, fx_loc(&p, ok, 1));
	fx_stack(&p, 2.6, 1, fx_loc(&p, ok, 1));
	int rc;
	char *s = emit_text(&p, NULL, &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(s, "3/0 f{ 1:3 }");
	free(s);
	/* Indexes out of range are the builder's bug, reported. */
	p.stacks[0].first_loc = 1000;
	struct fdo_buf b;
	fdo_buf_init(&b);
	CHECK_EQ_INT(gcc_emit(&p, NULL, &b), FDO_EINVAL);
	CHECK_EQ_INT(b.len, 0);
	p.stacks[0].first_loc = 0;
	p.locs[0].nframes = 1000;
	CHECK_EQ_INT(gcc_emit(&p, NULL, &b), FDO_EINVAL);
	fdo_buf_fini(&b);
	prof_fini(&p);
}

TEST(many_functions_and_deep_inlining)
{
	/* Enough to grow every table several times. */
	struct prof p;
	prof_init(&p);
	char name[32], inner[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof name, "fn%04d", i);
		snprintf(inner, sizeof inner, "in%d", i % 7);
		struct fx_frame fr[] = {{inner, 3 + i % 5, 0, 1},
					{inner, 9, 0, 1},
					{name, 20, 0, 10}};
		fx_stack(&p, 1 + i % 3, 1, fx_loc(&p, fr, 3));
		fx_stack(&p, 1, 1, fx_loc(&p, fr + 2, 1));
	}
	int rc;
	char *s = emit_text(&p, NULL, &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK(strstr(s, "fn0000{ 10:1 @10:in0{ @8:in0{ 2:1 } } }") != NULL);
	CHECK(strstr(s, "fn2999{ 10:1 @10:in3{ @8:in3{ 6:3 } } }") != NULL);
	size_t lines = 1;
	for (const char *c = s; *c; c++)
		lines += *c == '\n';
	CHECK_EQ_INT(lines, 3000);
	free(s);
	prof_fini(&p);
}

/* ------------------------------------------------------ the peer tool -- */

static const char hot_src[] = "#include <stdio.h>\n"
			      "#include <stdlib.h>\n"
			      "\n"
			      "static int helper(int x)\n"
			      "{\n"
			      "\treturn x * 3 + (x >> 2); /* loop */\n"
			      "}\n"
			      "\n"
			      "__attribute__((noinline)) int hot(int n)\n"
			      "{\n"
			      "\tint s = 0;\n"
			      "\tfor (int i = 0; i < n; i++) { /* loop */\n"
			      "\t\tif (i % 7 == 3) /* loop */\n"
			      "\t\t\ts += helper(i); /* loop */\n"
			      "\t\telse\n"
			      "\t\t\ts ^= i; /* loop */\n"
			      "\t}\n"
			      "\treturn s;\n"
			      "}\n"
			      "\n"
			      "int main(int argc, char **argv)\n"
			      "{\n"
			      "\tint n = argc > 1 ? atoi(argv[1]) : 1000;\n"
			      "\tprintf(\"%d\\n\", hot(n)); /* call */\n"
			      "\treturn 0;\n"
			      "}\n";

static int line_has(uint32_t line, const char *mark)
{
	const char *s = hot_src;
	for (uint32_t l = 1; l < line && s; l++)
		if ((s = strchr(s, '\n')))
			s++;
	if (!s)
		return 0;
	const char *end = strchr(s, '\n');
	const char *m = strstr(s, mark);
	return m && (!end || m < end);
}

static int run(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have_gcc12(void)
{
	return run("gcc-12 --version >/dev/null 2>&1") == 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	struct fdo_buf b;
	fdo_buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fdo_buf_append(&b, chunk, n);
	fclose(f);
	fdo_buf_cstr(&b);
	size_t len;
	return fdo_buf_steal(&b, &len);
}

/* sym_range finds a function's [addr, addr+size) with nm. */
static int sym_range(const char *elf, const char *fn, uint64_t *addr,
		     uint64_t *size)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "nm -S '%s'", elf);
	FILE *f = popen(cmd, "r");
	if (!f)
		return 0;
	char line[512], name[256], type[8];
	unsigned long long a, s;
	int found = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%llx %llx %7s %255s", &a, &s, type, name) ==
			    4 &&
		    !strcmp(name, fn)) {
			*addr = a;
			*size = s;
			found = 1;
		}
	pclose(f);
	return found;
}

/* fx_loc_at adds the location of vaddr in idx, as the builder would. */
static uint32_t fx_loc_at(struct prof *p, sym_index *idx, uint64_t vaddr,
			  uint32_t *innermost_line)
{
	struct sym_frame sf[16];
	size_t n = 0;
	sym_index_lookup(idx, vaddr, sf, 16, &n, NULL);
	if (n > 16)
		n = 16;
	struct fx_frame fr[16];
	for (size_t i = 0; i < n; i++)
		fr[i] = (struct fx_frame){sf[i].function ? sf[i].function : "",
					  sf[i].line, sf[i].discriminator,
					  sf[i].start_line};
	*innermost_line = n ? sf[0].line : 0;
	uint32_t l = fx_loc(p, fr, n);
	p->locs[l].vaddr = vaddr;
	p->locs[l].offset = vaddr;
	return l;
}

/*
 * real_profile builds hot.c with gcc-12 -O2 -g and a profile of it: every
 * byte of hot() sampled, 100 samples where the line is in the loop, 1
 * elsewhere, every byte of main once, and 50 more in the loop called from
 * main's call line.
 */
static int real_profile(struct prof *p, const char *dir, const char *cc,
			const char *flags)
{
	char path[512], cmd[2048];
	snprintf(path, sizeof path, "%s/hot.c", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return 0;
	fputs(hot_src, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "cd '%s' && %s -O2 -g %s -o hot hot.c", dir,
		 cc, flags);
	if (run(cmd))
		return 0;
	snprintf(path, sizeof path, "%s/hot", dir);
	uint64_t hot_a, hot_n, main_a, main_n;
	if (!sym_range(path, "hot", &hot_a, &hot_n) ||
	    !sym_range(path, "main", &main_a, &main_n))
		return 0;
	sym_index *idx;
	if (sym_index_open(path, NULL, NULL, &idx))
		return 0;
	prof_init(p);
	uint32_t line, loop_loc = UINT32_MAX, call_loc = UINT32_MAX;
	for (uint64_t a = hot_a; a < hot_a + hot_n; a++) {
		uint32_t l = fx_loc_at(p, idx, a, &line);
		int in_loop = line_has(line, "/* loop */");
		fx_stack(p, in_loop ? 100 : 1, 1, l);
		if (in_loop)
			loop_loc = l;
	}
	for (uint64_t a = main_a; a < main_a + main_n; a++) {
		uint32_t l = fx_loc_at(p, idx, a, &line);
		fx_stack(p, 1, 1, l);
		if (line_has(line, "/* call */"))
			call_loc = l;
	}
	sym_index_close(idx);
	if (loop_loc == UINT32_MAX || call_loc == UINT32_MAX)
		return 0;
	fx_stack(p, 50, 2, loop_loc, call_loc);
	return 1;
}

/* use_profile compiles hot.c with the profile; returns gcc's exit code,
 * its stderr in *err and the optimized dump in *dump (free both). */
static int use_profile(const char *dir, const char *cc, const char *flags,
		       const struct fdo_buf *prof, char **err, char **dump)
{
	char path[512], cmd[2048];
	snprintf(path, sizeof path, "%s/hot.afdo", dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(prof->data, 1, prof->len, f) != prof->len) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	snprintf(
		cmd, sizeof cmd,
		"cd '%s' && rm -f use*.optimized && %s -O2 -g %s -Wall -Wextra "
		"-fauto-profile=hot.afdo -fdump-tree-optimized=use.optimized "
		"-o hot2 hot.c 2>use.err",
		dir, cc, flags);
	int rc = run(cmd);
	snprintf(path, sizeof path, "%s/use.err", dir);
	*err = slurp(path);
	snprintf(path, sizeof path, "%s/use.optimized", dir);
	*dump = slurp(path);
	return rc;
}

/*
 * fn_counts sums the "[count: N]" of fn's blocks in an optimized dump;
 * without a profile gcc prints "[local count: N]" instead, so a positive
 * sum means the profile was read and applied to fn. *blocks gets the
 * number of blocks that carry a profile count.
 */
static unsigned long long fn_counts(const char *dump, const char *fn,
				    int *blocks)
{
	char head[128];
	snprintf(head, sizeof head, ";; Function %s (", fn);
	const char *s = dump ? strstr(dump, head) : NULL;
	*blocks = 0;
	if (!s)
		return 0;
	const char *end = strstr(s + 1, ";; Function ");
	unsigned long long sum = 0;
	for (const char *c = s;
	     (c = strstr(c, "[count: ")) && (!end || c < end); c++) {
		sum += strtoull(c + 8, NULL, 10);
		(*blocks)++;
		if (getenv("FDO_TEST_VERBOSE"))
			fprintf(stderr, "  %s: [count: %llu]\n", fn,
				strtoull(c + 8, NULL, 10));
	}
	return sum;
}

TEST(gcc12_reads_and_applies_the_profile)
{
	/* A missing compiler is a failure, never a silent pass. */
	if (!have_gcc12())
		fprintf(stderr,
			"  gcc-12 not found: run deploy/install-deps.sh\n");
	REQUIRE(have_gcc12());
	char dir[512];
	snprintf(dir, sizeof dir, "%s/gcc", test_tmpdir());
	mkdir(dir, 0700);
	struct prof p;
	REQUIRE(real_profile(&p, dir, "gcc-12", ""));
	struct fdo_buf b;
	fdo_buf_init(&b);
	CHECK_EQ_INT(gcc_emit(&p, NULL, &b), FDO_OK);
	int ok;
	char *text = render(&b, &ok);
	CHECK(ok);
	/* helper is inlined in hot: its line sits under a call site. */
	CHECK(strstr(text, "hot{") != NULL);
	CHECK(strstr(text, ":helper{") != NULL);
	CHECK(strstr(text, ">hot:50") != NULL);
	char *err = NULL, *dump = NULL;
	int rc = use_profile(dir, "gcc-12", "", &b, &err, &dump);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_STR(err, "");
	int blocks;
	unsigned long long sum = fn_counts(dump, "hot", &blocks);
	CHECK(blocks > 0);
	CHECK(sum >= 100);
	/* The inlined helper's own count (found only under hot's call site)
	 * annotates a block: gcc found the nested instance. */
	const char *h = strstr(text, ":helper{ ");
	unsigned long long hc = 0;
	CHECK(h && sscanf(h, ":helper{ %*u:%llu", &hc) == 1 && hc > 0);
	char want[64];
	snprintf(want, sizeof want, "[count: %llu]", hc);
	CHECK(dump && strstr(dump, want) != NULL);
	if (rc || !err || err[0] || !sum || getenv("FDO_TEST_VERBOSE"))
		fprintf(stderr,
			"  profile: %s\n  gcc: %s\n  hot: %d blocks, "
			"counts sum %llu\n",
			text, err ? err : "(none)", blocks, sum);
	free(err);
	free(dump);
	free(text);

	/* The control: the empty profile leaves hot without counts, also
	 * silently. */
	struct prof empty;
	prof_init(&empty);
	fdo_buf_reset(&b);
	CHECK_EQ_INT(gcc_emit(&empty, NULL, &b), FDO_OK);
	rc = use_profile(dir, "gcc-12", "", &b, &err, &dump);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_STR(err, "");
	sum = fn_counts(dump, "hot", &blocks);
	CHECK_EQ_INT(sum, 0);
	free(err);
	free(dump);
	prof_fini(&empty);
	fdo_buf_fini(&b);
	prof_fini(&p);
}

TEST(gcc12_reads_discriminators_and_min_share_variants)
{
	/* A missing compiler is a failure, never a silent pass. */
	if (!have_gcc12())
		fprintf(stderr,
			"  gcc-12 not found: run deploy/install-deps.sh\n");
	REQUIRE(have_gcc12());
	char dir[512];
	snprintf(dir, sizeof dir, "%s/gcc-variants", test_tmpdir());
	mkdir(dir, 0700);
	struct prof p;
	REQUIRE(real_profile(&p, dir, "gcc-12", ""));
	const char *variants[] = {"discriminators=1", "min_share=0.5"};
	for (size_t i = 0; i < 2; i++) {
		struct fdo_buf b;
		fdo_buf_init(&b);
		CHECK_EQ_INT(gcc_emit(&p, variants[i], &b), FDO_OK);
		char *err = NULL, *dump = NULL;
		CHECK_EQ_INT(use_profile(dir, "gcc-12", "", &b, &err, &dump),
			     0);
		CHECK_EQ_STR(err, "");
		int blocks;
		CHECK(fn_counts(dump, "hot", &blocks) > 0);
		free(err);
		free(dump);
		fdo_buf_fini(&b);
	}
	prof_fini(&p);
}
