/*
 * storage/counts.c — table counts as sorted, immutable runs (since store
 * version 6; layout in storage/codec.c): the chunk codec, the run writer,
 * the one iterator every reader goes through (runs merged by stack id,
 * equal ids summed), compaction, and the upgrade of a version 5 table.
 *
 * Why runs: stack ids are hashes, so the summed updates of a merge land
 * all over a bucket's key range; with one LMDB entry per (bucket, stack)
 * each merge copied and wrote back about one leaf page per updated stack,
 * and cost grew with what was stored, not with what changed. Now a merge
 * writes, per (binary, label set, bucket) it touches, one new run of its
 * summed deltas, sorted by stack id and packed into chunks of at most
 * STORE_RUN_CHUNK_MAX bytes: LMDB writes a chunk as one value (overflow
 * pages written once, sequentially), so a merge dirties about its own
 * bytes / page size. Readers merge a bucket's runs (a handful: compaction
 * keeps them few) and see exactly what one entry per stack held.
 *
 * Compaction (store_counts_compact_*) merges runs of one bucket into a new
 * run, in steps of bounded bytes, each its own write transaction: a step
 * takes the inputs' entries up to some stack id s, writes them summed to
 * the output run, deletes the inputs' chunks that lie wholly at or below
 * s and rewrites the one that straddles it with what is left. After every
 * step a reader sees each stack's entries once (ids <= s in the output,
 * the rest in the inputs), so steps may interleave with merges, readers,
 * a restart. Sums never change, so totals keep their weight and samples
 * (only their entries count shrinks: store_totals_compacted) and aggs
 * rows stay.
 *
 * Memory: a reader holds one cursor and one chunk position per run of the
 * bucket it is on; values are read in place from the map. A compaction
 * step holds its output (<= its byte bound) and one remainder chunk per
 * input before it writes, so the transaction writes only after it read.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "storage/storage_int.h"

#define CHUNK_HDR     8
#define CHUNK_FORMAT  1
#define ENTRY_MAX     40 /* four varints of at most 10 bytes */
#define RUNS_NEXT_KEY "runs.next"
#define COMPACT_KEEP  8	 /* runs left when a bucket has too many */
#define COMPACT_AT    16 /* ... more than this many */

/* --------------------------------------------------------------- keys -- */

void store_run_key_encode(uint8_t out[STORE_RUN_KEY_SIZE],
			  const struct store_run_key *k)
{
	fdo_put_be32(out, k->binary);
	fdo_put_be32(out + 4, k->labelset);
	fdo_put_be32(out + 8, k->bucket);
	fdo_put_be64(out + 12, k->run);
	fdo_put_be32(out + 20, k->chunk);
}

int store_run_key_decode(const void *p, size_t len, struct store_run_key *k)
{
	const uint8_t *b = p;
	if (len != STORE_RUN_KEY_SIZE)
		return FDO_ECORRUPT;
	k->binary = fdo_get_be32(b);
	k->labelset = fdo_get_be32(b + 4);
	k->bucket = fdo_get_be32(b + 8);
	k->run = fdo_get_be64(b + 12);
	k->chunk = fdo_get_be32(b + 20);
	return FDO_OK;
}

static int same_group(const struct store_run_key *a,
		      const struct store_run_key *b)
{
	return a->binary == b->binary && a->labelset == b->labelset &&
	       a->bucket == b->bucket;
}

static void log_corrupt(const struct store_run_key *k, const char *why)
{
	fdo_error("store: counts chunk (binary %u, label set %u, bucket %u, "
		  "run %llu, chunk %u) %s: refused",
		  k->binary, k->labelset, k->bucket, (unsigned long long)k->run,
		  k->chunk, why);
}

/* -------------------------------------------------------------- chunks -- */

/* Varints with the one-byte case inline: an entry's high weight word is
 * 0 and its samples mostly are a byte, and compaction re-encodes every
 * entry of the runs it merges. */
static inline size_t put_uv(uint8_t *out, uint64_t v)
{
	if (v < 0x80) {
		out[0] = (uint8_t)v;
		return 1;
	}
	return store_put_uvarint(out, v);
}

static inline int get_uv(const uint8_t *p, size_t len, size_t *at, uint64_t *v)
{
	if (*at < len && p[*at] < 0x80) {
		*v = p[(*at)++];
		return 1;
	}
	return store_get_uvarint(p, len, at, v);
}

size_t store_chunk_put(uint8_t *out, uint64_t prev, int first,
		       const struct store_count_entry *e)
{
	size_t n = put_uv(out, first ? e->stack : e->stack - prev);
	n += put_uv(out + n, (uint64_t)(e->weight >> 64));
	n += put_uv(out + n, (uint64_t)e->weight);
	n += put_uv(out + n, e->samples);
	return n;
}

