/*
 * aggregator/merge.c — logged batches become aggregated counts in LMDB.
 *
 * Workload: the merger applies whatever the WAL writer logged since its
 * last merge — tens to hundreds of batches, ~1,000 stacks each, 95% of
 * them stacks the store already holds. Everything of one merge happens in
 * one write transaction (with the WAL position it reached, so a crash
 * replays exactly what is not in the store):
 *   - interning of agents, binaries, label sets, hosts and build-ids;
 *   - the exactly-once record of every batch (table batches);
 *   - stacks new to the store, and their addresses that have neither a
 *     symcache nor a pending entry (which become pending), collected from
 *     all batches first and then looked up and written in key order;
 *   - the counts (and branches) of all batches summed in memory first,
 *     then read-modify-written in key order, so a stack seen in a hundred
 *     batches costs one update and neighbouring keys share B-tree pages;
 *   - the totals of each (binary, label set, bucket) those counts fall in
 *     (table totals: what readiness and /v1/binaries read), by what the
 *     counts gained. Retention takes away from them what it deletes, in
 *     the same transaction as the deletion.
 * In-memory sets of stack ids and addresses known to be in the store save
 * most lookups; they are lossy (cleared when full) and only ever grow
 * after a commit, so correctness never depends on them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/chsink.h"
#include "aggregator/idset.h"
#include "aggregator/ingest_int.h"
#include "aggregator/keysort.h"
#include "aggregator/reduce.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"
#include "common/mem.h"

/* Slots of the known-stacks set (the addresses' has half: a build-id's
 * addresses are bounded by its code, stacks are not); a set is cleared at
 * 3/4 full. 2^21 slots held 1.5M stacks: over 60 s of the ingest bench
 * (2.4M distinct stacks) the stack set was cleared and refilled over and
 * over, sending stacks the store had back through put_new_stacks: 2^22
 * cost 32 MiB more and took fdod's CPU per batch from 1.72 to 1.42-1.53
 * ms. A fleet's store holds more (bench/ingest --fleet: 4-5M distinct
 * stacks after its 5-minute warm-up), hence 2^23. */
#define KNOWN_MAX (1u << 23)

int deltas_note(struct deltas *ds, uint32_t binary, uint32_t labelset,
		uint32_t bucket, wire_weight_t weight, uint64_t samples,
		uint64_t entries)
{
	struct totals_delta *x = ds->n ? &ds->v[ds->n - 1] : NULL;
	if (!x || x->k.binary != binary || x->k.labelset != labelset ||
	    x->k.bucket != bucket) {
		if (fdo_grow(ds->v, ds->cap, ds->n + 1))
			return FDO_ENOMEM;
		x = &ds->v[ds->n++];
		memset(x, 0, sizeof *x);
		x->k = (struct store_totals_key){binary, labelset, bucket};
	}
	if (wire_weight_add(&x->d.weight, weight))
		return FDO_ELIMIT;
	x->d.samples += samples;
	x->d.entries += entries;
	return FDO_OK;
}

int deltas_apply(store_txn *t, const struct deltas *ds, int sub)
{
	int rc = FDO_OK;
	for (size_t i = 0; i < ds->n && !rc; i++)
		rc = store_totals_add(t, &ds->v[i].k, &ds->v[i].d, sub);
	return rc;
}

struct vec64 {
	uint64_t *v;
	size_t n, cap;
};

static int vec_push(struct vec64 *a, uint64_t x)
{
	if (fdo_grow(a->v, a->cap, a->n + 1))
		return FDO_ENOMEM;
	a->v[a->n++] = x;
	return FDO_OK;
}

struct merge {
	struct entries counts, branches;
	struct deltas totals; /* what the counts add to table totals */
	/* Stacks not known to be stored ({id, prep index, stack index}) and
	 * their addresses not known to be pending or symbolized ({build-id,
	 * offset}): looked up and written in key order (put_new_stacks). */
	struct entries stack_cands, addr_cands;
	struct idset known_stacks, known_addrs;
	struct vec64 new_stacks, new_addrs; /* to add after the commit */
	uint32_t *pending;		    /* build-ids with new pending */
	uint64_t *pending_added;	    /* ... how many new each */
	size_t npending, cap_pending, cap_added;
	uint64_t *bin_hash, *bin_new; /* binaries with new stacks */
	size_t nbin, cap_bin, cap_bin_new;
	/* Build-ids over the pending limit (key id + 1): their new addresses
	 * are not made pending; counted in dropped. */
	struct fdo_map64 full;
	uint64_t dropped;
	/* the current call */
	struct prep **preps;
	size_t n;
	uint64_t now;
	/* The fill of table aggs between merges (merge_fill_step): the run
	 * being computed (fill_k, from totals row fill_seen), the memory it
	 * holds (charged to FDO_MEM_BUILDS), where the scan of table totals
	 * for runs without rows goes on, and when it starts over. */
	struct red_fill *fill;
	struct store_totals_key fill_k;
	struct store_totals fill_seen;
	size_t fill_mem;
	uint8_t fill_pos[STORE_TOTALS_KEY_SIZE];
	int fill_have_pos;
	uint64_t fill_rescan; /* fdo_now_ns() */
	uint32_t fill_width;  /* the buckets' */
	uint64_t fill_calm;   /* fdo_now_ns() before which merges into
				 buckets that are over start no scan: a run
				 went stale under the fill lately */
	/* runs given up (too large for the fill's memory, or failing), with
	 * the totals row they had: not begun again until it changes */
	struct fill_skip {
		struct store_totals_key k;
		struct store_totals seen;
	} *fill_skip;
	size_t nfill_skip, cap_fill_skip;
	uint64_t fill_bucket; /* the bucket of the last scan's start */
	struct merge_fill_stats fill_stats;
	chsink *sink; /* --store clickhouse://: each merge's copy; or NULL */
};

