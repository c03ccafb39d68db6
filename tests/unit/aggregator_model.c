/*
 * Tests for aggregator/model.c with block counts (counts=blocks): a line's
 * count is the largest of its instructions' block counts (times clang's
 * duplication factor), line-0 instructions count through their block, the
 * head is the entry block's count, a call's count is its block's, shared
 * among the callees the stacks saw; functions without blocks keep the
 * samples rule; zeros=1 keeps lines that ran 0 times; everything in one
 * unit. The samples rules themselves are tested in aggregator_emit_llvm.
 */
#include <math.h>

#include "aggregator/profile.h"
#include "common/common.h"
#include "tests/unit/emit_with.h"
#include "tests/unit/test.h"

struct fr {
	const char *fn;
	uint32_t line, disc, start;
};

static uint32_t frames(struct prof *p, size_t n, const struct fr *f)
{
	p->frames =
		realloc(p->frames, (p->nframes + n + 1) * sizeof *p->frames);
	if (!p->frames)
		abort();
	uint32_t first = (uint32_t)p->nframes;
	for (size_t i = 0; i < n; i++)
		p->frames[p->nframes++] = (struct prof_frame){
			.function = prof_intern(p, f[i].fn),
			.file = PROF_NONE,
			.line = f[i].line,
			.discriminator = f[i].disc,
			.start_line = f[i].start,
		};
	return first;
}

static uint32_t loc(struct prof *p, uint64_t vaddr, size_t n,
		    const struct fr *f)
{
	p->locs = realloc(p->locs, (p->nlocs + 1) * sizeof *p->locs);
	if (!p->locs)
		abort();
	uint32_t first = frames(p, n, f);
	p->locs[p->nlocs] =
		(struct prof_loc){0, vaddr, vaddr, first, (uint32_t)n};
	return (uint32_t)p->nlocs++;
}

static void stack(struct prof *p, double count, size_t n, const uint32_t *l)
{
	p->stacks = realloc(p->stacks, (p->nstacks + 1) * sizeof *p->stacks);
	p->stack_locs = realloc(p->stack_locs,
				(p->nstack_locs + n) * sizeof *p->stack_locs);
	if (!p->stacks || !p->stack_locs)
		abort();
	p->stacks[p->nstacks++] = (struct prof_stack){
		(uint32_t)p->nstack_locs, (uint32_t)n, count, (uint64_t)count};
	memcpy(&p->stack_locs[p->nstack_locs], l, n * sizeof *l);
	p->nstack_locs += n;
}

static void insn(struct prof *p, uint64_t vaddr, uint32_t block, uint8_t kind,
		 uint64_t target, const char *callee, size_t n,
		 const struct fr *f)
{
	p->insns = realloc(p->insns, (p->ninsns + 1) * sizeof *p->insns);
	if (!p->insns)
		abort();
	uint32_t first = frames(p, n, f);
	p->insns[p->ninsns++] =
		(struct prof_insn){vaddr,
				   block,
				   first,
				   (uint32_t)n,
				   callee ? prof_intern(p, callee) : PROF_NONE,
				   target,
				   kind};
}

/*
 * f (decl line 10) at 0x1000: B0 [0x1000, 0x1010) runs 10 times, B1
 * [0x1010, 0x1020) 30 times, B2 [0x1020, 0x1030) 10 times. B1 holds line
 * 12 twice (0x1014 with discriminator 9: base 0, duplication factor 2, a
 * copy of an unrolled body) and a call at 0x1018 (line 13) that stacks saw
 * go to g (3 samples) and h (1). B2 has line 11 and a line-0 instruction.
 * Leaf samples: 40 in f's blocks; 6 in k, a function without blocks, on
 * its line 31 (decl 30).
 */