void store_chunk_header(uint8_t out[8], uint32_t entries)
{
	out[0] = CHUNK_FORMAT;
	out[1] = out[2] = out[3] = 0;
	fdo_put_be32(out + 4, entries);
}

int store_chunk_open(struct store_chunk_reader *r, const void *p, size_t len)
{
	const uint8_t *b = p;
	memset(r, 0, sizeof *r);
	if (len < CHUNK_HDR || len > STORE_RUN_CHUNK_MAX ||
	    b[0] != CHUNK_FORMAT || b[1] || b[2] || b[3] ||
	    fdo_get_be32(b + 4) == 0)
		return FDO_ECORRUPT;
	r->p = b;
	r->len = len;
	r->at = CHUNK_HDR;
	r->left = fdo_get_be32(b + 4);
	r->first = 1;
	return FDO_OK;
}

int store_chunk_next(struct store_chunk_reader *r, struct store_count_entry *e)
{
	if (!r->left)
		return r->at == r->len ? FDO_ENOT_FOUND : FDO_ECORRUPT;
	uint64_t d, hi, lo, s;
	if (!get_uv(r->p, r->len, &r->at, &d) ||
	    !get_uv(r->p, r->len, &r->at, &hi) ||
	    !get_uv(r->p, r->len, &r->at, &lo) ||
	    !get_uv(r->p, r->len, &r->at, &s))
		return FDO_ECORRUPT;
	if (r->first) {
		e->stack = d;
		r->first = 0;
	} else {
		/* Ids strictly increase: a step of 0 or one past 2^64 is not
		 * a chunk this file wrote. */
		if (!d || d > UINT64_MAX - r->last)
			return FDO_ECORRUPT;
		e->stack = r->last + d;
	}
	r->last = e->stack;
	e->weight = (wire_weight_t)hi << 64 | lo;
	e->samples = s;
	r->left--;
	if (!r->left && r->at != r->len)
		return FDO_ECORRUPT;
	return FDO_OK;
}

int store_chunk_sums(const void *p, size_t len, struct store_totals *sum)
{
	struct store_chunk_reader r;
	struct store_count_entry e;
	memset(sum, 0, sizeof *sum);
	int rc = store_chunk_open(&r, p, len);
	while (!rc && !(rc = store_chunk_next(&r, &e))) {
		if (wire_weight_add(&sum->weight, e.weight))
			return FDO_ECORRUPT;
		sum->samples += e.samples;
		sum->entries++;
	}
	return rc == FDO_ENOT_FOUND ? FDO_OK : rc;
}

/* ---------------------------------------------------------- run writer -- */

struct store_run_writer {
	store_txn *t;		/* NULL: chunks are kept in memory */
	struct store_run_key k; /* key of the chunk being filled */
	uint32_t n;		/* entries in it */
	uint64_t last;		/* last stack id added to the run */
	size_t len;		/* bytes in buf */
	uint64_t entries, bytes, chunks;
	/* Memory mode (compaction's output): chunks written, appended. */
	uint8_t *mem;
	size_t mlen, mcap;
	uint8_t buf[STORE_RUN_CHUNK_MAX];
};

int store_run_writer_open(store_txn *t, store_run_writer **out)
{
	store_run_writer *w = calloc(1, sizeof *w);
	if (!w)
		return FDO_ENOMEM;
	w->t = t;
	*out = w;
	return FDO_OK;
}

void store_run_writer_start(store_run_writer *w, const struct store_run_key *k)
{
	w->k = *k;
	w->n = 0;
	w->len = CHUNK_HDR;
	w->entries = w->bytes = w->chunks = 0;
	w->mlen = 0;
}

static int flush_chunk(store_run_writer *w)
{
	if (!w->n)
		return FDO_OK;
	store_chunk_header(w->buf, w->n);
	int rc;
	if (w->t) {
		uint8_t key[STORE_RUN_KEY_SIZE];
		store_run_key_encode(key, &w->k);
		rc = store_put(w->t, STORE_COUNTS, key, sizeof key, w->buf,
			       w->len, 0);
	} else {
		/* 4-byte length, then the chunk. */
		size_t need = w->mlen + 4 + w->len;
		if (need > w->mcap) {
			size_t cap = w->mcap ? w->mcap : 65536;
			while (cap < need)
				cap *= 2;
			uint8_t *m = realloc(w->mem, cap);
			if (!m)
				return FDO_ENOMEM;
			w->mem = m;
			w->mcap = cap;
		}
		fdo_put_be32(w->mem + w->mlen, (uint32_t)w->len);
		memcpy(w->mem + w->mlen + 4, w->buf, w->len);
		w->mlen = need;
		rc = FDO_OK;
	}
	if (rc)
		return rc;
	w->bytes += w->len;
	w->chunks++;
	w->k.chunk++;
	w->n = 0;
	w->len = CHUNK_HDR;
	return FDO_OK;
}

