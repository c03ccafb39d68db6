/*
 * common/map.h — the small hash maps the parts use to find "the index of
 * this key", instead of one per file (open addressing, linear probing,
 * load at most 1/2): fdo_map64 from 64-bit keys to 32-bit values
 * (interned addresses, build-id ids, pointers into an index), fdo_map128
 * from keys of four 32-bit words (the nodes of an inline tree), and
 * fdo_idset, dense ids for byte strings the caller keeps (names, printed
 * stacks), comparing the whole key on a hash match.
 *
 * fdo_map64's key 0 is reserved (it marks an empty slot): callers add 1 to
 * keys that may be 0, or hash them first. Not thread safe; owned by their
 * caller.
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

/*
 * fdo_map64_del removes key (backward shift: the keys after it in its probe
 * run move up, so no tombstones are left). 1 if it was there, else 0.
 */
int fdo_map64_del(struct fdo_map64 *m, uint64_t key);

/* fdo_map64_clear forgets every key, keeping the memory. */
void fdo_map64_clear(struct fdo_map64 *m);

/* fdo_map64_fini frees the map; a zeroed map is empty and needs none. */
void fdo_map64_fini(struct fdo_map64 *m);

/*
 * struct fdo_map128: the same map for keys of four 32-bit words (a tuple
 * such as (parent, offset, discriminator, name)); every key is valid, all
 * zeroes too. Values must not be UINT32_MAX (it marks an empty slot). A
 * zeroed map is empty.
 */
struct fdo_map128_slot {
	uint32_t k[4];
	uint32_t v; /* UINT32_MAX: empty */
};

struct fdo_map128 {
	struct fdo_map128_slot *s;
	size_t cap, n;
};

/* fdo_map128_put: as fdo_map64_put, for key k (val != UINT32_MAX). */
int fdo_map128_put(struct fdo_map128 *m, const uint32_t k[4], uint32_t val,
		   uint32_t *out, int *found);

/* fdo_map128_get: 1 and *out when k is in the map, else 0. */
int fdo_map128_get(const struct fdo_map128 *m, const uint32_t k[4],
		   uint32_t *out);

/* fdo_map128_del removes k (backward shift, as fdo_map64_del): 1 if it
 * was there, else 0. */
int fdo_map128_del(struct fdo_map128 *m, const uint32_t k[4]);

void fdo_map128_fini(struct fdo_map128 *m);

/*
 * struct fdo_idset: ids for byte strings ("intern these names"). The
 * caller keeps the keys (an array of strings, an arena) and tells the set
 * how to read the key of an id (key_of); the set keeps, per slot, the
 * key's 64-bit hash and its id. A lookup whose hash matches reads that key
 * and compares every byte, so two keys with the same hash stay apart.
 *
 * The caller adds a key only after a get missed and after it has stored
 * the key where key_of finds it, so an allocation failure on either side
 * leaves the two consistent:
 *
 *	if (fdo_idset_get(&s, key, len, &id))
 *		return id;
 *	... store key as id n (not yet counted) ...
 *	if (fdo_idset_add(&s, key, len, n))
 *		... undo the store; FDO_ENOMEM ...
 *	count it; return n;
 *
 * Ids are the caller's (usually dense: the index of the key in its array),
 * below UINT32_MAX. Not thread safe.
 */
typedef const void *fdo_idset_key_fn(const void *ctx, uint32_t id, size_t *len);

struct fdo_idset_slot {
	uint64_t hash;
	uint32_t id1; /* id + 1; 0: empty */
};

struct fdo_idset {
	struct fdo_idset_slot *s;
	size_t cap, n;
	fdo_idset_key_fn *key_of;
	const void *ctx;
};

/* fdo_idset_init: an empty set reading keys with key_of(ctx, id, &len). */
void fdo_idset_init(struct fdo_idset *s, fdo_idset_key_fn *key_of,
		    const void *ctx);

/* fdo_idset_get: 1 and *id when key[0..len) is in the set, else 0. */
int fdo_idset_get(const struct fdo_idset *s, const void *key, size_t len,
		  uint32_t *id);

/*
 * fdo_idset_add adds key[0..len) (absent: the caller's get said so) with
 * id. FDO_OK, or FDO_ENOMEM with the set unchanged.
 */
int fdo_idset_add(struct fdo_idset *s, const void *key, size_t len,
		  uint32_t id);

void fdo_idset_fini(struct fdo_idset *s);

#endif