int merge_create(size_t known, struct merge **out)
{
	struct merge *m = calloc(1, sizeof *m);
	if (!m)
		return FDO_ENOMEM;
	m->known_stacks.cap = known ? known : KNOWN_MAX;
	m->known_addrs.cap = m->known_stacks.cap / 2;
	m->sink = chsink_global();
	*out = m;
	return FDO_OK;
}

void merge_destroy(struct merge *m)
{
	if (!m)
		return;
	free(m->counts.v);
	free(m->branches.v);
	free(m->totals.v);
	free(m->stack_cands.v);
	free(m->addr_cands.v);
	free(m->stack_cands.tmp);
	free(m->addr_cands.tmp);
	idset_fini(&m->known_stacks);
	idset_fini(&m->known_addrs);
	free(m->new_stacks.v);
	free(m->new_addrs.v);
	free(m->pending);
	free(m->pending_added);
	free(m->bin_hash);
	free(m->bin_new);
	fdo_map64_fini(&m->full);
	free(m->counts.tmp);
	free(m->branches.tmp);
	red_fill_free(m->fill);
	fdo_mem_give(FDO_MEM_BUILDS, m->fill_mem);
	free(m->fill_skip);
	free(m);
}

/* ------------------------------------------------- the fill of aggs -- */

/* Rows of table totals looked at per step for a run without rows. */
#define FILL_SCAN_ROWS 4096
/* After a scan found nothing more to fill: the next one. */
#define FILL_RESCAN_NS (60 * 1000000000ull)
/* A bucket is filled once it ended this long ago (late batches of the
 * hour that just ended arrive in its first minute). */
#define FILL_SETTLE_S 60
/* Runs given up that are remembered (the oldest forgotten first). */
#define FILL_SKIP_MAX 1024

/* The fill is a build like a pull's (server/profiles.c): it begins a
 * run only while no profile is being made (the builds part holds
 * nothing: pulls go first), and gives it up when it would take the part
 * past its cap (a pull is refused while the part is full); no cap, no
 * limit. */
static uint64_t fill_limit(void)
{
	uint64_t cap = fdo_mem_cap(FDO_MEM_BUILDS);
	return cap ? cap : UINT64_MAX;
}

static int same_totals(const struct store_totals *a,
		       const struct store_totals *b)
{
	return a->weight == b->weight && a->samples == b->samples &&
	       a->entries == b->entries;
}

static int fill_skipped(const struct merge *m, const struct store_totals_key *k,
			const struct store_totals *v)
{
	for (size_t i = 0; i < m->nfill_skip; i++) {
		const struct fill_skip *x = &m->fill_skip[i];
		if (x->k.binary == k->binary && x->k.labelset == k->labelset &&
		    x->k.bucket == k->bucket && same_totals(&x->seen, v))
			return 1;
	}
	return 0;
}

/* The run being filled, given up until its totals row changes. */
static void fill_skip(struct merge *m)
{
	if (m->nfill_skip == FILL_SKIP_MAX) {
		memmove(m->fill_skip, m->fill_skip + 1,
			(FILL_SKIP_MAX - 1) * sizeof *m->fill_skip);
		m->nfill_skip--;
	}
	if (!fdo_grow(m->fill_skip, m->cap_fill_skip, m->nfill_skip + 1))
		m->fill_skip[m->nfill_skip++] =
			(struct fill_skip){m->fill_k, m->fill_seen};
}

static void fill_drop(struct merge *m)
{
	red_fill_free(m->fill);
	m->fill = NULL;
	fdo_mem_give(FDO_MEM_BUILDS, m->fill_mem);
	m->fill_mem = 0;
}

/* The next run over whose rows are missing or of another totals row:
 * m->fill begun for it (or none found in this step's rows). */