int store_run_writer_add(store_run_writer *w, const struct store_count_entry *e)
{
	if (w->entries && e->stack <= w->last)
		return FDO_EINVAL;
	if (w->len + ENTRY_MAX > STORE_RUN_CHUNK_MAX) {
		int rc = flush_chunk(w);
		if (rc)
			return rc;
	}
	w->len += store_chunk_put(w->buf + w->len, w->last, w->n == 0, e);
	w->n++;
	w->last = e->stack;
	w->entries++;
	return FDO_OK;
}

int store_run_writer_finish(store_run_writer *w)
{
	return flush_chunk(w);
}

uint64_t store_run_writer_entries(const store_run_writer *w)
{
	return w->entries;
}

uint64_t store_run_writer_bytes(const store_run_writer *w)
{
	return w->bytes + (w->n ? w->len : 0);
}

void store_run_writer_close(store_run_writer *w)
{
	if (w) {
		free(w->mem);
		free(w);
	}
}

int store_run_id_next(store_txn *t, uint64_t *id)
{
	const void *v;
	size_t vl;
	uint64_t next = 1;
	int rc = store_get(t, STORE_META, RUNS_NEXT_KEY,
			   sizeof RUNS_NEXT_KEY - 1, &v, &vl);
	if (rc == FDO_OK) {
		if (vl != 8)
			return FDO_ECORRUPT;
		next = fdo_get_be64(v);
	} else if (rc != FDO_ENOT_FOUND) {
		return rc;
	}
	uint8_t b[8];
	fdo_put_be64(b, next + 1);
	if ((rc = store_put(t, STORE_META, RUNS_NEXT_KEY,
			    sizeof RUNS_NEXT_KEY - 1, b, 8, 0)))
		return rc;
	*id = next;
	return FDO_OK;
}

/* ---------------------------------------------------- merged iterator -- */

/* One run's position: its cursor on the current chunk, the chunk's reader
 * after e, and e, the run's current entry (live). */
struct rpos {
	store_cursor *c;
	struct store_run_key k; /* the current chunk's key */
	struct store_chunk_reader r;
	struct store_count_entry e;
	uint32_t first_chunk; /* the run's first chunk when opened */
	uint64_t taken;	      /* entries taken from it */
	int live;
};

struct store_counts_iter {
	store_txn *t;
	uint8_t prefix[STORE_TOTALS_KEY_SIZE];
	size_t plen;
	store_cursor *scan;
	struct store_run_key g; /* the group being merged */
	uint64_t from;		/* store_counts_iter_from: first stack id */
	int started, done;
	struct rpos *runs;
	size_t nruns, cap;
};

/* Load the chunk the run's cursor is on (key k, value v): FDO_OK with
 * rp->e its first entry, or FDO_ECORRUPT (logged). */
static int rpos_load(struct rpos *rp, const struct store_run_key *k,
		     const void *v, size_t vl, int check_after, uint64_t after)
{
	rp->k = *k;
	int rc = store_chunk_open(&rp->r, v, vl);
	if (!rc)
		rc = store_chunk_next(&rp->r, &rp->e);
	if (!rc && check_after && rp->e.stack <= after)
		rc = FDO_ECORRUPT;
	if (rc) {
		log_corrupt(k, "does not decode");
		return FDO_ECORRUPT;
	}
	rp->live = 1;
	return FDO_OK;
}

/* Move rp to its next entry: within the chunk, or the first of the run's
 * next chunk; live 0 past the run's end. */
static int rpos_next(struct rpos *rp)
{
	uint64_t last = rp->e.stack;
	rp->taken++;
	int rc = store_chunk_next(&rp->r, &rp->e);
	if (rc == FDO_OK)
		return FDO_OK;
	if (rc != FDO_ENOT_FOUND) {
		log_corrupt(&rp->k, "does not decode");
		return FDO_ECORRUPT;
	}
	const void *k, *v;
	size_t kl, vl;
	rc = store_cursor_next(rp->c, &k, &kl, &v, &vl);
	struct store_run_key nk;
	if (rc == FDO_ENOT_FOUND ||
	    (rc == FDO_OK &&
	     (store_run_key_decode(k, kl, &nk) || !same_group(&nk, &rp->k) ||
	      nk.run != rp->k.run))) {
		rp->live = 0;
		return FDO_OK;
	}
	if (rc)
		return rc;
	return rpos_load(rp, &nk, v, vl, 1, last);
}

