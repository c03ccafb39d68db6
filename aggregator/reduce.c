/*
 * aggregator/reduce.c — what the compile-time profiles (llvm, gcc, bolt)
 * read of a window, run by run: each run's exact sums by leaf frame and
 * by caller->callee frame pair, from table aggs (storage/aggs.c) when its
 * bucket is over and they are stored, else from its stacks; see
 * aggregator/reduce.h for the contract.
 *
 * Workload: a pull of a 7-day window of hourly buckets reads ~170 runs
 * per label set. A run that is stored costs its records (thousands for a
 * real program's call graph), not its stacks (up to millions, each a
 * lookup in table stacks and one map update per frame): only the open
 * bucket, runs that changed since, and runs too large to store
 * (STORE_AGGS_RUN_MAX, or past the pull's write budget) are read from the
 * stacks. Memory: the profile's distinct frames, leaves and pairs, plus
 * one run's sums while it is computed, plus the encoded runs kept to
 * store (write_budget).
 *
 * Why sums per run first: a stored run can only hold integers (the
 * weights' exact sums: the decay and the selector's factor depend on the
 * query), so the profile adds each run's sum, once per key and run, in
 * doubles; a run computed from its stacks does the same with the same
 * integers, so a profile built from stored runs and one built from the
 * stacks alone (full_scan) are the same to the bit. Before, a stack's
 * count was summed over runs first and then added to its pairs: the
 * other order of the same sums, which rounds differently (±1 in ~10^6 in
 * a written count).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/reduce.h"
#include "common/buf.h"
#include "common/common.h"

/* ------------------------------------------------- the profile so far -- */

/* A frame as one word: build-id id below 2^23 and offset below 2^40
 * (1 TiB), + 1 (0 is no key); 0 when it does not fit. Exact, so the
 * map of words is the map of frames for every frame that fits. */
static uint64_t frame_key(const struct store_frame *f)
{
	if (f->build_id >= 1u << 23 || f->offset >> 40)
		return 0;
	return ((uint64_t)f->build_id << 40 | f->offset) + 1;
}

static int frame_index_key(struct reducer *r, const struct store_frame *f,
			   uint64_t fk, uint32_t *g)
{
	int found, rc;
	uint32_t key[4] = {f->build_id, (uint32_t)(f->offset >> 32),
			   (uint32_t)f->offset, 0};
	if (fk)
		rc = fdo_map64_put(&r->fmap64, fk, (uint32_t)r->nframes, g,
				   &found);
	else
		rc = fdo_map128_put(&r->fmap, key, (uint32_t)r->nframes, g,
				    &found);
	if (rc || found)
		return rc;
	if (r->nframes >= UINT32_MAX - 1 ||
	    fdo_grow(r->frames, r->cap_frames, r->nframes + 1)) {
		if (fk)
			fdo_map64_del(&r->fmap64, fk);
		else
			fdo_map128_del(&r->fmap, key);
		return FDO_ENOMEM;
	}
	r->frames[r->nframes++] = *f;
	return FDO_OK;
}

static int frame_index(struct reducer *r, const struct store_frame *f,
		       uint32_t *g)
{
	return frame_index_key(r, f, frame_key(f), g);
}

static double scaled(const struct reducer *r, wire_weight_t w)
{
	return (double)w * r->decay * r->factor;
}

static int add_leaf(struct reducer *r, uint32_t g, wire_weight_t w,
		    uint64_t samples)
{
	uint32_t v;
	int found;
	int rc = fdo_map64_put(&r->lmap, (uint64_t)g + 1, (uint32_t)r->nleaves,
			       &v, &found);
	if (rc)
		return rc;
	if (!found) {
		if (fdo_grow(r->leaves, r->cap_leaves, r->nleaves + 1)) {
			fdo_map64_del(&r->lmap, (uint64_t)g + 1);
			return FDO_ENOMEM;
		}
		r->leaves[r->nleaves++] = (struct red_leaf){g, 0, 0};
	}
	r->leaves[v].count += scaled(r, w);
	r->leaves[v].samples += samples;
	return FDO_OK;
}

