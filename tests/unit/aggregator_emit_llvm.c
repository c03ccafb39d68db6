/*
 * Tests for aggregator/emit_llvm.c: exact text for a small hand-built
 * profile (inlining two deep, discriminators, call targets in plain and in
 * inlined code, head samples, skipped samples, sum, max and mean line
 * counts, head samples from stacks or from the entry line,
 * min_share, option errors, determinism), then profiles built from a real
 * program compiled here with clang-16 and resolved with the symbolizer,
 * checked with the real tools: llvm-profdata-16 show/merge must read the
 * file back to the same counts and bytes, and clang-16
 * -fprofile-sample-use must build the program silently and apply the
 * counts to the lines they were put on.
 */
#include <stdarg.h>
#include <unistd.h>

#include "aggregator/profile.h"
#include "common/common.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/emit_with.h"
#include "tests/unit/test.h"

/* ------------------------------------------------ building profiles -- */

struct fr {
	const char *fn;
	uint32_t line, disc, start;
};

/* add_loc adds a location with frames fr[0..n) (innermost first). */
static uint32_t add_loc(struct prof *p, uint64_t off, size_t n,
			const struct fr *fr)
{
	p->locs = realloc(p->locs, (p->nlocs + 1) * sizeof *p->locs);
	p->frames =
		realloc(p->frames, (p->nframes + n + 1) * sizeof *p->frames);
	if (!p->locs || !p->frames)
		abort();
	p->locs[p->nlocs] = (struct prof_loc){
		.build_id = 0,
		.offset = off,
		.vaddr = off,
		.first_frame = (uint32_t)p->nframes,
		.nframes = (uint32_t)n,
	};
	for (size_t i = 0; i < n; i++)
		p->frames[p->nframes++] = (struct prof_frame){
			.function = prof_intern(p, fr[i].fn),
			.file = prof_intern(p, "x.c"),
			.line = fr[i].line,
			.discriminator = fr[i].disc,
			.start_line = fr[i].start,
		};
	return (uint32_t)p->nlocs++;
}

/* add_stack adds a stack of n locations, leaf first. */
static void add_stack(struct prof *p, double count, size_t n,
		      const uint32_t *locs)
{
	p->stacks = realloc(p->stacks, (p->nstacks + 1) * sizeof *p->stacks);
	p->stack_locs = realloc(p->stack_locs, (p->nstack_locs + n + 1) *
						       sizeof *p->stack_locs);
	if (!p->stacks || !p->stack_locs)
		abort();
	p->stacks[p->nstacks++] = (struct prof_stack){
		.first_loc = (uint32_t)p->nstack_locs,
		.nlocs = (uint32_t)n,
		.count = count,
		.samples = (uint64_t)count,
	};
	if (n)
		memcpy(&p->stack_locs[p->nstack_locs], locs, n * sizeof *locs);
	p->nstack_locs += n;
	p->count += count;
}

static void add_build_id(struct prof *p, const char *hex)
{
	p->build_ids = calloc(1, sizeof *p->build_ids);
	if (!p->build_ids)
		abort();
	p->nbuild_ids = 1;
	fdo_build_id_parse(hex, p->build_ids[0].id, &p->build_ids[0].len);
	snprintf(p->build_ids[0].hex, sizeof p->build_ids[0].hex, "%s", hex);
}

/*
 * The hand profile: main (decl 10) calls work (decl 20) at line 12; work
 * inlines mix (decl 40) at line 25, mix inlines inner (decl 50) at line 44;
 * work calls leaf (decl 60) at line 27 and mix calls it at line 45.
 * Raw discriminators are LLVM-encoded: 4 is base 2, 2 is base 1.
 */
static const struct {
	size_t n;
	struct fr f[3];
} HAND_LOCS[] = {
	{1, {{"work", 22, 0, 20}}},			/* 0 */
	{1, {{"work", 22, 4, 20}}},			/* 1: 2.2 */
	{2, {{"mix", 43, 0, 40}, {"work", 25, 0, 20}}}, /* 2 */
	{3, {{"inner", 51, 2, 50}, {"mix", 44, 0, 40}, {"work", 25, 0, 20}}},
	{1, {{"leaf", 61, 0, 60}}},			/* 4 */
	{1, {{"work", 27, 0, 20}}},			/* 5: calls leaf */
	{1, {{"main", 12, 0, 10}}},			/* 6: calls work */
	{0, {{0}}},					/* 7: unsymbolized */
	{1, {{"work", 0, 0, 20}}},			/* 8: line 0 */
	{1, {{"work", 22, 0, 20}}},			/* 9: 2nd address */
	{2, {{"mix", 45, 0, 40}, {"work", 25, 0, 20}}}, /* 10: calls leaf */
};

