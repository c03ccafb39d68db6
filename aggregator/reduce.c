/*
 * aggregator/reduce.c — what the compile-time profiles (llvm, gcc, bolt)
 * read of a window, run by run: each run's exact sums by leaf frame and
 * by caller->callee frame pair, from table aggs (storage/aggs.c) when its
 * bucket is over and they are stored, else from its stacks; see
 * aggregator/reduce.h for the contract.
 *
 * Workload: a pull of a 7-day window of hourly buckets reads ~170 runs
 * per label set. A run that is stored costs its records (thousands for a
 * real program's call graph, a million on the bench's store), not its
 * stacks (up to millions, each a lookup in table stacks and one map
 * update per frame): only the open bucket and runs whose rows are
 * missing or stale (the merger fills those of buckets that are over
 * between merges: aggregator/merge.c) are read from the stacks, summed
 * and encoded as rows in memory. Every run's rows are sorted by frame,
 * so red_finish merges them with a heap of partitions (ties in the order
 * added, which is the order each key's doubles are summed in) and the
 * profile's leaves and pairs come out in frame order, the order the
 * profile's locations are numbered in: no map of pairs, no sort, one
 * lookup per record in the small map of distinct callers. Memory: the
 * rows' pages (the table's map), the runs computed here (encoded, ~10
 * bytes a record), the merged leaves (40 bytes) and pairs (16).
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

/* ------------------------------------------------------------ frames -- */

/* A frame as one word: build-id id below 2^23 and offset below 2^40
 * (1 TiB), + 1 (0 is no key); 0 when it does not fit. Exact and in frame
 * order, so the map of words is the map of frames, and the order of words
 * the order of frames, for every frame that fits. */
static uint64_t frame_key(const struct store_frame *f)
{
	if (f->build_id >= 1u << 23 || f->offset >> 40)
		return 0;
	return ((uint64_t)f->build_id << 40 | f->offset) + 1;
}