static int add_pair(struct reducer *r, uint32_t ce, uint32_t cr,
		    wire_weight_t w)
{
	uint64_t key = ((uint64_t)ce << 32 | cr) + 1;
	uint32_t v;
	int found;
	int rc = fdo_map64_put(&r->pmap, key, (uint32_t)r->npairs, &v, &found);
	if (rc)
		return rc;
	if (!found) {
		if (fdo_grow(r->pairs, r->cap_pairs, r->npairs + 1)) {
			fdo_map64_del(&r->pmap, key);
			return FDO_ENOMEM;
		}
		r->pairs[r->npairs++] = (struct red_pair){ce, cr, 0};
	}
	r->pairs[v].count += scaled(r, w);
	return FDO_OK;
}

/* The visitor of a stored (or encoded) run. */
static int visit_part(void *arg, const struct store_aggs_part *part)
{
	struct reducer *r = arg;
	r->count += scaled(r, part->weight);
	return FDO_OK;
}

static int visit_leaf(void *arg, const struct store_frame *f, wire_weight_t w,
		      uint64_t samples)
{
	struct reducer *r = arg;
	uint32_t g;
	int rc = frame_index(r, f, &g);
	return rc ? rc : add_leaf(r, g, w, samples);
}

static int visit_pair(void *arg, const struct store_frame *callee,
		      const struct store_frame *caller, wire_weight_t w)
{
	struct reducer *r = arg;
	uint32_t ce, cr;
	int rc = FDO_OK;
	if (r->have_last_callee &&
	    callee->build_id == r->last_callee.build_id &&
	    callee->offset == r->last_callee.offset) {
		ce = r->last_callee_g;
	} else if (!(rc = frame_index(r, callee, &ce))) {
		r->last_callee = *callee;
		r->last_callee_g = ce;
		r->have_last_callee = 1;
	}
	if (!rc)
		rc = frame_index(r, caller, &cr);
	return rc ? rc : add_pair(r, ce, cr, w);
}

/* ------------------------------------------- one run from its stacks -- */

/* Weights as two words (a 128-bit field would pad every record to 16). */
struct w128 {
	uint64_t hi, lo;
};

static void w_add(struct w128 *a, wire_weight_t w)
{
	uint64_t lo = a->lo + (uint64_t)w;
	a->hi += (uint64_t)(w >> 64) + (lo < a->lo);
	a->lo = lo;
}

static wire_weight_t w_get(const struct w128 *a)
{
	return (wire_weight_t)a->hi << 64 | a->lo;
}

struct rleaf {
	struct w128 w;
	uint64_t samples;
	uint32_t g;
};

struct rpair {
	struct w128 w;
	uint32_t ce, cr;
};

/* The run's stacks whose leaf is of one build-id. */
struct rpart {
	uint32_t bid;
	struct w128 weight;
	uint64_t samples, stacks;
	struct fdo_map64 lmap, pmap;
	struct rleaf *leaves;
	size_t nleaves, cap_leaves;
	struct rpair *pairs;
	size_t npairs, cap_pairs;
};

struct rrun {
	struct rpart *parts;
	size_t nparts, cap_parts;
	struct fdo_map64 bymap; /* leaf build-id + 1 -> part */
};

static void rrun_fini(struct rrun *rr)
{
	for (size_t i = 0; i < rr->nparts; i++) {
		fdo_map64_fini(&rr->parts[i].lmap);
		fdo_map64_fini(&rr->parts[i].pmap);
		free(rr->parts[i].leaves);
		free(rr->parts[i].pairs);
	}
	free(rr->parts);
	fdo_map64_fini(&rr->bymap);
}

