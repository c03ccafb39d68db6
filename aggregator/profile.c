/*
 * aggregator/profile.c — the profile builder: from the store to a `prof`
 * (aggregator/profile.h) for one binary and one set of selectors.
 *
 * Workload: a request selects and weights the runs of one binary (one
 * per label set and bucket), then resolves each distinct stack (folded,
 * pprof) or each run's leaf and pair sums (llvm, gcc, bolt) and each
 * distinct address once. Profiles are built far less often than samples
 * arrive; one read transaction per build (and, after it, one write of
 * the runs it computed whose bucket is over). Two passes: the first sums
 * each selector's weight from the window's totals rows (the scale needs
 * the totals) and notes the runs; the second reads the runs' counts side
 * by side, merged by stack, so each distinct stack comes once with its
 * count and goes on at once (memory does not follow the number of
 * entries), or adds each run's sums (aggregator/reduce.c).
 *
 * Selection and weighting:
 *   labels   a selector is a list of k=v pairs that must all be present in
 *            a label set (the batch may carry more labels). No selector:
 *            every label set.
 *   mix      several selectors with weights ("mode:serving*3,
 *            mode:batch*1"): each selector's counts are scaled so that its
 *            share of the profile is its weight's share, whatever traffic
 *            each mode had; a label set goes to the first selector it
 *            matches.
 *   window   only buckets that end after now - window.
 *   half_life each bucket's counts are multiplied by 0.5^(age / half_life),
 *            age = now - the bucket's middle.
 *   build_id only stacks whose sampled (leaf) instruction is in that
 *            build-id: what BOLT needs for one exact binary.
 *   max_stacks, min_share (folded, pprof) only the heaviest stacks (a
 *            heap of max_stacks), and those with at least that share of
 *            the selected count, are read and symbolized (trimmer): what
 *            those formats cost is bounded whatever the store holds.
 * Counts: each stack's count is its share of the selected fleet weight
 * expressed in samples (weight / total weight x total samples), so fleet
 * weights steer the profile while counts keep the scale of samples.
 * branches (bolt): the window's stored branch records (LBR) of the
 * selected label sets, weighted like the stacks of their label set and
 * bucket, read after the stacks (read_branches).
 * reduced (the llvm, gcc and bolt formats): no stack is kept; each run's
 * exact leaf and caller->callee pair sums come from table aggs when its
 * bucket is over and they are stored (by an earlier pull or the merger's
 * fill), else from its stacks, and the runs' sorted rows are merged
 * (aggregator/reduce.c), so a pull of buckets that are over reads their
 * records, not millions of stacks. The result equals
 * q->full_scan's (every run from its stacks) to the bit; against
 * prof_reduce of the full build the same sums run in another order (per
 * run first), which rounds differently (docs/scale.md).
 * Pass 1 reads the window's totals rows, not its counts entries.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/aggregator.h"
#include "aggregator/blocks.h"
#include "aggregator/profile.h"
#include "aggregator/reduce.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"
#include "common/mem.h"
#include "storage/clickhouse.h"
#include "symbolizer/symbolizer.h"

/* ----------------------------------------------------------- selectors -- */

/* Does the canonical label set text ("k=v,k=v") hold every pair of sel? */
static int labels_match(const char *set, size_t setlen,
			const struct agg_selector *sel)
{
	for (size_t i = 0; i < sel->npairs; i++) {
		const char *pair = sel->pairs[i];
		size_t pl = strlen(pair);
		int found = 0;
		for (size_t p = 0; p < setlen && !found;) {
			size_t e = p;
			while (e < setlen && set[e] != ',')
				e++;
			found = e - p == pl && !memcmp(set + p, pair, pl);
			p = e + 1;
		}
		if (!found)
			return 0;
	}
	return 1;
}

/* Which selector a label set belongs to: index, or -1 (not selected). */
static int pick_selector(store_txn *t, uint32_t labelset,
			 const struct agg_profile_query *q)
{
	if (q->nselectors == 0)
		return 0;
	const void *p;
	size_t len;
	if (store_intern_name(t, STORE_DICT_LABELSETS, labelset, &p, &len))
		return -1;
	for (size_t i = 0; i < q->nselectors; i++)
		if (labels_match(p, len, &q->selectors[i]))
			return (int)i;
	return -1;
}

/* ------------------------------------------------------------- builder -- */

struct builder {
	store_txn *t;
	store *st;
	sym_cache *cache;
	const char *datadir;
	struct prof *p;
	struct fdo_map128 locs_by_addr; /* (bid id, offset) -> loc index */
	struct fdo_map64 bids_by_id;	/* store build-id id -> prof index+1 */
	uint32_t *bid_store_ids;	/* prof index -> store id */
	sym_index **indexes;		/* prof index -> open index or NULL */
	size_t cap_locs, cap_frames, cap_stack_locs, cap_stacks, cap_bids;
	size_t cap_bid_store_ids, cap_indexes;
	/* Locations are asked once each, in frame order (the reduced
	 * formats: red_finish): no map of addresses is needed. */
	int distinct;
	/* In that order, table symcache is read through one cursor that
	 * only moves forward (symcache_walk); opened by the first ask. */
	store_cursor *sym_cur;
	const void *sym_k, *sym_v; /* its entry; sym_k NULL: past the end */
	size_t sym_kl, sym_vl;
	int sym_open;
	/* the last key asked: one not above it is searched from the root
	 * (the walk only goes forward; callers ask in increasing order) */
	uint8_t sym_last[STORE_ADDR_KEY_SIZE];
	/* the map's window of the last entry the walk found: each window
	 * it leaves counts as read (store_map_read), as it never comes back */
	uintptr_t sym_win;
	struct store_map sym_map;
	/* folded, pprof: reads of the map since it was last forgotten
	 * whole (map_read) */
	unsigned map_reads;
	struct store_map map;
	/* store string id -> prof string index + 1 (names and files of the
	 * symbolized frames recur across locations) */
	struct fdo_map64 strs;
};