/* Open the run of g whose first remaining chunk is at key k (the cursor
 * seeks there). */
static int rpos_open(store_txn *t, struct rpos *rp,
		     const struct store_run_key *k)
{
	int rc;
	if (!rp->c && (rc = store_cursor_open(t, STORE_COUNTS, &rp->c)))
		return rc;
	uint8_t key[STORE_RUN_KEY_SIZE];
	store_run_key_encode(key, k);
	const void *kp, *v;
	size_t kl, vl;
	struct store_run_key got;
	rc = store_cursor_seek(rp->c, key, sizeof key, &kp, &kl, &v, &vl);
	rp->taken = 0;
	rp->live = 0;
	if (rc == FDO_ENOT_FOUND)
		return FDO_OK;
	if (rc)
		return rc;
	if (store_run_key_decode(kp, kl, &got) || !same_group(&got, k) ||
	    got.run != k->run)
		return FDO_OK;
	rp->first_chunk = got.chunk;
	return rpos_load(rp, &got, v, vl, 0, 0);
}

/* Move rp to its first entry whose stack id is at least from. Whole chunks
 * are passed over by their first entry alone: when the run's next chunk
 * starts at or before from, nothing of this one is needed. Else the
 * cursor goes back to this chunk (a seek) and its entries are read on. So
 * a bucket's fill resumed at a stack id (aggregator/reduce.c) costs a
 * chunk's first varint per chunk passed, not every entry before it. */
static int rpos_skip(struct rpos *rp, uint64_t from)
{
	while (rp->live && rp->e.stack < from) {
		const void *k, *v;
		size_t kl, vl;
		int rc = store_cursor_next(rp->c, &k, &kl, &v, &vl);
		if (rc && rc != FDO_ENOT_FOUND)
			return rc;
		struct store_run_key nk;
		struct store_chunk_reader r;
		struct store_count_entry f;
		if (rc == FDO_OK && !store_run_key_decode(k, kl, &nk) &&
		    same_group(&nk, &rp->k) && nk.run == rp->k.run &&
		    !store_chunk_open(&r, v, vl) && !store_chunk_next(&r, &f) &&
		    f.stack > rp->e.stack && f.stack <= from) {
			if ((rc = rpos_load(rp, &nk, v, vl, 1, rp->e.stack)))
				return rc;
			continue;
		}
		/* This chunk holds from's place: back to it, and on entry by
		 * entry (rpos_next moves the cursor on at its end). */
		uint8_t key[STORE_RUN_KEY_SIZE];
		store_run_key_encode(key, &rp->k);
		if ((rc = store_cursor_seek(rp->c, key, sizeof key, &k, &kl, &v,
					    &vl)))
			return rc == FDO_ENOT_FOUND ? FDO_ECORRUPT : rc;
		while (rp->live && rp->e.stack < from)
			if ((rc = rpos_next(rp)))
				return rc;
	}
	return FDO_OK;
}

static int grow_runs(struct rpos **runs, size_t *cap, size_t n)
{
	if (n < *cap)
		return FDO_OK;
	size_t nc = *cap ? *cap * 2 : 8;
	struct rpos *r = realloc(*runs, nc * sizeof *r);
	if (!r)
		return FDO_ENOMEM;
	memset(r + *cap, 0, (nc - *cap) * sizeof *r);
	*runs = r;
	*cap = nc;
	return FDO_OK;
}

/* The next group at or after key `from` (a 12-byte group prefix) within
 * the prefix: its runs opened. *found 0 when there is none. */