static void blocks_profile(struct prof *p)
{
	prof_init(p);
	p->build_ids = calloc(1, sizeof *p->build_ids);
	if (!p->build_ids)
		abort();
	p->nbuild_ids = 1;
	p->funcs = calloc(1, sizeof *p->funcs);
	p->blocks = calloc(3, sizeof *p->blocks);
	if (!p->funcs || !p->blocks)
		abort();
	p->nfuncs = 1;
	p->funcs[0] = (struct prof_func){
		0, prof_intern(p, "f"), 0x1000, 0x30, 0, 3, 40, FDO_OK};
	p->nblocks = 3;
	p->blocks[0] = (struct prof_block){0, 0x1000, 0x1010, 0, 2, 10, 8};
	p->blocks[1] = (struct prof_block){0, 0x1010, 0x1020, 2, 3, 30, 24};
	p->blocks[2] = (struct prof_block){0, 0x1020, 0x1030, 5, 2, 10, 8};
	const struct fr l10[] = {{"f", 10, 0, 10}}, l11[] = {{"f", 11, 0, 10}},
			l12[] = {{"f", 12, 0, 10}}, l12d[] = {{"f", 12, 9, 10}},
			l13[] = {{"f", 13, 0, 10}}, l0[] = {{"f", 0, 0, 10}};
	insn(p, 0x1000, 0, PROF_INSN_PLAIN, 0, NULL, 1, l10);
	insn(p, 0x1004, 0, PROF_INSN_PLAIN, 0, NULL, 1, l11);
	insn(p, 0x1010, 1, PROF_INSN_PLAIN, 0, NULL, 1, l12);
	insn(p, 0x1014, 1, PROF_INSN_PLAIN, 0, NULL, 1, l12d);
	insn(p, 0x1018, 1, PROF_INSN_ICALL, 0, NULL, 1, l13);
	insn(p, 0x1020, 2, PROF_INSN_PLAIN, 0, NULL, 1, l11);
	insn(p, 0x1024, 2, PROF_INSN_PLAIN, 0, NULL, 1, l0);
	/* Leaves in f (block counts stand for them), in k (by line). */
	const struct fr g1[] = {{"g", 41, 0, 40}}, h1[] = {{"h", 51, 0, 50}},
			k1[] = {{"k", 31, 0, 30}};
	uint32_t a = loc(p, 0x1000, 1, l10), b = loc(p, 0x1014, 1, l12d);
	uint32_t site = loc(p, 0x1019, 1, l13); /* return address - 1 */
	uint32_t g = loc(p, 0x2000, 1, g1), h = loc(p, 0x3000, 1, h1);
	uint32_t k = loc(p, 0x4000, 1, k1);
	stack(p, 8, 1, &a);
	stack(p, 32, 1, &b);
	uint32_t sg[] = {g, site}, sh[] = {h, site};
	stack(p, 3, 2, sg);
	stack(p, 1, 2, sh);
	stack(p, 6, 1, &k);
}

static const struct prof_mline *line(const struct prof_model *m,
				     const struct prof *p, const char *fn,
				     uint32_t off, uint32_t disc)
{
	for (size_t i = 0; i < m->nlines; i++) {
		const struct prof_mline *l = &m->lines[i];
		const struct prof_mnode *n = &m->nodes[l->node];
		if (n->parent == PROF_NONE &&
		    !strcmp(prof_str(p, n->name), fn) && l->off == off &&
		    l->disc == disc)
			return l;
	}
	return NULL;
}

static const struct prof_mnode *function(const struct prof_model *m,
					 const struct prof *p, const char *fn)
{
	for (size_t i = 0; i < m->nfunctions; i++)
		if (!strcmp(prof_str(p, m->nodes[m->functions[i]].name), fn))
			return &m->nodes[m->functions[i]];
	return NULL;
}

static int near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
}