static int fill_find(struct merge *m, store_txn *t, uint32_t width,
		     uint64_t now, uint64_t deadline)
{
	store_cursor *c;
	int rc = store_cursor_open(t, STORE_TOTALS, &c);
	if (rc)
		return rc;
	const void *kp, *vp;
	size_t kl, vl;
	int crc = m->fill_have_pos
			  ? store_cursor_seek(c, m->fill_pos,
					      sizeof m->fill_pos, &kp, &kl, &vp,
					      &vl)
			  : store_cursor_seek(c, NULL, 0, &kp, &kl, &vp, &vl);
	if (crc == FDO_OK && m->fill_have_pos && kl == sizeof m->fill_pos &&
	    !memcmp(kp, m->fill_pos, kl))
		crc = store_cursor_next(c, &kp, &kl, &vp, &vl);
	for (unsigned rows = 0; crc == FDO_OK && !rc; rows++) {
		if (rows == FILL_SCAN_ROWS || fdo_now_ns() >= deadline)
			break;
		struct store_totals_key k;
		struct store_totals v;
		if (kl == sizeof m->fill_pos &&
		    !store_totals_key_decode(kp, kl, &k) &&
		    !store_totals_decode(vp, vl, &v)) {
			memcpy(m->fill_pos, kp, kl);
			m->fill_have_pos = 1;
			int over = (uint64_t)k.bucket + width + FILL_SETTLE_S <=
				   now;
			int have = over && v.entries
					   ? store_aggs_have(t, &k, &v)
					   : FDO_OK;
			if ((have == FDO_ENOT_FOUND || have == FDO_ECORRUPT) &&
			    !fill_skipped(m, &k, &v)) {
				if (!(rc = red_fill_begin(&k, &m->fill))) {
					m->fill_k = k;
					m->fill_seen = v;
				}
				break;
			}
		}
		crc = store_cursor_next(c, &kp, &kl, &vp, &vl);
	}
	store_cursor_close(c);
	if (!rc && crc == FDO_ENOT_FOUND) {
		/* Every row looked at: the next scan from the start, later. */
		m->fill_have_pos = 0;
		m->fill_rescan = fdo_now_ns() + FILL_RESCAN_NS;
	}
	return rc || crc == FDO_ENOT_FOUND ? rc : crc;
}

static int fill_put(store_txn *t, void *arg)
{
	struct store_aggs_run *run = arg;
	int stale;
	int rc = store_aggs_run_put(t, run, &stale);
	return rc ? rc : stale ? FDO_ECORRUPT : FDO_OK;
}

int merge_fill_step(struct merge *m, store *st, uint32_t width, uint64_t now,
		    uint64_t deadline)
{
	m->fill_width = width;
	/* A bucket ended since the last scan began: a scan now. */
	if (width && now / width != m->fill_bucket && !m->fill_have_pos)
		m->fill_rescan = 0;
	if (!m->fill &&
	    (fdo_now_ns() < m->fill_rescan || fdo_mem_used(FDO_MEM_BUILDS) > 0))
		return 0;
	if (!m->fill && !m->fill_have_pos && width)
		m->fill_bucket = now / width;
	store_txn *t;
	if (store_txn_begin(st, 0, &t))
		return 0;
	int rc = FDO_OK, done = 0;
	if (!m->fill) {
		rc = fill_find(m, t, width, now, deadline);
	} else {
		/* Still the run it began with? (Counts that change between
		 * steps change its totals row.) */
		uint8_t key[STORE_TOTALS_KEY_SIZE];
		store_totals_key_encode(key, &m->fill_k);
		const void *v;
		size_t vl;
		struct store_totals now_row;
		if (store_get(t, STORE_TOTALS, key, sizeof key, &v, &vl) ||
		    store_totals_decode(v, vl, &now_row) ||
		    now_row.weight != m->fill_seen.weight ||
		    now_row.samples != m->fill_seen.samples ||
		    now_row.entries != m->fill_seen.entries) {
			m->fill_stats.stale++;
			m->fill_calm = fdo_now_ns() + FILL_RESCAN_NS;
			fill_drop(m);
		} else {
			rc = red_fill_step(m->fill, t, deadline, &done);
		}
	}
	store_txn_abort(t);
	if (m->fill && !rc) {
		size_t b = red_fill_bytes(m->fill);
		uint64_t others = fdo_mem_used(FDO_MEM_BUILDS) - m->fill_mem;
		if (others + b > fill_limit()) {
			/* Past the builds part's cap: given up (a pull
			 * computes the run) until the run changes. */
			m->fill_stats.skipped++;
			fdo_debug("ingest: leaf and pair sums of binary %u, "
				  "label set %u, bucket %u: given up at %zu "
				  "bytes (the builds part's cap)",
				  m->fill_k.binary, m->fill_k.labelset,
				  m->fill_k.bucket, b);
			fill_skip(m);
			fill_drop(m);
			done = 0;
		} else if (b > m->fill_mem) {
			fdo_mem_take(FDO_MEM_BUILDS, b - m->fill_mem);
		} else {
			fdo_mem_give(FDO_MEM_BUILDS, m->fill_mem - b);
		}
		if (m->fill)
			m->fill_mem = b;
	}
	if (m->fill && !rc && done) {
		struct store_aggs_run run;
		struct store_totals_key k = m->fill_k;
		rc = red_fill_encode(m->fill, &m->fill_seen, &run);
		fill_drop(m);
		m->fill_k = k;
		if (!rc)
			rc = store_write_derived(st, fill_put, &run);
		store_aggs_run_fini(&run);
		if (rc == FDO_ECORRUPT) {
			m->fill_stats.stale++;
			m->fill_calm = fdo_now_ns() + FILL_RESCAN_NS;
			rc = FDO_OK;
		} else if (!rc) {
			m->fill_stats.runs++;
			fdo_debug("ingest: leaf and pair sums of binary %u, "
				  "label set %u, bucket %u stored",
				  m->fill_k.binary, m->fill_k.labelset,
				  m->fill_k.bucket);
		}
	}
	if (rc) {
		/* This run is left to the pulls (too large, out of memory or
		 * the store failing); the scan goes on after it. */
		m->fill_stats.failed++;
		fdo_debug("ingest: computing the leaf and pair sums of a "
			  "bucket: %s",
			  fdo_strerror(rc));
		fill_skip(m);
		fill_drop(m);
	}
	return m->fill || m->fill_have_pos;
}