static const struct {
	double count;
	size_t n;
	uint32_t locs[3]; /* into HAND_LOCS, leaf first */
} HAND_STACKS[] = {
	{10.4, 2, {0, 6}}, {5, 2, {9, 6}},  {3, 1, {1}},
	{20, 2, {2, 6}},   {7.5, 1, {3}},   {4, 3, {4, 5, 6}},
	{2, 1, {5}},	   {1, 2, {4, 10}}, {100, 1, {7}}, /* skipped */
	{50, 1, {8}},					   /* skipped */
	{1, 2, {0, 7}}, /* caller unknown: head and body only */
	{0, 1, {0}},	/* zero count: nothing */
	{5, 0, {0}},	/* no locations: nothing */
};

#define NELEM(a) (sizeof(a) / sizeof *(a))

/* reversed: the same locations and stacks, added in the opposite order. */
static void hand_profile(struct prof *p, int reversed)
{
	prof_init(p);
	add_build_id(p, "00112233445566778899aabbccddeeff00112233");
	uint32_t L[NELEM(HAND_LOCS)];
	for (size_t k = 0; k < NELEM(HAND_LOCS); k++) {
		size_t i = reversed ? NELEM(HAND_LOCS) - 1 - k : k;
		L[i] = add_loc(p, 0x1000 + 16 * i, HAND_LOCS[i].n,
			       HAND_LOCS[i].f);
	}
	for (size_t k = 0; k < NELEM(HAND_STACKS); k++) {
		size_t i = reversed ? NELEM(HAND_STACKS) - 1 - k : k;
		uint32_t locs[3];
		for (size_t j = 0; j < HAND_STACKS[i].n; j++)
			locs[j] = L[HAND_STACKS[i].locs[j]];
		add_stack(p, HAND_STACKS[i].count, HAND_STACKS[i].n, locs);
	}
}

/* The hand profile's text under line_count=sum, head=stacks (the defaults
 * are mean and entry: see defaults_are_mean_and_entry). */
#define SUM_STACKS "line_count=sum,head=stacks"

static const char *HAND = "work:49:40\n"
			  " 2: 16\n"
			  " 2.2: 3\n"
			  " 7: 2 leaf:4\n"
			  " 5: mix:28\n"
			  "  3: 20\n"
			  "  5: 0 leaf:1\n"
			  "  4: inner:8\n"
			  "   1.1: 8\n"
			  "leaf:5:5\n"
			  " 1: 5\n"
			  "main:0:0\n"
			  " 2: 0 work:39\n";

/* The text form (these tests read it); extbinary has its own test. */
static char *emit(const struct prof *p, const char *opts, int *rc)
{
	struct fdo_buf b;
	char text[512];
	snprintf(text, sizeof text, "encoding=text%s%s",
		 opts && *opts ? "," : "", opts ? opts : "");
	fdo_buf_init(&b);
	*rc = emit_with(emit_llvm, p, text, &b);
	fdo_buf_cstr(&b);
	size_t len;
	return fdo_buf_steal(&b, &len);
}