TEST(line_counts_are_block_counts)
{
	struct prof p;
	blocks_profile(&p);
	struct prof_opts o;
	char err[128];
	REQUIRE(!prof_opts_parse(&o, "counts=blocks", err, sizeof err));
	struct prof_model m;
	REQUIRE(prof_model_build(&p, &o, PROF_MODEL_DECODE, &m) == FDO_OK);
	const struct prof_mline *l0 = line(&m, &p, "f", 0, 0),
				*l1 = line(&m, &p, "f", 1, 0),
				*l2 = line(&m, &p, "f", 2, 0),
				*l3 = line(&m, &p, "f", 3, 0),
				*k1 = line(&m, &p, "k", 1, 0);
	REQUIRE(l0 && l1 && l2 && l3 && k1);
	/* One unit: the lines of f stand for its 40 samples. f's lines
	 * are 10, 10 (max of B0 and B2), 60 (30 x factor 2), 30: 110 for
	 * 40 samples; k keeps its 6 samples. */
	double u = 40.0 / 110;
	CHECK(near(l0->count, 10 * u) && near(l1->count, 10 * u));
	CHECK(near(l2->count, 60 * u) && near(l3->count, 30 * u));
	CHECK(near(k1->count, 6));
	/* The head is the entry block's count, in the same unit. */
	const struct prof_mnode *f = function(&m, &p, "f");
	REQUIRE(f);
	CHECK(near(f->head, 10 * u));
	/* The call ran 30 times: 3/4 to g, 1/4 to h, as the stacks say. */
	REQUIRE(l3->ntargets == 2);
	const struct prof_mtarget *t = &m.targets[l3->first_target];
	CHECK(!strcmp(prof_str(&p, t[0].name), "g") &&
	      near(t[0].count, 22.5 * u));
	CHECK(!strcmp(prof_str(&p, t[1].name), "h") &&
	      near(t[1].count, 7.5 * u));
	prof_model_fini(&m);
	prof_fini(&p);
}

TEST(samples_rule_when_asked_or_without_blocks)
{
	struct prof p;
	blocks_profile(&p);
	struct prof_opts o;
	char err[128];
	REQUIRE(!prof_opts_parse(&o, "counts=samples,line_count=sum", err,
				 sizeof err));
	struct prof_model m;
	REQUIRE(prof_model_build(&p, &o, PROF_MODEL_DECODE, &m) == FDO_OK);
	/* Leaves by line: f line 12 got 32, line 10 got 8; no line 11. */
	const struct prof_mline *l2 = line(&m, &p, "f", 2, 0);
	CHECK(l2 && near(l2->count, 32));
	CHECK(!line(&m, &p, "f", 1, 0));
	prof_model_fini(&m);
	prof_fini(&p);
}

TEST(zeros_keeps_lines_that_did_not_run)
{
	struct prof p;
	blocks_profile(&p);
	p.blocks[2].count = 0; /* B2 never ran */
	struct fdo_buf b;
	fdo_buf_init(&b);
	REQUIRE(emit_with(emit_llvm, &p, "encoding=text,counts=blocks,zeros=0",
			  &b) == FDO_OK);
	fdo_buf_cstr(&b);
	/* Line 11 is in B0 too; B2 only adds the line-0 instruction. With
	 * B0 also 0, line 11 has a known 0 count. */
	fdo_buf_reset(&b);
	p.blocks[0].count = 0;
	REQUIRE(emit_with(emit_llvm, &p, "encoding=text,counts=blocks,zeros=0",
			  &b) == FDO_OK);
	fdo_buf_cstr(&b);
	CHECK(!strstr(b.data, "\n 1: 0\n"));
	fdo_buf_reset(&b);
	REQUIRE(emit_with(emit_llvm, &p, "encoding=text,counts=blocks,zeros=1",
			  &b) == FDO_OK);
	fdo_buf_cstr(&b);
	CHECK(strstr(b.data, "\n 1: 0\n") != NULL);
	CHECK(strstr(b.data, "\n 0: 0\n") != NULL);
	fdo_buf_fini(&b);
	prof_fini(&p);
}

TEST(clang_discriminator_parts)
{
	/* base 0, duplication factor 2 */
	CHECK_EQ_INT(prof_base_discriminator(9), 0);
	CHECK_EQ_INT(prof_duplication_factor(9), 2);
	/* base 2 (encoded 4), no factor */
	CHECK_EQ_INT(prof_base_discriminator(4), 2);
	CHECK_EQ_INT(prof_duplication_factor(4), 1);
	CHECK_EQ_INT(prof_duplication_factor(0), 1);
}

