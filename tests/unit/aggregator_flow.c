/*
 * Tests for aggregator/flow.c: block counts inferred from samples on
 * hand-made graphs whose true counts are known: exact samples give exact
 * counts; a block without samples gets the count the flow forces through
 * it; noise is reconciled so that every block conserves its flow; unknown
 * successors and blocks without predecessors; a dense entry block under
 * the negative binomial; bad input.
 */
#include <math.h>

#include "aggregator/flow.h"
#include "common/common.h"
#include "tests/unit/test.h"

#define NB(a) (sizeof(a) / sizeof *(a))

/* In + source = count = out + sink, for every block; returns the largest
 * imbalance relative to the block's count. */
static double imbalance(const struct flow_block *b, size_t nb,
			const struct flow_edge *e, size_t ne)
{
	double worst = 0;
	for (size_t i = 0; i < nb; i++) {
		double in = 0, out = 0;
		for (size_t k = 0; k < ne; k++) {
			if (e[k].to == i)
				in += e[k].count;
			if (e[k].from == i)
				out += e[k].count;
		}
		double c = b[i].count;
		int src = (b[i].flags & (FLOW_ENTRY | FLOW_NO_PRED)) != 0;
		int snk = (b[i].flags & (FLOW_EXIT | FLOW_UNKNOWN_SUCC)) != 0;
		double d1 = src ? (in > c + 1e-6 ? in - c : 0) : fabs(in - c);
		double d2 = snk ? (out > c + 1e-6 ? out - c : 0)
				: fabs(out - c);
		double d = (d1 > d2 ? d1 : d2) / (c > 1 ? c : 1);
		if (d > worst)
			worst = d;
	}
	return worst;
}

static int near(double a, double b, double rel)
{
	return fabs(a - b) <= rel * (fabs(b) > 1 ? fabs(b) : 1);
}

TEST(diamond_with_exact_samples)
{
	/* A -> B | C -> D; true counts 100, 70, 30, 100; samples = count x
	 * size. */
	struct flow_block b[] = {{200, 2, FLOW_ENTRY, 0},
				 {280, 4, 0, 0},
				 {120, 4, 0, 0},
				 {200, 2, FLOW_EXIT, 0}};
	struct flow_edge e[] = {{0, 1, 0}, {0, 2, 0}, {1, 3, 0}, {2, 3, 0}};
	REQUIRE(flow_infer(b, NB(b), e, NB(e), 0) == FDO_OK);
	CHECK(near(b[0].count, 100, 1e-6));
	CHECK(near(b[1].count, 70, 1e-6));
	CHECK(near(b[2].count, 30, 1e-6));
	CHECK(near(b[3].count, 100, 1e-6));
	CHECK(near(e[0].count, 70, 1e-6) && near(e[1].count, 30, 1e-6));
	CHECK(imbalance(b, NB(b), e, NB(e)) < 1e-6);
}

TEST(unsampled_block_gets_the_flow_it_must_carry)
{
	/* A -> B -> C, B drew no sample (a short block): it still runs as
	 * often as A and C. Its lack of samples is some evidence against
	 * running: the likelihood's optimum is 1000/11 = 90.9 (1% under it
	 * on the segments' grid). */
	struct flow_block b[] = {
		{500, 5, FLOW_ENTRY, 0}, {0, 1, 0, 0}, {500, 5, FLOW_EXIT, 0}};
	struct flow_edge e[] = {{0, 1, 0}, {1, 2, 0}};
	REQUIRE(flow_infer(b, NB(b), e, NB(e), 0) == FDO_OK);
	CHECK(near(b[1].count, 90.9, 0.015));
	CHECK(near(b[0].count, b[1].count, 1e-6) &&
	      near(b[2].count, b[1].count, 1e-6));
}