TEST(hand_profile_exact_text)
{
	struct prof p;
	hand_profile(&p, 0);
	int rc;
	char *t = emit(&p, SUM_STACKS, &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(t, HAND);
	free(t);
	prof_fini(&p);
}

TEST(same_profile_same_bytes_in_any_order)
{
	struct prof a, b;
	hand_profile(&a, 0);
	hand_profile(&b, 1);
	int rc1, rc2;
	char *x = emit(&a, SUM_STACKS, &rc1),
	     *y = emit(&b, "head=stacks;line_count=sum", &rc2);
	CHECK(!rc1 && !rc2);
	CHECK_EQ_STR(x, y);
	free(x);
	free(y);
	prof_fini(&a);
	prof_fini(&b);
}

TEST(line_count_max_takes_the_largest_address)
{
	/* work line 22 has two addresses: 10.4 + 1 and 5 samples. */
	struct prof p;
	hand_profile(&p, 0);
	int rc;
	char *t = emit(&p, "line_count=max,head=stacks", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK(t && !strncmp(t, "work:44:40\n 2: 11\n 2.2: 3\n", 26));
	free(t);
	prof_fini(&p);
}

TEST(line_count_mean_divides_by_addresses_and_keeps_the_total)
{
	/* work line 22: (11.4 + 5) / 2 addresses = 8.2; every other line has
	 * one address. The lines summed 53.9, the means 45.7: each is scaled
	 * by 53.9 / 45.7, so 8.2 -> 9.67, 3 -> 3.54, 20 -> 23.6, 7.5 -> 8.85,
	 * 5 -> 5.90; heads and call targets are unchanged. */
	struct prof p;
	hand_profile(&p, 0);
	int rc;
	char *t = emit(&p, "line_count=mean,head=stacks", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(t, "work:49:40\n 2: 10\n 2.2: 4\n 7: 2 leaf:4\n"
			" 5: mix:33\n  3: 24\n  5: 0 leaf:1\n  4: inner:9\n"
			"   1.1: 9\n"
			"leaf:6:5\n 1: 6\n"
			"main:0:0\n 2: 0 work:39\n");
	free(t);
	prof_fini(&p);
}

TEST(defaults_are_mean_and_entry)
{
	struct prof p;
	hand_profile(&p, 0);
	int rc1, rc2;
	char *x = emit(&p, NULL, &rc1),
	     *y = emit(&p, "line_count=mean,head=entry", &rc2);
	CHECK(!rc1 && !rc2);
	CHECK_EQ_STR(x, y);
	/* No function has a sample on its entry line here: heads are 0. */
	CHECK(x && !strncmp(x, "work:49:0\n 2: 10\n", 17));
	free(x);
	free(y);
	prof_fini(&p);
}

TEST(head_entry_is_the_entry_line_count)
{
	/* f (decl 10) runs 7 samples on its entry line 10 and 3 on line 12;
	 * g calls it from line 31 in all 10. */
	struct prof p;
	prof_init(&p);
	add_build_id(&p, "00112233445566778899aabbccddeeff00112233");
	const struct fr f0[] = {{"f", 10, 0, 10}}, f1[] = {{"f", 12, 0, 10}},
			g[] = {{"g", 31, 0, 30}};
	uint32_t a[2] = {add_loc(&p, 0x10, 1, f0), add_loc(&p, 0x30, 1, g)};
	uint32_t b[2] = {add_loc(&p, 0x20, 1, f1), a[1]};
	add_stack(&p, 7, 2, a);
	add_stack(&p, 3, 2, b);
	int rc;
	char *t = emit(&p, "head=stacks", &rc);
	CHECK_EQ_STR(t, "f:10:10\n 0: 7\n 2: 3\ng:0:0\n 1: 0 f:10\n");
	free(t);
	t = emit(&p, "head=entry", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(t, "f:10:7\n 0: 7\n 2: 3\ng:0:0\n 1: 0 f:10\n");
	free(t);
	prof_fini(&p);
}

TEST(min_share_drops_small_functions)
{
	/* Totals 49, 5, 0 of 54: 0.1 keeps work only (5 < 5.4). */
	struct prof p;
	hand_profile(&p, 0);
	int rc;
	char *t = emit(&p, "min_share=0.1," SUM_STACKS, &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	const char *work_only = strstr(HAND, "leaf:5:5");
	CHECK(t && strlen(t) == (size_t)(work_only - HAND) &&
	      !strncmp(t, HAND, strlen(t)));
	free(t);
	/* 5/54 = 0.0926 keeps leaf. */
	t = emit(&p, "min_share=0.09,head=stacks,line_count=sum", &rc);
	CHECK(t && strstr(t, "leaf:5:5\n") && !strstr(t, "main:"));
	free(t);
	t = emit(&p, "min_share=0.5," SUM_STACKS, &rc);
	CHECK_EQ_STR(t, "work:49:40\n 2: 16\n 2.2: 3\n 7: 2 leaf:4\n"
			" 5: mix:28\n  3: 20\n  5: 0 leaf:1\n  4: inner:8\n"
			"   1.1: 8\n");
	free(t);
	prof_fini(&p);
}

TEST(bad_options_are_refused)
{
	struct prof p;
	hand_profile(&p, 0);
	const char *bad[] = {
		"min_share=2",	  "min_share=-0.1", "min_share=x",
		"line_count=avg", "min_share",	    "line_count",
		"head=calls",	  "head=",	    "encoding=binary",
		"symbol_list=2"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct fdo_buf b;
		fdo_buf_init(&b);
		CHECK_EQ_INT(emit_with(emit_llvm, &p, bad[i], &b), FDO_EINVAL);
		CHECK_EQ_INT(b.len, 0);
		fdo_buf_fini(&b);
	}
	prof_fini(&p);
}

TEST(other_formats_options_change_nothing)
{
	/* One option list serves every format: llvm ignores bolt's
	 * build-id, pprof's period and gcc's discriminators. */
	struct prof p;
	hand_profile(&p, 0);
	int rc;
	char *t = emit(
		&p,
		"build_id=00112233 period=1000;discriminators=1 " SUM_STACKS,
		&rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(t, HAND);
	free(t);
	t = emit(&p, "nonsense=1," SUM_STACKS, &rc);
	CHECK_EQ_INT(rc, FDO_EINVAL);
	free(t);
	t = emit(&p, "build_id=00112233,min_share=0.1," SUM_STACKS, &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK(t && !strncmp(t, "work:49:40\n", 11) && !strstr(t, "\nleaf:5:5"));
	free(t);
	prof_fini(&p);
}

TEST(empty_profile_gives_empty_text)
{
	struct prof p;
	prof_init(&p);
	int rc;
	char *t = emit(&p, NULL, &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(t, "");
	free(t);
	prof_fini(&p);
}

TEST(names_clang_cannot_read_are_skipped)
{
	struct prof p;
	prof_init(&p);
	const struct fr sp[] = {{"operator new(unsigned long)", 3, 0, 1}};
	const struct fr ok[] = {{"_Znwm", 3, 0, 1}};
	uint32_t a = add_loc(&p, 0x10, 1, sp), b = add_loc(&p, 0x20, 1, ok);
	add_stack(&p, 3, 1, &a);
	add_stack(&p, 2, 1, &b);
	int rc;
	char *t = emit(&p, NULL, &rc);
	CHECK_EQ_STR(t, "_Znwm:2:0\n 2: 2\n");
	free(t);
	prof_fini(&p);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *slurp(const char *path);
static int spit(const char *path, const char *text, size_t len);

TEST(hand_profile_round_trips_through_llvm_profdata)
{
	/* llvm-profdata writes what it read in its own order: the same bytes
	 * mean our order, indentation and totals are LLVM's. */
	char in[300], out[300];
	snprintf(in, sizeof in, "%s/hand.txt", test_tmpdir());
	snprintf(out, sizeof out, "%s/hand.back.txt", test_tmpdir());
	REQUIRE(spit(in, HAND, strlen(HAND)) == 0);
	REQUIRE(sh("llvm-profdata-16 merge --sample --text '%s' -o '%s'", in,
		   out) == 0);
	char *back = slurp(out);
	CHECK_EQ_STR(back, HAND);
	free(back);
}

TEST(extbinary_is_what_llvm_profdata_writes)
{
	/* The default encoding: the bytes llvm-profdata writes from the
	 * text form (no executable here, so no symbol list). */
	struct prof p;
	hand_profile(&p, 0);
	struct fdo_buf b;
	fdo_buf_init(&b);
	CHECK_EQ_INT(emit_with(emit_llvm, &p, SUM_STACKS, &b), FDO_OK);
	char in[300], ref[300];
	snprintf(in, sizeof in, "%s/hand.txt", test_tmpdir());
	snprintf(ref, sizeof ref, "%s/hand.extbin", test_tmpdir());
	REQUIRE(spit(in, HAND, strlen(HAND)) == 0);
	REQUIRE(sh("llvm-profdata-16 merge --sample --extbinary '%s' -o '%s'",
		   in, ref) == 0);
	FILE *f = fopen(ref, "rb");
	REQUIRE(f);
	char want[4096];
	size_t n = fread(want, 1, sizeof want, f);
	fclose(f);
	CHECK(n > 250 && n < sizeof want);
	CHECK_EQ_INT(b.len, n);
	CHECK(b.len == n && !memcmp(b.data, want, n));
	fdo_buf_fini(&b);

	/* Nothing to write: an empty file, as in text. */
	struct prof e;
	prof_init(&e);
	fdo_buf_init(&b);
	CHECK_EQ_INT(emit_with(emit_llvm, &e, "", &b), FDO_OK);
	CHECK_EQ_INT(b.len, 0);
	fdo_buf_fini(&b);
	prof_fini(&e);
	prof_fini(&p);
}

/* ------------------------------------------- a real program, real tools -- */

/* Line numbers below are part of the test: keep them. (Line 28 varies the
 * argument so the compiler cannot hoist the call out of the loop.) */
/* clang-format off */
static const char *PROG =
	"#include <stdio.h>\n"                                  /* 1 */
	"#include <stdlib.h>\n"                                 /* 2 */
	"\n"                                                    /* 3 */
	"static inline __attribute__((always_inline)) long mix(long x, long k)\n" /* 4 */
	"{\n"                                                   /* 5 */
	"\tlong r = x;\n"                                       /* 6 */
	"\tfor (long j = 0; j < k; j++) r = r * 31 + (r >> 7) + j;\n" /* 7 */
	"\treturn r;\n"                                         /* 8 */
	"}\n"                                                   /* 9 */
	"\n"                                                    /* 10 */
	"__attribute__((noinline)) long work(const long *a, long n, long k)\n" /* 11 */
	"{\n"                                                   /* 12 */
	"\tlong s = 0;\n"                                       /* 13 */
	"\tfor (long i = 0; i < n; i++)\n"                      /* 14 */
	"\t\ts += mix(a[i], k);\n"                              /* 15 */
	"\treturn s;\n"                                         /* 16 */
	"}\n"                                                   /* 17 */
	"\n"                                                    /* 18 */
	"int main(int argc, char **argv)\n"                     /* 19 */
	"{\n"                                                   /* 20 */
	"\tlong n = argc > 1 ? atol(argv[1]) : 1000;\n"         /* 21 */
	"\tlong k = argc > 2 ? atol(argv[2]) : 5;\n"            /* 22 */
	"\tlong *a = malloc(n * sizeof *a);\n"                  /* 23 */
	"\tfor (long i = 0; i < n; i++)\n"                      /* 24 */
	"\t\ta[i] = i ^ (i >> 3);\n"                            /* 25 */
	"\tlong s = 0;\n"                                       /* 26 */
	"\tfor (int rep = 0; rep < 100; rep++)\n"               /* 27 */
	"\t\ts += work(a, n, k + (rep & 1));\n"                 /* 28 */
	"\tprintf(\"%ld\\n\", s);\n"                            /* 29 */
	"\tfree(a);\n"                                          /* 30 */
	"\treturn 0;\n"                                         /* 31 */
	"}\n";                                                  /* 32 */
/* clang-format on */

#define CFLAGS_PROG "-O2 -g -fdebug-info-for-profiling"

/* The program's addresses, one per run of equal inline chains. */
struct fx_run {
	uint64_t vaddr;
	size_t n;
	struct sym_frame f[8];
};

struct fx {
	char dir[300], src[400], exe[400];
	sym_index *idx;
	struct fx_run *runs;
	size_t nruns;
};

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc)
		fprintf(stderr, "  command failed (%d): %s\n", rc, cmd);
	return rc;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct fdo_buf b;
	fdo_buf_init(&b);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		fdo_buf_append(&b, tmp, n);
	fclose(f);
	fdo_buf_cstr(&b);
	size_t len;
	return fdo_buf_steal(&b, &len);
}

static int spit(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(text, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Scan [lo, hi) a byte at a time; record where the inline chain changes. */
static void fx_scan(struct fx *x, uint64_t lo, uint64_t hi)
{
	for (uint64_t a = lo; a < hi; a++) {
		struct fx_run r = {.vaddr = a};
		sym_index_lookup(x->idx, a, r.f, 8, &r.n, NULL);
		if (r.n > 8)
			r.n = 8;
		if (x->nruns) {
			const struct fx_run *q = &x->runs[x->nruns - 1];
			int same = q->n == r.n;
			for (size_t i = 0; same && i < r.n; i++)
				same = q->f[i].line == r.f[i].line &&
				       q->f[i].discriminator ==
					       r.f[i].discriminator &&
				       !strcmp(q->f[i].function
						       ? q->f[i].function
						       : "",
					       r.f[i].function ? r.f[i].function
							       : "");
			if (same && a > lo)
				continue;
		}
		x->runs = realloc(x->runs, (x->nruns + 1) * sizeof *x->runs);
		if (!x->runs)
			abort();
		x->runs[x->nruns++] = r;
	}
}

/* fx_open compiles PROG with flags and indexes main and work. */
static int fx_open(struct fx *x, const char *name)
{
	memset(x, 0, sizeof *x);
	snprintf(x->dir, sizeof x->dir, "%s/%s", test_tmpdir(), name);
	snprintf(x->src, sizeof x->src, "%s/prog.c", x->dir);
	snprintf(x->exe, sizeof x->exe, "%s/prog", x->dir);
	if (sh("mkdir -p '%s'", x->dir) || spit(x->src, PROG, strlen(PROG)) ||
	    sh("clang-16 " CFLAGS_PROG " '%s' -o '%s'", x->src, x->exe))
		return -1;
	if (sym_index_open(x->exe, NULL, NULL, &x->idx))
		return -1;
	char cmd[600], line[512];
	snprintf(cmd, sizeof cmd, "llvm-nm-16 -S '%s'", x->exe);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long long addr, size;
		char type, sym[256];
		if (sscanf(line, "%llx %llx %c %255s", &addr, &size, &type,
			   sym) == 4 &&
		    (!strcmp(sym, "main") || !strcmp(sym, "work")))
			fx_scan(x, addr, addr + size);
	}
	pclose(f);
	return x->nruns ? 0 : -1;
}

static void fx_close(struct fx *x)
{
	sym_index_close(x->idx);
	free(x->runs);
}

static uint32_t base_disc(uint32_t d)
{
	if (d & 1)
		return 0;
	d >>= 1;
	return d & 0x20 ? ((d >> 1) & 0xfe0) | (d & 0x1f) : d & 0x1f;
}

/*
 * fx_find returns the k-th run whose innermost frame is fn at line (any
 * discriminator when disc is UINT32_MAX, else that base discriminator)
 * and whose outermost frame is outer; NULL if none.
 */
static const struct fx_run *fx_find(const struct fx *x, const char *fn,
				    uint32_t line, uint32_t disc,
				    const char *outer, int k)
{
	for (size_t i = 0; i < x->nruns; i++) {
		const struct fx_run *r = &x->runs[i];
		if (!r->n || !r->f[0].function || !r->f[r->n - 1].function)
			continue;
		if (strcmp(r->f[0].function, fn) || r->f[0].line != line ||
		    strcmp(r->f[r->n - 1].function, outer))
			continue;
		if (disc != UINT32_MAX &&
		    base_disc(r->f[0].discriminator) != disc)
			continue;
		if (k-- == 0)
			return r;
	}
	return NULL;
}

/* fx_loc adds run r as a location of p. */
static uint32_t fx_loc(struct prof *p, const struct fx_run *r)
{
	struct fr fr[8];
	for (size_t i = 0; i < r->n; i++)
		fr[i] = (struct fr){r->f[i].function ? r->f[i].function : "",
				    r->f[i].line, r->f[i].discriminator,
				    r->f[i].start_line};
	return add_loc(p, r->vaddr, r->n, fr);
}

/* emit_to writes p's llvm text with opts to dir/name; returns the text. */
static char *emit_to(const struct prof *p, const char *opts, const char *path)
{
	int rc;
	char *t = emit(p, opts, &rc);
	if (rc || !t || spit(path, t, strlen(t))) {
		free(t);
		return NULL;
	}
	return t;
}

/* run captures the stdout of cmd (stderr too when err is set). */
static char *run(const char *cmd, int err)
{
	char full[2200], out[2100];
	snprintf(out, sizeof out, "%s/run.out", test_tmpdir());
	snprintf(full, sizeof full, "%s >'%s' %s", cmd, out, err ? "2>&1" : "");
	if (system(full)) {
		fprintf(stderr, "  command failed: %s\n", full);
		return NULL;
	}
	return slurp(out);
}

/*
 * The hot profile of the program: 700 samples on mix's loop (line 7,
 * inlined into work at line 15) split over two discriminators, 100 on
 * work's loop (line 14), 200 in main's init loop (line 25), and every work
 * sample called from main at line 28.
 */
struct hot {
	/* "offset[.discriminator]" of each line, as clang will see it. */
	char m1[32], m2[32], w14[32], m25[32];
};

static void key(const struct fx_run *r, char *buf, size_t cap)
{
	uint32_t off = (r->f[0].line - r->f[0].start_line) & 0xffff;
	uint32_t d = base_disc(r->f[0].discriminator);
	if (d)
		snprintf(buf, cap, "%u.%u", off, d);
	else
		snprintf(buf, cap, "%u", off);
}

static int hot_profile(const struct fx *x, struct prof *p, struct hot *h)
{
	prof_init(p);
	add_build_id(p, "0123456789abcdef");
	/* Two different nonzero base discriminators on line 7, lower one
	 * first. (Base 0 on line 7 is the unroller's runtime check, made
	 * after clang reads the profile: no instruction carries it then.) */
	const struct fx_run *m1 = NULL, *m2 = NULL, *r;
	for (int k = 0;
	     !m2 && (r = fx_find(x, "mix", 7, UINT32_MAX, "work", k)); k++) {
		if (r->n != 2 || !base_disc(r->f[0].discriminator))
			continue;
		if (!m1)
			m1 = r;
		else if (base_disc(r->f[0].discriminator) !=
			 base_disc(m1->f[0].discriminator))
			m2 = r;
	}
	const struct fx_run *w14 =
		fx_find(x, "work", 14, UINT32_MAX, "work", 0);
	const struct fx_run *m25 =
		fx_find(x, "main", 25, UINT32_MAX, "main", 0);
	const struct fx_run *m28 = fx_find(x, "main", 28, 0, "main", 0);
	if (!m1 || !m2 || !w14 || !m25 || !m28) {
		fprintf(stderr, "  program has not the expected lines\n");
		return -1;
	}
	if (base_disc(m1->f[0].discriminator) >
	    base_disc(m2->f[0].discriminator)) {
		r = m1;
		m1 = m2;
		m2 = r;
	}
	/* Offsets come from the source's line numbers: the symbolizer must
	 * give each frame its own function's start line and the call site's
	 * line for the outer frame. */
	if (m1->f[0].start_line != 4 || m1->f[1].line != 15 ||
	    m1->f[1].start_line != 11 || base_disc(m1->f[1].discriminator) ||
	    w14->f[0].start_line != 11 || m25->f[0].start_line != 19 ||
	    m28->f[0].start_line != 19) {
		fprintf(stderr, "  unexpected start lines\n");
		return -1;
	}
	key(m1, h->m1, sizeof h->m1);
	key(m2, h->m2, sizeof h->m2);
	key(w14, h->w14, sizeof h->w14);
	key(m25, h->m25, sizeof h->m25);
	uint32_t lm1 = fx_loc(p, m1), lm2 = fx_loc(p, m2);
	uint32_t lw14 = fx_loc(p, w14), lm25 = fx_loc(p, m25);
	uint32_t lm28 = fx_loc(p, m28);
	add_stack(p, 400, 2, (uint32_t[]){lm1, lm28});
	add_stack(p, 300, 2, (uint32_t[]){lm2, lm28});
	add_stack(p, 100, 2, (uint32_t[]){lw14, lm28});
	add_stack(p, 200, 1, &lm25);
	return 0;
}

TEST(real_program_profile_reads_back_in_llvm_profdata)
{
	struct fx x;
	REQUIRE(fx_open(&x, "readback") == 0);
	struct prof p;
	struct hot h;
	if (hot_profile(&x, &p, &h)) {
		CHECK(0);
		goto out;
	}
	char path[400], bin[400], txt[400], cmd[1400];
	snprintf(path, sizeof path, "%s/prof.txt", x.dir);
	snprintf(bin, sizeof bin, "%s/prof.extbin", x.dir);
	snprintf(txt, sizeof txt, "%s/prof.back.txt", x.dir);
	char *t = emit_to(&p, SUM_STACKS, path);
	REQUIRE(t);

	/* Exactly what we put in; offsets from the source's line numbers. */
	char want[512];
	snprintf(want, sizeof want,
		 "work:800:800\n %s: 100\n 4: mix:700\n  %s: 400\n  %s: 300\n"
		 "main:200:0\n %s: 200\n 9: 0 work:800\n",
		 h.w14, h.m1, h.m2, h.m25);
	CHECK_EQ_STR(t, want);

	/* llvm-profdata reads it, writes the same text back and converts it
	 * to the binary format clang builds use. */
	snprintf(cmd, sizeof cmd, "llvm-profdata-16 show --sample '%s'", path);
	char *o = run(cmd, 0);
	CHECK(o && strstr(o, "Function: work: 800, 800, 1 sampled lines"));
	free(o);
	snprintf(cmd, sizeof cmd,
		 "llvm-profdata-16 merge --sample --text '%s' -o '%s'", path,
		 txt);
	REQUIRE(sh("%s", cmd) == 0);
	char *back = slurp(txt);
	CHECK_EQ_STR(back, t);
	free(back);
	snprintf(cmd, sizeof cmd,
		 "llvm-profdata-16 merge --sample --extbinary '%s' -o '%s' && "
		 "llvm-profdata-16 show --sample --function=work '%s'",
		 path, bin, bin);
	o = run(cmd, 0);
	CHECK(o && strstr(o, "4: inlined callee: mix: 700"));
	free(o);

	/* The loop: 700 of 1000 samples on mix's line, 200 on main's. */
	snprintf(cmd, sizeof cmd,
		 "llvm-profdata-16 show --sample --function=main '%s'", path);
	o = run(cmd, 0);
	char l[64];
	snprintf(l, sizeof l, "  %s: 200\n", h.m25);
	CHECK(o && strstr(o, "Function: main: 200, 0, 2 sampled lines") &&
	      strstr(o, l) && strstr(o, "  9: 0, calls: work:800\n"));
	free(o);
	snprintf(cmd, sizeof cmd,
		 "llvm-profdata-16 show --sample --function=work '%s'", path);
	o = run(cmd, 0);
	snprintf(l, sizeof l, "  %s: 100\n", h.w14);
	CHECK(o && strstr(o, l));
	snprintf(l, sizeof l, "      %s: 400\n", h.m1);
	CHECK(o && strstr(o, l));
	snprintf(l, sizeof l, "      %s: 300\n", h.m2);
	CHECK(o && strstr(o, l));
	if (test_failed_now && o)
		fprintf(stderr, "%s", o);
	free(o);
	free(t);
out:
	prof_fini(&p);
	fx_close(&x);
}

TEST(clang_builds_with_the_profile_silently_and_applies_it)
{
	struct fx x;
	REQUIRE(fx_open(&x, "clang") == 0);
	struct prof p;
	struct hot h;
	if (hot_profile(&x, &p, &h)) {
		CHECK(0);
		goto out;
	}
	char path[400], cmd[1600];
	snprintf(path, sizeof path, "%s/prof.txt", x.dir);
	char *t = emit_to(&p, SUM_STACKS, path);
	REQUIRE(t);
	free(t);

	/* A full build: no output at all on stderr (or stdout). */
	snprintf(cmd, sizeof cmd,
		 "clang-16 " CFLAGS_PROG " -fprofile-sample-use='%s' '%s' "
		 "-o '%s.pgo'",
		 path, x.src, x.exe);
	char *o = run(cmd, 1);
	CHECK_EQ_STR(o, "");
	free(o);
	snprintf(cmd, sizeof cmd, "'%s.pgo' 1000 5", x.exe);
	char *want = run(cmd, 0);
	snprintf(cmd, sizeof cmd, "'%s' 1000 5", x.exe);
	char *got = run(cmd, 0);
	CHECK(want && got && !strcmp(want, got));
	free(want);
	free(got);

	/* Clang found work by name and took its head samples as entry
	 * count (HEAD + 1). */
	snprintf(cmd, sizeof cmd,
		 "clang-16 " CFLAGS_PROG " -fprofile-sample-use='%s' -S "
		 "-emit-llvm '%s' -o -",
		 path, x.src);
	o = run(cmd, 0);
	CHECK(o && strstr(o, "!{!\"function_entry_count\", i64 801}"));
	free(o);

	/* Clang applied the counts to the lines they were put on: the
	 * remarks name each offset with its count. */
	snprintf(cmd, sizeof cmd,
		 "clang-16 " CFLAGS_PROG " -fprofile-sample-use='%s' "
		 "-Rpass-analysis=sample-profile -c '%s' -o /dev/null",
		 path, x.src);
	o = run(cmd, 1);
	const struct {
		const char *key;
		unsigned count;
	} applied[] = {{h.m1, 400}, {h.m2, 300}, {h.w14, 100}, {h.m25, 200}};
	for (size_t i = 0; i < 4; i++) {
		char r[128];
		snprintf(r, sizeof r,
			 "Applied %u samples from profile (offset: %s)",
			 applied[i].count, applied[i].key);
		CHECK(o && strstr(o, r));
	}
	if (test_failed_now && o)
		fprintf(stderr, "%s", o);
	free(o);
out:
	prof_fini(&p);
	fx_close(&x);
}
