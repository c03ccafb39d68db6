/*
 * aggregator/prof.c — the profile model's own helpers: life cycle and
 * string interning (a hash table from text to index, rebuilt as it grows).
 * Workload: a profile has thousands to millions of frames but few distinct
 * strings; lookups far outnumber inserts.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregator/profile.h"
#include "common/buf.h"
#include "common/common.h"

struct prof_priv {
	uint32_t *slots; /* string index + 1; 0 empty */
	size_t cap;
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
		free(pv->slots);
		free(pv);
	}
	memset(p, 0, sizeof *p);
}

static size_t str_hash(const char *s)
{
	return (size_t)fdo_hash_words(s, strlen(s));
}

static int rehash(struct prof *p, struct prof_priv *pv)
{
	size_t cap = pv->cap ? pv->cap * 2 : 1024;
	uint32_t *slots = calloc(cap, sizeof *slots);
	if (!slots)
		return FDO_ENOMEM;
	for (size_t i = 0; i < p->nstrings; i++) {
		size_t j = str_hash(p->strings[i]) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = (uint32_t)i + 1;
	}
	free(pv->slots);
	pv->slots = slots;
	pv->cap = cap;
	return FDO_OK;
}

uint32_t prof_intern(struct prof *p, const char *s)
{
	if (!s)
		return PROF_NONE;
	struct prof_priv *pv = p->priv;
	if (!pv && !(pv = p->priv = calloc(1, sizeof *pv)))
		return PROF_NONE;
	if ((p->nstrings + 1) * 2 > pv->cap && rehash(p, pv))
		return PROF_NONE;
	size_t j = str_hash(s) & (pv->cap - 1);
	for (; pv->slots[j]; j = (j + 1) & (pv->cap - 1))
		if (!strcmp(p->strings[pv->slots[j] - 1], s))
			return pv->slots[j] - 1;
	if (fdo_grow(p->strings, p->cap_strings, p->nstrings + 1))
		return PROF_NONE;
	char *copy = strdup(s);
	if (!copy)
		return PROF_NONE;
	p->strings[p->nstrings] = copy;
	pv->slots[j] = (uint32_t)p->nstrings + 1;
	return (uint32_t)p->nstrings++;
}
