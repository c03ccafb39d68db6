/*
 * aggregator/profile.c — the profile builder: from the store to a `prof`
 * (aggregator/profile.h) for one binary and one set of selectors.
 *
 * Workload: a request reads every counts entry of one binary (tens of
 * thousands to millions), selects and weights them, then resolves each
 * distinct stack once and each distinct address once. Profiles are built
 * far less often than samples arrive; one read transaction per build.
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
 *   max_stacks, min_share (folded, pprof) only the heaviest stacks, and
 *            those with at least that share of the selected count, are
 *            read and symbolized (trim): what those formats write is
 *            bounded whatever the store holds.
 * Counts: each stack's count is its share of the selected fleet weight
 * expressed in samples (weight / total weight x total samples), so fleet
 * weights steer the profile while counts keep the scale of samples.
 * reduced (the llvm, gcc and bolt formats): each stack is folded into
 * leaf and caller->callee pair counts as it is read (prof_reducer) and
 * not kept, so the profile's memory follows its locations and pairs, not
 * its stacks; the result is prof_reduce of the full build, to the bit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator.h"
#include "aggregator/blocks.h"
#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"
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

struct acc {
	uint64_t stack;
	int sel;
	double weight; /* decayed fleet weight (fixed-point units) */
	uint64_t samples;
};

struct builder {
	store_txn *t;
	store *st;
	sym_cache *cache;
	const char *datadir;
	struct prof *p;
	struct fdo_map64 locs_by_addr;   /* (bid id, offset) token -> loc index+1 */
	struct fdo_map64 bids_by_id;     /* store build-id id -> prof index+1 */
	uint32_t *bid_store_ids;    /* prof index -> store id */
	sym_index **indexes;        /* prof index -> open index or NULL */
	size_t cap_locs, cap_frames, cap_stack_locs, cap_stacks, cap_bids;
	size_t cap_bid_store_ids, cap_indexes;
};