void merge_fill_stats(const struct merge *m, struct merge_fill_stats *s)
{
	*s = m->fill_stats;
}

static int note_pending(struct merge *m, uint32_t id)
{
	for (size_t i = 0; i < m->npending; i++)
		if (m->pending[i] == id) {
			m->pending_added[i]++;
			return FDO_OK;
		}
	if (fdo_grow(m->pending, m->cap_pending, m->npending + 1) ||
	    fdo_grow(m->pending_added, m->cap_added, m->npending + 1))
		return FDO_ENOMEM;
	m->pending_added[m->npending] = 1;
	m->pending[m->npending++] = id;
	return FDO_OK;
}

/* One more stack stored for the first time, of the binary named name. */
static int note_new_stack(struct merge *m, const char *name)
{
	uint64_t h = prep_name_hash(name);
	for (size_t i = 0; i < m->nbin; i++)
		if (m->bin_hash[i] == h) {
			m->bin_new[i]++;
			return FDO_OK;
		}
	if (fdo_grow(m->bin_hash, m->cap_bin, m->nbin + 1) ||
	    fdo_grow(m->bin_new, m->cap_bin_new, m->nbin + 1))
		return FDO_ENOMEM;
	m->bin_hash[m->nbin] = h;
	m->bin_new[m->nbin++] = 1;
	return FDO_OK;
}

int merge_pending_full(struct merge *m, uint32_t id, int full)
{
	uint32_t v;
	int found;
	if (full)
		return fdo_map64_put(&m->full, (uint64_t)id + 1, 1, &v, &found);
	if (!fdo_map64_get(&m->full, (uint64_t)id + 1, &v))
		return FDO_OK;
	/* No delete in the map: rebuild it without id (a handful of ids). */
	struct fdo_map64 keep = {0};
	for (size_t i = 0; i < m->full.cap; i++)
		if (m->full.keys[i] && m->full.keys[i] != (uint64_t)id + 1 &&
		    fdo_map64_put(&keep, m->full.keys[i], 1, &v, &found)) {
			fdo_map64_fini(&keep);
			return FDO_ENOMEM;
		}
	fdo_map64_fini(&m->full);
	m->full = keep;
	return FDO_OK;
}

void merge_growth(const struct merge *m, struct merge_growth *g)
{
	g->dropped = m->dropped;
	g->bin_hash = m->bin_hash;
	g->bin_new = m->bin_new;
	g->nbin = m->nbin;
	g->pending = m->pending;
	g->pending_added = m->pending_added;
	g->npending = m->npending;
}

static uint64_t addr_token(uint32_t build_id, uint64_t offset)
{
	return fdo_mix64(offset ^ fdo_mix64(build_id)) | 1;
}

/* Record the batch's host among the binary's hosts (table hosts); the
 * last-seen time is kept to the minute, so most batches write nothing. */
static int note_host(store_txn *t, uint32_t binary, const struct prep *p)
{
	uint32_t host;
	int rc = store_intern_string(t, p->b.host, strlen(p->b.host), 1, &host);
	if (rc)
		return rc;
	uint8_t key[STORE_HOSTS_KEY_SIZE], val[STORE_HOSTS_VAL_SIZE];
	store_hosts_key_encode(key, binary, host);
	const void *v;
	size_t vl;
	struct store_host h = {p->b.time_end, p->b.time_end}, h0;
	rc = store_get(t, STORE_HOSTS, key, sizeof key, &v, &vl);
	if (rc == FDO_OK && !store_hosts_decode(v, vl, &h0)) {
		if (h0.first <= h.first && h0.last + 60 > h.last)
			return FDO_OK;
		h.first = h0.first < h.first ? h0.first : h.first;
		h.last = h0.last > h.last ? h0.last : h.last;
	} else if (rc != FDO_OK && rc != FDO_ENOT_FOUND)
		return rc;
	store_hosts_encode(val, &h);
	return store_put(t, STORE_HOSTS, key, sizeof key, val, sizeof val, 0);
}

