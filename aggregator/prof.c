/*
 * aggregator/prof.c — the profile model's own helpers: life cycle and
 * string interning (a hash table from text to index, rebuilt as it grows).
 * Workload: a profile has thousands to millions of frames but few distinct
 * strings; lookups far outnumber inserts.
 *
 * And the reduction of stacks to leaves and caller->callee pairs
 * (prof_reduce): one pass over every stack's locations; a real program's
 * pairs are a few per call site, so the result is far smaller than the
 * stacks (millions of stacks, tens of thousands of pairs).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

struct prof_priv {
	struct fdo_idset strings; /* string -> its index in p->strings */
};

void prof_init(struct prof *p)
{
	memset(p, 0, sizeof *p);
}

void prof_fini(struct prof *p)
{
	for (size_t i = 0; i < p->nstrings; i++)
		free(p->strings[i]);
	free(p->strings);
	for (size_t i = 0; i < p->nbuild_ids; i++) {
		free(p->build_ids[i].elf_path);
		free(p->build_ids[i].debug_path);
	}
	free(p->build_ids);
	free(p->locs);
	free(p->frames);
	free(p->stack_locs);
	free(p->stacks);
	free(p->branches);
	free(p->leaves);
	free(p->pairs);
	free(p->funcs);
	free(p->blocks);
	free(p->insns);
	free(p->edges);
	free(p->calls);
	free(p->pctxs);
	free(p->probes);
	free(p->binary);
	free(p->event);
	struct prof_priv *pv = p->priv;
	if (pv) {
		fdo_idset_fini(&pv->strings);
		free(pv);
	}
	memset(p, 0, sizeof *p);
}

static const void *str_key(const void *ctx, uint32_t id, size_t *len)
{
	const struct prof *p = ctx;
	*len = strlen(p->strings[id]);
	return p->strings[id];
}

uint32_t prof_intern_memo(struct prof *p, struct fdo_map64 *memo, const char *s)
{
	if (!s || !*s)
		return PROF_NONE;
	uint64_t key = (uint64_t)(uintptr_t)s;
	uint32_t id;
	int found;
	if (fdo_map64_get(memo, key, &id))
		return id;
	id = prof_intern(p, s);
	if (id == PROF_NONE || fdo_map64_put(memo, key, id, &id, &found))
		return PROF_NONE - 1;
	return id;
}

uint32_t prof_intern(struct prof *p, const char *s)
{
	if (!s)
		return PROF_NONE;
	struct prof_priv *pv = p->priv;
	if (!pv) {
		if (!(pv = p->priv = calloc(1, sizeof *pv)))
			return PROF_NONE;
		/* The set reads keys through p: a prof is built where it
		 * stays, never moved while it interns. */
		fdo_idset_init(&pv->strings, str_key, p);
	}
	size_t n = strlen(s);
	uint32_t id;
	if (fdo_idset_get(&pv->strings, s, n, &id))
		return id;
	if (fdo_grow(p->strings, p->cap_strings, p->nstrings + 1))
		return PROF_NONE;
	char *copy = strdup(s);
	if (!copy)
		return PROF_NONE;
	p->strings[p->nstrings] = copy;
	if (fdo_idset_add(&pv->strings, s, n, (uint32_t)p->nstrings)) {
		free(copy);
		return PROF_NONE;
	}
	return (uint32_t)p->nstrings++;
}

/* ---------------------------------------------------- leaves and pairs -- */

static int cmp_leaf_loc(const void *x, const void *y)
{
	const struct prof_leaf *a = x, *c = y;
	return a->loc < c->loc ? -1 : a->loc > c->loc;
}

static int cmp_pair(const void *x, const void *y)
{
	const struct prof_pair *a = x, *c = y;
	if (a->callee != c->callee)
		return a->callee < c->callee ? -1 : 1;
	return a->caller < c->caller ? -1 : a->caller > c->caller;
}

/*
 * A stack's pairs go into the map in chunks: every key of a chunk is
 * prefetched before the first is looked up, then every pair entry before
 * the first count is added, so the cache misses of a map and an array far
 * larger than the cache overlap instead of following one another (a big
 * store's profile has millions of pairs: docs/scale.md). The puts happen
 * in the same order as one at a time, so the result is the same.
 */
#define REDUCE_CHUNK 32

