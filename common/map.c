/*
 * common/map.c — the 64-bit-key hash map of common/map.h. Keys are mixed
 * with fdo_mix64, so dense or pointer-like keys spread evenly.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/map.h"

static int grow(struct fdo_map64 *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	uint64_t *k = calloc(cap, sizeof *k);
	uint32_t *v = calloc(cap, sizeof *v);
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