TEST(probe_counts_sum_copies_and_carry_checksums)
{
	/* The same three blocks with pseudo probes: f (checksum 77) has
	 * probe 1 in B0, probe 2 in B1 and a copy of it in B2, call probe 3
	 * at the call in B1; g (checksum 88), inlined at f's probe 3, has
	 * probe 1 in B1. */
	struct prof p;
	blocks_profile(&p);
	p.pctxs = calloc(2, sizeof *p.pctxs);
	p.probes = calloc(5, sizeof *p.probes);
	REQUIRE(p.pctxs && p.probes);
	p.npctxs = 2;
	p.pctxs[0] = (struct prof_pctx){PROF_NONE, prof_intern(&p, "f"), 0, 77};
	p.pctxs[1] = (struct prof_pctx){0, prof_intern(&p, "g"), 3, 88};
	p.nprobes = 5;
	p.probes[0] = (struct prof_probe){0x1000, 0, 1, 0, PROF_PROBE_BLOCK};
	p.probes[1] = (struct prof_probe){0x1010, 0, 2, 1, PROF_PROBE_BLOCK};
	p.probes[2] = (struct prof_probe){0x1014, 1, 1, 1, PROF_PROBE_BLOCK};
	p.probes[3] = (struct prof_probe){0x1018, 0, 3, 1, PROF_PROBE_ICALL};
	p.probes[4] = (struct prof_probe){0x1020, 0, 2, 2, PROF_PROBE_BLOCK};
	struct fdo_buf b;
	fdo_buf_init(&b);
	REQUIRE(emit_with(emit_llvm, &p, "encoding=text,counts=blocks", &b) ==
		FDO_OK);
	fdo_buf_cstr(&b);
	/* Counts 10, 30 + 10, 30 (probes) and 30 (g) in the unit where
	 * they add up to f's 40 samples: x 40/110. The call's 30 runs go
	 * 3/4 to g, 1/4 to h; k has no probes and is left out. TOTAL is
	 * the sum of the rounded lines. */
	CHECK_EQ_STR(b.data, "f:41:4\n"
			     " 1: 4\n"
			     " 2: 15\n"
			     " 3: 11 g:8 h:3\n"
			     " 3: g:11\n"
			     "  1: 11\n"
			     "  !CFGChecksum: 88\n"
			     " !CFGChecksum: 77\n");
	fdo_buf_fini(&b);
	prof_fini(&p);
}

/*
 * prof_reduce: leaves by location, caller->callee pairs by (callee,
 * caller), a stack adding its count once per distinct pair. Stacks (leaf
 * first): [a, s, m] x3 and again x2, [r, s, s, m] x4 (s calls itself at
 * s), [a, s, s, s, m] x1 (the pair (s <- s) twice in one stack: counted
 * once), and a stack of count 0 (adds nothing).
 */