/* First/last seen of the build-ids that carry samples, to the minute. */
static int note_buildids(store_txn *t, uint32_t binary, const struct prep *p)
{
	uint8_t *used = calloc(p->b.nmaps ? p->b.nmaps : 1, 1);
	if (!used)
		return FDO_ENOMEM;
	for (size_t k = 0; k < p->b.nframes; k++)
		used[p->b.frames[k].map] = 1;
	/* A replayed stack without frames may use any mapping. */
	for (size_t k = 0; k < p->b.nstacks; k++)
		if (!p->b.stacks[k].n) {
			memset(used, 1, p->b.nmaps);
			break;
		}
	/* Which build-id is the binary itself: the mapping of a file named
	 * like the binary; failing that, the object of the first stack's
	 * leaf (a guess: it may be a library). */
	int named = 0;
	for (size_t i = 0; i < p->b.nmaps; i++)
		named |= p->b.maps[i].main;
	int rc = FDO_OK;
	for (size_t i = 0; i < p->b.nmaps && !rc; i++) {
		if (!used[i] && !p->b.maps[i].main)
			continue;
		struct store_buildid rec;
		if ((rc = store_buildid_get(t, p->b.maps[i].id, &rec)))
			break;
		int dirty = 0;
		if (!rec.binary &&
		    (named ? p->b.maps[i].main
			   : p->b.nstacks && p->b.stacks[0].n &&
				     p->b.frames[p->b.stacks[0].first].map ==
					     i)) {
			rec.binary = binary;
			dirty = 1;
		}
		if (store_buildid_widen(&rec, p->b.time_end, 60))
			dirty = 1;
		if (dirty)
			rc = store_buildid_put(t, p->b.maps[i].id, &rec);
	}
	free(used);
	return rc;
}

#define KNOWN_AHEAD 16 /* stacks */

static int apply_prep(struct merge *m, store_txn *t, size_t pi)
{
	struct prep *p = m->preps[pi];
	uint32_t agent, binary, labelset;
	int rc;
	if ((rc = store_intern_string(t, p->b.agent, strlen(p->b.agent), 1,
				      &agent)))
		return rc;
	uint8_t bkey[STORE_BATCHES_KEY_SIZE];
	store_batches_key_encode(bkey, agent, p->b.seq);
	const void *v;
	size_t vl;
	rc = store_get(t, STORE_BATCHES, bkey, sizeof bkey, &v, &vl);
	/* Already stored: counted once. The WAL writer renews its read
	 * snapshot when a merge ended, so a retry should not get here any
	 * more (before that, one resent while its original was being merged
	 * was acknowledged as new and dropped here: the store stayed exact,
	 * the Ack did not); the store stays the final arbiter all the same. */
	if (rc == FDO_OK)
		return FDO_OK;
	if (rc != FDO_ENOT_FOUND)
		return rc;
	if ((rc = store_intern_binary(t, p->b.binary, strlen(p->b.binary), 1,
				      &binary)) ||
	    (rc = store_intern_labelset(t, p->b.labels, strlen(p->b.labels), 1,
					&labelset)))
		return rc;
	for (size_t i = 0; i < p->b.nmaps; i++)
		if ((rc = store_intern_buildid(t, p->b.maps[i].build_id,
					       p->b.maps[i].build_id_len, 1,
					       &p->b.maps[i].id)))
			return rc;
	/* A host counts towards a binary's hosts (and min_hosts) only when it
	 * contributed samples: a batch of no stacks is no evidence. */
	if ((p->b.nstacks && (rc = note_host(t, binary, p))) ||
	    (rc = note_buildids(t, binary, p)))
		return rc;
	wire_weight_t unit = (wire_weight_t)p->b.period * p->b.wq;
	uint64_t accepted = 0;
	/* Only stacks that carry frames are looked up (the others' frames
	 * were logged before): their slots are fetched KNOWN_AHEAD stacks
	 * ahead, not all at once (a thousand misses at once are more than
	 * the core keeps in flight). */
	for (size_t i = 0; i < p->b.nstacks && i < KNOWN_AHEAD; i++)
		if (p->b.stacks[i].n)
			idset_prefetch(&m->known_stacks, p->b.stacks[i].id);
	for (size_t i = 0; i < p->b.nstacks; i++) {
		const struct store_walstack *s = &p->b.stacks[i];
		if (i + KNOWN_AHEAD < p->b.nstacks && s[KNOWN_AHEAD].n)
			idset_prefetch(&m->known_stacks, s[KNOWN_AHEAD].id);
		uint64_t cand[4] = {s->id, pi, i, 0};
		if (s->n && !idset_has(&m->known_stacks, s->id) &&
		    (rc = entries_add(&m->stack_cands, cand, 0, 0)))
			return rc;
		uint64_t key[4] = {(uint64_t)binary << 32 | labelset,
				   p->b.bucket, s->id, 0};
		if ((rc = entries_add(&m->counts, key, unit * s->samples,
				      s->samples)))
			return rc;
		accepted += s->samples;
	}
	for (size_t i = 0; i < p->b.nbranches; i++) {
		const struct store_walbranch *pb = &p->b.branches[i];
		uint64_t key[4] = {(uint64_t)binary << 32 | labelset,
				   (uint64_t)p->b.bucket << 32 |
					   p->b.maps[pb->map].id,
				   pb->from, pb->to};
		if ((rc = entries_add(&m->branches, key, unit * pb->samples,
				      pb->samples)))
			return rc;
	}
	uint8_t bval[STORE_BATCHES_VAL_SIZE];
	store_batches_encode(bval, &(struct store_batch){m->now, accepted, 0,
							 p->digest});
	return store_put(t, STORE_BATCHES, bkey, sizeof bkey, bval, sizeof bval,
			 0);
}