int prof_reducer_add(struct prof_reducer *r, const uint32_t *sl, uint32_t n,
		     double count, uint64_t samples)
{
	if (!n || !(count > 0) || !isfinite(count))
		return FDO_OK;
	uint32_t v;
	int found;
	int rc = fdo_map64_put(&r->lmap, (uint64_t)sl[0] + 1,
			       (uint32_t)r->nleaves, &v, &found);
	if (rc)
		return rc;
	if (!found) {
		if ((rc = fdo_grow(r->leaves, r->cap_leaves, r->nleaves + 1)))
			return rc;
		r->leaves[r->nleaves++] = (struct prof_leaf){sl[0], 0, 0};
	}
	r->leaves[v].count += count;
	r->leaves[v].samples += samples;
	uint64_t keys[REDUCE_CHUNK];
	uint32_t at[REDUCE_CHUNK];
	for (uint32_t i0 = 0; i0 + 1 < n; i0 += REDUCE_CHUNK) {
		uint32_t m = 0;
		for (uint32_t i = i0; i + 1 < n && i < i0 + REDUCE_CHUNK; i++) {
			if (prof_pair_seen(sl, i))
				continue;
			keys[m] = ((uint64_t)sl[i] << 32 | sl[i + 1]) + 1;
			fdo_map64_prefetch(&r->pmap, keys[m]);
			m++;
		}
		for (uint32_t k = 0; k < m; k++) {
			if ((rc = fdo_map64_put(&r->pmap, keys[k],
						(uint32_t)r->npairs, &v,
						&found)))
				return rc;
			if (!found) {
				if ((rc = fdo_grow(r->pairs, r->cap_pairs,
						   r->npairs + 1)))
					return rc;
				uint64_t pk = keys[k] - 1;
				r->pairs[r->npairs++] = (struct prof_pair){
					(uint32_t)(pk >> 32), (uint32_t)pk, 0};
			}
			at[k] = v;
			__builtin_prefetch(&r->pairs[v]);
		}
		for (uint32_t k = 0; k < m; k++)
			r->pairs[at[k]].count += count;
	}
	return FDO_OK;
}

void prof_reducer_finish(struct prof_reducer *r, struct prof_leaf **leaves,
			 size_t *nleaves, struct prof_pair **pairs,
			 size_t *npairs)
{
	if (r->nleaves)
		qsort(r->leaves, r->nleaves, sizeof *r->leaves, cmp_leaf_loc);
	if (r->npairs)
		qsort(r->pairs, r->npairs, sizeof *r->pairs, cmp_pair);
	*leaves = r->leaves;
	*nleaves = r->nleaves;
	*pairs = r->pairs;
	*npairs = r->npairs;
	r->leaves = NULL;
	r->pairs = NULL;
	prof_reducer_fini(r);
}

void prof_reducer_fini(struct prof_reducer *r)
{
	fdo_map64_fini(&r->lmap);
	fdo_map64_fini(&r->pmap);
	free(r->leaves);
	free(r->pairs);
	memset(r, 0, sizeof *r);
}

static int reduce(const struct prof *p, struct prof_leaf **leaves_out,
		  size_t *nleaves_out, struct prof_pair **pairs_out,
		  size_t *npairs_out)
{
	struct prof_reducer r = {0};
	int rc = FDO_OK;
	for (size_t s = 0; s < p->nstacks && !rc; s++) {
		const struct prof_stack *st = &p->stacks[s];
		if (!st->nlocs || !(st->count > 0) || !isfinite(st->count))
			continue;
		if ((size_t)st->first_loc + st->nlocs > p->nstack_locs) {
			rc = FDO_EINVAL;
			break;
		}
		const uint32_t *sl = &p->stack_locs[st->first_loc];
		for (uint32_t i = 0; i < st->nlocs; i++)
			if (sl[i] >= p->nlocs)
				rc = FDO_EINVAL;
		if (!rc)
			rc = prof_reducer_add(&r, sl, st->nlocs, st->count,
					      st->samples);
	}
	if (rc) {
		prof_reducer_fini(&r);
		return rc;
	}
	prof_reducer_finish(&r, leaves_out, nleaves_out, pairs_out, npairs_out);
	return FDO_OK;
}

int prof_reduce(struct prof *p)
{
	if (p->reduced)
		return FDO_OK;
	int rc = reduce(p, &p->leaves, &p->nleaves, &p->pairs, &p->npairs);
	if (!rc)
		p->reduced = 1;
	return rc;
}

int prof_reduced_get(const struct prof *p, struct prof_reduced *r)
{
	memset(r, 0, sizeof *r);
	if (p->reduced) {
		r->leaves = p->leaves;
		r->nleaves = p->nleaves;
		r->pairs = p->pairs;
		r->npairs = p->npairs;
		return FDO_OK;
	}
	int rc = reduce(p, &r->own_leaves, &r->nleaves, &r->own_pairs,
			&r->npairs);
	r->leaves = r->own_leaves;
	r->pairs = r->own_pairs;
	return rc;
}

void prof_reduced_fini(struct prof_reduced *r)
{
	free(r->own_leaves);
	free(r->own_pairs);
	memset(r, 0, sizeof *r);
}