static int frame_cmp(const struct store_frame *a, const struct store_frame *b)
{
	if (a->build_id != b->build_id)
		return a->build_id < b->build_id ? -1 : 1;
	return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static int frame_eq(const struct store_frame *a, const struct store_frame *b)
{
	return a->offset == b->offset && a->build_id == b->build_id;
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

static int kept(double c)
{
	return c > 0 && isfinite(c);
}

/* --------------------------------------------------------- radix sort -- */

/* A 64-bit key and what it stands for. */
struct kv {
	uint64_t key;
	uint32_t idx;
};

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)

/* Sorts a by key, stably (LSD radix, digits that never change skipped).
 * FDO_OK or FDO_ENOMEM (a unchanged). */
static int kv_sort(struct kv *a, size_t n)
{
	if (n < 2)
		return FDO_OK;
	uint64_t any = 0, all = ~(uint64_t)0;
	for (size_t i = 0; i < n; i++) {
		any |= a[i].key;
		all &= a[i].key;
	}
	uint64_t varies = any ^ all;
	if (!varies)
		return FDO_OK;
	struct kv *tmp = malloc(n * sizeof *tmp);
	size_t *cnt = malloc(RADIX_SIZE * sizeof *cnt);
	if (!tmp || !cnt) {
		free(tmp);
		free(cnt);
		return FDO_ENOMEM;
	}
	struct kv *src = a, *dst = tmp;
	for (unsigned shift = 0; shift < 64; shift += RADIX_BITS) {
		if (!((varies >> shift) & (RADIX_SIZE - 1)))
			continue;
		memset(cnt, 0, RADIX_SIZE * sizeof *cnt);
		for (size_t i = 0; i < n; i++)
			cnt[(src[i].key >> shift) & (RADIX_SIZE - 1)]++;
		size_t sum = 0;
		for (size_t d = 0; d < RADIX_SIZE; d++) {
			size_t c = cnt[d];
			cnt[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[(src[i].key >> shift) & (RADIX_SIZE - 1)]++] =
				src[i];
		struct kv *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof *a);
	free(tmp);
	free(cnt);
	return FDO_OK;
}

static int cmp_frame_idx(const void *x, const void *y, void *arg)
{
	const struct store_frame *fr = arg;
	return frame_cmp(&fr[*(const uint32_t *)x], &fr[*(const uint32_t *)y]);
}

/* order[0..n): the indexes of fr sorted by frame (fr's frames are
 * distinct). FDO_OK or FDO_ENOMEM. */
static int frame_order(const struct store_frame *fr, size_t n, uint32_t *order)
{
	int fits = 1;
	for (size_t i = 0; i < n && fits; i++)
		fits = frame_key(&fr[i]) != 0;
	if (!fits) {
		for (size_t i = 0; i < n; i++)
			order[i] = (uint32_t)i;
		qsort_r(order, n, sizeof *order, cmp_frame_idx, (void *)fr);
		return FDO_OK;
	}
	struct kv *a = malloc((n ? n : 1) * sizeof *a);
	if (!a)
		return FDO_ENOMEM;
	for (size_t i = 0; i < n; i++)
		a[i] = (struct kv){frame_key(&fr[i]), (uint32_t)i};
	int rc = kv_sort(a, n);
	for (size_t i = 0; i < n && !rc; i++)
		order[i] = a[i].idx;
	free(a);
	return rc;
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

/* Stacks of run k into rr, by leaf build-id, from stack id *from on,
 * until deadline (fdo_now_ns; 0: none) passes: *from is then the next
 * stack id to read, and *done set once every stack is read. A stack that
 * is missing, does not decode, has no frames or weighs 0 is in no
 * partition (as it adds nothing to a profile). */
static int compute_some(struct reducer *r, const struct store_totals_key *k,
			struct rrun *rr, uint64_t *from, uint64_t deadline,
			int *done)
{
	*done = 0;
	store_counts_iter *c;
	uint8_t start[STORE_TOTALS_KEY_SIZE];
	store_totals_key_encode(start, k);
	int rc = store_counts_iter_open(r->t, start, sizeof start, &c);
	if (rc)
		return rc;
	if ((rc = store_counts_iter_from(c, *from))) {
		store_counts_iter_close(c);
		return rc;
	}
	struct store_counts_key ck;
	struct store_weight w;
	unsigned tick = 0;
	int crc = FDO_OK;
	while (!rc && (crc = store_counts_iter_next(c, &ck, &w)) == FDO_OK) {
		if (deadline && !(++tick & 255) && fdo_now_ns() >= deadline) {
			*from = ck.stack; /* not added yet */
			store_counts_iter_close(c);
			return FDO_OK;
		}
		if (ck.stack != UINT64_MAX) /* else the run's last there is */
			*from = ck.stack + 1;
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
	if (crc != FDO_OK && crc != FDO_ENOT_FOUND)
		return crc;
	*done = 1;
	return FDO_OK;
}

static int compute_run(struct reducer *r, const struct store_totals_key *k,
		       struct rrun *rr)
{
	uint64_t from = 0;
	int done;
	return compute_some(r, k, rr, &from, 0, &done);
}

static int cmp_part(const void *x, const void *y)
{
	const struct rpart *a = x, *b = y;
	return a->bid < b->bid ? -1 : a->bid > b->bid;
}

/*
 * The run encoded as its rows (storage/aggs.c): its partitions by leaf
 * build-id, each one's leaves and pairs in frame order. The order comes
 * from each frame's rank among the frames seen so far (one radix sort of
 * the frames), then one radix sort of each partition's keys by rank: no
 * comparison through the frames per record.
 */
static int encode_run(struct reducer *r, struct rrun *rr,
		      struct store_aggs_run *run)
{
	qsort(rr->parts, rr->nparts, sizeof *rr->parts, cmp_part);
	size_t nf = r->nframes ? r->nframes : 1, most = 1;
	for (size_t i = 0; i < rr->nparts; i++) {
		if (rr->parts[i].nleaves > most)
			most = rr->parts[i].nleaves;
		if (rr->parts[i].npairs > most)
			most = rr->parts[i].npairs;
	}
	uint32_t *rank = malloc(nf * sizeof *rank);
	uint32_t *order = malloc(nf * sizeof *order);
	struct kv *a = malloc(most * sizeof *a);
	int rc = rank && order && a ? FDO_OK : FDO_ENOMEM;
	if (!rc)
		rc = frame_order(r->frames, r->nframes, order);
	for (size_t i = 0; i < r->nframes && !rc; i++)
		rank[order[i]] = (uint32_t)i;
	free(order);
	for (size_t i = 0; i < rr->nparts && !rc; i++) {
		struct rpart *pt = &rr->parts[i];
		struct store_aggs_part sp = {pt->bid,	  w_get(&pt->weight),
					     pt->samples, pt->stacks,
					     pt->nleaves, pt->npairs};
		rc = store_aggs_run_part(run, &sp);
		for (size_t j = 0; j < pt->nleaves && !rc; j++)
			a[j] = (struct kv){rank[pt->leaves[j].g], (uint32_t)j};
		if (!rc)
			rc = kv_sort(a, pt->nleaves);
		for (size_t j = 0; j < pt->nleaves && !rc; j++) {
			const struct rleaf *l = &pt->leaves[a[j].idx];
			rc = store_aggs_run_leaf(run, r->frames[l->g].offset,
						 w_get(&l->w), l->samples);
		}
		for (size_t j = 0; j < pt->npairs && !rc; j++) {
			const struct rpair *q = &pt->pairs[j];
			uint64_t key = (uint64_t)rank[q->ce] << 32 |
				       rank[q->cr];
			a[j] = (struct kv){key, (uint32_t)j};
		}
		if (!rc)
			rc = kv_sort(a, pt->npairs);
		for (size_t j = 0; j < pt->npairs && !rc; j++) {
			const struct rpair *q = &pt->pairs[a[j].idx];
			rc = store_aggs_run_pair(run, &r->frames[q->ce],
						 &r->frames[q->cr],
						 w_get(&q->w));
		}
	}
	free(rank);
	free(a);
	return rc ? rc : store_aggs_run_finish(run);
}

/* The scales of the partitions lay took since it had from of them, and
 * their weights into the profile's count (in the order added). */
static int add_scales(struct reducer *r, size_t from, double decay,
		      double factor)
{
	if (fdo_grow(r->scale, r->cap_scale, r->lay.nsrcs)) {
		r->lay.nsrcs = from; /* as if never added */
		return FDO_ENOMEM;
	}
	for (size_t i = from; i < r->lay.nsrcs; i++) {
		r->scale[i] = (struct red_scale){decay, factor};
		r->count += (double)r->lay.srcs[i].part.weight * decay * factor;
	}
	return FDO_OK;
}

int red_compute(store_txn *t, const struct store_totals_key *k,
		const struct store_totals *seen, struct store_aggs_run *run)
{
	struct reducer r = {.t = t};
	struct rrun rr = {0};
	store_aggs_run_init(run, k, seen);
	int rc = compute_run(&r, k, &rr);
	if (!rc)
		rc = encode_run(&r, &rr, run);
	rrun_fini(&rr);
	red_fini(&r);
	return rc;
}

/* ---------------------------------------------------- the merger's fill -- */

struct red_fill {
	struct reducer r; /* its frame index */
	struct rrun rr;
	struct store_totals_key k;
	uint64_t from; /* the next stack id to read */
	int done;
};

int red_fill_begin(const struct store_totals_key *k, struct red_fill **out)
{
	struct red_fill *f = calloc(1, sizeof *f);
	if (!f)
		return FDO_ENOMEM;
	f->k = *k;
	*out = f;
	return FDO_OK;
}

int red_fill_step(struct red_fill *f, store_txn *t, uint64_t deadline,
		  int *done)
{
	if (!f->done) {
		f->r.t = t;
		int rc = compute_some(&f->r, &f->k, &f->rr, &f->from, deadline,
				      &f->done);
		f->r.t = NULL;
		if (rc)
			return rc;
	}
	*done = f->done;
	return FDO_OK;
}

int red_fill_encode(struct red_fill *f, const struct store_totals *seen,
		    struct store_aggs_run *run)
{
	store_aggs_run_init(run, &f->k, seen);
	if (!f->done)
		return FDO_EINVAL;
	return encode_run(&f->r, &f->rr, run);
}

size_t red_fill_bytes(const struct red_fill *f)
{
	size_t b = sizeof *f + f->r.cap_frames * sizeof *f->r.frames +
		   f->r.fmap64.cap * (sizeof(uint64_t) + sizeof(uint32_t)) +
		   f->r.fmap.cap * sizeof(uint32_t) * 5 +
		   f->rr.cap_parts * sizeof *f->rr.parts;
	for (size_t i = 0; i < f->rr.nparts; i++) {
		const struct rpart *pt = &f->rr.parts[i];
		b += pt->cap_leaves * sizeof *pt->leaves +
		     pt->cap_pairs * sizeof *pt->pairs +
		     (pt->lmap.cap + pt->pmap.cap) *
			     (sizeof(uint64_t) + sizeof(uint32_t));
	}
	return b;
}

void red_fill_free(struct red_fill *f)
{
	if (!f)
		return;
	rrun_fini(&f->rr);
	red_fini(&f->r);
	free(f);
}

int red_run(struct reducer *r, const struct store_totals_key *k,
	    const struct store_totals *seen, double decay, double factor)
{
	if (r->none)
		return FDO_OK;
	int over = (uint64_t)k->bucket + r->width <= r->closed_now;
	size_t from = r->lay.nsrcs;
	if (over && !r->full_scan) {
		int rc = store_aggs_layout_add(r->t, k, seen, r->leaf_bid,
					       &r->lay);
		if (rc == FDO_OK) {
			r->runs_read++;
			return add_scales(r, from, decay, factor);
		}
		if (rc == FDO_ECORRUPT)
			r->runs_stale++;
		else if (rc != FDO_ENOT_FOUND)
			return rc;
	}
	if (fdo_grow(r->mem, r->cap_mem, r->nmem + 1) ||
	    fdo_grow(r->store, r->cap_store, r->nmem + 1))
		return FDO_ENOMEM;
	struct store_aggs_run *run = &r->mem[r->nmem];
	struct rrun rr = {0};
	store_aggs_run_init(run, k, seen);
	run->max = SIZE_MAX; /* read from memory: stored only if it fits */
	int rc = compute_run(r, k, &rr);
	if (!rc)
		rc = encode_run(r, &rr, run);
	rrun_fini(&rr);
	if (!rc)
		rc = store_aggs_run_layout_add(run, r->leaf_bid, &r->lay);
	if (rc) {
		store_aggs_run_fini(run);
		return rc;
	}
	r->runs_computed++;
	/* Over: stored after the build when the budget has room (else a
	 * later pull, or the merger's fill, stores it). */
	r->store[r->nmem] = over && !r->full_scan &&
			    run->len <= STORE_AGGS_RUN_MAX &&
			    r->keep_bytes + run->len <= r->write_budget;
	if (r->store[r->nmem])
		r->keep_bytes += run->len;
	r->nmem++;
	return add_scales(r, from, decay, factor);
}

/* ------------------------------------------------------------ the end -- */

/* One partition being merged: its iterator and its current record. */
struct strm {
	struct store_aggs_iter it;
	struct store_frame a, b; /* the leaf; or the callee and the caller */
	uint64_t ka, kb;	 /* their frame_key (0: compare the frames) */
	wire_weight_t w;
	uint64_t samples;
	double decay, factor;
};

/* Two frames in frame order, by their words when both fit in one (the
 * merge compares a few times per record it reads). */
static int key_cmp(uint64_t ka, uint64_t kb, const struct store_frame *a,
		   const struct store_frame *b)
{
	if (ka && kb)
		return ka < kb ? -1 : ka > kb;
	return frame_cmp(a, b);
}

/* The smaller record first; of equal ones, the partition added first. */
static int strm_less(const struct strm *s, uint32_t x, uint32_t y, int pairs)
{
	int c = key_cmp(s[x].ka, s[y].ka, &s[x].a, &s[y].a);
	if (!c && pairs)
		c = key_cmp(s[x].kb, s[y].kb, &s[x].b, &s[y].b);
	return c ? c < 0 : x < y;
}

static void strm_down(const struct strm *s, uint32_t *h, size_t n, size_t i,
		      int pairs)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && strm_less(s, h[l], h[m], pairs))
			m = l;
		if (l + 1 < n && strm_less(s, h[l + 1], h[m], pairs))
			m = l + 1;
		if (m == i)
			return;
		uint32_t t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static int strm_next(struct strm *st, int pairs)
{
	int more = pairs ? store_aggs_iter_pair(&st->it, &st->a, &st->b, &st->w)
			 : store_aggs_iter_leaf(&st->it, &st->a, &st->w,
						&st->samples);
	if (more) {
		st->ka = frame_key(&st->a);
		st->kb = pairs ? frame_key(&st->b) : 0;
	}
	return more;
}

/* What the merge keeps: leaves with their frames, pairs with their
 * callee as an index into the distinct callees (they come in order) and
 * their caller as an index into the distinct callers (first seen
 * first). */
struct merged {
	struct prof_leaf *pl;
	struct store_frame *lf;
	size_t nl, cap_pl, cap_lf;
	struct prof_pair *pp;
	size_t np, cap_pp;
	struct store_frame *cf, *rf;
	size_t ncf, cap_cf, nrf, cap_rf;
	struct fdo_map64 rmap64; /* caller frame_key -> index */
	struct fdo_map128 rmap;	 /* callers that do not fit a word */
};

static int caller_id(struct merged *m, const struct store_frame *f,
		     uint32_t *id)
{
	uint64_t fk = frame_key(f);
	uint32_t key[4] = {f->build_id, (uint32_t)(f->offset >> 32),
			   (uint32_t)f->offset, 0};
	int found;
	int rc =
		fk ? fdo_map64_put(&m->rmap64, fk, (uint32_t)m->nrf, id, &found)
		   : fdo_map128_put(&m->rmap, key, (uint32_t)m->nrf, id,
				    &found);
	if (rc || found)
		return rc;
	if (m->nrf >= UINT32_MAX - 1 || fdo_grow(m->rf, m->cap_rf, m->nrf + 1))
		return FDO_ENOMEM;
	m->rf[m->nrf++] = *f;
	return FDO_OK;
}

/* Partitions up to which the merge scans them all for the least key
 * rather than keeping a heap: with a few (a window of one or two buckets
 * over a few label sets) most keys are in every partition, and one scan
 * takes each of them at once, where the heap compares about log n times
 * per record. */
#define SCAN_MAX 8

/*
 * The next key of the partitions in h (nh of them, in the order added;
 * SCAN_MAX at most): its frames into a and b, its records summed into *c
 * and *samples in the order the partitions were added (the heap's order
 * too: of equal keys, the partition added first), and the partitions
 * done with dropped from h (which keeps its order).
 */
static void scan_next(struct reducer *r, struct strm *s, uint32_t *h,
		      size_t *nh, int pairs, struct store_frame *a,
		      struct store_frame *b, double *c, uint64_t *samples)
{
	size_t least = 0, n = *nh, k = 0;
	for (size_t i = 1; i < n; i++)
		if (strm_less(s, h[i], h[least], pairs))
			least = i;
	*a = s[h[least]].a;
	*b = s[h[least]].b;
	/* The partitions before least have larger keys: it is the first
	 * of the least. */
	for (size_t i = 0; i < least; i++)
		h[k++] = h[i];
	for (size_t i = least; i < n; i++) {
		struct strm *st = &s[h[i]];
		if (frame_eq(&st->a, a) && (!pairs || frame_eq(&st->b, b))) {
			*c += (double)st->w * st->decay * st->factor;
			*samples += st->samples;
			r->records++;
			if (!strm_next(st, pairs))
				continue;
		}
		h[k++] = h[i];
	}
	*nh = k;
}

/* The leaves (pairs) of every partition, merged by frame; each key's
 * count summed in the order the partitions were added. */
static int merge(struct reducer *r, struct strm *s, uint32_t *h, int pairs,
		 struct merged *m)
{
	size_t n = r->lay.nsrcs, nh = 0;
	for (size_t i = 0; i < n; i++)
		if (strm_next(&s[i], pairs))
			h[nh++] = (uint32_t)i;
	int scan = n <= SCAN_MAX;
	for (size_t i = nh / 2; i-- > 0 && !scan;)
		strm_down(s, h, nh, i, pairs);
	int rc = FDO_OK;
	while (nh && !rc) {
		struct store_frame a = s[h[0]].a, b = s[h[0]].b;
		double c = 0;
		uint64_t samples = 0;
		if (scan)
			scan_next(r, s, h, &nh, pairs, &a, &b, &c, &samples);
		else
			do {
				struct strm *st = &s[h[0]];
				c += (double)st->w * st->decay * st->factor;
				samples += st->samples;
				r->records++;
				if (!strm_next(st, pairs))
					h[0] = h[--nh];
				strm_down(s, h, nh, 0, pairs);
			} while (nh && frame_eq(&s[h[0]].a, &a) &&
				 (!pairs || frame_eq(&s[h[0]].b, &b)));
		if (!kept(c))
			continue;
		if (!pairs) {
			if ((rc = fdo_grow(m->pl, m->cap_pl, m->nl + 1)) ||
			    (rc = fdo_grow(m->lf, m->cap_lf, m->nl + 1)))
				break;
			m->pl[m->nl] =
				(struct prof_leaf){(uint32_t)m->nl, c, samples};
			m->lf[m->nl++] = a;
			continue;
		}
		if (!m->ncf || !frame_eq(&m->cf[m->ncf - 1], &a)) {
			if (m->ncf >= UINT32_MAX - 1 ||
			    (rc = fdo_grow(m->cf, m->cap_cf, m->ncf + 1)))
				break;
			m->cf[m->ncf++] = a;
		}
		uint32_t cr;
		if ((rc = caller_id(m, &b, &cr)) ||
		    (rc = fdo_grow(m->pp, m->cap_pp, m->np + 1)))
			break;
		m->pp[m->np++] =
			(struct prof_pair){(uint32_t)m->ncf - 1, cr, c};
	}
	return rc;
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

/* A guard for a loc_of whose locations do not follow the frames (the
 * builder's do): sorted, and two frames of one location summed in frame
 * order. */
static void resort(struct merged *m)
{
	qsort(m->pl, m->nl, sizeof *m->pl, cmp_pleaf);
	qsort(m->pp, m->np, sizeof *m->pp, cmp_ppair);
	size_t k = 0;
	for (size_t i = 0; i < m->nl; i++) {
		if (k && m->pl[k - 1].loc == m->pl[i].loc) {
			m->pl[k - 1].count += m->pl[i].count;
			m->pl[k - 1].samples += m->pl[i].samples;
		} else {
			m->pl[k++] = m->pl[i];
		}
	}
	m->nl = k;
	k = 0;
	for (size_t i = 0; i < m->np; i++) {
		if (k && !cmp_ppair(&m->pp[k - 1], &m->pp[i]))
			m->pp[k - 1].count += m->pp[i].count;
		else
			m->pp[k++] = m->pp[i];
	}
	m->np = k;
}

/* Locates the distinct frames of the kept leaves, callees and callers in
 * increasing frame order and puts the locations in pl and pp. */
static int locate(struct merged *m,
		  int (*loc_of)(void *arg, const struct store_frame *f,
				uint32_t *loc),
		  void *arg)
{
	uint32_t *ord = malloc((m->nrf ? m->nrf : 1) * sizeof *ord);
	uint32_t *cloc = malloc((m->ncf ? m->ncf : 1) * sizeof *cloc);
	uint32_t *rloc = malloc((m->nrf ? m->nrf : 1) * sizeof *rloc);
	int rc = ord && cloc && rloc ? FDO_OK : FDO_ENOMEM;
	if (!rc)
		rc = frame_order(m->rf, m->nrf, ord);
	/* The map of callers is done with: its memory back first. */
	fdo_map64_fini(&m->rmap64);
	fdo_map128_fini(&m->rmap);
	size_t i = 0, j = 0, k = 0;
	uint32_t prev = 0;
	int asked = 0, sorted = 1;
	while (!rc && (i < m->nl || j < m->ncf || k < m->nrf)) {
		const struct store_frame *f = NULL;
		if (i < m->nl)
			f = &m->lf[i];
		if (j < m->ncf && (!f || frame_cmp(&m->cf[j], f) < 0))
			f = &m->cf[j];
		if (k < m->nrf && (!f || frame_cmp(&m->rf[ord[k]], f) < 0))
			f = &m->rf[ord[k]];
		struct store_frame at = *f;
		uint32_t loc;
		if ((rc = loc_of(arg, &at, &loc)))
			break;
		if (asked && loc <= prev)
			sorted = 0;
		asked = 1;
		prev = loc;
		if (i < m->nl && frame_eq(&m->lf[i], &at))
			m->pl[i++].loc = loc;
		if (j < m->ncf && frame_eq(&m->cf[j], &at))
			cloc[j++] = loc;
		if (k < m->nrf && frame_eq(&m->rf[ord[k]], &at))
			rloc[ord[k++]] = loc;
	}
	for (size_t q = 0; q < m->np && !rc; q++) {
		m->pp[q].callee = cloc[m->pp[q].callee];
		m->pp[q].caller = rloc[m->pp[q].caller];
	}
	if (!rc && !sorted)
		resort(m);
	free(ord);
	free(cloc);
	free(rloc);
	return rc;
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
	/* The computed runs' frame index is done with. */
	fdo_map64_fini(&r->fmap64);
	fdo_map128_fini(&r->fmap);
	free(r->frames);
	r->frames = NULL;
	r->nframes = r->cap_frames = 0;
	size_t n = r->lay.nsrcs;
	struct strm *s = malloc((n ? n : 1) * sizeof *s);
	uint32_t *h = malloc((n ? n : 1) * sizeof *h);
	struct merged m = {0};
	int rc = s && h ? FDO_OK : FDO_ENOMEM;
	/* Room for the merged leaves and pairs at once, so that they never
	 * move while they grow: the most of one partition's, twice (keys
	 * recur across runs; more grows as usual), at most their sum. */
	uint64_t sl = 0, sp = 0, ml = 0, mp = 0;
	for (size_t i = 0; i < n; i++) {
		const struct store_aggs_part *pt = &r->lay.srcs[i].part;
		sl += pt->nleaves;
		sp += pt->npairs;
		ml = pt->nleaves > ml ? pt->nleaves : ml;
		mp = pt->npairs > mp ? pt->npairs : mp;
	}
	ml = 2 * ml < sl ? 2 * ml : sl;
	mp = 2 * mp < sp ? 2 * mp : sp;
	if (!rc && ml && ml < UINT32_MAX &&
	    (fdo_grow(m.pl, m.cap_pl, ml) || fdo_grow(m.lf, m.cap_lf, ml)))
		rc = FDO_ENOMEM;
	if (!rc && mp && mp < UINT32_MAX && fdo_grow(m.pp, m.cap_pp, mp))
		rc = FDO_ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		store_aggs_iter_init(&s[i].it, &r->lay, i);
		s[i].samples = 0;
		s[i].b = (struct store_frame){0, 0};
		s[i].decay = r->scale[i].decay;
		s[i].factor = r->scale[i].factor;
	}
	if (!rc)
		rc = merge(r, s, h, 0, &m);
	for (size_t i = 0; i < n && !rc; i++)
		s[i].samples = 0;
	if (!rc)
		rc = merge(r, s, h, 1, &m);
	free(s);
	free(h);
	if (!rc && r->reserve)
		r->reserve(arg, m.nl + m.ncf + m.nrf);
	if (!rc)
		rc = locate(&m, loc_of, arg);
	free(m.lf);
	free(m.cf);
	free(m.rf);
	fdo_map64_fini(&m.rmap64);
	fdo_map128_fini(&m.rmap);
	if (rc) {
		free(m.pl);
		free(m.pp);
		return rc;
	}
	/* Room given back: the arrays grew by doubling. */
	if (m.nl && m.nl < m.cap_pl) {
		struct prof_leaf *t = realloc(m.pl, m.nl * sizeof *m.pl);
		if (t)
			m.pl = t;
	}
	if (m.np && m.np < m.cap_pp) {
		struct prof_pair *t = realloc(m.pp, m.np * sizeof *m.pp);
		if (t)
			m.pp = t;
	}
	*leaves_out = m.pl;
	*nleaves_out = m.nl;
	*pairs_out = m.pp;
	*npairs_out = m.np;
	return FDO_OK;
}

static int store_kept(store_txn *t, void *arg)
{
	struct reducer *r = arg;
	r->runs_stored = 0;
	int rc = FDO_OK;
	for (size_t i = 0; i < r->nmem && !rc; i++) {
		if (!r->store[i])
			continue;
		int stale;
		rc = store_aggs_run_put(t, &r->mem[i], &stale);
		if (!rc && !stale)
			r->runs_stored++;
	}
	return rc;
}

int red_store(struct reducer *r, store *st)
{
	size_t want = 0;
	for (size_t i = 0; i < r->nmem; i++)
		want += r->store[i];
	int rc = want ? store_write_derived(st, store_kept, r) : FDO_OK;
	for (size_t i = 0; i < r->nmem; i++)
		store_aggs_run_fini(&r->mem[i]);
	r->nmem = 0;
	r->keep_bytes = 0;
	return rc;
}

void red_fini(struct reducer *r)
{
	for (size_t i = 0; i < r->nmem; i++)
		store_aggs_run_fini(&r->mem[i]);
	free(r->mem);
	free(r->store);
	store_aggs_layout_fini(&r->lay);
	free(r->scale);
	fdo_map128_fini(&r->fmap);
	fdo_map64_fini(&r->fmap64);
	free(r->frames);
	memset(r, 0, sizeof *r);
}