static int part_of(struct rrun *rr, uint32_t bid, struct rpart **out)
{
	uint32_t v;
	int found;
	int rc = fdo_map64_put(&rr->bymap, (uint64_t)bid + 1,
			       (uint32_t)rr->nparts, &v, &found);
	if (rc)
		return rc;
	if (!found) {
		if (fdo_grow(rr->parts, rr->cap_parts, rr->nparts + 1)) {
			fdo_map64_del(&rr->bymap, (uint64_t)bid + 1);
			return FDO_ENOMEM;
		}
		memset(&rr->parts[rr->nparts], 0, sizeof *rr->parts);
		rr->parts[rr->nparts++].bid = bid;
	}
	*out = &rr->parts[v];
	return FDO_OK;
}

#define PAIR_CHUNK 32

static int rpart_add(struct rpart *pt, const uint32_t *g, uint32_t n,
		     wire_weight_t w, uint64_t samples)
{
	uint32_t v;
	int found;
	int rc = fdo_map64_put(&pt->lmap, (uint64_t)g[0] + 1,
			       (uint32_t)pt->nleaves, &v, &found);
	if (rc)
		return rc;
	if (!found) {
		if (fdo_grow(pt->leaves, pt->cap_leaves, pt->nleaves + 1)) {
			fdo_map64_del(&pt->lmap, (uint64_t)g[0] + 1);
			return FDO_ENOMEM;
		}
		pt->leaves[pt->nleaves++] = (struct rleaf){{0, 0}, 0, g[0]};
	}
	w_add(&pt->leaves[v].w, w);
	pt->leaves[v].samples += samples;
	/* In chunks: every key prefetched, then looked up, then every entry
	 * prefetched, then added (as aggregator/prof.c does). */
	uint64_t keys[PAIR_CHUNK];
	uint32_t at[PAIR_CHUNK];
	for (uint32_t i0 = 0; i0 + 1 < n; i0 += PAIR_CHUNK) {
		uint32_t m = 0;
		for (uint32_t i = i0; i + 1 < n && i < i0 + PAIR_CHUNK; i++) {
			if (prof_pair_seen(g, i))
				continue;
			keys[m] = ((uint64_t)g[i] << 32 | g[i + 1]) + 1;
			fdo_map64_prefetch(&pt->pmap, keys[m]);
			m++;
		}
		for (uint32_t k = 0; k < m; k++) {
			if ((rc = fdo_map64_put(&pt->pmap, keys[k],
						(uint32_t)pt->npairs, &v,
						&found)))
				return rc;
			if (!found) {
				if (fdo_grow(pt->pairs, pt->cap_pairs,
					     pt->npairs + 1)) {
					fdo_map64_del(&pt->pmap, keys[k]);
					return FDO_ENOMEM;
				}
				uint64_t pk = keys[k] - 1;
				pt->pairs[pt->npairs++] =
					(struct rpair){{0, 0},
						       (uint32_t)(pk >> 32),
						       (uint32_t)pk};
			}
			at[k] = v;
			__builtin_prefetch(&pt->pairs[v]);
		}
		for (uint32_t k = 0; k < m; k++)
			w_add(&pt->pairs[at[k]].w, w);
	}
	w_add(&pt->weight, w);
	pt->samples += samples;
	pt->stacks++;
	return FDO_OK;
}

/* Every stack of run k into rr, by leaf build-id. A stack that is
 * missing, does not decode, has no frames or weighs 0 is in no
 * partition (as it adds nothing to a profile). */