TEST(loop_counts_and_conservation)
{
	/* E -> H; H -> L -> H (10 times per entry); H -> X. Truth per
	 * entry: E 1, H 11, L 10, X 1; 50 entries. Samples with noise. */
	struct flow_block b[] = {{50 * 3 * 1.1, 3, FLOW_ENTRY, 0},
				 {550 * 2 * 0.9, 2, 0, 0},
				 {500 * 6 * 1.05, 6, 0, 0},
				 {50 * 2 * 0.8, 2, FLOW_EXIT, 0}};
	struct flow_edge e[] = {{0, 1, 0}, {1, 2, 0}, {2, 1, 0}, {1, 3, 0}};
	REQUIRE(flow_infer(b, NB(b), e, NB(e), 0) == FDO_OK);
	CHECK(imbalance(b, NB(b), e, NB(e)) < 1e-6);
	/* The counts stay near the truth despite the noise. */
	CHECK(near(b[1].count, 550, 0.15));
	CHECK(near(b[2].count, 500, 0.15));
	CHECK(near(b[0].count, 50, 0.25));
	CHECK(near(b[3].count, b[0].count, 1e-6));
	CHECK(near(b[1].count, b[0].count + b[2].count, 1e-6));
}

TEST(noisy_diamond_is_reconciled_by_evidence)
{
	/* A and D say 100 with many samples; B says 90 and C says 30, with
	 * few: the flow keeps A and D and takes from the weaker evidence. */
	struct flow_block b[] = {{2000, 20, FLOW_ENTRY, 0},
				 {9, 0.1, 0, 0},
				 {3, 0.1, 0, 0},
				 {2000, 20, FLOW_EXIT, 0}};
	struct flow_edge e[] = {{0, 1, 0}, {0, 2, 0}, {1, 3, 0}, {2, 3, 0}};
	REQUIRE(flow_infer(b, NB(b), e, NB(e), 0) == FDO_OK);
	CHECK(imbalance(b, NB(b), e, NB(e)) < 1e-6);
	CHECK(near(b[0].count, 100, 0.05));
	CHECK(near(b[1].count + b[2].count, b[0].count, 1e-6));
	CHECK(b[1].count > b[2].count);
}

TEST(unknown_successors_and_blocks_without_predecessors)
{
	/* A ends in an indirect jump we could not follow; B and C are its
	 * targets (no predecessor in the graph), both exit. */
	struct flow_block b[] = {{100, 1, FLOW_ENTRY | FLOW_UNKNOWN_SUCC, 0},
				 {60, 1, FLOW_NO_PRED | FLOW_EXIT, 0},
				 {40, 1, FLOW_NO_PRED | FLOW_EXIT, 0}};
	REQUIRE(flow_infer(b, NB(b), NULL, 0, 0) == FDO_OK);
	CHECK(near(b[0].count, 100, 1e-6));
	CHECK(near(b[1].count, 60, 1e-6));
	CHECK(near(b[2].count, 40, 1e-6));
}

TEST(unreachable_cold_code_gets_nothing)
{
	/* A -> B, and C is reachable only from B's cold side branch. */
	struct flow_block b[] = {{100, 1, FLOW_ENTRY, 0},
				 {100, 1, FLOW_EXIT, 0},
				 {0, 8, FLOW_EXIT, 0}};
	struct flow_edge e[] = {{0, 1, 0}, {1, 2, 0}};
	REQUIRE(flow_infer(b, NB(b), e, NB(e), 0) == FDO_OK);
	CHECK(near(b[2].count, 0, 1e-9));
	CHECK(near(e[1].count, 0, 1e-9));
}