/*
 * A stack not known to be in the store: written with its frames, through
 * c (on table stacks) unless it is there already; its addresses that are
 * not known to be pending or symbolized become candidates (addr_cands).
 * A stack found already stored had its addresses seen to when it was
 * written, so they are not looked at again.
 */
static int put_stack(struct merge *m, store_cursor *c, const struct prep *p,
		     const struct store_walstack *s)
{
	struct store_frame f[STORE_STACK_MAX_FRAMES];
	uint64_t tok[STORE_STACK_MAX_FRAMES];
	size_t n = s->n > STORE_STACK_MAX_FRAMES ? STORE_STACK_MAX_FRAMES
						 : s->n;
	for (size_t k = 0; k < n; k++) {
		const struct store_walframe *pf = &p->b.frames[s->first + k];
		f[k].build_id = p->b.maps[pf->map].id;
		f[k].offset = pf->offset;
		tok[k] = addr_token(f[k].build_id, f[k].offset);
		idset_prefetch(&m->known_addrs, tok[k]);
	}
	uint8_t key[STORE_STACK_KEY_SIZE];
	uint8_t val[STORE_STACK_MAX_FRAMES * STORE_FRAME_SIZE];
	size_t vlen;
	int rc = store_stack_encode(f, n, val, sizeof val, &vlen);
	if (rc)
		return rc;
	store_stack_key_encode(key, s->id);
	rc = store_cursor_put(c, key, sizeof key, val, vlen, STORE_NOOVERWRITE);
	if (rc != FDO_OK && rc != FDO_EEXISTS)
		return rc;
	int stored = rc == FDO_EEXISTS;
	if ((rc = vec_push(&m->new_stacks, s->id)) || stored)
		return rc;
	if ((rc = note_new_stack(m, p->b.binary)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		uint64_t k[4] = {f[i].build_id, f[i].offset, 0, 0};
		if (!idset_has(&m->known_addrs, tok[i]))
			rc = entries_add(&m->addr_cands, k, 0, 0);
	}
	return rc;
}

/* Move c to key: FDO_OK with the entry's value when key is there (c on it),
 * FDO_ENOT_FOUND when not (c on the next key, if any), or an error. */
static int seek_exact(store_cursor *c, const uint8_t *key, size_t klen,
		      const void **v, size_t *vl)
{
	const void *k;
	size_t kl;
	int rc = store_cursor_seek(c, key, klen, &k, &kl, v, vl);
	if (rc == FDO_OK && (kl != klen || memcmp(k, key, klen)))
		rc = FDO_ENOT_FOUND;
	return rc;
}

/*
 * Make each candidate address pending unless it is pending or symbolized
 * already. Candidates are sorted, so each distinct address is looked up
 * once, and in key order through two cursors.
 */
static int note_new_addrs(struct merge *m, store_txn *t)
{
	struct entries *a = &m->addr_cands;
	int rc = bucket_sort_entries(a);
	if (rc || !a->n)
		return rc;
	store_cursor *sym = NULL, *pend = NULL;
	if ((rc = store_cursor_open(t, STORE_SYMCACHE, &sym)) ||
	    (rc = store_cursor_open(t, STORE_PENDING, &pend)))
		goto out;
	for (size_t i = 0; i < a->n && !rc; i++) {
		const struct entry *e = &a->v[i];
		if (i && !entry_less(&a->v[i - 1], e))
			continue; /* the same address again */
		struct store_frame f = {(uint32_t)e->k[0], e->k[1]};
		uint8_t ak[STORE_ADDR_KEY_SIZE];
		store_addr_key_encode(ak, &f);
		const void *v;
		size_t vl;
		rc = seek_exact(sym, ak, sizeof ak, &v, &vl);
		uint32_t full;
		if (rc == FDO_ENOT_FOUND && m->full.n &&
		    fdo_map64_get(&m->full, (uint64_t)f.build_id + 1, &full)) {
			/* Over --max-pending: not queued for symbols. */
			m->dropped++;
			rc = FDO_OK;
		} else if (rc == FDO_ENOT_FOUND) { /* not symbolized */
			rc = store_cursor_put(pend, ak, sizeof ak, "", 0,
					      STORE_NOOVERWRITE);
			if (rc == FDO_OK)
				rc = note_pending(m, f.build_id);
			else if (rc == FDO_EEXISTS)
				rc = FDO_OK;
		}
		if (!rc)
			rc = vec_push(&m->new_addrs,
				      addr_token(f.build_id, f.offset));
	}
out:
	store_cursor_close(sym);
	store_cursor_close(pend);
	return rc;
}

#define PREFETCH_AHEAD 4 /* candidates */

/* The first frames of candidate e's stack (most stacks: all of them). */
static void prefetch_frames(const struct merge *m, const struct entry *e)
{
	const struct prep *p = m->preps[e->k[1]];
	const struct store_walstack *s = &p->b.stacks[e->k[2]];
	const char *f = (const char *)&p->b.frames[s->first];
	size_t bytes = s->n * sizeof *p->b.frames;
	for (size_t at = 0; at < bytes && at < 4 * 64; at += 64)
		__builtin_prefetch(f + at);
}

/*
 * Write the candidate stacks, then make their addresses pending. Stack
 * ids are hashes and addresses are spread over tables of millions of
 * entries: looked up one by one as the batches came, nearly every lookup
 * descended to a leaf page out of cache (over 60 s of the ingest bench,
 * the merger's largest cost); in key order, most land on the page the
 * cursor is on. A stack in several batches of the merge is written once.
 */
static int put_new_stacks(struct merge *m, store_txn *t)
{
	struct entries *c = &m->stack_cands;
	int rc = bucket_sort_entries(c);
	if (rc)
		return rc;
	if (c->n) {
		store_cursor *cur;
		if ((rc = store_cursor_open(t, STORE_STACKS, &cur)))
			return rc;
		for (size_t i = 0; i < c->n && !rc; i++) {
			const struct entry *e = &c->v[i];
			/* In id order the candidates' stacks and frames are
			 * all over the merge's batches, out of cache: fetch
			 * them a few candidates ahead (the stack further
			 * ahead, as its frames' place is read from it). */
			if (i + 2 * PREFETCH_AHEAD < c->n) {
				const struct entry *a =
					&c->v[i + 2 * PREFETCH_AHEAD];
				__builtin_prefetch(
					&m->preps[a->k[1]]->b.stacks[a->k[2]]);
			}
			if (i + PREFETCH_AHEAD < c->n)
				prefetch_frames(m, &c->v[i + PREFETCH_AHEAD]);
			if (i && c->v[i - 1].k[0] == e->k[0])
				continue;
			const struct prep *p = m->preps[e->k[1]];
			rc = put_stack(m, cur, p, &p->b.stacks[e->k[2]]);
		}
		store_cursor_close(cur);
	}
	return rc ? rc : note_new_addrs(m, t);
}

/* The LMDB key of a branches map key (layout in storage/codec.c). */
static size_t encode_key(enum store_table table, const uint64_t *k,
			 uint8_t *out)
{
	(void)table;
	struct store_branches_key bk = {
		(uint32_t)(k[0] >> 32), (uint32_t)k[0], (uint32_t)(k[1] >> 32),
		(uint32_t)k[1],		k[2],		k[3]};
	store_branches_key_encode(out, &bk);
	return STORE_BRANCHES_KEY_SIZE;
}

/*
 * Counts: per (binary, label set, bucket) the merge touches, one new run
 * of its summed deltas, sorted by stack id (storage/counts.c). Nothing is
 * read back: a run's chunks are written whole, sequentially, so the merge
 * dirties about its own bytes / page size whatever the store holds. The
 * totals row of each gains the run's sums and its entries (a stack in two
 * runs of a bucket counts twice until compaction merges them).
 */
static int flush_runs(store_txn *t, struct entries *e, struct deltas *totals)
{
	int rc = bucket_sort_entries(e);
	if (rc || e->n == 0)
		return rc;
	uint64_t run;
	store_run_writer *w;
	if ((rc = store_run_id_next(t, &run)) ||
	    (rc = store_run_writer_open(t, &w)))
		return rc;
	wire_weight_t gw = 0;
	uint64_t gs = 0;
	for (size_t i = 0, j; i < e->n && !rc; i = j) {
		const struct entry *s = &e->v[i];
		/* One merge sums at most a million entries of bounded
		 * weights: far from 2^128 (see schemas/README.md). */
		struct store_count_entry ce = {s->k[2], s->weight, s->samples};
		for (j = i + 1; j < e->n && !entry_less(s, &e->v[j]); j++) {
			ce.weight += e->v[j].weight;
			ce.samples += e->v[j].samples;
		}
		if (i == 0 || s->k[0] != e->v[i - 1].k[0] ||
		    s->k[1] != e->v[i - 1].k[1]) {
			struct store_run_key rk = {(uint32_t)(s->k[0] >> 32),
						   (uint32_t)s->k[0],
						   (uint32_t)s->k[1], run, 0};
			store_run_writer_start(w, &rk);
			gw = 0;
			gs = 0;
		}
		if (wire_weight_add(&gw, ce.weight)) {
			rc = FDO_ELIMIT;
			break;
		}
		gs += ce.samples;
		if ((rc = store_run_writer_add(w, &ce)))
			break;
		if (j == e->n || s->k[0] != e->v[j].k[0] ||
		    s->k[1] != e->v[j].k[1]) {
			if (!(rc = store_run_writer_finish(w)))
				rc = deltas_note(totals,
						 (uint32_t)(s->k[0] >> 32),
						 (uint32_t)s->k[0],
						 (uint32_t)s->k[1], gw, gs,
						 store_run_writer_entries(w));
		}
	}
	store_run_writer_close(w);
	return rc;
}

/* Sum the entries of each key and read-modify-write it into table, in key
 * order through one cursor, so neighbouring keys share B-tree pages and
 * most lookups search only the page the cursor is on. With totals (table
 * counts), what each (binary, label set, bucket) gained is noted there,
 * for the caller to apply. */
static int flush_entries(store_txn *t, struct entries *e,
			 enum store_table table, struct deltas *totals)
{
	int rc = bucket_sort_entries(e);
	if (rc || e->n == 0)
		return rc;
	store_cursor *c;
	if ((rc = store_cursor_open(t, table, &c)))
		return rc;
	for (size_t i = 0, j; i < e->n && !rc; i = j) {
		const struct entry *s = &e->v[i];
		/* One merge sums at most a million entries of bounded
		 * weights: far from 2^128 (see schemas/README.md). */
		wire_weight_t sum = s->weight;
		uint64_t samples = s->samples;
		for (j = i + 1; j < e->n && !entry_less(s, &e->v[j]); j++) {
			sum += e->v[j].weight;
			samples += e->v[j].samples;
		}
		uint8_t key[32];
		size_t klen = encode_key(table, s->k, key);
		struct store_weight cur = {0};
		const void *v;
		size_t vl;
		unsigned flags = 0;
		uint64_t added = 0;
		rc = seek_exact(c, key, klen, &v, &vl);
		if (rc == FDO_OK) {
			if ((rc = store_weight_decode(v, vl, &cur)))
				break;
			flags = STORE_CURRENT;
		} else if (rc == FDO_ENOT_FOUND) {
			rc = FDO_OK;
			added = 1;
		} else {
			break;
		}
		if (wire_weight_add(&cur.weight, sum)) {
			rc = FDO_ELIMIT;
			break;
		}
		cur.samples += samples;
		uint8_t val[STORE_WEIGHT_VAL_SIZE];
		store_weight_encode(val, &cur);
		rc = store_cursor_put(c, key, klen, val, sizeof val, flags);
		if (!rc && totals)
			rc = deltas_note(totals, (uint32_t)(s->k[0] >> 32),
					 (uint32_t)s->k[0], (uint32_t)s->k[1],
					 sum, samples, added);
	}
	store_cursor_close(c);
	return rc;
}

static int apply_all(store_txn *t, void *arg)
{
	struct merge *m = arg;
	int rc;
	/* store_write may call again from scratch after growing the map. */
	m->counts.n = 0;
	m->branches.n = 0;
	m->totals.n = 0;
	m->new_stacks.n = 0;
	m->new_addrs.n = 0;
	m->npending = 0;
	m->nbin = 0;
	m->dropped = 0;
	m->stack_cands.n = 0;
	m->addr_cands.n = 0;
	for (size_t i = 0; i < m->n; i++)
		if ((rc = apply_prep(m, t, i)))
			return rc;
	if ((rc = put_new_stacks(m, t)) ||
	    (rc = flush_runs(t, &m->counts, &m->totals)) ||
	    (rc = deltas_apply(t, &m->totals, 0)) ||
	    (rc = flush_entries(t, &m->branches, STORE_BRANCHES, NULL)) ||
	    (m->sink && (rc = chsink_stage(m->sink, t, m->preps, &m->counts,
					   &m->stack_cands))))
		return rc;
	return store_wal_applied_put(t, m->preps[m->n - 1]->wal_end);
}

int merge_apply(struct merge *m, store *st, struct prep **preps, size_t n,
		uint64_t now, const uint32_t **pending, size_t *npending)
{
	m->preps = preps;
	m->n = n;
	m->now = now;
	/* ClickHouse behind: the merge waits, the batches stay logged. */
	int rc = m->sink ? chsink_room(m->sink) : FDO_OK;
	if (rc || (rc = store_write(st, apply_all, m)))
		return rc;
	if (m->sink)
		chsink_committed(m->sink);
	for (size_t i = 0; i < m->new_stacks.n; i++)
		idset_add(&m->known_stacks, m->new_stacks.v[i]);
	for (size_t i = 0; i < m->new_addrs.n; i++)
		idset_add(&m->known_addrs, m->new_addrs.v[i]);
	*pending = m->pending;
	*npending = m->npending;
	/* Counts of a bucket that is over changed (a late batch): its rows
	 * went with them, so the fill looks again at once (unless a run
	 * went stale under it lately: late batches still come). */
	for (size_t i = 0;
	     i < m->totals.n && m->fill_rescan && fdo_now_ns() >= m->fill_calm;
	     i++)
		if (!m->fill_width ||
		    (uint64_t)m->totals.v[i].k.bucket + m->fill_width <= now)
			m->fill_rescan = 0;
	fdo_mem_set(FDO_MEM_MERGE, entries_bytes(&m->counts) +
					   entries_bytes(&m->branches) +
					   entries_bytes(&m->stack_cands) +
					   entries_bytes(&m->addr_cands) +
					   idset_bytes(&m->known_stacks) +
					   idset_bytes(&m->known_addrs));
	return FDO_OK;
}

void merge_touched(const struct merge *m, const struct store_totals_key **k,
		   size_t *n, size_t *stride)
{
	*k = m->totals.n ? &m->totals.v[0].k : NULL;
	*n = m->totals.n;
	*stride = sizeof m->totals.v[0];
}
