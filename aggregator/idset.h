/*
 * aggregator/idset.h — a lossy set of 64-bit ids: open addressing in a
 * fixed power-of-two table, cleared whole when 3/4 full.
 *
 * Workload: "is this stack (address) already durable?" asked for every
 * stack of every batch, with ids that are hashes, so the slots are random
 * and the table far bigger than the caches. An answer "no" is always safe
 * (the caller does the work again, or looks in the store), so the set may
 * forget: clearing it is cheaper than growing or evicting.
 * Used by the WAL writer (stacks whose frames are logged, ingest.c) and
 * the merger (stacks and addresses known to be stored, merge.c).
 *
 * Not thread-safe: each set has one owner thread. Private to aggregator/.
 */
#ifndef FDO_AGGREGATOR_IDSET_H
#define FDO_AGGREGATOR_IDSET_H

#include <stddef.h>
#include <stdint.h>

/* 0 = empty slot; value 0 is never in the set. cap: slots, a power of
 * two; slots NULL until idset_init or the first idset_add. */
struct idset {
	uint64_t *slots;
	size_t cap, n;
};

static inline size_t idset_slot(const struct idset *s, uint64_t v)
{
	return (size_t)((v * 0x9e3779b97f4a7c15ull) >> 40) & (s->cap - 1);
}

static inline int idset_has(const struct idset *s, uint64_t v)
{
	if (!s->slots || !v)
		return 0;
	for (size_t j = idset_slot(s, v); s->slots[j];
	     j = (j + 1) & (s->cap - 1))
		if (s->slots[j] == v)
			return 1;
	return 0;
}

/* Sets are far bigger than the caches and ids are random: callers fetch
 * the slots of many ids at once rather than miss on each in turn. */
static inline void idset_prefetch(const struct idset *s, uint64_t v)
{
	if (s->slots)
		__builtin_prefetch(&s->slots[idset_slot(s, v)]);
}

/* Bytes of the slots, once allocated. */
static inline size_t idset_bytes(const struct idset *s)
{
	return s->slots ? s->cap * sizeof *s->slots : 0;
}

/* Allocate the cap slots (a power of two) now. FDO_OK or FDO_ENOMEM. A
 * zeroed set with only cap set allocates on its first idset_add instead. */
int idset_init(struct idset *s, size_t cap);
/* Add v (0 is ignored). Without memory for the slots, nothing is added. */
void idset_add(struct idset *s, uint64_t v);
void idset_fini(struct idset *s);

#endif
