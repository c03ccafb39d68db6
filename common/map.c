/*
 * common/map.c — the hash maps of common/map.h. fdo_map64's keys are mixed
 * with fdo_mix64, so dense or pointer-like keys spread evenly; fdo_map128's
 * and fdo_idset's keys are hashed with fdo_hash_words.
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

int fdo_map64_del(struct fdo_map64 *m, uint64_t key)
{
	if (!m->cap)
		return 0;
	size_t mask = m->cap - 1, i = fdo_mix64(key) & mask;
	for (; m->keys[i] != key; i = (i + 1) & mask)
		if (!m->keys[i])
			return 0;
	for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		size_t home = fdo_mix64(m->keys[j]) & mask;
		/* Move j into the hole i when its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
	m->n--;
	return 1;
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

/* ------------------------------------------------------------ map128 -- */

#define EMPTY128 UINT32_MAX

static size_t hash128(const uint32_t k[4])
{
	return (size_t)fdo_hash_words(k, 4 * sizeof k[0]);
}

static int grow128(struct fdo_map128 *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct fdo_map128_slot *s = table_alloc(cap, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].v = EMPTY128;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->s[i].v == EMPTY128)
			continue;
		size_t j = hash128(m->s[i].k) & (cap - 1);
		while (s[j].v != EMPTY128)
			j = (j + 1) & (cap - 1);
		s[j] = m->s[i];
	}
	free(m->s);
	m->s = s;
	m->cap = cap;
	return FDO_OK;
}

int fdo_map128_put(struct fdo_map128 *m, const uint32_t k[4], uint32_t val,
		   uint32_t *out, int *found)
{
	if ((m->n + 1) * 2 > m->cap && grow128(m))
		return FDO_ENOMEM;
	size_t j = hash128(k) & (m->cap - 1);
	for (; m->s[j].v != EMPTY128; j = (j + 1) & (m->cap - 1))
		if (!memcmp(m->s[j].k, k, sizeof m->s[j].k)) {
			*out = m->s[j].v;
			*found = 1;
			return FDO_OK;
		}
	memcpy(m->s[j].k, k, sizeof m->s[j].k);
	m->s[j].v = val;
	m->n++;
	*out = val;
	*found = 0;
	return FDO_OK;
}

int fdo_map128_get(const struct fdo_map128 *m, const uint32_t k[4],
		   uint32_t *out)
{
	if (!m->cap)
		return 0;
	size_t j = hash128(k) & (m->cap - 1);
	for (; m->s[j].v != EMPTY128; j = (j + 1) & (m->cap - 1))
		if (!memcmp(m->s[j].k, k, sizeof m->s[j].k)) {
			*out = m->s[j].v;
			return 1;
		}
	return 0;
}

int fdo_map128_del(struct fdo_map128 *m, const uint32_t k[4])
{
	if (!m->cap)
		return 0;
	size_t mask = m->cap - 1, i = hash128(k) & mask;
	for (; memcmp(m->s[i].k, k, sizeof m->s[i].k); i = (i + 1) & mask)
		if (m->s[i].v == EMPTY128)
			return 0;
	if (m->s[i].v == EMPTY128)
		return 0; /* an empty slot that holds k's words */
	for (size_t j = (i + 1) & mask; m->s[j].v != EMPTY128;
	     j = (j + 1) & mask) {
		size_t home = hash128(m->s[j].k) & mask;
		/* Move j into the hole i when its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->s[i] = m->s[j];
			i = j;
		}
	}
	m->s[i].v = EMPTY128;
	m->n--;
	return 1;
}

void fdo_map128_fini(struct fdo_map128 *m)
{
	free(m->s);
	memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------- idset -- */

void fdo_idset_init(struct fdo_idset *s, fdo_idset_key_fn *key_of,
		    const void *ctx)
{
	memset(s, 0, sizeof *s);
	s->key_of = key_of;
	s->ctx = ctx;
}

int fdo_idset_get(const struct fdo_idset *s, const void *key, size_t len,
		  uint32_t *id)
{
	if (!s->cap)
		return 0;
	uint64_t h = fdo_hash_words(key, len);
	size_t j = h & (s->cap - 1);
	for (; s->s[j].id1; j = (j + 1) & (s->cap - 1)) {
		if (s->s[j].hash != h)
			continue;
		size_t n;
		const void *k = s->key_of(s->ctx, s->s[j].id1 - 1, &n);
		if (n == len && !memcmp(k, key, len)) {
			*id = s->s[j].id1 - 1;
			return 1;
		}
	}
	return 0;
}

static int grow_idset(struct fdo_idset *s)
{
	size_t cap = s->cap ? s->cap * 2 : 256;
	struct fdo_idset_slot *t = table_alloc(cap, sizeof *t);
	if (!t)
		return FDO_ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->s[i].id1)
			continue;
		size_t j = s->s[i].hash & (cap - 1);
		while (t[j].id1)
			j = (j + 1) & (cap - 1);
		t[j] = s->s[i];
	}
	free(s->s);
	s->s = t;
	s->cap = cap;
	return FDO_OK;
}

int fdo_idset_add(struct fdo_idset *s, const void *key, size_t len, uint32_t id)
{
	if ((s->n + 1) * 2 > s->cap && grow_idset(s))
		return FDO_ENOMEM;
	uint64_t h = fdo_hash_words(key, len);
	size_t j = h & (s->cap - 1);
	while (s->s[j].id1)
		j = (j + 1) & (s->cap - 1);
	s->s[j] = (struct fdo_idset_slot){h, id + 1};
	s->n++;
	return FDO_OK;
}

void fdo_idset_fini(struct fdo_idset *s)
{
	free(s->s);
	s->s = NULL;
	s->cap = s->n = 0;
}
