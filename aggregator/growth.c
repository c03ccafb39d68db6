/*
 * aggregator/growth.c — the growth limits: how many stacks a binary may
 * store for the first time per hour (--max-new-stacks), and how many of a
 * build-id's addresses may wait for symbols (--max-pending).
 *
 * Workload: a misbehaving agent or a binary without symbols (a JIT, a
 * stripped build rebuilt every hour) makes the store grow without bound:
 * new stacks forever, or pending addresses no upload will ever resolve.
 * The check on a batch is one slot lookup; counting happens after each
 * merge from what merge_growth reports, so it costs nothing per sample.
 *
 * Threads: the per-binary slots (grow) are read by submitters and written
 * after a merge, both with the ingest lock (mu) held. The per-build-id
 * estimates are the merger thread's alone; it takes mu only to update the
 * stats. A binary over its limit is refused with EBUSY and a retry after
 * the hour ends; a build-id over its limit keeps its counts, only its new
 * addresses are not queued for symbols (merge_pending_full).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aggregator/ingest_int.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"

#define GROW_SLOTS	  4096
#define PENDING_RECOUNT_S 10

struct grow_slot {
	uint64_t key, hour, count;
};

struct pend_est {
	uint32_t id;
	int full;
	uint64_t est;
	time_t checked;
};

int growth_init(struct growth *g)
{
	*g = (struct growth){0};
	g->grow = calloc(GROW_SLOTS, sizeof *g->grow);
	return g->grow ? FDO_OK : FDO_ENOMEM;
}

void growth_fini(struct growth *g)
{
	free(g->grow);
	free(g->pend);
	fdo_map64_fini(&g->pend_index);
	*g = (struct growth){0};
}

int growth_over(agg_ingest *ing, const struct prep *p, char *why, size_t whylen,
		uint32_t *retry_ms)
{
	if (!ing->o.max_new_stacks || !p->b.nstacks)
		return 0;
	uint64_t h = prep_name_hash(p->b.binary);
	uint64_t secs = (uint64_t)time(NULL);
	const struct grow_slot *g =
		&ing->growth.grow[fdo_mix64(h) & (GROW_SLOTS - 1)];
	if (g->key != h || g->hour != secs / 3600 ||
	    g->count < ing->o.max_new_stacks)
		return 0;
	ingest_count_refusal(ing, FDO_EBUSY);
	ing->stats.growth_limited++;
	snprintf(why, whylen,
		 "binary '%.64s' stored %llu new stacks this "
		 "hour (--max-new-stacks %llu)",
		 p->b.binary, (unsigned long long)g->count,
		 (unsigned long long)ing->o.max_new_stacks);
	*retry_ms = (uint32_t)((3600 - secs % 3600) * 1000);
	return 1;
}

/* Count the stacks each binary stored for the first time. Call with mu
 * held. */
void growth_note(agg_ingest *ing, const struct merge_growth *g)
{
	uint64_t hour = (uint64_t)time(NULL) / 3600;
	for (size_t i = 0; i < g->nbin; i++) {
		struct grow_slot *s =
			&ing->growth.grow[fdo_mix64(g->bin_hash[i]) &
					  (GROW_SLOTS - 1)];
		if (s->key != g->bin_hash[i] || s->hour != hour) {
			s->key = g->bin_hash[i];
			s->hour = hour;
			s->count = 0;
		}
		s->count += g->bin_new[i];
	}
	ing->stats.pending_dropped += g->dropped;
}

/* Pending addresses of build-id id in the store (a range count). */
static uint64_t pending_count(agg_ingest *ing, uint32_t id, char *hex)
{
	store_txn *t;
	uint64_t n = 0;
	hex[0] = 0;
	if (store_txn_begin(ing->st, 0, &t))
		return 0;
	struct store_buildid rec;
	if (store_buildid_get(t, id, &rec) == FDO_OK)
		fdo_hex_encode(rec.build_id, rec.build_id_len, hex);
	store_cursor *c;
	if (store_cursor_open(t, STORE_PENDING, &c) == FDO_OK) {
		uint8_t start[STORE_ADDR_KEY_SIZE];
		struct store_frame f = {id, 0};
		store_addr_key_encode(start, &f);
		const void *k, *v;
		size_t kl, vl;
		int rc = store_cursor_seek(c, start, sizeof start, &k, &kl, &v,
					   &vl);
		while (rc == FDO_OK && !store_addr_key_decode(k, kl, &f) &&
		       f.build_id == id) {
			n++;
			rc = store_cursor_next(c, &k, &kl, &v, &vl);
		}
		store_cursor_close(c);
	}
	store_txn_abort(t);
	return n;
}

/* Recount e; mark it full (or not) and tell the merge. Merger only. */
static void pending_check(agg_ingest *ing, struct pend_est *e)
{
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	e->est = pending_count(ing, e->id, hex);
	e->checked = time(NULL);
	int full = e->est >= ing->o.max_pending;
	if (full == e->full)
		return;
	if (merge_pending_full(ing->merge, e->id, full))
		return;
	e->full = full;
	pthread_mutex_lock(&ing->mu);
	ing->stats.pending_full += full ? 1 : (uint64_t)-1;
	pthread_mutex_unlock(&ing->mu);
	if (full)
		fdo_warn("ingest: build-id %s has %llu addresses waiting for "
			 "symbols (--max-pending %llu): its new addresses are "
			 "not queued for symbolization until it drops below; "
			 "upload its symbols",
			 hex, (unsigned long long)e->est,
			 (unsigned long long)ing->o.max_pending);
	else
		fdo_info("ingest: build-id %s is below --max-pending again "
			 "(%llu addresses waiting)",
			 hex, (unsigned long long)e->est);
}

/* The addresses a merge made pending, per build-id. Merger only. */
void growth_pending(agg_ingest *ing, const struct merge_growth *g)
{
	if (!ing->o.max_pending)
		return;
	for (size_t i = 0; i < g->npending; i++) {
		uint32_t at;
		int found;
		if (fdo_map64_put(&ing->growth.pend_index,
				  (uint64_t)g->pending[i] + 1,
				  (uint32_t)ing->growth.npend, &at, &found))
			return;
		if (!found) {
			if (fdo_grow(ing->growth.pend, ing->growth.cap_pend,
				     ing->growth.npend + 1))
				return; /* the index points past: ignored */
			ing->growth.pend[ing->growth.npend++] =
				(struct pend_est){g->pending[i], 0, 0, 0};
			/* Count what the store holds the first time. */
			ing->growth.pend[at].est = (uint64_t)-1;
		}
		if (at >= ing->growth.npend)
			continue;
		struct pend_est *e = &ing->growth.pend[at];
		e->est = e->est == (uint64_t)-1 ? ing->o.max_pending
						: e->est + g->pending_added[i];
		/* est is an upper bound (resolved addresses are not taken
		 * off): only a recount can tell the limit is reached. */
		if (e->est >= ing->o.max_pending && !e->full)
			pending_check(ing, e);
	}
}

/* Build-ids over the limit: recounted now and then (symbols resolve
 * them). Merger only, when idle. */
void growth_recheck(agg_ingest *ing)
{
	time_t now = time(NULL);
	for (size_t i = 0; i < ing->growth.npend; i++)
		if (ing->growth.pend[i].full &&
		    now - ing->growth.pend[i].checked >= PENDING_RECOUNT_S)
			pending_check(ing, &ing->growth.pend[i]);
}
