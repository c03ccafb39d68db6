/*
 * aggregator/dedup.c — the (agent, seq) of every batch logged to the WAL
 * but not merged yet, with its content digest.
 *
 * Why: a batch is counted once. Once merged, its record in table batches
 * says so; between logging and merging, only this set does. A resent
 * batch found here with the same digest is a duplicate (acknowledged, not
 * logged again); with another digest, a conflict.
 *
 * Workload: one lookup and one insert per batch by the WAL writer, one
 * delete per batch by the merger; at most the unmerged backlog (a few
 * thousand batches) is in the set. Entries in an array, found through a
 * common/map fdo_map128 keyed by (agent hash, seq) exactly; a delete
 * moves the last entry into the hole.
 *
 * Not thread-safe: the ingest lock (mu) guards the set (ingest.c).
 */
#include <stdlib.h>

#include "aggregator/ingest_int.h"
#include "common/common.h"

struct dnode {
	uint64_t agent_hash, seq, digest;
};

static void key_of(uint64_t ah, uint64_t seq, uint32_t k[4])
{
	k[0] = (uint32_t)(ah >> 32);
	k[1] = (uint32_t)ah;
	k[2] = (uint32_t)(seq >> 32);
	k[3] = (uint32_t)seq;
}

int dedup_init(struct dedup *d, size_t nb)
{
	*d = (struct dedup){0};
	if (fdo_grow(d->e, d->cap, nb ? nb : 1))
		return FDO_ENOMEM;
	return FDO_OK;
}

void dedup_fini(struct dedup *d)
{
	free(d->e);
	fdo_map128_fini(&d->ix);
	*d = (struct dedup){0};
}

uint64_t dedup_find(const struct dedup *d, uint64_t ah, uint64_t seq)
{
	uint32_t k[4], v;
	key_of(ah, seq, k);
	return fdo_map128_get(&d->ix, k, &v) ? d->e[v].digest : 0;
}

int dedup_add(struct dedup *d, uint64_t ah, uint64_t seq, uint64_t digest)
{
	uint32_t k[4], v;
	int found;
	key_of(ah, seq, k);
	/* Room first: a failed put then leaves no index past the end. */
	if (d->n == UINT32_MAX - 1 || fdo_grow(d->e, d->cap, d->n + 1) ||
	    fdo_map128_put(&d->ix, k, (uint32_t)d->n, &v, &found))
		return FDO_ENOMEM;
	d->e[v] = (struct dnode){ah, seq, digest ? digest : 1};
	if (!found)
		d->n++;
	return FDO_OK;
}

void dedup_del(struct dedup *d, uint64_t ah, uint64_t seq)
{
	uint32_t k[4], v, moved;
	int found;
	key_of(ah, seq, k);
	if (!fdo_map128_get(&d->ix, k, &v))
		return;
	fdo_map128_del(&d->ix, k);
	size_t last = --d->n;
	if (v == last)
		return;
	/* The last entry fills the hole; its key points there now (the map
	 * has just lost a key, so the put does not grow it). */
	d->e[v] = d->e[last];
	key_of(d->e[v].agent_hash, d->e[v].seq, k);
	fdo_map128_del(&d->ix, k);
	fdo_map128_put(&d->ix, k, v, &moved, &found);
}
