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

/* fdo_map64_get: 1 and *out when key is in the map, else 0. */
int fdo_map64_get(const struct fdo_map64 *m, uint64_t key, uint32_t *out);

/* fdo_map64_clear forgets every key, keeping the memory. */
void fdo_map64_clear(struct fdo_map64 *m);

/* fdo_map64_fini frees the map; a zeroed map is empty and needs none. */
void fdo_map64_fini(struct fdo_map64 *m);

#endif
