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
 * thousand batches) is in the set. Chained hashing in a fixed table.
 *
 * Not thread-safe: the ingest lock (mu) guards the set (ingest.c).
 */
#include <stdlib.h>

#include "aggregator/ingest_int.h"
#include "common/common.h"

struct dnode {
	uint64_t agent_hash, seq, digest;
	struct dnode *next;
};

int dedup_init(struct dedup *d, size_t nb)
{
	d->b = calloc(nb, sizeof *d->b);
	d->nb = d->b ? nb : 0;
	d->n = 0;
	return d->b ? FDO_OK : FDO_ENOMEM;
}

void dedup_fini(struct dedup *d)
{
	for (size_t i = 0; i < d->nb; i++)
		for (struct dnode *x = d->b[i], *n; x; x = n) {
			n = x->next;
			free(x);
		}
	free(d->b);
	*d = (struct dedup){0};
}

static size_t dedup_slot(const struct dedup *d, uint64_t ah, uint64_t seq)
{
	return (size_t)((ah ^ (seq * 0x9e3779b97f4a7c15ull)) % d->nb);
}

uint64_t dedup_find(const struct dedup *d, uint64_t ah, uint64_t seq)
{
	for (struct dnode *n = d->b[dedup_slot(d, ah, seq)]; n; n = n->next)
		if (n->agent_hash == ah && n->seq == seq)
			return n->digest;
	return 0;
}

int dedup_add(struct dedup *d, uint64_t ah, uint64_t seq, uint64_t digest)
{
	struct dnode *n = malloc(sizeof *n);
	if (!n)
		return FDO_ENOMEM;
	size_t s = dedup_slot(d, ah, seq);
	*n = (struct dnode){ah, seq, digest ? digest : 1, d->b[s]};
	d->b[s] = n;
	d->n++;
	return FDO_OK;
}

void dedup_del(struct dedup *d, uint64_t ah, uint64_t seq)
{
	for (struct dnode **pp = &d->b[dedup_slot(d, ah, seq)]; *pp;
	     pp = &(*pp)->next)
		if ((*pp)->agent_hash == ah && (*pp)->seq == seq) {
			struct dnode *n = *pp;
			*pp = n->next;
			free(n);
			d->n--;
			return;
		}
}