static int next_group(store_counts_iter *it, const uint8_t from[12], int *found)
{
	*found = 0;
	uint8_t key[STORE_RUN_KEY_SIZE] = {0};
	memcpy(key, from, 12);
	const void *kp, *v;
	size_t kl, vl;
	int rc =
		store_cursor_seek(it->scan, key, sizeof key, &kp, &kl, &v, &vl);
	if (rc == FDO_ENOT_FOUND)
		return FDO_OK;
	if (rc)
		return rc;
	if (kl < it->plen || memcmp(kp, it->prefix, it->plen))
		return FDO_OK;
	struct store_run_key g;
	if (store_run_key_decode(kp, kl, &g)) {
		fdo_error("store: a counts key of %zu bytes: refused", kl);
		return FDO_ECORRUPT;
	}
	it->g = g;
	it->nruns = 0;
	/* Each run of the group: seek past the previous one. */
	for (;;) {
		if ((rc = grow_runs(&it->runs, &it->cap, it->nruns)))
			return rc;
		struct rpos *rp = &it->runs[it->nruns];
		struct store_run_key at = g;
		at.chunk = 0;
		if ((rc = rpos_open(it->t, rp, &at)))
			return rc;
		if (rp->live)
			it->nruns++;
		/* The next run: seek the scan cursor past this run. */
		if (g.run == UINT64_MAX)
			break;
		at.run = g.run + 1;
		store_run_key_encode(key, &at);
		rc = store_cursor_seek(it->scan, key, sizeof key, &kp, &kl, &v,
				       &vl);
		if (rc == FDO_ENOT_FOUND)
			break;
		if (rc)
			return rc;
		struct store_run_key nk;
		if (store_run_key_decode(kp, kl, &nk) || !same_group(&nk, &g))
			break;
		g.run = nk.run;
	}
	*found = 1;
	return FDO_OK;
}

int store_counts_iter_open(store_txn *t, const void *prefix, size_t plen,
			   store_counts_iter **out)
{
	if (plen > STORE_TOTALS_KEY_SIZE || plen % 4)
		return FDO_EINVAL;
	store_counts_iter *it = calloc(1, sizeof *it);
	if (!it)
		return FDO_ENOMEM;
	it->t = t;
	if (plen)
		memcpy(it->prefix, prefix, plen);
	it->plen = plen;
	int rc = store_cursor_open(t, STORE_COUNTS, &it->scan);
	if (rc) {
		free(it);
		return rc;
	}
	*out = it;
	return FDO_OK;
}

/* The big-endian 12-byte successor of a group; 0 when g was the last. */
static int group_after(const struct store_run_key *g, uint8_t out[12])
{
	fdo_put_be32(out, g->binary);
	fdo_put_be32(out + 4, g->labelset);
	fdo_put_be32(out + 8, g->bucket);
	for (int i = 11; i >= 0; i--)
		if (++out[i])
			return 1;
	return 0;
}

int store_counts_iter_next(store_counts_iter *it, struct store_counts_key *k,
			   struct store_weight *w)
{
	int rc;
	for (;;) {
		if (it->done)
			return FDO_ENOT_FOUND;
		if (!it->started) {
			uint8_t from[12] = {0};
			memcpy(from, it->prefix, it->plen);
			int found;
			it->started = 1;
			if ((rc = next_group(it, from, &found)))
				return rc;
			if (!found) {
				it->done = 1;
				continue;
			}
			for (size_t i = 0; it->from && i < it->nruns; i++)
				if ((rc = rpos_skip(&it->runs[i], it->from)))
					return rc;
		}
		/* The smallest current stack id of the group's runs. */
		struct rpos *min = NULL;
		for (size_t i = 0; i < it->nruns; i++)
			if (it->runs[i].live &&
			    (!min || it->runs[i].e.stack < min->e.stack))
				min = &it->runs[i];
		if (!min) {
			uint8_t from[12];
			int found = 0;
			if (group_after(&it->g, from) &&
			    (rc = next_group(it, from, &found)))
				return rc;
			if (!found)
				it->done = 1;
			continue;
		}
		uint64_t id = min->e.stack;
		*k = (struct store_counts_key){it->g.binary, it->g.labelset,
					       it->g.bucket, id};
		memset(w, 0, sizeof *w);
		for (size_t i = 0; i < it->nruns; i++) {
			struct rpos *rp = &it->runs[i];
			if (!rp->live || rp->e.stack != id)
				continue;
			if (wire_weight_add(&w->weight, rp->e.weight))
				return FDO_ELIMIT;
			w->samples += rp->e.samples;
			if ((rc = rpos_next(rp)))
				return rc;
		}
		return FDO_OK;
	}
}

int store_counts_iter_from(store_counts_iter *it, uint64_t from)
{
	if (it->started || it->plen != STORE_TOTALS_KEY_SIZE)
		return FDO_EINVAL;
	it->from = from;
	return FDO_OK;
}

size_t store_counts_iter_runs(const store_counts_iter *it)
{
	return it->nruns;
}

void store_counts_iter_close(store_counts_iter *it)
{
	if (!it)
		return;
	for (size_t i = 0; i < it->cap; i++)
		if (it->runs[i].c)
			store_cursor_close(it->runs[i].c);
	free(it->runs);
	store_cursor_close(it->scan);
	free(it);
}