static int compute_run(struct reducer *r, const struct store_totals_key *k,
		       struct rrun *rr)
{
	store_counts_iter *c;
	uint8_t start[STORE_TOTALS_KEY_SIZE];
	store_totals_key_encode(start, k);
	int rc = store_counts_iter_open(r->t, start, sizeof start, &c);
	if (rc)
		return rc;
	struct store_counts_key ck;
	struct store_weight w;
	int crc = FDO_OK;
	while (!rc && (crc = store_counts_iter_next(c, &ck, &w)) == FDO_OK) {
		if (!w.weight)
			continue;
		uint8_t key[STORE_STACK_KEY_SIZE];
		store_stack_key_encode(key, ck.stack);
		struct store_frame f[STORE_STACK_MAX_FRAMES];
		uint32_t g[STORE_STACK_MAX_FRAMES];
		size_t n, sl;
		const void *sv;
		if (store_get(r->t, STORE_STACKS, key, sizeof key, &sv, &sl) ||
		    store_stack_decode(sv, sl, f, STORE_STACK_MAX_FRAMES, &n) ||
		    n == 0)
			continue;
		/* Every frame's slot asked for first, so that the misses of
		 * a map far larger than the cache overlap. */
		uint64_t fk[STORE_STACK_MAX_FRAMES];
		for (size_t i = 0; i < n; i++) {
			fk[i] = frame_key(&f[i]);
			fdo_map64_prefetch(&r->fmap64, fk[i]);
		}
		for (size_t i = 0; i < n && !rc; i++)
			rc = frame_index_key(r, &f[i], fk[i], &g[i]);
		struct rpart *pt;
		if (!rc && !(rc = part_of(rr, f[0].build_id, &pt)))
			rc = rpart_add(pt, g, (uint32_t)n, w.weight, w.samples);
	}
	store_counts_iter_close(c);
	if (rc)
		return rc;
	return crc == FDO_OK || crc == FDO_ENOT_FOUND ? FDO_OK : crc;
}

static int cmp_part(const void *x, const void *y)
{
	const struct rpart *a = x, *b = y;
	return a->bid < b->bid ? -1 : a->bid > b->bid;
}

/* Adds the run's partitions (in leaf build-id order, as a stored run's
 * come) to the profile: the same doubles, in the same order per key, as
 * store_aggs_read's visit of the same run. */
static int add_computed(struct reducer *r, struct rrun *rr)
{
	int rc = FDO_OK;
	for (size_t i = 0; i < rr->nparts && !rc; i++) {
		struct rpart *pt = &rr->parts[i];
		if (r->leaf_bid && pt->bid != r->leaf_bid)
			continue;
		r->count += scaled(r, w_get(&pt->weight));
		for (size_t j = 0; j < pt->nleaves && !rc; j++)
			rc = add_leaf(r, pt->leaves[j].g,
				      w_get(&pt->leaves[j].w),
				      pt->leaves[j].samples);
		for (size_t j = 0; j < pt->npairs && !rc; j++)
			rc = add_pair(r, pt->pairs[j].ce, pt->pairs[j].cr,
				      w_get(&pt->pairs[j].w));
	}
	return rc;
}