TEST(reduce_counts_each_pair_once_per_stack)
{
	struct prof p;
	prof_init(&p);
	struct fr fa = {"leaf_a", 5, 0, 1}, fs = {"sfun", 7, 0, 1},
		  fm = {"main", 3, 0, 1}, fr_ = {"leaf_r", 9, 0, 1};
	uint32_t a = loc(&p, 0x10, 1, &fa), s = loc(&p, 0x20, 1, &fs),
		 m = loc(&p, 0x30, 1, &fm), r = loc(&p, 0x40, 1, &fr_);
	stack(&p, 3, 3, (uint32_t[]){a, s, m});
	stack(&p, 2, 3, (uint32_t[]){a, s, m});
	stack(&p, 4, 4, (uint32_t[]){r, s, s, m});
	stack(&p, 1, 5, (uint32_t[]){a, s, s, s, m});
	stack(&p, 0, 3, (uint32_t[]){r, s, m});
	REQUIRE(prof_reduce(&p) == FDO_OK);
	REQUIRE(p.reduced);
	CHECK_EQ_INT(p.nleaves, 2);
	CHECK_EQ_INT(p.leaves[0].loc, a);
	CHECK(p.leaves[0].count == 6 && p.leaves[0].samples == 6);
	CHECK_EQ_INT(p.leaves[1].loc, r);
	CHECK(p.leaves[1].count == 4);
	/* (a <- s) 6, (s <- s) 5, (s <- m) 10, (r <- s) 4; by callee. */
	CHECK_EQ_INT(p.npairs, 4);
	struct prof_pair want[4] = {
		{a, s, 6}, {s, s, 5}, {s, m, 10}, {r, s, 4}};
	for (size_t i = 0; i < 4 && i < p.npairs; i++) {
		CHECK_EQ_INT(p.pairs[i].callee, want[i].callee);
		CHECK_EQ_INT(p.pairs[i].caller, want[i].caller);
		CHECK(p.pairs[i].count == want[i].count);
	}
	/* A second call changes nothing; a reader of an unreduced profile
	 * gets the same by itself. */
	REQUIRE(prof_reduce(&p) == FDO_OK);
	CHECK_EQ_INT(p.npairs, 4);
	struct prof q;
	prof_init(&q);
	q.nlocs = p.nlocs;
	q.locs = p.locs;
	q.nstacks = p.nstacks;
	q.stacks = p.stacks;
	q.nstack_locs = p.nstack_locs;
	q.stack_locs = p.stack_locs;
	struct prof_reduced red;
	REQUIRE(prof_reduced_get(&q, &red) == FDO_OK);
	CHECK_EQ_INT(red.nleaves, 2);
	CHECK_EQ_INT(red.npairs, 4);
	CHECK(red.pairs[2].count == 10);
	prof_reduced_fini(&red);
	/* Out-of-range locations are an error, and leave p unreduced. */
	q.nlocs = 2;
	CHECK_EQ_INT(prof_reduced_get(&q, &red), FDO_EINVAL);
	prof_reduced_fini(&red);
	prof_fini(&p);
}

/* Stacks longer than the reducer's chunk of pairs (32), with pairs that
 * repeat across the chunk boundary, against a plain count. */
TEST(reduce_long_stacks_across_chunks)
{
	enum { NL = 7, LEN = 75, NS = 40 };
	struct prof_reducer r = {0};
	uint32_t sl[NS][LEN];
	uint64_t seed = 42;
	for (int k = 0; k < NS; k++) {
		for (int i = 0; i < LEN; i++) {
			seed = seed * 6364136223846793005ull +
			       1442695040888963407ull;
			sl[k][i] = (uint32_t)(seed >> 33) % NL;
		}
		REQUIRE(prof_reducer_add(&r, sl[k], LEN - k, k + 1.0, 1) ==
			FDO_OK);
	}
	struct prof_leaf *lv;
	struct prof_pair *pv;
	size_t nl, np;
	prof_reducer_finish(&r, &lv, &nl, &pv, &np);
	double want[NL][NL] = {{0}};
	for (int k = 0; k < NS; k++) {
		int seen[NL][NL] = {{0}};
		for (int i = 0; i + 1 < LEN - k; i++)
			if (!seen[sl[k][i]][sl[k][i + 1]]++)
				want[sl[k][i]][sl[k][i + 1]] += k + 1.0;
	}
	size_t nwant = 0;
	for (int a = 0; a < NL; a++)
		for (int b = 0; b < NL; b++)
			nwant += want[a][b] > 0;
	CHECK_EQ_INT(np, nwant);
	for (size_t i = 0; i < np; i++) {
		CHECK(pv[i].count == want[pv[i].callee][pv[i].caller]);
		if (i)
			CHECK(pv[i - 1].callee < pv[i].callee ||
			      (pv[i - 1].callee == pv[i].callee &&
			       pv[i - 1].caller < pv[i].caller));
	}
	free(lv);
	free(pv);
}
