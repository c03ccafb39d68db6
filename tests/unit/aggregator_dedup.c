/*
 * Tests for aggregator/dedup.c: the (agent, seq) of batches logged and not
 * merged yet, exact on both (an agent's other seqs and another agent's
 * same seq are other batches), through deletes in any order (a delete
 * moves the last entry into the hole) and growth past the first room.
 */
#include "aggregator/ingest_int.h"
#include "tests/unit/test.h"

TEST(dedup_is_exact_through_adds_and_deletes)
{
	struct dedup d;
	REQUIRE(dedup_init(&d, 4) == FDO_OK);
	enum { N = 20000 };
	/* Agents 1..4, seqs 1..N/4: digest (agent << 32 | seq). */
	for (uint64_t i = 0; i < N; i++)
		REQUIRE(dedup_add(&d, 1 + i % 4, 1 + i / 4,
				  (1 + i % 4) << 32 | (1 + i / 4)) == FDO_OK);
	CHECK(d.n == N);
	CHECK(dedup_find(&d, 1, 1) == (1ull << 32 | 1));
	CHECK(dedup_find(&d, 5, 1) == 0 && dedup_find(&d, 1, N) == 0);
	/* Delete the even seqs, from the middle outwards. */
	for (uint64_t s = N / 8; s >= 1; s--)
		for (uint64_t a = 1; a <= 4; a++) {
			if (s % 2 == 0)
				dedup_del(&d, a, s);
			uint64_t t = N / 4 + 1 - s;
			if (t % 2 == 0 && t != s)
				dedup_del(&d, a, t);
		}
	dedup_del(&d, 9, 9); /* absent: nothing */
	int ok = 1;
	for (uint64_t a = 1; a <= 4; a++)
		for (uint64_t s = 1; s <= N / 4; s++)
			ok &= dedup_find(&d, a, s) == (s % 2 ? a << 32 | s : 0);
	CHECK(ok);
	CHECK(d.n == N / 2);
	/* A digest of 0 is kept as 1; adding again replaces the digest. */
	REQUIRE(dedup_add(&d, 7, 7, 0) == FDO_OK);
	CHECK(dedup_find(&d, 7, 7) == 1);
	REQUIRE(dedup_add(&d, 7, 7, 42) == FDO_OK);
	CHECK(dedup_find(&d, 7, 7) == 42 && d.n == N / 2 + 1);
	for (uint64_t a = 1; a <= 4; a++)
		for (uint64_t s = 1; s <= N / 4; s += 2)
			dedup_del(&d, a, s);
	dedup_del(&d, 7, 7);
	CHECK(d.n == 0 && d.ix.n == 0);
	dedup_fini(&d);
}