int store_counts_each(store_txn *t, uint32_t binary, store_counts_fn fn,
		      void *arg)
{
	uint8_t p[4];
	fdo_put_be32(p, binary);
	store_counts_iter *it;
	int rc = store_counts_iter_open(t, p, sizeof p, &it);
	if (rc)
		return rc;
	struct store_counts_key k;
	struct store_weight w;
	while (!(rc = store_counts_iter_next(it, &k, &w)))
		if ((rc = fn(arg, &k, &w)))
			break;
	store_counts_iter_close(it);
	return rc == FDO_ENOT_FOUND ? FDO_OK : rc;
}

/* ------------------------------------------------------ run listings -- */

int store_counts_runs(store_txn *t, const struct store_totals_key *g,
		      struct store_run_info *out, size_t cap, size_t *n)
{
	*n = 0;
	store_cursor *c;
	int rc = store_cursor_open(t, STORE_COUNTS, &c);
	if (rc)
		return rc;
	uint8_t key[STORE_RUN_KEY_SIZE] = {0};
	store_totals_key_encode(key, g);
	const void *kp, *v;
	size_t kl, vl;
	rc = store_cursor_seek(c, key, sizeof key, &kp, &kl, &v, &vl);
	for (; rc == FDO_OK; rc = store_cursor_next(c, &kp, &kl, &v, &vl)) {
		struct store_run_key k;
		if (store_run_key_decode(kp, kl, &k) || k.binary != g->binary ||
		    k.labelset != g->labelset || k.bucket != g->bucket)
			break;
		if (*n && out[*n - 1].run == k.run) {
			out[*n - 1].bytes += vl;
			out[*n - 1].chunks++;
			continue;
		}
		if (*n == cap) {
			rc = FDO_ELIMIT;
			break;
		}
		out[(*n)++] = (struct store_run_info){k.run, vl, 1};
	}
	store_cursor_close(c);
	return rc == FDO_ENOT_FOUND || rc == FDO_OK ? FDO_OK : rc;
}

/* ---------------------------------------------------------- compaction -- */

static int cmp_info_bytes(const void *x, const void *y)
{
	const struct store_run_info *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? -1 : 1;
	return a->run < b->run ? -1 : a->run > b->run;
}

