/*
 * Tests for aggregator/releases.c's comparison (agg_release_compare) on
 * cells whose answer is known: side by side in the same buckets; apart in
 * time with other host counts; a label mix that changes between releases
 * (not read as a change of cost); no label set in common; the interval
 * narrows with samples and widens with spread between buckets.
 */
#include <math.h>

#include "aggregator/aggregator.h"
#include "tests/unit/test.h"

#define NB(a) (sizeof(a) / sizeof *(a))

static struct agg_rel_cell cell(uint32_t ls, uint64_t bucket, double cpu,
				double samples, double exposure)
{
	return (struct agg_rel_cell){ls, bucket, cpu, samples, exposure};
}

static int near(double a, double b, double rel)
{
	return fabs(a / b - 1) <= rel;
}

TEST(side_by_side_twice_the_cost)
{
	struct agg_rel_cell a[3], b[3];
	for (int i = 0; i < 3; i++) {
		a[i] = cell(1, 3600 * (uint64_t)i, 100, 10000, 3600);
		b[i] = cell(1, 3600 * (uint64_t)i, 200, 20000, 3600);
	}
	struct agg_rel_cmp c;
	agg_release_compare(a, 3, b, 3, &c);
	CHECK(near(c.ratio, 2.0, 1e-12));
	CHECK(c.labelsets == 1 && c.cells_a == 3 && c.cells_b == 3);
	CHECK(c.lo < 2.0 && c.hi > 2.0);
	/* No spread between buckets: the interval is the sampling noise,
	 * 1.96 x sqrt(1/30000 + 1/60000). */
	double h = 1.96 * sqrt(1.0 / 30000 + 1.0 / 60000);
	CHECK(near(c.hi, 2.0 * exp(h), 1e-9));
	CHECK(near(c.lo, 2.0 * exp(-h), 1e-9));
}

TEST(apart_in_time_with_other_hosts)
{
	/* a: 2 hosts over buckets 0, 1; b: 4 hosts over buckets 2, 3 at
	 * 0.9 of a's CPU per host-hour. */
	struct agg_rel_cell a[] = {cell(1, 0, 200, 5000, 2 * 3600.0),
				   cell(1, 3600, 200, 5000, 2 * 3600.0)};
	struct agg_rel_cell b[] = {cell(1, 7200, 360, 9000, 4 * 3600.0),
				   cell(1, 10800, 360, 9000, 4 * 3600.0)};
	struct agg_rel_cmp c;
	agg_release_compare(a, NB(a), b, NB(b), &c);
	CHECK(near(c.ratio, 0.9, 1e-12));
	CHECK(c.lo < 0.9 && c.hi > 0.9 && c.hi < 1.0);
}

TEST(label_mix_is_not_cost)
{
	/* Label set 1 costs 1 per host-second, 2 costs 10, in both
	 * releases; b runs mostly in label set 2. */
	struct agg_rel_cell a[] = {cell(1, 0, 900, 9000, 900),
				   cell(2, 0, 1000, 10000, 100)};
	struct agg_rel_cell b[] = {cell(1, 0, 100, 1000, 100),
				   cell(2, 0, 9000, 90000, 900)};
	struct agg_rel_cmp c;
	agg_release_compare(a, NB(a), b, NB(b), &c);
	CHECK(near(c.ratio, 1.0, 1e-12));
	CHECK(c.labelsets == 2);
	/* A label set only one release holds does not count. */
	struct agg_rel_cell b3[] = {cell(1, 0, 100, 1000, 100),
				    cell(2, 0, 9000, 90000, 900),
				    cell(3, 0, 1e9, 1e6, 1)};
	agg_release_compare(a, NB(a), b3, NB(b3), &c);
	CHECK(near(c.ratio, 1.0, 1e-12) && c.labelsets == 2);
}

TEST(nothing_in_common)
{
	struct agg_rel_cell a[] = {cell(1, 0, 10, 10, 10)};
	struct agg_rel_cell b[] = {cell(2, 0, 10, 10, 10)};
	struct agg_rel_cmp c;
	agg_release_compare(a, 1, b, 1, &c);
	CHECK(c.ratio == 0 && c.labelsets == 0);
	agg_release_compare(NULL, 0, b, 1, &c);
	CHECK(c.ratio == 0);
	agg_release_compare(a, 1, NULL, 0, &c);
	CHECK(c.ratio == 0);
}

TEST(spread_between_buckets_widens)
{
	/* Paired buckets whose ratios are 1.5 and 2.5: wider than the
	 * sampling noise of a million samples each. */
	struct agg_rel_cell a[] = {cell(1, 0, 100, 1e6, 3600),
				   cell(1, 3600, 100, 1e6, 3600)};
	struct agg_rel_cell b[] = {cell(1, 0, 150, 1e6, 3600),
				   cell(1, 3600, 250, 1e6, 3600)};
	struct agg_rel_cmp c;
	agg_release_compare(a, NB(a), b, NB(b), &c);
	CHECK(near(c.ratio, 2.0, 1e-12));
	CHECK(c.lo < 1.6 && c.hi > 2.4);
	/* The same ratios from equal buckets: narrow. */
	b[0].cpu = b[1].cpu = 200;
	agg_release_compare(a, NB(a), b, NB(b), &c);
	CHECK(c.lo > 1.99 && c.hi < 2.01);
}