static int build_id_index(struct builder *b, uint32_t id, uint32_t *out)
{
	uint32_t v;
	int found;
	if (fdo_map64_get(&b->bids_by_id, (uint64_t)id + 1, &v)) {
		*out = v - 1;
		return FDO_OK;
	}
	/* Frames stored under an OpenTelemetry file id are frames of the
	 * uploaded file that has it (store_fileid_alias): one build-id of
	 * the profile, with its code. */
	struct store_buildid rec;
	uint32_t gnu;
	if (store_buildid_get(b->t, id, &rec) == FDO_OK &&
	    store_fileid_alias(b->t, &rec, &gnu) == FDO_OK && gnu != id) {
		int rc = build_id_index(b, gnu, out);
		if (!rc)
			rc = fdo_map64_put(&b->bids_by_id, (uint64_t)id + 1,
					   *out + 1, &v, &found);
		return rc;
	}
	int rc = fdo_map64_put(&b->bids_by_id, (uint64_t)id + 1,
			       (uint32_t)b->p->nbuild_ids + 1, &v, &found);
	if (rc)
		return rc;
	*out = v - 1;
	if (found)
		return FDO_OK;
	struct prof *p = b->p;
	size_t need = p->nbuild_ids + 1;
	if ((rc = fdo_grow(p->build_ids, b->cap_bids, need)) ||
	    (rc = fdo_grow(b->bid_store_ids, b->cap_bid_store_ids, need)) ||
	    (rc = fdo_grow(b->indexes, b->cap_indexes, need)))
		return rc;
	struct prof_build_id *pb = &p->build_ids[p->nbuild_ids];
	memset(pb, 0, sizeof *pb);
	b->bid_store_ids[p->nbuild_ids] = id;
	b->indexes[p->nbuild_ids] = NULL;
	if (store_buildid_get(b->t, id, &rec) == FDO_OK) {
		memcpy(pb->id, rec.build_id, rec.build_id_len);
		pb->len = rec.build_id_len;
		fdo_hex_encode(rec.build_id, rec.build_id_len, pb->hex);
		char path[4096];
		if ((rec.sym_state & STORE_SYM_EXECUTABLE) &&
		    !store_symbols_path(b->datadir, rec.build_id,
					rec.build_id_len, STORE_SYM_EXECUTABLE,
					path, sizeof path))
			pb->elf_path = strdup(path);
		if ((rec.sym_state & STORE_SYM_DEBUGINFO) &&
		    !store_symbols_path(b->datadir, rec.build_id,
					rec.build_id_len, STORE_SYM_DEBUGINFO,
					path, sizeof path))
			pb->debug_path = strdup(path);
		const char *elf = pb->elf_path ? pb->elf_path : pb->debug_path;
		if (elf && b->cache &&
		    sym_cache_get(b->cache, rec.build_id, rec.build_id_len, elf,
				  pb->elf_path ? pb->debug_path : NULL,
				  &b->indexes[p->nbuild_ids]))
			b->indexes[p->nbuild_ids] = NULL;
	}
	p->nbuild_ids++;
	return FDO_OK;
}

/* *out: the prof string of store string id (PROF_NONE when the store
 * has no such string), interned once per id. */
static int prof_string(struct builder *b, uint32_t id, uint32_t *out)
{
	uint32_t v;
	if (fdo_map64_get(&b->strs, (uint64_t)id + 1, &v)) {
		*out = v - 1;
		return FDO_OK;
	}
	const void *s;
	size_t sl;
	char name[STORE_NAME_MAX + 1];
	*out = PROF_NONE;
	if (store_intern_name(b->t, STORE_DICT_STRINGS, id, &s, &sl))
		return FDO_OK;
	memcpy(name, s, sl);
	name[sl] = 0;
	*out = prof_intern(b->p, name);
	int found;
	return fdo_map64_put(&b->strs, (uint64_t)id + 1, *out + 1, &v, &found);
}

/* The prof location of (build-id id, offset), resolving it once. */
/* Reads (a stack, a location's symbols: each a few pages anywhere in the
 * file, which Linux maps with up to 64 KiB around each) or runs of
 * MAP_STACKS_READ counts entries read, after which the folded and pprof
 * builds forget the whole map (store_map_forget): what stays in their RSS
 * is what the last MAP_FORGET_READS reads mapped, not every page the
 * build read. Fewer reads between forgets keep less but map more pages again (the B-trees'
 * upper pages after every forget): more CPU; docs/scale.md has the
 * figures. */
#define MAP_FORGET_READS 4096
#define MAP_STACKS_READ	 64

static void map_read(struct builder *b)
{
	if (++b->map_reads < MAP_FORGET_READS)
		return;
	b->map_reads = 0;
	if (!b->map.looked)
		store_map_of(b->t, &b->map);
	store_map_forget(&b->map, (const void *)b->map.lo,
			 b->map.hi - b->map.lo);
}

/* Steps of the cursor tried before a seek: the frames asked are mostly
 * the next few entries of the table (it holds the addresses the stacks
 * have), where a seek would search the tree again from its root. */
#define SYM_WALK_STEPS 8

/*
 * What store_get of key in table symcache gives (FDO_OK with the value,
 * or not FDO_OK: not there or unreadable), for keys asked in increasing
 * order (b->distinct: frame order is the keys' order,
 * store_addr_key_encode): the cursor steps forward to the first entry
 * >= key, or seeks there past SYM_WALK_STEPS.
 */
static int symcache_walk(struct builder *b, const uint8_t *key,
			 const void **val, size_t *vl)
{
	int rc = FDO_OK;
	if (!b->sym_open) {
		b->sym_open = 1;
		store_map_of(b->t, &b->sym_map);
		if (store_cursor_open(b->t, STORE_SYMCACHE, &b->sym_cur))
			b->sym_cur = NULL;
		else if (store_cursor_seek(b->sym_cur, key, STORE_ADDR_KEY_SIZE,
					   &b->sym_k, &b->sym_kl, &b->sym_v,
					   &b->sym_vl))
			b->sym_k = NULL;
	} else if (memcmp(key, b->sym_last, STORE_ADDR_KEY_SIZE) <= 0)
		return store_get(b->t, STORE_SYMCACHE, key, STORE_ADDR_KEY_SIZE,
				 val, vl);
	memcpy(b->sym_last, key, STORE_ADDR_KEY_SIZE);
	if (!b->sym_cur)
		return store_get(b->t, STORE_SYMCACHE, key, STORE_ADDR_KEY_SIZE,
				 val, vl);
	for (int i = 0; b->sym_k && !rc; i++) {
		size_t m = b->sym_kl < STORE_ADDR_KEY_SIZE
				   ? b->sym_kl
				   : STORE_ADDR_KEY_SIZE;
		int c = memcmp(b->sym_k, key, m);
		if (c > 0 || (!c && b->sym_kl >= STORE_ADDR_KEY_SIZE))
			break; /* the first entry >= key */
		rc = i < SYM_WALK_STEPS
			     ? store_cursor_next(b->sym_cur, &b->sym_k,
						 &b->sym_kl, &b->sym_v,
						 &b->sym_vl)
			     : store_cursor_seek(b->sym_cur, key,
						 STORE_ADDR_KEY_SIZE, &b->sym_k,
						 &b->sym_kl, &b->sym_v,
						 &b->sym_vl);
	}
	if (rc) /* past the end (or unreadable): nothing later either */
		b->sym_k = NULL;
	if (!b->sym_k || b->sym_kl != STORE_ADDR_KEY_SIZE ||
	    memcmp(b->sym_k, key, STORE_ADDR_KEY_SIZE))
		return FDO_ENOT_FOUND;
	uintptr_t win = (uintptr_t)b->sym_v & ~(STORE_MAP_WINDOW - 1);
	if (win != b->sym_win) {
		store_map_read(&b->sym_map, STORE_MAP_WINDOW);
		b->sym_win = win;
	}
	*val = b->sym_v;
	*vl = b->sym_vl;
	return FDO_OK;
}

