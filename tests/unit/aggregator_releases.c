/*
 * Tests for aggregator/releases.c's comparison (agg_release_compare) on
 * cells whose answer is known: side by side in the same buckets; apart in
 * time with other host counts; the route's cells of two label sets folded
 * per bucket (agg_rel_by_bucket: host-seconds once); strata standardized;
 * nothing in common; the interval narrows with samples and widens with
 * spread between buckets.
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

/* Cells as the route builds them (server/releases.c add_run): one per
 * (label set, bucket), each with the binary's host-seconds of the bucket
 * (the hosts table has no label set), folded per bucket. */
TEST(label_sets_share_the_hosts)
{
	/* One host, one hour: a in label set 1 alone, b in 1 and 2. */
	struct agg_rel_cell a[] = {cell(1, 0, 100, 1000, 3600)};
	struct agg_rel_cell b[] = {cell(1, 0, 100, 1000, 3600),
				   cell(1, 3600, 50, 500, 3600),
				   cell(2, 0, 200, 2000, 3600)};
	struct agg_rel_cell fa[NB(a)], fb[NB(b)];
	size_t na = agg_rel_by_bucket(a, NB(a), fa);
	size_t nb = agg_rel_by_bucket(b, NB(b), fb);
	CHECK(na == 1 && nb == 2);
	/* Bucket 0: both label sets' CPU, its host-seconds once. */
	CHECK(fb[0].bucket == 0 && fb[0].labelset == 0);
	CHECK(fb[0].cpu == 300 && fb[0].samples == 3000);
	CHECK(fb[0].exposure == 3600);
	CHECK(fb[1].bucket == 3600 && fb[1].cpu == 50);
	struct agg_rel_cmp c;
	agg_release_compare(fa, na, fb, nb, &c);
	/* Per bucket (the only bucket both ran in is 0): b's 350 over its
	 * 7200 host-seconds against a's 100 over 3600. */
	CHECK(near(c.ratio, (350.0 / 7200) / (100.0 / 3600), 1e-12));
	CHECK(c.labelsets == 1 && c.cells_a == 1 && c.cells_b == 2);
	/* A label mix that changes does read as a change of cost: nothing
	 * says how many host-seconds each label set had. */
	struct agg_rel_cell b2[] = {cell(2, 0, 300, 3000, 3600)};
	struct agg_rel_cell fb2[1];
	agg_release_compare(fa, na, fb2, agg_rel_by_bucket(b2, 1, fb2), &c);
	CHECK(near(c.ratio, 3.0, 1e-12));
	CHECK(agg_rel_by_bucket(NULL, 0, NULL) == 0);
}

/* agg_release_compare alone: the strata it is given are standardized
 * over (the route gives it one, label set 0). */
TEST(strata_standardized)
{
	/* Stratum 1 costs 1 per host-second, 2 costs 10, in both
	 * releases; b runs mostly in stratum 2. */
	struct agg_rel_cell a[] = {cell(1, 0, 900, 9000, 900),
				   cell(2, 0, 1000, 10000, 100)};
	struct agg_rel_cell b[] = {cell(1, 0, 100, 1000, 100),
				   cell(2, 0, 9000, 90000, 900)};
	struct agg_rel_cmp c;
	agg_release_compare(a, NB(a), b, NB(b), &c);
	CHECK(near(c.ratio, 1.0, 1e-12));
	CHECK(c.labelsets == 2);
	/* A stratum only one release holds does not count. */
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
