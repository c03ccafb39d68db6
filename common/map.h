/*
 * common/map.h — a hash map from 64-bit keys to 32-bit values (open
 * addressing, linear probing, load at most 1/2): the one small map the
 * parts use to find "the index of this key" (interned addresses, build-id
 * ids, pointers into an index), instead of one per file.
 *
 * Key 0 is reserved (it marks an empty slot): callers add 1 to keys that
 * may be 0, or hash them first. Not thread safe; owned by its caller.
 */
#ifndef FDO_COMMON_MAP_H
#define FDO_COMMON_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct fdo_map64 {
	uint64_t *keys; /* 0: empty */
	uint32_t *vals;
	size_t cap, n;
};

/*
 * fdo_map64_put finds key (never 0): *out gets its value and *found 1; if
 * absent it stores val, *out = val and *found = 0. Returns FDO_OK or
 * FDO_ENOMEM (the map is then unchanged).
 */
int fdo_map64_put(struct fdo_map64 *m, uint64_t key, uint32_t val,
		  uint32_t *out, int *found);

/*
 * fdo_map64_prefetch asks the CPU for key's slot ahead of a put or get of
 * it. In a map far larger than the cache each lookup waits for memory;
 * a caller with several keys at hand prefetches them all first so the
 * waits overlap (aggregator/prof.c: docs/scale.md for the figures). A
 * put that grows the map in between only wastes the prefetch.
 */
static inline void fdo_map64_prefetch(const struct fdo_map64 *m, uint64_t key)
{
	if (m->cap) {
		size_t j = fdo_mix64(key) & (m->cap - 1);
		__builtin_prefetch(&m->keys[j]);
		__builtin_prefetch(&m->vals[j]);
	}
}

/* fdo_map64_get: 1 and *out when key is in the map, else 0. */
int fdo_map64_get(const struct fdo_map64 *m, uint64_t key, uint32_t *out);

/* fdo_map64_clear forgets every key, keeping the memory. */
void fdo_map64_clear(struct fdo_map64 *m);

/* fdo_map64_fini frees the map; a zeroed map is empty and needs none. */
void fdo_map64_fini(struct fdo_map64 *m);

#endif
