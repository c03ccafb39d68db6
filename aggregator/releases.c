/*
 * aggregator/releases.c — what GET /v1/binaries/{b}/releases reads and
 * computes (server/releases.c makes it JSON): the CPU of each release
 * (build-id) of a binary per label set and bucket, and release against
 * release as a ratio of CPU per host-hour with an interval.
 *
 * Where a release's CPU comes from: a stack's weight (count x period x
 * weight) belongs to its leaf's build-id, which table aggs keeps per run
 * (label set, bucket) as partitions; nothing stored says which process a
 * stack of a shared library came from, so the server shares those
 * partitions among the releases of the run in proportion to their own.
 * Reading partitions, not stacks: a bucket that is over has its
 * partitions in table aggs (filled by the merger), whose headers alone
 * are read (store_aggs_parts: a seek per partition, not its leaves and
 * pairs); only a run without them (the open bucket, or one the merger
 * has not reached) is summed from its counts, each entry's stack read
 * for its leaf alone (stream_parts).
 *
 * Host-seconds are the binary's (the hosts table is keyed by binary and
 * host, nothing stored says which label sets a host ran), so a bucket's
 * host-seconds are counted once per release however many label sets it
 * has: the route folds its cells per bucket (agg_rel_by_bucket) and
 * compares those. agg_release_compare standardizes over the strata it is
 * given (label set 0 alone from the route: over buckets only); a change of
 * the label mix between releases therefore does read as a change of cost
 * per host-hour. The interval is on the log of the ratio (docs/http.md
 * has the rule).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator.h"

struct parts_visit {
	const struct store_totals_key *k;
	agg_part_fn fn;
	void *arg;
};

static int visit_part(void *arg, const struct store_aggs_part *part)
{
	struct parts_visit *pv = arg;
	return pv->fn(pv->arg, pv->k, part->leaf_bid, part->weight,
		      part->samples);
}

/* One leaf build-id's sums of a run summed from its counts. */
struct leaf_sum {
	uint32_t bid;
	wire_weight_t weight;
	uint64_t samples;
};

static int cmp_leaf_sum(const void *a, const void *b)
{
	const struct leaf_sum *x = a, *y = b;
	return x->bid < y->bid ? -1 : x->bid > y->bid;
}

/* The run's partition sums straight from its counts: each entry's stack
 * read for its leaf frame's build-id alone, as reduce.c's compute pass
 * classes a stack (an entry of weight 0, or whose stack is not stored,
 * counts in no partition there either). Memory is the run's distinct
 * leaf build-ids (a handful), not reduce.c's frame index and encoded
 * run: a bucket the merger has not summed yet costs a read of its
 * counts, nothing the memory budget needs to hold. */
static int stream_parts(store_txn *t, const struct store_totals_key *k,
			struct parts_visit *pv)
{
	uint8_t prefix[STORE_TOTALS_KEY_SIZE];
	store_totals_key_encode(prefix, k);
	store_counts_iter *c;
	int rc = store_counts_iter_open(t, prefix, sizeof prefix, &c);
	if (rc)
		return rc;
	struct leaf_sum *v = NULL;
	size_t n = 0, cap = 0, last = 0;
	struct store_counts_key ck;
	struct store_weight w;
	int crc;
	while (!rc && (crc = store_counts_iter_next(c, &ck, &w)) == FDO_OK) {
		if (!w.weight)
			continue;
		uint8_t key[STORE_STACK_KEY_SIZE];
		store_stack_key_encode(key, ck.stack);
		struct store_frame f[STORE_STACK_MAX_FRAMES];
		size_t nf, sl;
		const void *sv;
		if (store_get(t, STORE_STACKS, key, sizeof key, &sv, &sl) ||
		    store_stack_decode(sv, sl, f, STORE_STACK_MAX_FRAMES,
				       &nf) ||
		    nf == 0)
			continue;
		uint32_t bid = f[0].build_id;
		if (!(last < n && v[last].bid == bid))
			for (last = 0; last < n && v[last].bid != bid; last++)
				;
		if (last == n) {
			if ((rc = fdo_grow(v, cap, n + 1)))
				break;
			v[n++] = (struct leaf_sum){bid, 0, 0};
		}
		v[last].weight += w.weight;
		v[last].samples += w.samples;
	}
	store_counts_iter_close(c);
	if (!rc && crc != FDO_OK && crc != FDO_ENOT_FOUND)
		rc = crc;
	if (!rc && n)
		qsort(v, n, sizeof *v, cmp_leaf_sum);
	for (size_t i = 0; i < n && !rc; i++)
		rc = pv->fn(pv->arg, pv->k, v[i].bid, v[i].weight,
			    v[i].samples);
	free(v);
	return rc;
}

int agg_run_parts(store_txn *t, const struct store_totals_key *k,
		  const struct store_totals *seen, agg_part_fn fn, void *arg)
{
	struct parts_visit pv = {k, fn, arg};
	struct store_aggs_visit v = {.part = visit_part, .arg = &pv};
	int rc = store_aggs_parts(t, k, seen, &v);
	if (rc != FDO_ENOT_FOUND && rc != FDO_ECORRUPT)
		return rc;
	/* Not stored (an open bucket, or one the merger has not filled
	 * yet), or of another totals row: from the run's counts. */
	return stream_parts(t, k, &pv);
}

static int cmp_bucket(const void *a, const void *b)
{
	const struct agg_rel_cell *x = a, *y = b;
	return x->bucket < y->bucket ? -1 : x->bucket > y->bucket;
}

