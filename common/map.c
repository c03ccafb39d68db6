/*
 * common/map.c — the 64-bit-key hash map of common/map.h. Keys are mixed
 * with fdo_mix64, so dense or pointer-like keys spread evenly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/common.h"
#include "common/map.h"

/*
 * A table of n zeroed bytes. Large ones (calloc maps them, untouched) are
 * asked to be backed by 2 MiB pages: a lookup in a table of millions of
 * slots misses the TLB as well as the cache, and on this VM the page walk
 * costs more than the miss (docs/scale.md).
 */
static void *table_alloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	size_t bytes = n * size, huge = (size_t)2 << 20;
	if (p && bytes >= 2 * huge) {
		uintptr_t a = ((uintptr_t)p + huge - 1) &
			      ~(uintptr_t)(huge - 1);
		uintptr_t e = ((uintptr_t)p + bytes) & ~(uintptr_t)(huge - 1);
		if (e > a)
			(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
	}
	return p;
}

static int grow(struct fdo_map64 *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	uint64_t *k = table_alloc(cap, sizeof *k);
	uint32_t *v = table_alloc(cap, sizeof *v);
	if (!k || !v) {
		free(k);
		free(v);
		return FDO_ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		size_t j = fdo_mix64(m->keys[i]) & (cap - 1);
		while (k[j])
			j = (j + 1) & (cap - 1);
		k[j] = m->keys[i];
		v[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = k;
	m->vals = v;
	m->cap = cap;
	return FDO_OK;
}

int fdo_map64_put(struct fdo_map64 *m, uint64_t key, uint32_t val,
		  uint32_t *out, int *found)
{
	if ((m->n + 1) * 2 > m->cap && grow(m))
		return FDO_ENOMEM;
	size_t j = fdo_mix64(key) & (m->cap - 1);
	for (; m->keys[j]; j = (j + 1) & (m->cap - 1))
		if (m->keys[j] == key) {
			*out = m->vals[j];
			*found = 1;
			return FDO_OK;
		}
	m->keys[j] = key;
	m->vals[j] = val;
	m->n++;
	*out = val;
	*found = 0;
	return FDO_OK;
}

int fdo_map64_get(const struct fdo_map64 *m, uint64_t key, uint32_t *out)
{
	if (!m->cap)
		return 0;
	size_t j = fdo_mix64(key) & (m->cap - 1);
	for (; m->keys[j]; j = (j + 1) & (m->cap - 1))
		if (m->keys[j] == key) {
			*out = m->vals[j];
			return 1;
		}
	return 0;
}

void fdo_map64_clear(struct fdo_map64 *m)
{
	if (m->keys)
		memset(m->keys, 0, m->cap * sizeof *m->keys);
	m->n = 0;
}

void fdo_map64_fini(struct fdo_map64 *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}