TEST(dispersion_bounds_a_dense_entry_block)
{
	/* pp_helem's shape: an entry block (18 instructions, 29 samples)
	 * that every call leaves either through a body of 12 blocks of 4
	 * instructions with 1 sample each (the truth: every call runs it) or
	 * through a 2-instruction early exit without samples. Under Poisson
	 * the entry's density wins (1.45 against the body's 0.25) and the
	 * flow pours the difference into the exit (1.2); with r = 3 the
	 * entry drops to 0.81 and the exit to 0.53. Exact samples still give
	 * exact counts. */
	struct flow_block b[14];
	struct flow_edge e[13];
	double entry[2], out[2];
	for (int pass = 0; pass < 2; pass++) {
		size_t ne = 0;
		b[0] = (struct flow_block){29, 18, FLOW_ENTRY, 0};
		for (int i = 1; i <= 12; i++)
			b[i] = (struct flow_block){1, 4, 0, 0};
		b[12].flags = FLOW_EXIT;
		b[13] = (struct flow_block){0, 2, FLOW_EXIT, 0};
		e[ne++] = (struct flow_edge){0, 1, 0};
		for (uint32_t i = 1; i < 12; i++)
			e[ne++] = (struct flow_edge){i, i + 1, 0};
		e[ne++] = (struct flow_edge){0, 13, 0};
		REQUIRE(flow_infer(b, 14, e, ne, pass ? 3 : 0) == FDO_OK);
		CHECK(imbalance(b, 14, e, ne) < 1e-6);
		entry[pass] = b[0].count;
		out[pass] = b[13].count;
	}
	CHECK(near(entry[0], 1.45, 0.05) && near(out[0], 1.2, 0.05));
	CHECK(entry[1] < 0.7 * entry[0] && out[1] < 0.6 * out[0]);

	struct flow_block d[] = {{200, 2, FLOW_ENTRY, 0},
				 {280, 4, 0, 0},
				 {120, 4, 0, 0},
				 {200, 2, FLOW_EXIT, 0}};
	struct flow_edge de[] = {{0, 1, 0}, {0, 2, 0}, {1, 3, 0}, {2, 3, 0}};
	REQUIRE(flow_infer(d, NB(d), de, NB(de), 3) == FDO_OK);
	CHECK(near(d[0].count, 100, 1e-6) && near(d[1].count, 70, 1e-6) &&
	      near(d[2].count, 30, 1e-6));
}

TEST(bad_input_and_empty_graph)
{
	struct flow_block b[] = {{1, 1, FLOW_ENTRY | FLOW_EXIT, 0}};
	struct flow_edge e[] = {{0, 7, 0}};
	CHECK_EQ_INT(flow_infer(b, 1, e, 1, 0), FDO_EINVAL);
	CHECK_EQ_INT(flow_infer(NULL, 0, NULL, 0, 0), FDO_OK);
}

TEST(large_chain_stays_fast_and_exact)
{
	/* 20000 blocks in a chain: every block runs alike; one in 7 drew no
	 * sample, and the others' evidence carries the flow through it. */
	size_t n = 20000;
	struct flow_block *b = calloc(n, sizeof *b);
	struct flow_edge *e = calloc(n, sizeof *e);
	REQUIRE(b && e);
	for (size_t i = 0; i < n; i++) {
		b[i] = (struct flow_block){i % 7 ? 30 : 0, 3, 0, 0};
		if (i + 1 < n)
			e[i] = (struct flow_edge){(uint32_t)i, (uint32_t)i + 1,
						  0};
	}
	b[0].flags |= FLOW_ENTRY;
	b[n - 1].flags |= FLOW_EXIT;
	REQUIRE(flow_infer(b, n, e, n - 1, 0) == FDO_OK);
	/* Optimum 180/21 = 8.6 per the likelihood; 9 on the grid. */
	CHECK(near(b[0].count, 8.6, 0.06) &&
	      near(b[7].count, b[0].count, 1e-6));
	CHECK(imbalance(b, n, e, n - 1) < 1e-6);
	free(b);
	free(e);
}

/* A loop with noisy samples: entry -> head <-> body, head -> exit. */
static void noisy_loop(struct flow_block b[4], struct flow_edge e[4],
		       double body)
{
	b[0] = (struct flow_block){5, 2, FLOW_ENTRY, -1};
	b[1] = (struct flow_block){37, 1, 0, -1};
	b[2] = (struct flow_block){body, 3, 0, -1};
	b[3] = (struct flow_block){2, 1, FLOW_EXIT, -1};
	e[0] = (struct flow_edge){0, 1, -1};
	e[1] = (struct flow_edge){1, 2, -1};
	e[2] = (struct flow_edge){2, 1, -1};
	e[3] = (struct flow_edge){1, 3, -1};
}