size_t agg_rel_by_bucket(const struct agg_rel_cell *c, size_t n,
			 struct agg_rel_cell *out)
{
	if (!n)
		return 0;
	memcpy(out, c, n * sizeof *c);
	qsort(out, n, sizeof *out, cmp_bucket);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && out[m - 1].bucket == out[i].bucket) {
			struct agg_rel_cell *y = &out[m - 1];
			y->cpu += out[i].cpu;
			y->samples += out[i].samples;
			/* the same hosts: equal as built; the larger if not */
			y->exposure = fmax(y->exposure, out[i].exposure);
			continue;
		}
		out[m] = out[i];
		out[m++].labelset = 0;
	}
	return m;
}

/* Per label set of one release: sums over its cells. */
struct lsum {
	double cpu, exposure, samples;
	size_t n;
};

static void sum_lset(const struct agg_rel_cell *c, size_t n, size_t *i,
		     uint32_t ls, struct lsum *s)
{
	memset(s, 0, sizeof *s);
	while (*i < n && c[*i].labelset < ls)
		++*i;
	for (; *i < n && c[*i].labelset == ls; ++*i) {
		s->cpu += c[*i].cpu;
		s->exposure += c[*i].exposure;
		s->samples += c[*i].samples;
		s->n++;
	}
}

/* Sum of squared log deviations of a release's cell rates from its label
 * set's rate (between-bucket spread), into *ss; cells into *n. */
static void spread(const struct agg_rel_cell *c, size_t from, size_t to,
		   double rate, double *ss)
{
	for (size_t i = from; i < to; i++) {
		if (c[i].cpu <= 0 || c[i].exposure <= 0 || rate <= 0)
			continue;
		double d = log(c[i].cpu / c[i].exposure / rate);
		*ss += d * d;
	}
}

/* The cell of b's cells (from *j on) at a's cell's (label set, bucket),
 * or NULL. */
static const struct agg_rel_cell *same_cell(const struct agg_rel_cell *x,
					    const struct agg_rel_cell *b,
					    size_t nb, size_t *j)
{
	while (*j < nb &&
	       (b[*j].labelset < x->labelset ||
		(b[*j].labelset == x->labelset && b[*j].bucket < x->bucket)))
		++*j;
	return *j < nb && b[*j].labelset == x->labelset &&
			       b[*j].bucket == x->bucket
		       ? &b[*j]
		       : NULL;
}

void agg_release_compare(const struct agg_rel_cell *a, size_t na,
			 const struct agg_rel_cell *b, size_t nb,
			 struct agg_rel_cmp *out)
{
	memset(out, 0, sizeof *out);
	double num = 0, den = 0, ss_a = 0, ss_b = 0;
	size_t ia = 0, ib = 0;
	while (ia < na) {
		uint32_t ls = a[ia].labelset;
		size_t a0 = ia, b0;
		struct lsum sa, sb;
		sum_lset(a, na, &ia, ls, &sa);
		while (ib < nb && b[ib].labelset < ls)
			ib++;
		b0 = ib;
		sum_lset(b, nb, &ib, ls, &sb);
		if (!sb.n || sa.exposure <= 0 || sb.exposure <= 0 ||
		    sa.cpu <= 0)
			continue;
		double ra = sa.cpu / sa.exposure, rb = sb.cpu / sb.exposure;
		num += sb.cpu;
		den += sb.exposure * ra;
		spread(a, a0, ia, ra, &ss_a);
		spread(b, b0, ib, rb, &ss_b);
		out->labelsets++;
		out->cells_a += sa.n;
		out->cells_b += sb.n;
		out->samples_a += sa.samples;
		out->samples_b += sb.samples;
	}
	if (!out->labelsets || den <= 0 || num <= 0)
		return;
	out->ratio = num / den;
	/* Sampling noise of the raw sample counts (relative variance 1/N
	 * each), at least. */
	double var = 1 / fmax(out->samples_a, 1) + 1 / fmax(out->samples_b, 1);
	/* Buckets both releases ran in (side by side: the same hosts and
	 * hours for both) pair: the spread of their per-bucket log ratios
	 * holds what both share (load, the hosts' mix) only once. Each
	 * bucket weighs by its samples (the inverse of its log ratio's
	 * sampling variance), so a bucket they only began in counts little. */
	double sw = 0, swd = 0, swdd = 0;
	size_t np = 0, j = 0;
	for (size_t i = 0; i < na; i++) {
		const struct agg_rel_cell *y = same_cell(&a[i], b, nb, &j);
		if (!y || a[i].cpu <= 0 || y->cpu <= 0 || a[i].exposure <= 0 ||
		    y->exposure <= 0 || a[i].samples < 1 || y->samples < 1)
			continue;
		double d = log((y->cpu / y->exposure) /
			       (a[i].cpu / a[i].exposure));
		double w = 1 / (1 / a[i].samples + 1 / y->samples);
		sw += w;
		swd += w * d;
		swdd += w * d * d;
		np++;
	}
	if (np >= 2) {
		double m = swd / sw;
		double pv = (swdd - sw * m * m) / (double)(np - 1) / sw;
		var = fmax(var, pv);
	} else {
		/* Releases apart in time: each one's spread between buckets
		 * (degrees of freedom: cells less label sets). */
		size_t dfa = out->cells_a - out->labelsets;
		size_t dfb = out->cells_b - out->labelsets;
		if (dfa)
			var += ss_a / (double)dfa / (double)out->cells_a;
		if (dfb)
			var += ss_b / (double)dfb / (double)out->cells_b;
	}
	double h = 1.96 * sqrt(var);
	out->lo = out->ratio * exp(-h);
	out->hi = out->ratio * exp(h);
}