static unsigned tier_of(uint64_t bytes)
{
	unsigned t = 0;
	for (uint64_t c = bytes / STORE_RUN_CHUNK_MAX; c >= 4; c /= 4)
		t++;
	return t;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

int store_counts_compact_plan(store *st, const struct store_totals_key *g,
			      int closed, struct store_compact *job)
{
	memset(job, 0, sizeof *job);
	job->g = *g;
	store_txn *t;
	int rc = store_txn_begin(st, 0, &t);
	if (rc)
		return rc;
	struct store_run_info info[STORE_COMPACT_MAX_IN * 4];
	size_t n = 0;
	rc = store_counts_runs(t, g, info, sizeof info / sizeof *info, &n);
	store_txn_abort(t);
	if (rc == FDO_ELIMIT) { /* more runs than listed: merge those */
		rc = FDO_OK;
	}
	if (rc)
		return rc;
	/* Size-tiered: a run's tier is log4 of its size in chunks; four runs
	 * of one tier are merged into one of the next, so each byte is
	 * rewritten about log4(bucket / chunk) times, and an open bucket has
	 * at most 3 runs a tier. Beyond COMPACT_AT runs (a tier far behind),
	 * the smallest are merged down to COMPACT_KEEP whatever their tiers.
	 * A bucket whose time is over ends as one run. */
	qsort(info, n, sizeof *info, cmp_info_bytes);
	size_t from = 0, take = 0;
	if (closed && n >= 2) {
		take = n;
	} else if (n > COMPACT_AT) {
		take = n - COMPACT_KEEP + 1;
	} else {
		for (size_t i = 0, j; i < n; i = j) {
			unsigned ti = tier_of(info[i].bytes);
			for (j = i + 1; j < n && tier_of(info[j].bytes) == ti;
			     j++)
				;
			if (j - i >= 4) {
				from = i;
				take = j - i;
				break;
			}
		}
	}
	if (take > STORE_COMPACT_MAX_IN)
		take = STORE_COMPACT_MAX_IN;
	if (take < 2)
		return FDO_OK;
	for (size_t i = 0; i < take; i++)
		job->in[i] = info[from + i].run;
	job->nin = take;
	qsort(job->in, take, sizeof *job->in, cmp_u64);
	return FDO_OK;
}

struct step {
	struct store_compact *job;
	size_t max_bytes;
	/* results, applied to job after the commit */
	uint64_t out;
	uint32_t out_chunk;
	int done;
	uint64_t bytes, in_entries, out_entries;
};

static int compact_txn(store_txn *t, void *arg)
{
	struct step *s = arg;
	struct store_compact *job = s->job;
	struct rpos *in = calloc(job->nin, sizeof *in);
	store_run_writer *w = NULL;
	uint8_t *rem = NULL; /* remainder chunks, STORE_RUN_CHUNK_MAX each */
	int rc = in ? FDO_OK : FDO_ENOMEM;
	s->out = job->out;
	s->out_chunk = job->out_chunk;
	s->done = 0;
	s->bytes = s->in_entries = s->out_entries = 0;
	for (size_t i = 0; i < job->nin && !rc; i++) {
		struct store_run_key k = {job->g.binary, job->g.labelset,
					  job->g.bucket, job->in[i], 0};
		rc = rpos_open(t, &in[i], &k);
	}
	if (!rc)
		rc = store_run_writer_open(NULL, &w);
	if (!rc && !s->out)
		rc = store_run_id_next(t, &s->out);
	if (rc)
		goto out;
	struct store_run_key ok = {job->g.binary, job->g.labelset,
				   job->g.bucket, s->out, s->out_chunk};
	store_run_writer_start(w, &ok);
	/* Phase 1, reading only: the inputs merged into w's memory. */
	for (;;) {
		struct rpos *min = NULL;
		for (size_t i = 0; i < job->nin; i++)
			if (in[i].live &&
			    (!min || in[i].e.stack < min->e.stack))
				min = &in[i];
		if (!min)
			break;
		if (store_run_writer_bytes(w) >= s->max_bytes)
			break;
		struct store_count_entry sum = {min->e.stack, 0, 0};
		for (size_t i = 0; i < job->nin && !rc; i++) {
			if (!in[i].live || in[i].e.stack != sum.stack)
				continue;
			if (wire_weight_add(&sum.weight, in[i].e.weight))
				rc = FDO_ELIMIT;
			sum.samples += in[i].e.samples;
			s->in_entries++;
			if (!rc)
				rc = rpos_next(&in[i]);
		}
		if (!rc)
			rc = store_run_writer_add(w, &sum);
		if (rc)
			goto out;
	}
	if ((rc = store_run_writer_finish(w)))
		goto out;
	s->out_entries = store_run_writer_entries(w);
	/* What is left of each input's current chunk, re-encoded. */
	rem = malloc(job->nin * (size_t)STORE_RUN_CHUNK_MAX);
	size_t *remlen = calloc(job->nin ? job->nin : 1, sizeof *remlen);
	if (!rem || !remlen) {
		free(remlen);
		rc = FDO_ENOMEM;
		goto out;
	}
	int any_left = 0;
	for (size_t i = 0; i < job->nin && !rc; i++) {
		if (!in[i].live)
			continue;
		any_left = 1;
		uint8_t *b = rem + i * (size_t)STORE_RUN_CHUNK_MAX;
		size_t len = CHUNK_HDR;
		uint32_t cnt = 0;
		uint64_t prev = 0;
		struct store_count_entry e = in[i].e;
		for (;;) {
			len += store_chunk_put(b + len, prev, cnt == 0, &e);
			prev = e.stack;
			cnt++;
			int r2 = store_chunk_next(&in[i].r, &e);
			if (r2 == FDO_ENOT_FOUND)
				break;
			if (r2) {
				log_corrupt(&in[i].k, "does not decode");
				rc = FDO_ECORRUPT;
				break;
			}
		}
		store_chunk_header(b, cnt);
		remlen[i] = len;
	}
	/* Phase 2, writing: the output's chunks, then the inputs' consumed
	 * chunks deleted and their straddling chunk rewritten. */
	for (size_t at = 0; !rc && at < w->mlen;) {
		size_t len = fdo_get_be32(w->mem + at);
		uint8_t key[STORE_RUN_KEY_SIZE];
		store_run_key_encode(key, &ok);
		rc = store_put(t, STORE_COUNTS, key, sizeof key,
			       w->mem + at + 4, len, 0);
		ok.chunk++;
		at += 4 + len;
		s->bytes += len;
	}
	for (size_t i = 0; i < job->nin && !rc; i++) {
		/* Chunks [first, current) are consumed; the current one too
		 * when the run ended (then: every chunk up to its last). */
		uint32_t end = in[i].k.chunk;
		for (uint32_t c = in[i].first_chunk; !rc && c < end; c++) {
			struct store_run_key dk = in[i].k;
			dk.chunk = c;
			uint8_t key[STORE_RUN_KEY_SIZE];
			store_run_key_encode(key, &dk);
			rc = store_del(t, STORE_COUNTS, key, sizeof key);
			if (rc == FDO_ENOT_FOUND)
				rc = FDO_OK;
		}
		if (rc || !in[i].taken)
			continue;
		uint8_t key[STORE_RUN_KEY_SIZE];
		store_run_key_encode(key, &in[i].k);
		if (in[i].live)
			rc = store_put(t, STORE_COUNTS, key, sizeof key,
				       rem + i * (size_t)STORE_RUN_CHUNK_MAX,
				       remlen[i], 0);
		else
			rc = store_del(t, STORE_COUNTS, key, sizeof key);
	}
	free(remlen);
	if (!rc && s->in_entries > s->out_entries)
		rc = store_totals_compacted(t, &job->g,
					    s->in_entries - s->out_entries);
	s->out_chunk = ok.chunk;
	s->done = !any_left;
out:
	for (size_t i = 0; in && i < job->nin; i++)
		if (in[i].c)
			store_cursor_close(in[i].c);
	free(in);
	free(rem);
	store_run_writer_close(w);
	return rc;
}

int store_counts_compact_step(store *st, struct store_compact *job,
			      size_t max_bytes, int *done)
{
	struct step s = {job, max_bytes ? max_bytes : 1, 0, 0, 0, 0, 0, 0};
	*done = 0;
	/* What a step holds, at most: its output (doubling buffer) and a
	 * remainder chunk per input, in the budget's merge part. */
	uint64_t held = 2 * (s.max_bytes + 2 * (uint64_t)STORE_RUN_CHUNK_MAX) +
			job->nin * (uint64_t)STORE_RUN_CHUNK_MAX;
	fdo_mem_take(FDO_MEM_MERGE, held);
	/* Derived: a step changes no sum, so no profile (no generation). */
	int rc = store_write_derived(st, compact_txn, &s);
	fdo_mem_give(FDO_MEM_MERGE, held);
	if (rc)
		return rc;
	job->out = s.out;
	job->out_chunk = s.out_chunk;
	job->steps++;
	job->bytes += s.bytes;
	job->merged += s.in_entries - s.out_entries;
	*done = s.done;
	return FDO_OK;
}

/* ------------------------------------------------ upgrade from v5 ----- */

/*
 * Each (binary, label set, bucket) of the version 5 table (one entry per
 * stack, in stack id order) becomes one run of table counts, written
 * chunk by chunk as the old table is read; the old table is then dropped.
 * Entries whose key or value do not decode are left out, as every reader
 * of version 5 skipped them.
 */
int store_counts_upgrade_v5(store_txn *t, MDB_dbi old, uint64_t *groups,
			    uint64_t *entries)
{
	*groups = *entries = 0;
	MDB_cursor *c;
	int mrc = mdb_cursor_open(t->txn, old, &c);
	if (mrc)
		return store_mdb_err(t, mrc, "open the version 5 counts");
	store_run_writer *w;
	int rc = store_run_writer_open(t, &w);
	if (rc) {
		mdb_cursor_close(c);
		return rc;
	}
	uint64_t run = 0;
	struct store_counts_key cur = {0};
	int open = 0;
	MDB_val k, v;
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc && !rc;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct store_counts_key ck;
		struct store_weight wt;
		if (store_counts_key_decode(k.mv_data, k.mv_size, &ck) ||
		    store_weight_decode(v.mv_data, v.mv_size, &wt))
			continue;
		if (!open || ck.binary != cur.binary ||
		    ck.labelset != cur.labelset || ck.bucket != cur.bucket) {
			if (open && (rc = store_run_writer_finish(w)))
				break;
			if (!run && (rc = store_run_id_next(t, &run)))
				break;
			struct store_run_key rk = {ck.binary, ck.labelset,
						   ck.bucket, run, 0};
			store_run_writer_start(w, &rk);
			cur = ck;
			open = 1;
			++*groups;
		}
		struct store_count_entry e = {ck.stack, wt.weight, wt.samples};
		rc = store_run_writer_add(w, &e);
		++*entries;
	}
	if (!rc && open)
		rc = store_run_writer_finish(w);
	store_run_writer_close(w);
	mdb_cursor_close(c);
	if (!rc && mrc != MDB_NOTFOUND)
		rc = store_mdb_err(t, mrc, "read the version 5 counts");
	if (!rc && (mrc = mdb_drop(t->txn, old, 1)))
		rc = store_mdb_err(t, mrc, "drop the version 5 counts");
	return rc;
}