static int loc_index(struct builder *b, const struct store_frame *f,
		     uint32_t *out)
{
	struct prof *p = b->p;
	/* The whole (build-id, offset) is the key: two frames never share
	 * a location by a hash. */
	const uint32_t k[4] = {f->build_id, (uint32_t)(f->offset >> 32),
			       (uint32_t)f->offset, 0};
	uint32_t v;
	int found = 0, rc = FDO_OK;
	if (p->nlocs >= UINT32_MAX)
		return FDO_ELIMIT;
	if (b->distinct)
		v = (uint32_t)p->nlocs;
	else
		rc = fdo_map128_put(&b->locs_by_addr, k, (uint32_t)p->nlocs, &v,
				    &found);
	if (rc)
		return rc;
	*out = v;
	if (found)
		return FDO_OK;
	uint32_t bi;
	if ((rc = build_id_index(b, f->build_id, &bi)) ||
	    (rc = fdo_grow(p->locs, b->cap_locs, p->nlocs + 1)))
		return rc;
	struct prof_loc *l = &p->locs[p->nlocs++];
	*l = (struct prof_loc){bi, f->offset, UINT64_MAX, (uint32_t)p->nframes,
			       0};
	if (b->indexes[bi])
		sym_index_offset_to_vaddr(b->indexes[bi], f->offset, &l->vaddr);
	uint8_t key[STORE_ADDR_KEY_SIZE];
	store_addr_key_encode(key, f);
	const void *val;
	size_t vl;
	if (!b->distinct)
		map_read(b);
	if (b->distinct ? symcache_walk(b, key, &val, &vl)
			: store_get(b->t, STORE_SYMCACHE, key, sizeof key, &val,
				    &vl))
		return FDO_OK; /* not symbolized yet */
	struct store_sym_frame sf[STORE_SYMCACHE_MAX_FRAMES];
	size_t n;
	if (store_symcache_decode(val, vl, sf, STORE_SYMCACHE_MAX_FRAMES, &n))
		return FDO_OK;
	if ((rc = fdo_grow(p->frames, b->cap_frames, p->nframes + n)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		struct prof_frame *pf = &p->frames[p->nframes + i];
		pf->function = pf->file = PROF_NONE;
		if (sf[i].function)
			rc = prof_string(b, sf[i].function, &pf->function);
		if (!rc && sf[i].file)
			rc = prof_string(b, sf[i].file, &pf->file);
		pf->line = sf[i].line;
		pf->column = sf[i].column;
		pf->discriminator = sf[i].discriminator;
		pf->start_line = sf[i].start_line;
	}
	if (rc)
		return rc;
	l = &p->locs[p->nlocs - 1];
	l->nframes = (uint32_t)n;
	p->nframes += n;
	return FDO_OK;
}

static double decay(const struct agg_profile_query *q, uint32_t bucket,
		    uint32_t width)
{
	if (!q->half_life)
		return 1.0;
	double mid = (double)bucket + width / 2.0;
	double age = (double)q->now - mid;
	if (age < 0)
		age = 0;
	return pow(0.5, age / (double)q->half_life);
}

/*
 * A run: the counts entries of one (label set, bucket) of the binary, which
 * the table holds in stack order. Pass 1 finds the runs of the window and
 * each selector's weight; pass 2 reads the runs side by side, merged by
 * stack (a heap of runs), so every distinct stack comes once, in stack
 * order, with its count, and nothing proportional to the entries is kept.
 */
struct run {
	uint32_t labelset, bucket;
	struct store_totals seen; /* its totals row */
	int sel;
	double decay;
	store_counts_iter *c; /* its counts entries, runs merged */
	uint64_t stack;	      /* the current entry */
	double weight;	      /* decayed fleet weight (fixed-point units) */
	uint64_t samples;
};

/* Pass 1's state: the runs selected, each selector's weight, the figures
 * of the readiness rules (aggregator/readiness.c), from the window's
 * totals rows (one per run: a few thousand, not the runs' millions of
 * counts entries). A selector's weight is the sum of its rows' exact
 * weights, each as a double times its decay, in row order. */
struct pass1 {
	store_txn *t;
	const struct agg_profile_query *q;
	struct agg_figures fig;
	uint32_t width;
	uint64_t since;
	int *selcache; /* labelset id -> selector+2 (0 unknown) */
	size_t cap_selcache;
	struct run *runs;
	size_t nruns, cap_runs;
	double *sel_weight; /* per selector */
};

static int select_one(void *arg, const struct store_totals_key *k,
		      const struct store_totals *v)
{
	struct pass1 *s = arg;
	if ((uint64_t)k->bucket + s->width <= s->since)
		return FDO_OK;
	int rc = fdo_grow_zeroed(s->selcache, s->cap_selcache,
				 (size_t)k->labelset + 1);
	if (rc)
		return rc;
	if (!s->selcache[k->labelset])
		s->selcache[k->labelset] =
			pick_selector(s->t, k->labelset, s->q) + 2;
	int sel = s->selcache[k->labelset] - 2;
	if (sel < 0)
		return FDO_OK;
	if ((rc = fdo_grow(s->runs, s->cap_runs, s->nruns + 1)))
		return rc;
	struct run *r = &s->runs[s->nruns++];
	memset(r, 0, sizeof *r);
	r->labelset = k->labelset;
	r->bucket = k->bucket;
	r->seen = *v;
	r->sel = sel;
	r->decay = decay(s->q, k->bucket, s->width);
	s->sel_weight[sel] += (double)v->weight * r->decay;
	agg_figures_add(&s->fig, k->bucket, s->width, v->samples);
	return FDO_OK;
}

/*
 * run_next makes the next counts entry of r's bucket r's current one
 * (store_counts_iter: the bucket's runs merged, equal stack ids summed).
 * *more is 0 past the bucket's end. Returns FDO_OK or the store's error.
 */
static int run_next(struct run *r, uint32_t binary, int *more)
{
	struct store_counts_key ck;
	struct store_weight w;
	(void)binary;
	*more = 0;
	int rc = store_counts_iter_next(r->c, &ck, &w);
	if (rc == FDO_ENOT_FOUND)
		return FDO_OK;
	if (rc)
		return rc;
	r->stack = ck.stack;
	r->weight = (double)w.weight * r->decay;
	r->samples = w.samples;
	*more = 1;
	return FDO_OK;
}

/* Heap of runs: the smallest current stack on top, then the smaller
 * selector, then the earlier run, so one stack's entries are summed in
 * the order of its (selector, label set, bucket). */
static int run_less(const struct run *runs, uint32_t a, uint32_t b)
{
	const struct run *x = &runs[a], *y = &runs[b];
	if (x->stack != y->stack)
		return x->stack < y->stack;
	if (x->sel != y->sel)
		return x->sel < y->sel;
	return a < b;
}

static void heap_down(const struct run *runs, uint32_t *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && run_less(runs, h[l], h[m]))
			m = l;
		if (l + 1 < n && run_less(runs, h[l + 1], h[m]))
			m = l + 1;
		if (m == i)
			return;
		uint32_t t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* One distinct stack with its count. */
struct kept {
	uint64_t stack;
	double count;
	uint64_t samples;
};

/* Heaviest first; ties by stack id, so the same store trims alike. */
static int heavier(const struct kept *x, const struct kept *y)
{
	if (x->count != y->count)
		return x->count > y->count;
	return x->stack < y->stack;
}

/* The lightest of the kept on top: a new stack heavier than it replaces
 * it, so the heap holds the heaviest max_stacks seen so far. */
static void kept_down(struct kept *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && heavier(&h[m], &h[l]))
			m = l;
		if (l + 1 < n && heavier(&h[m], &h[l + 1]))
			m = l + 1;
		if (m == i)
			return;
		struct kept t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void kept_up(struct kept *h, size_t i)
{
	while (i && heavier(&h[(i - 1) / 2], &h[i])) {
		struct kept t = h[i];
		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static int kept_stack_cmp(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/*
 * trimmer: what folded and pprof keep of the stacks: the heaviest
 * max_stacks (a heap of that many) or every stack, then those with at
 * least min_share of the total. What those formats read and symbolize is
 * then bounded whatever the store holds.
 */
struct trimmer {
	struct kept *k;
	size_t n, cap;
	uint64_t max; /* 0: every stack */
};

static int trimmer_add(struct trimmer *t, const struct kept *s)
{
	if (t->max && t->n == t->max) {
		if (heavier(s, &t->k[0])) {
			t->k[0] = *s;
			kept_down(t->k, t->n, 0);
		}
		return FDO_OK;
	}
	int rc = fdo_grow(t->k, t->cap, t->n + 1);
	if (rc)
		return rc;
	t->k[t->n++] = *s;
	if (t->max)
		kept_up(t->k, t->n - 1);
	return FDO_OK;
}

/* The kept stacks under min_share of total dropped, the rest in stack
 * order. */
static void trimmer_finish(struct trimmer *t, double min_share, double total)
{
	size_t m = 0;
	for (size_t i = 0; i < t->n; i++)
		if (!(min_share > 0) || !(t->k[i].count < min_share * total))
			t->k[m++] = t->k[i];
	t->n = m;
	if (m)
		qsort(t->k, m, sizeof *t->k, kept_stack_cmp);
}

/*
 * add_stack decodes stack s (its count and raw samples) into p as a whole
 * stack (folded, pprof). Stacks that are gone or of another build-id than
 * q->build_id add nothing.
 */
static int add_frames(struct builder *b, const struct agg_profile_query *q,
		      const struct kept *s, const struct store_frame *f,
		      size_t n);

/* local_stack: stack id's frames from the store (f: room for
 * STORE_STACK_MAX_FRAMES); 0, or -1 when it has none. */
static int local_stack(struct builder *b, uint64_t id, struct store_frame *f,
		       size_t *n)
{
	uint8_t key[STORE_STACK_KEY_SIZE];
	store_stack_key_encode(key, id);
	size_t vl;
	const void *v;
	map_read(b);
	if (store_get(b->t, STORE_STACKS, key, sizeof key, &v, &vl) ||
	    store_stack_decode(v, vl, f, STORE_STACK_MAX_FRAMES, n) || *n == 0)
		return -1;
	return 0;
}

static int add_stack(struct builder *b, const struct agg_profile_query *q,
		     const struct kept *s)
{
	struct store_frame f[STORE_STACK_MAX_FRAMES];
	size_t n;
	if (local_stack(b, s->stack, f, &n))
		return FDO_OK;
	return add_frames(b, q, s, f, n);
}

/* add_frames adds stack s with frames f[0..n) (leaf first). */
static int add_frames(struct builder *b, const struct agg_profile_query *q,
		      const struct kept *s, const struct store_frame *f,
		      size_t n)
{
	struct prof *p = b->p;
	if (q->build_id_len) {
		struct store_buildid rec;
		if (store_buildid_get(b->t, f[0].build_id, &rec) ||
		    rec.build_id_len != q->build_id_len ||
		    memcmp(rec.build_id, q->build_id, q->build_id_len))
			return FDO_OK;
	}
	int rc;
	if ((rc = fdo_grow(p->stacks, b->cap_stacks, p->nstacks + 1)) ||
	    (rc = fdo_grow(p->stack_locs, b->cap_stack_locs,
			   p->nstack_locs + n)))
		return rc;
	struct prof_stack *ps = &p->stacks[p->nstacks++];
	ps->first_loc = (uint32_t)p->nstack_locs;
	ps->nlocs = (uint32_t)n;
	ps->count = s->count;
	ps->samples = s->samples;
	p->count += s->count;
	for (size_t i = 0; i < n; i++) {
		uint32_t li;
		if ((rc = loc_index(b, &f[i], &li)))
			return rc;
		p->stack_locs[p->nstack_locs++] = li;
	}
	return FDO_OK;
}

/*
 * Pass 2: the runs merged by stack. Each distinct stack's count is the sum
 * of its entries' weights times their selector's factor; it goes straight
 * to add_stack, or, when folded or pprof trim, to the trimmer first.
 */
static int merge_runs(struct builder *b, const struct agg_profile_query *q,
		      uint32_t binary, struct run *runs, size_t nruns,
		      const double *factor)
{
	int trim = q->max_stacks || q->min_share > 0;
	struct trimmer tr = {.max = q->max_stacks};
	uint32_t *h = malloc((nruns ? nruns : 1) * sizeof *h);
	if (!h)
		return FDO_ENOMEM;
	int rc = FDO_OK;
	size_t nh = 0;
	for (size_t i = 0; i < nruns && !rc; i++) {
		uint8_t start[STORE_TOTALS_KEY_SIZE];
		store_totals_key_encode(start, &(struct store_totals_key){
						       binary, runs[i].labelset,
						       runs[i].bucket});
		if ((rc = store_counts_iter_open(b->t, start, sizeof start,
						 &runs[i].c)))
			break;
		int more;
		rc = run_next(&runs[i], binary, &more);
		if (!rc && more)
			h[nh++] = (uint32_t)i;
	}
	for (size_t i = nh; i-- > 0;)
		heap_down(runs, h, nh, i);
	double total = 0;
	uint64_t merged = 0;
	while (!rc && nh) {
		if (!(++merged % MAP_STACKS_READ))
			map_read(b);
		struct kept s = {runs[h[0]].stack, 0, 0};
		while (nh && runs[h[0]].stack == s.stack) {
			struct run *r = &runs[h[0]];
			s.count += r->weight * factor[r->sel];
			s.samples += r->samples;
			int more;
			if ((rc = run_next(r, binary, &more)))
				break;
			if (!more)
				h[0] = h[--nh];
			heap_down(runs, h, nh, 0);
		}
		if (rc)
			break;
		total += s.count;
		rc = trim ? trimmer_add(&tr, &s) : add_stack(b, q, &s);
	}
	if (!rc && trim) {
		trimmer_finish(&tr, q->min_share, total);
		for (size_t i = 0; i < tr.n && !rc; i++)
			rc = add_stack(b, q, &tr.k[i]);
	}
	for (size_t i = 0; i < nruns; i++)
		if (runs[i].c)
			store_counts_iter_close(runs[i].c);
	free(tr.k);
	free(h);
	return rc;
}

/*
 * read_branches adds the branch records (LBR) of binary's selected label
 * sets and window to p->branches, each weighted as a stack of its label
 * set and bucket would be (decay, then the selector's factor: counts in
 * samples of the profile's scale); a selector without stacks has no scale
 * and adds none. With q->build_id only that build-id's records. One pass
 * over the binary's branches; records of one branch in several buckets
 * stay separate entries (the bolt writer sums them).
 */
static int read_branches(struct builder *b, const struct agg_profile_query *q,
			 uint32_t binary, uint32_t width, uint64_t since,
			 const double *factor)
{
	struct prof *p = b->p;
	store_cursor *c;
	int rc = store_cursor_open(b->t, STORE_BRANCHES, &c);
	if (rc)
		return rc;
	uint8_t start[STORE_BRANCHES_KEY_SIZE];
	struct store_branches_key k = {.binary = binary};
	store_branches_key_encode(start, &k);
	int *selcache = NULL; /* labelset id -> selector+2 (0 unknown) */
	size_t cap_sel = 0, cap = 0;
	uint32_t last_bid = 0;
	int last_ok = 0;
	const void *kp, *vp;
	size_t kl, vl;
	int crc = store_cursor_seek(c, start, sizeof start, &kp, &kl, &vp, &vl);
	for (; crc == FDO_OK && !rc;
	     crc = store_cursor_next(c, &kp, &kl, &vp, &vl)) {
		if (store_branches_key_decode(kp, kl, &k) || k.binary != binary)
			break;
		struct store_weight w;
		if ((uint64_t)k.bucket + width <= since ||
		    store_weight_decode(vp, vl, &w))
			continue;
		if ((rc = fdo_grow_zeroed(selcache, cap_sel,
					  (size_t)k.labelset + 1)))
			break;
		if (!selcache[k.labelset])
			selcache[k.labelset] =
				pick_selector(b->t, k.labelset, q) + 2;
		int sel = selcache[k.labelset] - 2;
		if (sel < 0 || !(factor[sel] > 0))
			continue;
		if (q->build_id_len && k.build_id != last_bid) {
			struct store_buildid rec;
			last_bid = k.build_id;
			last_ok = !store_buildid_get(b->t, k.build_id, &rec) &&
				  rec.build_id_len == q->build_id_len &&
				  !memcmp(rec.build_id, q->build_id,
					  q->build_id_len);
		}
		if (q->build_id_len && !last_ok)
			continue;
		double count = (double)w.weight * decay(q, k.bucket, width) *
			       factor[sel];
		if (!(count > 0) || !isfinite(count))
			continue;
		uint32_t bi;
		if ((rc = build_id_index(b, k.build_id, &bi)) ||
		    (rc = fdo_grow(p->branches, cap, p->nbranches + 1)))
			break;
		struct prof_branch *br = &p->branches[p->nbranches++];
		*br = (struct prof_branch){.build_id = bi,
					   .from = k.from,
					   .to = k.to,
					   .from_vaddr = UINT64_MAX,
					   .to_vaddr = UINT64_MAX,
					   .count = count};
		if (b->indexes[bi]) {
			sym_index_offset_to_vaddr(b->indexes[bi], k.from,
						  &br->from_vaddr);
			sym_index_offset_to_vaddr(b->indexes[bi], k.to,
						  &br->to_vaddr);
		}
	}
	free(selcache);
	store_cursor_close(c);
	if (rc)
		return rc;
	return crc == FDO_OK || crc == FDO_ENOT_FOUND ? FDO_OK : crc;
}

static int loc_of(void *arg, const struct store_frame *f, uint32_t *loc)
{
	return loc_index(arg, f, loc);
}

/*
 * Room for the locations red_finish will ask, and a frame each, made
 * once: grown a location at a time, these arrays (tens of MiB on a big
 * store) are copied at each doubling once glibc's mmap threshold has
 * risen past them (it does after a pull frees arrays that size), and the
 * copies left behind add to the pull's peak RSS. A hint: on failure they
 * grow as before.
 */
static void loc_reserve(void *arg, size_t nframes)
{
	struct builder *b = arg;
	struct prof *p = b->p;
	if (nframes < SIZE_MAX - p->nframes &&
	    !fdo_grow(p->locs, b->cap_locs, p->nlocs + nframes))
		(void)fdo_grow(p->frames, b->cap_frames, p->nframes + nframes);
}

/* Bytes of runs a pull computes from their stacks and keeps to store
 * after it (aggregator/reduce.c): runs past it are stored by a later
 * pull. */
#define RED_WRITE_BUDGET ((size_t)128 << 20)

/*
 * The compile-time formats' pass 2: the runs added in pass 1's order,
 * each from table aggs or from its stacks (aggregator/reduce.c), then the
 * leaves and pairs located in frame order.
 */
static int reduce_runs(struct builder *b, const struct agg_profile_query *q,
		       uint32_t binary, uint32_t width, const struct run *runs,
		       size_t nruns, const double *factor, struct reducer *red)
{
	red->t = b->t;
	red->binary = binary;
	red->width = width;
	red->closed_now = (uint64_t)time(NULL);
	red->full_scan = q->full_scan;
	red->write_budget = RED_WRITE_BUDGET;
	red->reserve = loc_reserve;
	if (q->build_id_len &&
	    store_intern_buildid(b->t, q->build_id, q->build_id_len, 0,
				 &red->leaf_bid))
		red->none = 1; /* no stack has a leaf there */
	int rc = FDO_OK;
	for (size_t i = 0; i < nruns && !rc; i++) {
		struct store_totals_key k = {binary, runs[i].labelset,
					     runs[i].bucket};
		rc = red_run(red, &k, &runs[i].seen, runs[i].decay,
			     factor[runs[i].sel]);
	}
	/* red_finish asks each frame once, in frame order, and nothing
	 * else asks for locations in these formats. */
	b->distinct = !b->p->nlocs;
	if (!rc)
		rc = red_finish(red, loc_of, b, &b->p->leaves, &b->p->nleaves,
				&b->p->pairs, &b->p->npairs);
	b->distinct = 0;
	if (b->sym_map.read) /* what the walk read, out of the RSS */
		store_map_forget(&b->sym_map, (const void *)b->sym_map.lo,
				 b->sym_map.hi - b->sym_map.lo);
	b->sym_win = 0;
	store_cursor_close(b->sym_cur);
	b->sym_cur = NULL;
	b->sym_open = 0;
	if (!rc) {
		b->p->count = red->count;
		b->p->reduced = 1;
	}
	return rc;
}

/* scale: each selector's factor, from its (decayed) weight, so that its
 * share of the profile is its mix weight's share, in units of samples. */
static void scale(const struct agg_profile_query *q, const double *sel_weight,
		  uint64_t samples, double *factor)
{
	size_t nsel = q->nselectors ? q->nselectors : 1;
	double total_w = 0, total_mix = 0;
	for (size_t s = 0; s < nsel; s++) {
		total_w += sel_weight[s];
		total_mix += q->nselectors ? q->selectors[s].weight : 1.0;
	}
	for (size_t s = 0; s < nsel; s++) {
		double share = q->nselectors > 1
				       ? q->selectors[s].weight / total_mix
				       : 1.0;
		factor[s] = sel_weight[s] > 0 && total_w > 0
				    ? share * (double)samples / sel_weight[s]
				    : 0;
	}
}

/* ------------------------------------------- folded, pprof from ClickHouse -- */

/*
 * With q->store_url (fdod --store), folded and pprof are built from what
 * ClickHouse holds of every node (docs/clickhouse.md): the label sets of
 * the binary, the per-(label set, bucket, stack) sums (read_sums, rows in
 * that order), each run's totals summed from its rows, decay and the
 * selectors' factors applied here as for the store; then the stacks'
 * frames from this node's store, or from stacks for those it does not
 * hold, and the symbols from this node's symcache. Every row is kept in
 * memory (40 bytes a row) until each stack's sum is made.
 */
struct crow {
	uint64_t stack;
	uint32_t run; /* index of its (label set, bucket), in read order */
	int sel;
	double weight; /* decayed */
	uint64_t samples;
};

struct cread {
	const struct agg_profile_query *q;
	uint32_t width;
	const int *sel_of; /* label index -> selector */
	struct crow *rows;
	size_t nrows, cap;
	/* the current run: its (label, bucket) and exact sums */
	uint32_t label, bucket, nruns;
	wire_weight_t run_w;
	uint64_t run_s;
	int have_run;
	double *sel_weight;
	struct agg_figures fig;
};

static void cread_close_run(struct cread *c)
{
	if (!c->have_run)
		return;
	int sel = c->sel_of[c->label];
	c->sel_weight[sel] +=
		(double)c->run_w * decay(c->q, c->bucket, c->width);
	agg_figures_add(&c->fig, c->bucket, c->width, c->run_s);
	c->have_run = 0;
}

static int cread_row(void *arg, const struct backend_sum *x)
{
	struct cread *c = arg;
	if (!c->have_run || x->label != c->label || x->bucket != c->bucket) {
		cread_close_run(c);
		c->have_run = 1;
		c->label = x->label;
		c->bucket = x->bucket;
		c->run_w = 0;
		c->run_s = 0;
		c->nruns++;
	}
	if (wire_weight_add(&c->run_w, x->weight) ||
	    x->samples > UINT64_MAX - c->run_s)
		return FDO_ELIMIT;
	c->run_s += x->samples;
	int rc = fdo_grow(c->rows, c->cap, c->nrows + 1);
	if (rc)
		return rc;
	c->rows[c->nrows++] = (struct crow){
		x->stack, c->nruns - 1, c->sel_of[x->label],
		(double)x->weight * decay(c->q, x->bucket, c->width),
		x->samples};
	return FDO_OK;
}

/* By stack, then selector, then run: one stack's rows summed in the
 * order the store's build sums them. */
static int crow_cmp(const void *a, const void *b)
{
	const struct crow *x = a, *y = b;
	if (x->stack != y->stack)
		return x->stack < y->stack ? -1 : 1;
	if (x->sel != y->sel)
		return x->sel < y->sel ? -1 : 1;
	return x->run < y->run ? -1 : x->run > y->run;
}

/* Frames of a batch of stacks read from ClickHouse, in id order. */
struct cstacks {
	struct builder *b;
	struct store_frame *fr;
	size_t nfr, cap_fr;
	uint64_t *ids;
	size_t *first, *n; /* per id of the batch found */
	size_t nfound;
	const uint64_t *want; /* the ids asked for, increasing */
	size_t nwant, at;     /* ... how many; the next one an answer may be */
	char *err;
	size_t errlen;
};

static int cstack_found(void *arg, uint64_t stack, const struct ch_frame *f,
			size_t n)
{
	struct cstacks *cs = arg;
	/* The server's answer is not trusted: each stack one asked for (in
	 * order, once), so ids[] and first[]/n[] (one slot per id asked)
	 * cannot overflow, and a stack's frames within what a stack has. */
	while (cs->at < cs->nwant && cs->want[cs->at] < stack)
		cs->at++;
	if (cs->at == cs->nwant || cs->want[cs->at] != stack)
		return backend_fail(cs->err, cs->errlen, FDO_ECORRUPT,
				    "ClickHouse answered stack %016llx, not "
				    "asked for (or twice)",
				    (unsigned long long)stack);
	cs->at++;
	if (n > STORE_STACK_MAX_FRAMES)
		return backend_fail(cs->err, cs->errlen, FDO_ECORRUPT,
				    "ClickHouse answered %zu frames for stack "
				    "%016llx",
				    n, (unsigned long long)stack);
	int rc = fdo_grow(cs->fr, cs->cap_fr, cs->nfr + n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		uint32_t id;
		if (store_intern_buildid(cs->b->t, f[i].build_id,
					 f[i].build_id_len, 0, &id)) {
			char hex[2 * FDO_BUILD_ID_MAX + 1];
			fdo_hex_encode(f[i].build_id, f[i].build_id_len, hex);
			return backend_fail(cs->err, cs->errlen, FDO_ESTORE,
					    "build-id %s of stack %016llx is "
					    "not known on this node (upload "
					    "its symbols here)",
					    hex, (unsigned long long)stack);
		}
		cs->fr[cs->nfr + i] = (struct store_frame){
			.build_id = id, .offset = f[i].offset};
	}
	cs->ids[cs->nfound] = stack;
	cs->first[cs->nfound] = cs->nfr;
	cs->n[cs->nfound++] = n;
	cs->nfr += n;
	return FDO_OK;
}

/* add_kept adds the stacks k[0..n) (in stack order), frames from the
 * store or, in batches, from ClickHouse. */
static int add_kept(struct builder *b, const struct agg_profile_query *q,
		    ch_client *ch, const struct kept *k, size_t n, char *err,
		    size_t errlen)
{
	struct cstacks cs = {.b = b, .err = err, .errlen = errlen};
	uint64_t *want = malloc(CH_READ_STACKS_MAX * sizeof *want);
	cs.ids = malloc(CH_READ_STACKS_MAX * sizeof *cs.ids);
	cs.first = malloc(CH_READ_STACKS_MAX * sizeof *cs.first);
	cs.n = malloc(CH_READ_STACKS_MAX * sizeof *cs.n);
	struct store_frame *f = malloc(STORE_STACK_MAX_FRAMES * sizeof *f);
	uint8_t *local = malloc(CH_READ_STACKS_MAX);
	int rc = want && cs.ids && cs.first && cs.n && f && local ? FDO_OK
								  : FDO_ENOMEM;
	for (size_t at = 0; at < n && !rc; at += CH_READ_STACKS_MAX) {
		size_t m = n - at < CH_READ_STACKS_MAX ? n - at
						       : CH_READ_STACKS_MAX;
		size_t nw = 0;
		size_t nf;
		for (size_t i = 0; i < m; i++) {
			local[i] = !local_stack(b, k[at + i].stack, f, &nf);
			if (!local[i])
				want[nw++] = k[at + i].stack;
		}
		cs.nfr = cs.nfound = cs.at = 0;
		cs.want = want;
		cs.nwant = nw;
		if ((rc = ch_read_stacks(ch, want, nw, cstack_found, &cs, err,
					 errlen)))
			break;
		size_t j = 0;
		for (size_t i = 0; i < m && !rc; i++) {
			const struct kept *s = &k[at + i];
			if (local[i]) {
				if (!local_stack(b, s->stack, f, &nf))
					rc = add_frames(b, q, s, f, nf);
				continue;
			}
			while (j < cs.nfound && cs.ids[j] < s->stack)
				j++;
			if (j == cs.nfound || cs.ids[j] != s->stack)
				rc = backend_fail(err, errlen, FDO_ESTORE,
						  "stack %016llx has counts "
						  "but no frames in "
						  "ClickHouse",
						  (unsigned long long)s->stack);
			else
				rc = add_frames(b, q, s, cs.fr + cs.first[j],
						cs.n[j]);
		}
	}
	free(want);
	free(cs.ids);
	free(cs.first);
	free(cs.n);
	free(cs.fr);
	free(f);
	free(local);
	return rc;
}

static int build_from_ch(struct builder *b, const struct agg_profile_query *q,
			 char *err, size_t errlen)
{
	struct prof *p = b->p;
	uint32_t width = q->bucket_seconds ? q->bucket_seconds : 3600;
	uint64_t since = q->window && q->now > q->window ? q->now - q->window
							 : 0;
	/* buckets that end after since: bucket + width > since */
	uint64_t from64 = since >= width ? since - width + 1 : 0;
	uint32_t from = from64 < UINT32_MAX ? (uint32_t)from64 : UINT32_MAX;
	ch_client *ch = NULL;
	char **labels = NULL;
	size_t nlabels = 0, nsel = q->nselectors ? q->nselectors : 1;
	int *sel_of = NULL;
	double *factor = calloc(nsel, sizeof *factor);
	struct cread c = {.q = q, .width = width};
	uint64_t rows_held = 0; /* of c.rows, counted in the builds part */
	c.sel_weight = calloc(nsel, sizeof *c.sel_weight);
	struct kept *k = NULL;
	size_t nk = 0, cap_k = 0;
	int rc = factor && c.sel_weight ? FDO_OK : FDO_ENOMEM;
	if (!rc)
		rc = ch_open(q->store_url, NULL, &ch, err, errlen);
	if (!rc)
		rc = ch_read_labels(ch, q->binary, from, UINT32_MAX, &labels,
				    &nlabels, err, errlen);
	if (!rc && !nlabels && from > 0) {
		/* nothing in the window: a binary known before it is an
		 * empty profile, as from the store, not a 404 */
		char **all = NULL;
		size_t nall = 0;
		rc = ch_read_labels(ch, q->binary, 0, UINT32_MAX, &all, &nall,
				    err, errlen);
		ch_labels_free(all, nall);
		if (!rc && nall) {
			p->binary = strdup(q->binary);
			p->event = strdup("cpu-clock");
			goto out;
		}
	}
	if (!rc && !nlabels) {
		snprintf(err, errlen, "unknown binary '%s'", q->binary);
		rc = FDO_ENOT_FOUND;
	}
	if (!rc && !(sel_of = malloc(nlabels * sizeof *sel_of)))
		rc = FDO_ENOMEM;
	/* The selected label sets moved to the front, in their order, each
	 * with its selector: only they are read. */
	size_t nread = 0;
	for (size_t i = 0; !rc && i < nlabels; i++) {
		int sel = 0;
		if (q->nselectors) {
			sel = -1;
			for (size_t s = 0; s < q->nselectors && sel < 0; s++)
				if (labels_match(labels[i], strlen(labels[i]),
						 &q->selectors[s]))
					sel = (int)s;
		}
		if (sel < 0)
			continue;
		char *t = labels[nread];
		labels[nread] = labels[i];
		labels[i] = t;
		sel_of[nread++] = sel;
	}
	c.sel_of = sel_of;
	if (!rc && nread) {
		struct backend_read r = {.binary = q->binary,
					 .labels = (const char *const *)labels,
					 .nlabels = nread,
					 .from = from,
					 .to = UINT32_MAX};
		rc = ch_read_sums(ch, &r, cread_row, &c, err, errlen);
		cread_close_run(&c);
	}
	/* The rows count in the builds part while held (from the end of
	 * the read: as a profile counts from the end of its build), so
	 * other pulls meanwhile see the part as used. */
	rows_held = (uint64_t)c.cap * sizeof *c.rows;
	fdo_mem_take(FDO_MEM_BUILDS, rows_held);
	if (rc)
		goto out;
	p->binary = strdup(q->binary);
	p->event = strdup("cpu-clock");
	p->samples = c.fig.samples;
	p->first_time = c.fig.first_time;
	p->last_time = c.fig.last_time;
	scale(q, c.sel_weight, p->samples, factor);
	if (c.nrows)
		qsort(c.rows, c.nrows, sizeof *c.rows, crow_cmp);
	int trim = q->max_stacks || q->min_share > 0;
	struct trimmer tr = {.max = q->max_stacks};
	double total = 0;
	for (size_t i = 0; i < c.nrows && !rc;) {
		struct kept s = {c.rows[i].stack, 0, 0};
		for (; i < c.nrows && c.rows[i].stack == s.stack; i++) {
			s.count += c.rows[i].weight * factor[c.rows[i].sel];
			s.samples += c.rows[i].samples;
		}
		total += s.count;
		if (trim)
			rc = trimmer_add(&tr, &s);
		else if (!(rc = fdo_grow(k, cap_k, nk + 1)))
			k[nk++] = s;
	}
	if (!rc && trim) {
		trimmer_finish(&tr, q->min_share, total);
		free(k);
		k = tr.k;
		nk = tr.n;
		tr.k = NULL;
	}
	free(tr.k);
	free(c.rows);
	c.rows = NULL;
	fdo_mem_give(FDO_MEM_BUILDS, rows_held);
	rows_held = 0;
	/* The node's own store from here on (frames, build-ids, hosts):
	 * its read transaction begins after ClickHouse's labels and sums
	 * are read, so a slow server does not hold it open (a map resize
	 * waits for every open transaction, and every new one for it). The
	 * stacks' reads in add_kept still run inside it. */
	if (!rc && (rc = store_txn_begin(b->st, 0, &b->t)))
		snprintf(err, errlen, "store unavailable: %s",
			 fdo_strerror(rc));
	if (!rc)
		rc = add_kept(b, q, ch, k, nk, err, errlen);
	uint32_t binary;
	if (!rc && !store_intern_binary(b->t, q->binary, strlen(q->binary), 0,
					&binary))
		store_hosts_count(b->t, binary, &p->hosts);
out:
	if (rc && !err[0])
		snprintf(err, errlen, "%s", fdo_strerror(rc));
	free(c.rows);
	fdo_mem_give(FDO_MEM_BUILDS, rows_held);
	free(k);
	free(sel_of);
	free(factor);
	free(c.sel_weight);
	ch_labels_free(labels, nlabels);
	ch_close(ch);
	return rc;
}

int agg_profile_build(store *st, sym_cache *cache, const char *datadir,
		      const struct agg_profile_query *q, struct prof *p,
		      char *err, size_t errlen)
{
	prof_init(p);
	struct builder b = {
		.st = st, .cache = cache, .datadir = datadir, .p = p};
	struct pass1 s1 = {.q = q};
	struct reducer red = {0};
	double *sel_weight =
		calloc(q->nselectors ? q->nselectors : 1, sizeof *sel_weight);
	s1.sel_weight = sel_weight;
	int rc = FDO_OK;
	if (q->store_url && !q->reduced) {
		/* its own transaction, once ClickHouse has answered */
		rc = sel_weight ? build_from_ch(&b, q, err, errlen)
				: FDO_ENOMEM;
		goto out;
	}
	rc = store_txn_begin(st, 0, &b.t);
	if (rc || !sel_weight) {
		store_txn_abort(rc ? NULL : b.t); /* NULL: nothing began */
		free(sel_weight);
		snprintf(err, errlen, "store unavailable: %s",
			 fdo_strerror(rc));
		return rc ? rc : FDO_ENOMEM;
	}
	uint32_t binary;
	if ((rc = store_intern_binary(b.t, q->binary, strlen(q->binary), 0,
				      &binary))) {
		snprintf(err, errlen, "unknown binary '%s'", q->binary);
		goto out;
	}
	p->binary = strdup(q->binary);
	p->event = strdup("cpu-clock");

	/* Pass 1: select the runs, from their totals rows. */
	s1.t = b.t;
	s1.width = q->bucket_seconds ? q->bucket_seconds : 3600;
	s1.since = q->window && q->now > q->window ? q->now - q->window : 0;
	rc = store_totals_each(b.t, binary, select_one, &s1);
	free(s1.selcache);
	if (rc)
		goto out;
	p->samples = s1.fig.samples;
	p->first_time = s1.fig.first_time;
	p->last_time = s1.fig.last_time;

	double *factor =
		calloc(q->nselectors ? q->nselectors : 1, sizeof *factor);
	if (!factor) {
		rc = FDO_ENOMEM;
		goto out;
	}
	scale(q, sel_weight, p->samples, factor);

	/* Pass 2: leaves and pairs run by run (llvm, gcc, bolt), or each
	 * distinct stack once, in stack order (folded, pprof). */
	rc = q->reduced ? reduce_runs(&b, q, binary, s1.width, s1.runs,
				      s1.nruns, factor, &red)
			: merge_runs(&b, q, binary, s1.runs, s1.nruns, factor);
	if (!rc && q->branches)
		rc = read_branches(&b, q, binary, s1.width, s1.since, factor);
	free(factor);
	if (rc)
		goto out;
	/* Distinct hosts of the binary. */
	store_hosts_count(b.t, binary, &p->hosts);
	rc = FDO_OK;
	if (q->blocks && b.indexes) {
		p->frames_room = b.cap_frames;
		rc = agg_blocks_build(p, b.indexes, q->spread, q->dispersion);
		p->frames_room = 0;
	}
out:
	for (size_t i = 0; i < p->nbuild_ids; i++)
		if (b.indexes && b.indexes[i])
			sym_cache_release(cache, b.indexes[i]);
	free(b.indexes);
	free(b.bid_store_ids);
	fdo_map128_fini(&b.locs_by_addr);
	fdo_map64_fini(&b.bids_by_id);
	fdo_map64_fini(&b.strs);
	free(s1.runs);
	free(sel_weight);
	store_txn_abort(b.t);
	/* The runs computed from their stacks whose bucket is over, for the
	 * next pull to read instead (nothing to wait for on failure: the
	 * profile is built; a later pull stores them). */
	if (!rc && red.nmem) {
		int wrc = red_store(&red, st);
		if (wrc)
			fdo_warn("profile %s: storing leaf and pair sums: %s",
				 q->binary, fdo_strerror(wrc));
	}
	if (q->reduced)
		fdo_debug("profile %s: %llu runs from table aggs, %llu from "
			  "their stacks (%llu stored, %llu stale)",
			  q->binary, (unsigned long long)red.runs_read,
			  (unsigned long long)red.runs_computed,
			  (unsigned long long)red.runs_stored,
			  (unsigned long long)red.runs_stale);
	red_fini(&red);
	if (rc && !err[0])
		snprintf(err, errlen, "%s", fdo_strerror(rc));
	return rc;
}
