/* Tests for schemas/weight.c: fixed-point weights, exactness and overflow. */
#include <math.h>

#include "schemas/schemas.h"
#include "tests/unit/test.h"

TEST(quantize_rounds_to_micro_units)
{
	uint64_t q = 0;
	CHECK(wire_weight_quantize(1.0, &q) == FDO_OK && q == 1000000);
	CHECK(wire_weight_quantize(2.5, &q) == FDO_OK && q == 2500000);
	/* 0.1 is not exact in binary; the product still rounds to 100000. */
	CHECK(wire_weight_quantize(0.1, &q) == FDO_OK && q == 100000);
	CHECK(wire_weight_quantize(1e-6, &q) == FDO_OK && q == 1);
	CHECK(wire_weight_quantize(1e6, &q) == FDO_OK && q == 1000000000000ull);
	/* 2^-21 × 1e6 = 0.476837...: rounds to 0, refused. */
	CHECK(wire_weight_quantize(ldexp(1, -21), &q) == FDO_ELIMIT);
	/* 2^-20 × 1e6 = 0.953674...: rounds up to 1. */
	CHECK(wire_weight_quantize(ldexp(1, -20), &q) == FDO_OK && q == 1);
	/* Products that are exactly k + 0.5 round away from zero. */
	CHECK(2.5e-6 * 1e6 == 2.5 && 0.5e-6 * 1e6 == 0.5);
	CHECK(wire_weight_quantize(2.5e-6, &q) == FDO_OK && q == 3);
	CHECK(wire_weight_quantize(1.5e-6, &q) == FDO_OK && q == 2);
	CHECK(wire_weight_quantize(0.5e-6, &q) == FDO_OK && q == 1);
	CHECK(wire_weight_quantize(12.3456785, &q) == FDO_OK && q == 12345679);
	CHECK(wire_weight_quantize(0, &q) == FDO_EINVAL);
	CHECK(wire_weight_quantize(-1, &q) == FDO_EINVAL);
	CHECK(wire_weight_quantize(NAN, &q) == FDO_EINVAL);
	CHECK(wire_weight_quantize(INFINITY, &q) == FDO_EINVAL);
	CHECK(wire_weight_quantize(1e10, &q) == FDO_ELIMIT); /* > 2^53 scaled */
}

TEST(fixed_is_exact)
{
	uint64_t v = 0;
	/* DESIGN example: 120 samples × 1e6 ns × 2.5. */
	CHECK(wire_weight_fixed(120, 1000000, 2.5, &v) == FDO_OK);
	CHECK(v == 120ull * 1000000 * 2500000);
	CHECK(wire_weight_fixed(0, 1000000, 2.5, &v) == FDO_OK && v == 0);
	/* 0.1 weights sum exactly: ten batches of 0.1 = one batch of 1. */
	wire_weight_t acc = 0, one;
	for (int i = 0; i < 10; i++) {
		wire_weight_t w;
		REQUIRE(wire_weight_fixed_wide(7, 1000, 0.1, &w) == FDO_OK);
		REQUIRE(wire_weight_add(&acc, w) == FDO_OK);
	}
	REQUIRE(wire_weight_fixed_wide(7, 1000, 1.0, &one) == FDO_OK);
	CHECK(acc == one);
}

TEST(sums_do_not_depend_on_order)
{
	static const double weights[] = {0.1, 2.5, 1e-6, 3.333333, 1e6, 0.7};
	static const uint64_t counts[] = {1, 7, 1000000000, 13, 999, 2};
	static const uint64_t periods[] = {1, 1000000, 1000000000, 3, 1, 997};
	size_t n = sizeof weights / sizeof weights[0];
	wire_weight_t fwd = 0, rev = 0;
	for (size_t i = 0; i < n; i++) {
		wire_weight_t w;
		REQUIRE(wire_weight_fixed_wide(counts[i], periods[i],
					       weights[i], &w) == FDO_OK);
		REQUIRE(wire_weight_add(&fwd, w) == FDO_OK);
	}
	for (size_t i = n; i-- > 0;) {
		wire_weight_t w;
		REQUIRE(wire_weight_fixed_wide(counts[i], periods[i],
					       weights[i], &w) == FDO_OK);
		REQUIRE(wire_weight_add(&rev, w) == FDO_OK);
	}
	CHECK(fwd == rev);
}

TEST(u64_overflows_where_documented)
{
	uint64_t v = 7;
	/* 2e7 samples at 1 kHz cpu-clock, weight 1: 2e19 > 2^64. */
	CHECK(wire_weight_fixed(20000000, 1000000, 1.0, &v) == FDO_ELIMIT);
	CHECK(v == 7);
	CHECK(wire_weight_fixed(18000000, 1000000, 1.0, &v) == FDO_OK);
	CHECK(v == 18000000000000000000ull);
	wire_weight_t w;
	CHECK(wire_weight_fixed_wide(20000000, 1000000, 1.0, &w) == FDO_OK);
	CHECK(w == (wire_weight_t)20000000 * 1000000 * 1000000);
}

TEST(wide_holds_the_realistic_worst_case)
{
	/* count 1e9, period 1e9 ns, weight 1e6: 1e30 in 1e-6 units. */
	wire_weight_t w, e15 = 1000000000000000ull;
	REQUIRE(wire_weight_fixed_wide(1000000000, 1000000000, 1e6, &w) ==
		FDO_OK);
	CHECK(w == e15 * e15);
	/* And the worst case within wire_limits_default: 1e9 × 1e12 × 1e12. */
	REQUIRE(wire_weight_fixed_wide(1000000000, 1000000000000ull, 1e6, &w) ==
		FDO_OK);
	CHECK(w == e15 * e15 * 1000);
	/* Beyond 128 bits. */
	CHECK(wire_weight_fixed_wide(UINT64_MAX, UINT64_MAX, 2.0, &w) ==
	      FDO_ELIMIT);
	CHECK(wire_weight_fixed_wide(UINT64_MAX, UINT64_MAX, 1e-6, &w) ==
	      FDO_OK);
	CHECK(w == (wire_weight_t)UINT64_MAX * UINT64_MAX);
}

TEST(add_detects_overflow)
{
	wire_weight_t max = ~(wire_weight_t)0, acc = max - 1;
	CHECK(wire_weight_add(&acc, 1) == FDO_OK && acc == max);
	CHECK(wire_weight_add(&acc, 1) == FDO_ELIMIT && acc == max);
	acc = 5;
	CHECK(wire_weight_add(&acc, max) == FDO_ELIMIT && acc == 5);
}