/* The same counts, bit for bit (struct padding aside). */
static int same_counts(const struct flow_block *a, const struct flow_block *b,
		       const struct flow_edge *ea, const struct flow_edge *eb,
		       size_t nb, size_t ne)
{
	for (size_t i = 0; i < nb; i++)
		if (memcmp(&a[i].count, &b[i].count, sizeof(double)))
			return 0;
	for (size_t i = 0; i < ne; i++)
		if (memcmp(&ea[i].count, &eb[i].count, sizeof(double)))
			return 0;
	return 1;
}

TEST(shared_memo_gives_the_solvers_bits)
{
	flow_memo_clear();
	struct flow_block want[4], got[4];
	struct flow_edge we[4], ge[4];
	noisy_loop(want, we, 88);
	REQUIRE(flow_infer(want, 4, we, 4, 0) == FDO_OK);
	/* A miss solves and keeps it; the same input again is a hit, with
	 * the same bits. */
	for (int round = 0; round < 2; round++) {
		noisy_loop(got, ge, 88);
		CHECK_EQ_INT(flow_infer_shared(got, 4, ge, 4, 0), FDO_OK);
		CHECK(same_counts(got, want, ge, we, 4, 4));
	}
	struct flow_memo_stats s;
	flow_memo_stats(&s);
	CHECK(s.hits == 1 && s.misses == 1 && s.entries == 1 && s.bytes > 0);
	/* Another input (one block's samples, or r, or an edge) is another
	 * entry, solved afresh. */
	noisy_loop(want, we, 89);
	REQUIRE(flow_infer(want, 4, we, 4, 0) == FDO_OK);
	noisy_loop(got, ge, 89);
	CHECK_EQ_INT(flow_infer_shared(got, 4, ge, 4, 0), FDO_OK);
	CHECK(same_counts(got, want, ge, we, 4, 4));
	noisy_loop(want, we, 88);
	REQUIRE(flow_infer(want, 4, we, 4, 3) == FDO_OK);
	noisy_loop(got, ge, 88);
	CHECK_EQ_INT(flow_infer_shared(got, 4, ge, 4, 3), FDO_OK);
	CHECK(same_counts(got, want, ge, we, 4, 4));
	noisy_loop(got, ge, 88);
	ge[3] = (struct flow_edge){2, 3, -1};
	CHECK_EQ_INT(flow_infer_shared(got, 4, ge, 4, 0), FDO_OK);
	flow_memo_stats(&s);
	CHECK(s.hits == 1 && s.misses == 4 && s.entries == 4);
	/* Bad input is refused before the memo. */
	ge[0].to = 9;
	CHECK_EQ_INT(flow_infer_shared(got, 4, ge, 4, 0), FDO_EINVAL);
	flow_memo_clear();
	flow_memo_stats(&s);
	CHECK(s.bytes == 0 && s.entries == 0 && s.hits == 0);
}

TEST(shared_memo_stays_within_its_bound)
{
	/* Chains of 2000 blocks (~70 KiB each): many more than the bound
	 * holds; the oldest go, the newest stays a hit. */
	flow_memo_clear();
	size_t n = 2000, rounds = FLOW_MEMO_BYTES / (n * 32) + 8;
	struct flow_block *b = calloc(n, sizeof *b);
	struct flow_edge *e = calloc(n, sizeof *e);
	REQUIRE(b && e);
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < n; i++) {
			b[i] = (struct flow_block){(double)(i % 5 + r), 2, 0,
						   0};
			if (i + 1 < n)
				e[i] = (struct flow_edge){(uint32_t)i,
							  (uint32_t)i + 1, 0};
		}
		b[0].flags |= FLOW_ENTRY;
		b[n - 1].flags |= FLOW_EXIT;
		REQUIRE(flow_infer_shared(b, n, e, n - 1, 0) == FDO_OK);
	}
	struct flow_memo_stats s;
	flow_memo_stats(&s);
	CHECK(s.bytes <= FLOW_MEMO_BYTES && s.entries < rounds &&
	      s.misses == rounds);
	double c0 = b[0].count;
	b[0].count = -1;
	REQUIRE(flow_infer_shared(b, n, e, n - 1, 0) == FDO_OK);
	flow_memo_stats(&s);
	CHECK(s.hits == 1 && b[0].count == c0);
	flow_memo_clear();
	free(b);
	free(e);
}
