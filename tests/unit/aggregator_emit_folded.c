/*
 * Tests for aggregator/emit_folded.c: exact collapsed stacks for a small
 * hand-built profile (inline chains expanded outermost first, unsymbolized
 * and nameless frames, separators in names, merging, rounding, order),
 * determinism, other emitters' options ignored, a large profile that grows the
 * tables.
 */
#include "aggregator/profile.h"
#include "common/common.h"
#include "tests/unit/emit_with.h"
#include "tests/unit/test.h"

struct fr {
	const char *fn;
	uint32_t line;
};

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
			.function = fr[i].fn ? prof_intern(p, fr[i].fn)
					     : PROF_NONE,
			.file = PROF_NONE,
			.line = fr[i].line,
		};
	return (uint32_t)p->nlocs++;
}

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
	};
	if (n)
		memcpy(&p->stack_locs[p->nstack_locs], locs, n * sizeof *locs);
	p->nstack_locs += n;
	p->count += count;
}

static const struct {
	size_t n;
	struct fr f[3];
	uint64_t off;
} HAND_LOCS[] = {
	{1, {{"work", 22}}, 0x100},
	{3, {{"inner", 51}, {"mix", 44}, {"work", 25}}, 0x110},
	{1, {{"main", 12}}, 0x120},
	{0, {{0}}, 0x4d2},	     /* 3: not symbolized */
	{1, {{"a;b\nc", 1}}, 0x130}, /* 4: separators in a name */
	{1, {{NULL, 3}}, 0x20},	     /* 5: no name */
};

static const struct {
	double count;
	size_t n;
	uint32_t locs[3]; /* into HAND_LOCS, leaf first */
} HAND_STACKS[] = {
	{2.4, 2, {0, 2}}, {5, 2, {1, 2}},
	{1, 2, {0, 3}},	  {0.4, 1, {3}}, /* rounds to 0: dropped */
	{1, 1, {4}},	  {1, 2, {5, 2}},
	{0.2, 2, {0, 2}}, /* merged with the first: 2.6 -> 3 */
	{0, 1, {1}},	  /* zero count */
	{3, 0, {0}},	  /* no locations */
};

#define NELEM(a) (sizeof(a) / sizeof *(a))

/* reversed: the same locations and stacks, added in the opposite order. */
static void hand_profile(struct prof *p, int reversed)
{
	prof_init(p);
	p->build_ids = calloc(1, sizeof *p->build_ids);
	p->nbuild_ids = 1;
	snprintf(p->build_ids[0].hex, sizeof p->build_ids[0].hex, "%s",
		 "00112233445566778899aabbccddeeff");
	uint32_t L[NELEM(HAND_LOCS)];
	for (size_t k = 0; k < NELEM(HAND_LOCS); k++) {
		size_t i = reversed ? NELEM(HAND_LOCS) - 1 - k : k;
		L[i] = add_loc(p, HAND_LOCS[i].off, HAND_LOCS[i].n,
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

static const char *HAND = "[001122334455+0x4d2];work 1\n"
			  "a_b_c 1\n"
			  "main;[001122334455+0x20] 1\n"
			  "main;work 3\n"
			  "main;work;mix;inner 5\n";

static char *emit(const struct prof *p, const char *opts, int *rc)
{
	struct fdo_buf b;
	fdo_buf_init(&b);
	*rc = emit_with(emit_folded, p, opts, &b);
	fdo_buf_cstr(&b);
	size_t len;
	return fdo_buf_steal(&b, &len);
}

TEST(hand_profile_exact_text)
{
	struct prof p;
	hand_profile(&p, 0);
	int rc;
	char *t = emit(&p, NULL, &rc);
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
	char *x = emit(&a, "", &rc1), *y = emit(&b, NULL, &rc2);
	CHECK(!rc1 && !rc2);
	CHECK_EQ_STR(x, y);
	free(x);
	free(y);
	prof_fini(&a);
	prof_fini(&b);
}

TEST(other_formats_options_change_nothing)
{
	struct prof p;
	hand_profile(&p, 0);
	int rc;
	char *t = emit(&p, "build_id=0011,min_share=0.1", &rc);
	CHECK_EQ_INT(rc, FDO_OK);
	CHECK_EQ_STR(t, HAND);
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

TEST(many_stacks_merge_and_sort)
{
	/* 20000 distinct stacks, each added three times: the hash table and
	 * text arena grow many times; every line appears once, sorted. */
	struct prof p;
	prof_init(&p);
	p.build_ids = calloc(1, sizeof *p.build_ids);
	p.nbuild_ids = 1;
	strcpy(p.build_ids[0].hex, "ab");
	enum { N = 20000 };
	uint32_t root = add_loc(&p, 1, 1, (struct fr[]){{"root", 1}});
	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof name, "f%05d", i);
		uint32_t l = add_loc(&p, 100 + i, 1, (struct fr[]){{name, 1}});
		for (int r = 0; r < 3; r++)
			add_stack(&p, 1, 2, (uint32_t[]){l, root});
	}
	int rc;
	char *t = emit(&p, NULL, &rc);
	REQUIRE(rc == FDO_OK && t);
	size_t lines = 0;
	const char *prev = NULL;
	for (char *s = t, *nl; (nl = strchr(s, '\n')); s = nl + 1, lines++) {
		CHECK(!strncmp(s, "root;f", 6) && !strncmp(nl - 2, " 3", 2));
		if (prev)
			CHECK(strncmp(prev, s, 11) < 0);
		prev = s;
	}
	CHECK_EQ_INT(lines, N);
	free(t);
	prof_fini(&p);
}