static int frame_cmp(const struct store_frame *a, const struct store_frame *b)
{
	if (a->build_id != b->build_id)
		return a->build_id < b->build_id ? -1 : 1;
	return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static int cmp_rleaf(const void *x, const void *y, void *arg)
{
	const struct store_frame *fr = arg;
	const struct rleaf *a = x, *b = y;
	return frame_cmp(&fr[a->g], &fr[b->g]);
}

static int cmp_rpair(const void *x, const void *y, void *arg)
{
	const struct store_frame *fr = arg;
	const struct rpair *a = x, *b = y;
	int c = frame_cmp(&fr[a->ce], &fr[b->ce]);
	return c ? c : frame_cmp(&fr[a->cr], &fr[b->cr]);
}

/* The run encoded as its rows (storage/aggs.c), for red_store. */
static int encode_run(struct reducer *r, struct rrun *rr,
		      struct store_aggs_run *run)
{
	int rc = FDO_OK;
	for (size_t i = 0; i < rr->nparts && !rc; i++) {
		struct rpart *pt = &rr->parts[i];
		qsort_r(pt->leaves, pt->nleaves, sizeof *pt->leaves, cmp_rleaf,
			r->frames);
		qsort_r(pt->pairs, pt->npairs, sizeof *pt->pairs, cmp_rpair,
			r->frames);
		struct store_aggs_part sp = {pt->bid,	  w_get(&pt->weight),
					     pt->samples, pt->stacks,
					     pt->nleaves, pt->npairs};
		rc = store_aggs_run_part(run, &sp);
		for (size_t j = 0; j < pt->nleaves && !rc; j++)
			rc = store_aggs_run_leaf(
				run, r->frames[pt->leaves[j].g].offset,
				w_get(&pt->leaves[j].w), pt->leaves[j].samples);
		for (size_t j = 0; j < pt->npairs && !rc; j++)
			rc = store_aggs_run_pair(run,
						 &r->frames[pt->pairs[j].ce],
						 &r->frames[pt->pairs[j].cr],
						 w_get(&pt->pairs[j].w));
	}
	return rc ? rc : store_aggs_run_finish(run);
}

/* Keeps the encoded run for red_store when the budget has room. */
static void keep_run(struct reducer *r, struct store_aggs_run *run)
{
	if (r->keep_bytes + run->len > r->write_budget ||
	    fdo_grow(r->keep, r->cap_keep, r->nkeep + 1)) {
		store_aggs_run_fini(run);
		return;
	}
	r->keep_bytes += run->len;
	r->keep[r->nkeep++] = *run;
	memset(run, 0, sizeof *run);
}

int red_run(struct reducer *r, const struct store_totals_key *k,
	    const struct store_totals *seen, double decay, double factor)
{
	if (r->none)
		return FDO_OK;
	r->decay = decay;
	r->factor = factor;
	int over = (uint64_t)k->bucket + r->width <= r->closed_now;
	if (over && !r->full_scan) {
		struct store_aggs_visit v = {visit_part, visit_leaf, visit_pair,
					     r};
		int rc = store_aggs_read(r->t, k, seen, r->leaf_bid, &v);
		if (rc == FDO_OK) {
			r->runs_read++;
			return FDO_OK;
		}
		if (rc == FDO_ECORRUPT)
			r->runs_stale++;
		else if (rc != FDO_ENOT_FOUND)
			return rc;
	}
	struct rrun rr = {0};
	int rc = compute_run(r, k, &rr);
	if (!rc) {
		qsort(rr.parts, rr.nparts, sizeof *rr.parts, cmp_part);
		rc = add_computed(r, &rr);
		r->runs_computed++;
	}
	if (!rc && over && !r->full_scan && r->write_budget > r->keep_bytes) {
		struct store_aggs_run run;
		store_aggs_run_init(&run, k, seen);
		/* Too large to store (FDO_ELIMIT) or no memory: the run is
		 * read from its stacks again next time. */
		if (encode_run(r, &rr, &run) == FDO_OK)
			keep_run(r, &run);
		else
			store_aggs_run_fini(&run);
	}
	rrun_fini(&rr);
	return rc;
}

/* ------------------------------------------------------------ the end -- */

static int cmp_g(const void *x, const void *y, void *arg)
{
	const struct store_frame *fr = arg;
	return frame_cmp(&fr[*(const uint32_t *)x], &fr[*(const uint32_t *)y]);
}

static int cmp_pleaf(const void *x, const void *y)
{
	const struct prof_leaf *a = x, *b = y;
	return a->loc < b->loc ? -1 : a->loc > b->loc;
}

static int cmp_ppair(const void *x, const void *y)
{
	const struct prof_pair *a = x, *b = y;
	if (a->callee != b->callee)
		return a->callee < b->callee ? -1 : 1;
	return a->caller < b->caller ? -1 : a->caller > b->caller;
}

static int kept(double c)
{
	return c > 0 && isfinite(c);
}

int red_finish(struct reducer *r,
	       int (*loc_of)(void *arg, const struct store_frame *f,
			     uint32_t *loc),
	       void *arg, struct prof_leaf **leaves_out, size_t *nleaves_out,
	       struct prof_pair **pairs_out, size_t *npairs_out)
{
	*leaves_out = NULL;
	*pairs_out = NULL;
	*nleaves_out = *npairs_out = 0;
	size_t nf = r->nframes ? r->nframes : 1;
	uint32_t *loc = malloc(nf * sizeof *loc);
	uint32_t *order = malloc(nf * sizeof *order);
	struct prof_leaf *pl =
		malloc((r->nleaves ? r->nleaves : 1) * sizeof *pl);
	struct prof_pair *pp = malloc((r->npairs ? r->npairs : 1) * sizeof *pp);
	int rc = loc && order && pl && pp ? FDO_OK : FDO_ENOMEM;
	size_t n = 0, nl = 0, np = 0;
	if (!rc) {
		/* The frames the profile keeps, located in frame order. */
		for (size_t i = 0; i < r->nframes; i++)
			loc[i] = UINT32_MAX;
		for (size_t i = 0; i < r->nleaves; i++)
			if (kept(r->leaves[i].count))
				loc[r->leaves[i].g] = 0;
		for (size_t i = 0; i < r->npairs; i++)
			if (kept(r->pairs[i].count))
				loc[r->pairs[i].callee] =
					loc[r->pairs[i].caller] = 0;
		for (size_t i = 0; i < r->nframes; i++)
			if (!loc[i])
				order[n++] = (uint32_t)i;
		qsort_r(order, n, sizeof *order, cmp_g, r->frames);
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = loc_of(arg, &r->frames[order[i]], &loc[order[i]]);
	if (!rc) {
		for (size_t i = 0; i < r->nleaves; i++)
			if (kept(r->leaves[i].count))
				pl[nl++] = (struct prof_leaf){
					loc[r->leaves[i].g], r->leaves[i].count,
					r->leaves[i].samples};
		for (size_t i = 0; i < r->npairs; i++)
			if (kept(r->pairs[i].count))
				pp[np++] = (struct prof_pair){
					loc[r->pairs[i].callee],
					loc[r->pairs[i].caller],
					r->pairs[i].count};
		qsort(pl, nl, sizeof *pl, cmp_pleaf);
		qsort(pp, np, sizeof *pp, cmp_ppair);
		/* Two frames of one location: one entry, summed in frame
		 * order (a guard: the builder keys locations by the whole
		 * frame, so it does not happen). */
		size_t m = 0;
		for (size_t i = 0; i < nl; i++) {
			if (m && pl[m - 1].loc == pl[i].loc) {
				pl[m - 1].count += pl[i].count;
				pl[m - 1].samples += pl[i].samples;
			} else {
				pl[m++] = pl[i];
			}
		}
		nl = m;
		m = 0;
		for (size_t i = 0; i < np; i++) {
			if (m && !cmp_ppair(&pp[m - 1], &pp[i]))
				pp[m - 1].count += pp[i].count;
			else
				pp[m++] = pp[i];
		}
		np = m;
	}
	free(loc);
	free(order);
	if (rc) {
		free(pl);
		free(pp);
		return rc;
	}
	*leaves_out = pl;
	*nleaves_out = nl;
	*pairs_out = pp;
	*npairs_out = np;
	return FDO_OK;
}

static int store_kept(store_txn *t, void *arg)
{
	struct reducer *r = arg;
	r->runs_stored = 0;
	int rc = FDO_OK;
	for (size_t i = 0; i < r->nkeep && !rc; i++) {
		int stale;
		rc = store_aggs_run_put(t, &r->keep[i], &stale);
		if (!rc && !stale)
			r->runs_stored++;
	}
	return rc;
}

int red_store(struct reducer *r, store *st)
{
	if (!r->nkeep)
		return FDO_OK;
	int rc = store_write_derived(st, store_kept, r);
	for (size_t i = 0; i < r->nkeep; i++)
		store_aggs_run_fini(&r->keep[i]);
	r->nkeep = 0;
	r->keep_bytes = 0;
	return rc;
}

void red_fini(struct reducer *r)
{
	for (size_t i = 0; i < r->nkeep; i++)
		store_aggs_run_fini(&r->keep[i]);
	free(r->keep);
	fdo_map128_fini(&r->fmap);
	fdo_map64_fini(&r->fmap64);
	fdo_map64_fini(&r->lmap);
	fdo_map64_fini(&r->pmap);
	free(r->frames);
	free(r->leaves);
	free(r->pairs);
	memset(r, 0, sizeof *r);
}
