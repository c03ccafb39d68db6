/*
 * aggregator/keysort.h — the key-sorted entries of a merge: an append-only
 * array of (4-word key, weight, samples), sorted by key in one call.
 *
 * Workload: a merge appends up to a few million entries (one per stack or
 * branch of every batch, or one per candidate stack or address) in arrival
 * order and needs them in key order once, to read-modify-write LMDB in
 * that order and to sum equal keys run by run. Keys are mostly a few
 * (binary, label set, bucket) prefixes times a hash.
 *
 * Not thread-safe; the merger thread owns its arrays (aggregator/merge.c).
 * Private to aggregator/.
 */
#ifndef FDO_AGGREGATOR_KEYSORT_H
#define FDO_AGGREGATOR_KEYSORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "schemas/schemas.h"

/*
 * The counts (or branches) of one merge: one entry per stack (branch) of
 * every batch, appended in arrival order, sorted by key at the end and
 * summed run by run as they are written (flush_entries). Words hold the
 * key's fields in significance order, so comparing words numerically
 * orders keys as LMDB orders their big-endian encodings.
 * This replaced a hash map keyed the same way: with a million stacks in a
 * merge the map's random probes and its regrowth (fresh pages, each
 * faulted and zeroed) were a third of the merger's time; appending is
 * sequential, and the sort was needed for the key-order writes anyway.
 */
struct entry {
	uint64_t k[4];
	wire_weight_t weight;
	uint64_t samples;
};

struct entries {
	struct entry *v;
	size_t n, cap;	   /* cap is kept from merge to merge */
	struct entry *tmp; /* bucket_sort_entries' second array, kept too */
	size_t tmp_cap;
};

/* Append one entry (k: 4 words). FDO_OK or FDO_ENOMEM. Inline: a merge
 * calls it once per stack of every batch. */
static inline int entries_add(struct entries *e, const uint64_t *k,
			      wire_weight_t w, uint64_t samples)
{
	if (fdo_grow(e->v, e->cap, e->n + 1))
		return FDO_ENOMEM;
	struct entry *x = &e->v[e->n++];
	memcpy(x->k, k, sizeof x->k);
	x->weight = w;
	x->samples = samples;
	return FDO_OK;
}

/* Bytes of both arrays, as allocated (their capacities). */
static inline size_t entries_bytes(const struct entries *e)
{
	return (e->cap + e->tmp_cap) * sizeof(struct entry);
}

/* Is x's key before y's? */
static inline int entry_less(const struct entry *x, const struct entry *y)
{
	for (int i = 0; i < 4; i++)
		if (x->k[i] != y->k[i])
			return x->k[i] < y->k[i];
	return 0;
}

/*
 * bucket_sort_entries sorts e->v[0..e->n) by key (equal keys in any
 * order): a small array in place, a large one by bucket passes (a radix
 * sort) through e->tmp, after which e->v and e->tmp (and their
 * capacities) have swapped. FDO_OK, or FDO_ENOMEM (e unchanged).
 */
int bucket_sort_entries(struct entries *e);

#endif