static int build_id_index(struct builder *b, uint32_t id, uint32_t *out)
{
	uint32_t v;
	int found;
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
	struct store_buildid rec;
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

/* The prof location of (build-id id, offset), resolving it once. */
static int loc_index(struct builder *b, const struct store_frame *f,
		     uint32_t *out)
{
	struct prof *p = b->p;
	uint64_t token = fdo_mix64(f->offset ^ fdo_mix64(f->build_id)) | 1;
	uint32_t v;
	int found;
	int rc = fdo_map64_put(&b->locs_by_addr, token, (uint32_t)p->nlocs + 1, &v,
			  &found);
	if (rc)
		return rc;
	*out = v - 1;
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
	if (store_get(b->t, STORE_SYMCACHE, key, sizeof key, &val, &vl))
		return FDO_OK; /* not symbolized yet */
	struct store_sym_frame sf[STORE_SYMCACHE_MAX_FRAMES];
	size_t n;
	if (store_symcache_decode(val, vl, sf, STORE_SYMCACHE_MAX_FRAMES, &n))
		return FDO_OK;
	if ((rc = fdo_grow(p->frames, b->cap_frames, p->nframes + n)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct prof_frame *pf = &p->frames[p->nframes + i];
		const void *s;
		size_t sl;
		char name[STORE_NAME_MAX + 1];
		pf->function = pf->file = PROF_NONE;
		if (sf[i].function && !store_intern_name(b->t, STORE_DICT_STRINGS,
							 sf[i].function, &s, &sl)) {
			memcpy(name, s, sl);
			name[sl] = 0;
			pf->function = prof_intern(p, name);
		}
		if (sf[i].file && !store_intern_name(b->t, STORE_DICT_STRINGS,
						     sf[i].file, &s, &sl)) {
			memcpy(name, s, sl);
			name[sl] = 0;
			pf->file = prof_intern(p, name);
		}
		pf->line = sf[i].line;
		pf->column = sf[i].column;
		pf->discriminator = sf[i].discriminator;
		pf->start_line = sf[i].start_line;
	}
	l = &p->locs[p->nlocs - 1];
	l->nframes = (uint32_t)n;
	p->nframes += n;
	return FDO_OK;
}

static int acc_cmp(const void *a, const void *b)
{
	const struct acc *x = a, *y = b;
	if (x->stack != y->stack)
		return x->stack < y->stack ? -1 : 1;
	return x->sel - y->sel;
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

/* Pass 1's state: the counts entries selected, each selector's weight. */
struct pass1 {
	store_txn *t;
	const struct agg_profile_query *q;
	struct prof *p;
	uint32_t width;
	uint64_t since;
	int *selcache; /* labelset id -> selector+2 (0 unknown) */
	size_t cap_selcache;
	struct acc *accs;
	size_t naccs, cap_accs;
	size_t compact_at; /* fold accs when they reach this many */
	double *sel_weight; /* per selector */
};

/*
 * compact_accs sorts the selected entries by (stack, selector) and folds
 * those of one stack and selector into one. A window of many buckets
 * holds one counts entry per stack per bucket (a week of hourly buckets:
 * up to 168 per stack); folded as they come, the entries in memory follow
 * the distinct stacks, not the buckets.
 */
static void compact_accs(struct pass1 *s)
{
	qsort(s->accs, s->naccs, sizeof *s->accs, acc_cmp);
	size_t m = 0;
	for (size_t i = 0; i < s->naccs; i++) {
		if (m && s->accs[m - 1].stack == s->accs[i].stack &&
		    s->accs[m - 1].sel == s->accs[i].sel) {
			s->accs[m - 1].weight += s->accs[i].weight;
			s->accs[m - 1].samples += s->accs[i].samples;
		} else {
			s->accs[m++] = s->accs[i];
		}
	}
	s->naccs = m;
	s->compact_at = 2 * m > (1u << 20) ? 2 * m : (1u << 20);
}

static int select_one(void *arg, const struct store_counts_key *ck,
		      const struct store_weight *w)
{
	struct pass1 *s = arg;
	if ((uint64_t)ck->bucket + s->width <= s->since)
		return FDO_OK;
	int rc = fdo_grow_zeroed(s->selcache, s->cap_selcache,
				 (size_t)ck->labelset + 1);
	if (rc)
		return rc;
	if (!s->selcache[ck->labelset])
		s->selcache[ck->labelset] =
			pick_selector(s->t, ck->labelset, s->q) + 2;
	int sel = s->selcache[ck->labelset] - 2;
	if (sel < 0)
		return FDO_OK;
	if ((rc = fdo_grow(s->accs, s->cap_accs, s->naccs + 1)))
		return rc;
	double wd = (double)w->weight * decay(s->q, ck->bucket, s->width);
	s->accs[s->naccs++] = (struct acc){ck->stack, sel, wd, w->samples};
	s->sel_weight[sel] += wd;
	if (s->naccs >= s->compact_at)
		compact_accs(s);
	struct prof *p = s->p;
	p->samples += w->samples;
	if (!p->first_time || ck->bucket < p->first_time)
		p->first_time = ck->bucket;
	if ((uint64_t)ck->bucket + s->width > p->last_time)
		p->last_time = (uint64_t)ck->bucket + s->width;
	return FDO_OK;
}

/* Heaviest first; ties by stack id, so the same store trims alike. */
static int heavier(const void *a, const void *b)
{
	const struct acc *x = *(const struct acc *const *)a;
	const struct acc *y = *(const struct acc *const *)b;
	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/*
 * trim: of the nst distinct stacks (count in weight), unmark (sel 0)
 * those under min_share of the total and all but the heaviest max_stacks.
 * What folded and pprof write is then bounded whatever the store holds.
 */
static int trim(const struct agg_profile_query *q, struct acc *st, size_t nst,
		double total)
{
	if (q->min_share > 0)
		for (size_t i = 0; i < nst; i++)
			if (st[i].weight < q->min_share * total)
				st[i].sel = 0;
	if (!q->max_stacks || nst <= q->max_stacks)
		return FDO_OK;
	struct acc **by = malloc(nst * sizeof *by);
	if (!by)
		return FDO_ENOMEM;
	for (size_t i = 0; i < nst; i++)
		by[i] = &st[i];
	qsort(by, nst, sizeof *by, heavier);
	for (size_t i = q->max_stacks; i < nst; i++)
		by[i]->sel = 0;
	free(by);
	return FDO_OK;
}

int agg_profile_build(store *st, sym_cache *cache, const char *datadir,
		      const struct agg_profile_query *q, struct prof *p,
		      char *err, size_t errlen)
{
	prof_init(p);
	struct builder b = {.st = st, .cache = cache, .datadir = datadir, .p = p};
	struct pass1 s1 = {.q = q, .p = p, .compact_at = 1u << 20};
	struct prof_reducer red = {0};
	double *sel_weight = calloc(q->nselectors ? q->nselectors : 1,
				    sizeof *sel_weight);
	s1.sel_weight = sel_weight;
	int rc = store_txn_begin(st, 0, &b.t);
	if (rc || !sel_weight) {
		free(sel_weight);
		snprintf(err, errlen, "store unavailable: %s", fdo_strerror(rc));
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

	/* Pass 1: select counts entries. */
	s1.t = b.t;
	s1.width = q->bucket_seconds ? q->bucket_seconds : 3600;
	s1.since = q->window && q->now > q->window ? q->now - q->window : 0;
	rc = store_counts_each(b.t, binary, select_one, &s1);
	free(s1.selcache);
	if (rc)
		goto out;
	struct acc *accs = s1.accs;
	size_t naccs = s1.naccs;

	/* Scale: each selector's weight to its share, in units of samples. */
	double total_w = 0, total_mix = 0;
	for (size_t s = 0; s < (q->nselectors ? q->nselectors : 1); s++) {
		total_w += sel_weight[s];
		total_mix += q->nselectors ? q->selectors[s].weight : 1.0;
	}
	double *factor = calloc(q->nselectors ? q->nselectors : 1,
				sizeof *factor);
	if (!factor) {
		rc = FDO_ENOMEM;
		goto out;
	}
	for (size_t s = 0; s < (q->nselectors ? q->nselectors : 1); s++) {
		double share = q->nselectors > 1
				       ? q->selectors[s].weight / total_mix
				       : 1.0;
		factor[s] = sel_weight[s] > 0 && total_w > 0
				    ? share * (double)p->samples / sel_weight[s]
				    : 0;
	}

	/* Each distinct stack once: its count, summed in place (accs[k] for
	 * k < nst holds stack k's count in weight and sel 1 when kept). */
	qsort(accs, naccs, sizeof *accs, acc_cmp);
	size_t nst = 0;
	double total = 0;
	for (size_t i = 0; i < naccs;) {
		uint64_t id = accs[i].stack;
		double count = 0;
		uint64_t samples = 0;
		for (; i < naccs && accs[i].stack == id; i++) {
			count += accs[i].weight * factor[accs[i].sel];
			samples += accs[i].samples;
		}
		accs[nst++] = (struct acc){id, 1, count, samples};
		total += count;
	}
	if ((rc = trim(q, accs, nst, total))) {
		free(factor);
		goto out;
	}

	/* Pass 2: decode the stacks kept. */
	for (size_t i = 0; i < nst; i++) {
		if (!accs[i].sel)
			continue;
		uint64_t id = accs[i].stack;
		double count = accs[i].weight;
		uint64_t samples = accs[i].samples;
		uint8_t key[STORE_STACK_KEY_SIZE];
		store_stack_key_encode(key, id);
		struct store_frame f[STORE_STACK_MAX_FRAMES];
		size_t n, vl;
		const void *v;
		if (store_get(b.t, STORE_STACKS, key, sizeof key, &v, &vl) ||
		    store_stack_decode(v, vl, f, STORE_STACK_MAX_FRAMES, &n) ||
		    n == 0)
			continue;
		if (q->build_id_len) {
			struct store_buildid rec;
			if (store_buildid_get(b.t, f[0].build_id, &rec) ||
			    rec.build_id_len != q->build_id_len ||
			    memcmp(rec.build_id, q->build_id, q->build_id_len))
				continue;
		}
		if (q->reduced) {
			uint32_t lis[STORE_STACK_MAX_FRAMES];
			for (size_t k2 = 0; k2 < n && !rc; k2++)
				rc = loc_index(&b, &f[k2], &lis[k2]);
			if (rc || (count > 0 && isfinite(count) &&
				   (rc = prof_reducer_add(&red, lis,
							  (uint32_t)n, count,
							  samples)))) {
				free(factor);
				goto out;
			}
			p->count += count;
			continue;
		}
		if ((rc = fdo_grow(p->stacks, b.cap_stacks, p->nstacks + 1)) ||
		    (rc = fdo_grow(p->stack_locs, b.cap_stack_locs,
				   p->nstack_locs + n))) {
			free(factor);
			goto out;
		}
		struct prof_stack *ps = &p->stacks[p->nstacks++];
		ps->first_loc = (uint32_t)p->nstack_locs;
		ps->nlocs = (uint32_t)n;
		ps->count = count;
		ps->samples = samples;
		p->count += count;
		for (size_t k2 = 0; k2 < n; k2++) {
			uint32_t li;
			if ((rc = loc_index(&b, &f[k2], &li))) {
				free(factor);
				goto out;
			}
			p->stack_locs[p->nstack_locs++] = li;
		}
	}
	free(factor);
	if (q->reduced) {
		prof_reducer_finish(&red, &p->leaves, &p->nleaves, &p->pairs,
				    &p->npairs);
		p->reduced = 1;
	}

	/* Distinct hosts of the binary. */
	store_hosts_count(b.t, binary, &p->hosts);
	rc = FDO_OK;
	if (q->blocks && b.indexes)
		rc = agg_blocks_build(p, b.indexes, q->balance);
out:
	for (size_t i = 0; i < p->nbuild_ids; i++)
		if (b.indexes && b.indexes[i])
			sym_cache_release(cache, b.indexes[i]);
	free(b.indexes);
	free(b.bid_store_ids);
	fdo_map64_fini(&b.locs_by_addr);
	fdo_map64_fini(&b.bids_by_id);
	prof_reducer_fini(&red);
	free(s1.accs);
	free(sel_weight);
	store_txn_abort(b.t);
	if (rc && !err[0])
		snprintf(err, errlen, "%s", fdo_strerror(rc));
	return rc;
}
