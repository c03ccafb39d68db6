/*
 * storage/aggs.c — table aggs: per run (binary, label set, bucket) of
 * counts and per leaf build-id, the exact sums of the stacks' weights by
 * leaf frame and by caller->callee pair of adjacent frames, which is all
 * the compile-time profiles read of the stacks. Layout in storage/codec.c.
 *
 * Workload: a profile pull reads the runs of its window whose bucket is
 * over from here (a few thousand to a few million records each, read
 * sequentially) instead of every stack of them, and the first pull that
 * needs a run computes it from the stacks (aggregator/reduce.c) and
 * writes it through store_aggs_run_put. A run's rows are deleted by
 * store_totals_add whenever its totals row changes (a late batch,
 * retention), in the same transaction, so what is here always describes
 * the counts beside it; the header row also records the totals row the
 * run was computed from, and a reader that finds another one ignores the
 * rows (store_aggs_read: FDO_ECORRUPT).
 *
 * A run is encoded in memory first, as the rows it will be, so that the
 * builder reads a run it just computed through the same decoder as a
 * stored one: what a pull sums is the same bytes either way. A value is
 * at most CHUNK_MAX bytes: four pages of LMDB's overflow, a run of free
 * pages short enough to be found in a fragmented file.
 * The decoder never allocates and checks everything before it visits
 * anything: a hostile or damaged row costs a scan of the stacks, nothing
 * more.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/buf.h"
#include "storage/storage_int.h"

#define AGGS_FORMAT    1
#define RUN_HDR_SIZE   40
#define PART_HDR_SIZE  56
#define CHUNK_HDR_SIZE 3
/* Bytes of a chunk's value: with LMDB's 16-byte page header, four 4 KiB
 * overflow pages exactly. Values that stay on leaf pages (below ~2 KiB)
 * took a page each once B-tree splits left pages half full: twice the
 * bytes (docs/scale.md). */
#define CHUNK_MAX	 16368
#define RECORD_MAX	 50 /* the longest record (a pair) */
#define ROW_PREFIX	 (4 + STORE_AGGS_KEY_SIZE)
#define KIND_LEAVES	 1
#define KIND_PAIRS	 2
#define MAX_PARTITIONS	 (1u << 20)
#define MAX_PART_RECORDS ((uint64_t)1 << 32)

/* ------------------------------------------------------------ words -- */

static void put_weight128(uint8_t *p, wire_weight_t w)
{
	fdo_put_be64(p, (uint64_t)(w >> 64));
	fdo_put_be64(p + 8, (uint64_t)w);
}

static wire_weight_t get_weight128(const uint8_t *p)
{
	return (wire_weight_t)fdo_get_be64(p) << 64 | fdo_get_be64(p + 8);
}

/* ---------------------------------------------------------- the map -- */

void store_map_forget(const struct store_map *m, const void *p, size_t len)
{
	uintptr_t lo = m->lo, hi = m->hi, a = (uintptr_t)p, b = a + len;
	if (!len || a < lo || b > hi)
		return; /* not of the map (a run encoded in memory) */
	a &= ~(STORE_MAP_WINDOW - 1);
	b = (b + STORE_MAP_WINDOW - 1) & ~(STORE_MAP_WINDOW - 1);
	if (a < lo)
		a = lo;
	if (b > hi)
		b = hi;
	(void)madvise((void *)a, b - a, MADV_DONTNEED);
}

void store_map_read(struct store_map *m, size_t len)
{
	if (!m->hi || (m->read += len) < STORE_MAP_BATCH)
		return;
	m->read = 0;
	(void)madvise((void *)m->lo, m->hi - m->lo, MADV_DONTNEED);
}

/* The mapping of the store's file in /proc/self/maps: LMDB does not say
 * where its map is. */
void store_map_of(store_txn *t, struct store_map *m)
{
	uintptr_t *lo = &m->lo, *hi = &m->hi;
	*lo = *hi = 0;
	m->looked = 1;
	int fd;
	struct stat st;
	if (!t || mdb_env_get_fd(t->s->env, &fd) || fstat(fd, &st))
		return;
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	while (f && fgets(line, sizeof line, f)) {
		unsigned long a, b, ino;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %*x %x:%x %lu", &a, &b, perms,
			   &maj, &min, &ino) == 6 &&
		    ino == (unsigned long)st.st_ino &&
		    makedev(maj, min) == st.st_dev && perms[3] == 's' &&
		    b > a) {
			*lo = a;
			*hi = b;
			break;
		}
		while (!strchr(line, '\n') && fgets(line, sizeof line, f))
			; /* the rest of a long line */
	}
	if (f)
		fclose(f);
}

/* ----------------------------------------------------------- encoder -- */

void store_aggs_run_init(struct store_aggs_run *r,
			 const struct store_totals_key *k,
			 const struct store_totals *seen)
{
	memset(r, 0, sizeof *r);
	r->k = *k;
	r->seen = *seen;
	r->part_at = r->chunk_at = SIZE_MAX;
}

void store_aggs_run_fini(struct store_aggs_run *r)
{
	free(r->buf);
	memset(r, 0, sizeof *r);
}

/* Appends a row of key (k, bid, chunk) and vlen value bytes (written by
 * the caller at the returned offset + ROW_PREFIX); SIZE_MAX on error. */
static size_t row_open(struct store_aggs_run *r, uint32_t bid, uint32_t chunk,
		       size_t vlen)
{
	size_t need = r->len + ROW_PREFIX + vlen;
	if (need > (r->max ? r->max : STORE_AGGS_RUN_MAX)) {
		r->err = FDO_ELIMIT;
		return SIZE_MAX;
	}
	if (need > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < need)
			cap *= 2;
		uint8_t *nb = realloc(r->buf, cap);
		if (!nb) {
			r->err = FDO_ENOMEM;
			return SIZE_MAX;
		}
		r->buf = nb;
		r->cap = cap;
	}
	size_t at = r->len;
	fdo_put_be32(r->buf + at, (uint32_t)vlen);
	struct store_aggs_key key = {r->k.binary, r->k.labelset, r->k.bucket,
				     bid, chunk};
	store_aggs_key_encode(r->buf + at + 4, &key);
	r->len = need;
	return at;
}

static void chunk_close(struct store_aggs_run *r)
{
	if (r->chunk_at == SIZE_MAX)
		return;
	uint8_t *row = r->buf + r->chunk_at;
	fdo_put_be32(row, (uint32_t)(r->len - r->chunk_at - ROW_PREFIX));
	uint8_t *v = row + ROW_PREFIX;
	v[1] = (uint8_t)(r->chunk_records >> 8);
	v[2] = (uint8_t)r->chunk_records;
	r->chunk_at = SIZE_MAX;
}

/* Makes room for one more record of kind in the open chunk, opening a new
 * chunk when there is none, it is of the other kind or it is full. */
static int chunk_room(struct store_aggs_run *r, uint8_t kind)
{
	if (r->chunk_at != SIZE_MAX && r->kind == kind &&
	    r->len - r->chunk_at - ROW_PREFIX + RECORD_MAX <= CHUNK_MAX)
		return FDO_OK;
	chunk_close(r);
	size_t at = row_open(r, r->part.leaf_bid, ++r->chunk, CHUNK_HDR_SIZE);
	if (at == SIZE_MAX)
		return r->err;
	/* Grow once for the chunk's records, then append in place. */
	if (r->cap - r->len < CHUNK_MAX) {
		size_t need = r->len + CHUNK_MAX;
		size_t cap = r->cap * 2 > need ? r->cap * 2 : need;
		uint8_t *nb = realloc(r->buf, cap);
		if (!nb)
			return r->err = FDO_ENOMEM;
		r->buf = nb;
		r->cap = cap;
	}
	if (r->len + CHUNK_MAX > (r->max ? r->max : STORE_AGGS_RUN_MAX))
		return r->err = FDO_ELIMIT;
	r->buf[at + ROW_PREFIX] = kind;
	r->chunk_at = at;
	r->kind = kind;
	r->chunk_records = 0;
	r->base_leaf = 0;
	r->base_callee = r->base_caller = (struct store_frame){0, 0};
	return FDO_OK;
}

/* Ends the open partition: its counts must be as declared. */
static int part_close(struct store_aggs_run *r)
{
	if (r->part_at == SIZE_MAX)
		return FDO_OK;
	chunk_close(r);
	if (r->leaves_done != r->part.nleaves ||
	    r->pairs_done != r->part.npairs)
		return r->err = FDO_EINVAL;
	fdo_put_be32(r->buf + r->part_at + ROW_PREFIX + 4, r->chunk);
	r->part_at = SIZE_MAX;
	return FDO_OK;
}

int store_aggs_run_part(struct store_aggs_run *r,
			const struct store_aggs_part *part)
{
	if (r->err)
		return r->err;
	uint32_t prev = r->part_at != SIZE_MAX || r->nparts ? r->part.leaf_bid
							    : 0;
	if (part_close(r))
		return r->err;
	if (part->leaf_bid <= prev || part->nleaves >= MAX_PART_RECORDS ||
	    part->npairs >= MAX_PART_RECORDS || r->nparts >= MAX_PARTITIONS)
		return r->err = FDO_EINVAL;
	if (!r->buf && row_open(r, 0, 0, RUN_HDR_SIZE) == SIZE_MAX)
		return r->err;
	size_t at = row_open(r, part->leaf_bid, 0, PART_HDR_SIZE);
	if (at == SIZE_MAX)
		return r->err;
	uint8_t *v = r->buf + at + ROW_PREFIX;
	memset(v, 0, PART_HDR_SIZE);
	v[0] = AGGS_FORMAT;
	fdo_put_be64(v + 8, part->nleaves);
	fdo_put_be64(v + 16, part->npairs);
	put_weight128(v + 24, part->weight);
	fdo_put_be64(v + 40, part->samples);
	fdo_put_be64(v + 48, part->stacks);
	r->part = *part;
	r->part_at = at;
	r->nparts++;
	r->chunk = 0;
	r->leaves_done = r->pairs_done = 0;
	return FDO_OK;
}

static void put_weight_varints(struct store_aggs_run *r, wire_weight_t w)
{
	r->len += store_put_uvarint(r->buf + r->len, (uint64_t)(w >> 64));
	r->len += store_put_uvarint(r->buf + r->len, (uint64_t)w);
}

int store_aggs_run_leaf(struct store_aggs_run *r, uint64_t offset,
			wire_weight_t weight, uint64_t samples)
{
	if (r->err)
		return r->err;
	if (r->part_at == SIZE_MAX || r->leaves_done >= r->part.nleaves ||
	    r->pairs_done || (r->leaves_done && offset <= r->last_leaf))
		return r->err = FDO_EINVAL;
	if (chunk_room(r, KIND_LEAVES))
		return r->err;
	r->len += store_put_uvarint(r->buf + r->len, offset - r->base_leaf);
	put_weight_varints(r, weight);
	r->len += store_put_uvarint(r->buf + r->len, samples);
	r->base_leaf = r->last_leaf = offset;
	r->chunk_records++;
	r->leaves_done++;
	return FDO_OK;
}

static int frame_cmp(const struct store_frame *a, const struct store_frame *b)
{
	if (a->build_id != b->build_id)
		return a->build_id < b->build_id ? -1 : 1;
	return a->offset < b->offset ? -1 : a->offset > b->offset;
}

/* A frame as the step from base: the build-id's step, then the offset's
 * step when the build-id is the same, else the offset whole. */
static void put_frame_step(struct store_aggs_run *r,
			   const struct store_frame *f,
			   const struct store_frame *base)
{
	uint32_t db = f->build_id - base->build_id;
	r->len += store_put_uvarint(r->buf + r->len, db);
	r->len += store_put_uvarint(r->buf + r->len,
				    db ? f->offset : f->offset - base->offset);
}

int store_aggs_run_pair(struct store_aggs_run *r,
			const struct store_frame *callee,
			const struct store_frame *caller, wire_weight_t weight)
{
	if (r->err)
		return r->err;
	int ce = r->pairs_done ? frame_cmp(callee, &r->last_callee) : 1;
	if (r->part_at == SIZE_MAX || r->pairs_done >= r->part.npairs ||
	    r->leaves_done != r->part.nleaves || !callee->build_id ||
	    !caller->build_id || ce < 0 ||
	    (ce == 0 && frame_cmp(caller, &r->last_caller) <= 0))
		return r->err = FDO_EINVAL;
	if (chunk_room(r, KIND_PAIRS))
		return r->err;
	/* The callee as a step from the chunk's last callee (never 0 in a
	 * chunk's first record: build-id ids start at 1); the caller as a
	 * step from the last caller of the same callee, else whole. */
	int same = r->chunk_records && !frame_cmp(callee, &r->base_callee);
	put_frame_step(r, callee, &r->base_callee);
	put_frame_step(r, caller,
		       same ? &r->base_caller : &(struct store_frame){0, 0});
	put_weight_varints(r, weight);
	r->base_callee = r->last_callee = *callee;
	r->base_caller = r->last_caller = *caller;
	r->chunk_records++;
	r->pairs_done++;
	return FDO_OK;
}

int store_aggs_run_finish(struct store_aggs_run *r)
{
	if (r->err)
		return r->err;
	if (part_close(r))
		return r->err;
	if (!r->buf && row_open(r, 0, 0, RUN_HDR_SIZE) == SIZE_MAX)
		return r->err;
	uint8_t *v = r->buf + ROW_PREFIX;
	memset(v, 0, RUN_HDR_SIZE);
	v[0] = AGGS_FORMAT;
	fdo_put_be32(v + 4, r->nparts);
	put_weight128(v + 8, r->seen.weight);
	fdo_put_be64(v + 24, r->seen.samples);
	fdo_put_be64(v + 32, r->seen.entries);
	return FDO_OK;
}

/* ----------------------------------------------------------- decoder -- */

/* The rows of a run, from a cursor on the table or from memory (in key
 * order either way). */
struct rows {
	store_cursor *c;
	const uint8_t *buf;
	size_t len, at; /* memory: the current row's offset */
	struct store_aggs_key k;
	const uint8_t *v;
	size_t vl;
	int have; /* on a row that decodes as a key of the table */
};

static int rows_take(struct rows *rs, int crc, const void *k, size_t kl,
		     const void *v, size_t vl)
{
	rs->have = 0;
	if (crc == FDO_ENOT_FOUND)
		return FDO_OK;
	if (crc)
		return crc;
	if (store_aggs_key_decode(k, kl, &rs->k))
		return FDO_ECORRUPT;
	rs->v = v;
	rs->vl = vl;
	rs->have = 1;
	return FDO_OK;
}

static int rows_mem(struct rows *rs)
{
	if (rs->at + ROW_PREFIX > rs->len)
		return rows_take(rs, FDO_ENOT_FOUND, NULL, 0, NULL, 0);
	size_t vl = fdo_get_be32(rs->buf + rs->at);
	if (vl > rs->len - rs->at - ROW_PREFIX)
		return FDO_ECORRUPT;
	return rows_take(rs, FDO_OK, rs->buf + rs->at + 4, STORE_AGGS_KEY_SIZE,
			 rs->buf + rs->at + ROW_PREFIX, vl);
}

/* The first row at or after key. */
static int rows_seek(struct rows *rs, const struct store_aggs_key *key)
{
	uint8_t kb[STORE_AGGS_KEY_SIZE];
	store_aggs_key_encode(kb, key);
	if (rs->c) {
		const void *k, *v;
		size_t kl, vl;
		int crc = store_cursor_seek(rs->c, kb, sizeof kb, &k, &kl, &v,
					    &vl);
		return rows_take(rs, crc, k, kl, v, vl);
	}
	for (rs->at = 0;;
	     rs->at += ROW_PREFIX + fdo_get_be32(rs->buf + rs->at)) {
		int rc = rows_mem(rs);
		if (rc || !rs->have ||
		    memcmp(rs->buf + rs->at + 4, kb, sizeof kb) >= 0)
			return rc;
	}
}

static int rows_next(struct rows *rs)
{
	if (rs->c) {
		const void *k, *v;
		size_t kl, vl;
		int crc = store_cursor_next(rs->c, &k, &kl, &v, &vl);
		return rows_take(rs, crc, k, kl, v, vl);
	}
	rs->at += ROW_PREFIX + rs->vl;
	return rows_mem(rs);
}

static int same_run(const struct rows *rs, const struct store_totals_key *k)
{
	return rs->have && rs->k.binary == k->binary &&
	       rs->k.labelset == k->labelset && rs->k.bucket == k->bucket;
}

/* store_get_uvarint (storage/storage_int.h), a one-byte value first:
 * the decoder's inner loop reads millions of them per pull. */
static inline int get_uv(const uint8_t *p, size_t len, size_t *at, uint64_t *v)
{
	if (*at < len && p[*at] < 0x80) {
		*v = p[(*at)++];
		return 1;
	}
	return store_get_uvarint(p, len, at, v);
}

static int get_frame_step(const uint8_t *p, size_t len, size_t *at,
			  const struct store_frame *base, struct store_frame *f)
{
	uint64_t db, off;
	if (!get_uv(p, len, at, &db) || !get_uv(p, len, at, &off) ||
	    db > UINT32_MAX - base->build_id)
		return 0;
	f->build_id = base->build_id + (uint32_t)db;
	if (db) {
		f->offset = off;
	} else {
		if (off > UINT64_MAX - base->offset)
			return 0;
		f->offset = base->offset + off;
	}
	return 1;
}

static int get_weight_varints(const uint8_t *p, size_t len, size_t *at,
			      wire_weight_t *w)
{
	uint64_t hi, lo;
	if (!get_uv(p, len, at, &hi) || !get_uv(p, len, at, &lo))
		return 0;
	*w = (wire_weight_t)hi << 64 | lo;
	return 1;
}

/* One chunk's records, checked against the partition's order (ps), and
 * visited when v is set. */
struct part_state {
	uint32_t bid;
	uint64_t leaves, pairs;
	uint64_t last_leaf;
	struct store_frame last_callee, last_caller;
};

static int decode_chunk(const uint8_t *p, size_t len, struct part_state *ps,
			const struct store_aggs_part *hdr,
			const struct store_aggs_visit *v)
{
	if (len < CHUNK_HDR_SIZE || len > CHUNK_MAX ||
	    (p[0] != KIND_LEAVES && p[0] != KIND_PAIRS))
		return FDO_ECORRUPT;
	unsigned n = (unsigned)p[1] << 8 | p[2];
	size_t at = CHUNK_HDR_SIZE;
	uint64_t base_leaf = 0;
	struct store_frame zero = {0, 0}, base_callee = zero,
			   base_caller = zero;
	int rc;
	for (unsigned i = 0; i < n; i++) {
		wire_weight_t w;
		if (p[0] == KIND_LEAVES) {
			uint64_t d, samples;
			if (ps->pairs || ps->leaves >= hdr->nleaves ||
			    !get_uv(p, len, &at, &d) ||
			    d > UINT64_MAX - base_leaf ||
			    !get_weight_varints(p, len, &at, &w) ||
			    !get_uv(p, len, &at, &samples))
				return FDO_ECORRUPT;
			struct store_frame f = {ps->bid, base_leaf + d};
			if (ps->leaves && f.offset <= ps->last_leaf)
				return FDO_ECORRUPT;
			base_leaf = ps->last_leaf = f.offset;
			ps->leaves++;
			if (v && v->leaf &&
			    (rc = v->leaf(v->arg, &f, w, samples)))
				return rc;
			continue;
		}
		struct store_frame ce, cr;
		if (ps->leaves != hdr->nleaves || ps->pairs >= hdr->npairs ||
		    !get_frame_step(p, len, &at, &base_callee, &ce))
			return FDO_ECORRUPT;
		int same = i && ce.build_id == base_callee.build_id &&
			   ce.offset == base_callee.offset;
		if (!get_frame_step(p, len, &at, same ? &base_caller : &zero,
				    &cr) ||
		    !get_weight_varints(p, len, &at, &w) || !ce.build_id ||
		    !cr.build_id)
			return FDO_ECORRUPT;
		int c = ps->pairs ? frame_cmp(&ce, &ps->last_callee) : 1;
		if (c < 0 || (c == 0 && frame_cmp(&cr, &ps->last_caller) <= 0))
			return FDO_ECORRUPT;
		base_callee = ps->last_callee = ce;
		base_caller = ps->last_caller = cr;
		ps->pairs++;
		if (v && v->pair && (rc = v->pair(v->arg, &ce, &cr, w)))
			return rc;
	}
	return at == len ? FDO_OK : FDO_ECORRUPT;
}

/* The partition whose header row rs is on; leaves rs on the row after
 * its last chunk. */
static int decode_part(struct rows *rs, const struct store_totals_key *k,
		       const struct store_aggs_visit *v,
		       struct store_aggs_layout *lay)
{
	const uint8_t *h = rs->v;
	if (rs->k.chunk != 0 || !rs->k.leaf_bid || rs->vl != PART_HDR_SIZE ||
	    h[0] != AGGS_FORMAT)
		return FDO_ECORRUPT;
	struct store_aggs_part part = {
		.leaf_bid = rs->k.leaf_bid,
		.nleaves = fdo_get_be64(h + 8),
		.npairs = fdo_get_be64(h + 16),
		.weight = get_weight128(h + 24),
		.samples = fdo_get_be64(h + 40),
		.stacks = fdo_get_be64(h + 48),
	};
	uint32_t nchunks = fdo_get_be32(h + 4);
	if (part.nleaves >= MAX_PART_RECORDS || part.npairs >= MAX_PART_RECORDS)
		return FDO_ECORRUPT;
	int rc;
	if (v && v->part && (rc = v->part(v->arg, &part)))
		return rc;
	struct part_state ps = {.bid = part.leaf_bid};
	if (lay) {
		if (fdo_grow(lay->srcs, lay->cap_srcs, lay->nsrcs + 1))
			return FDO_ENOMEM;
		lay->srcs[lay->nsrcs++] =
			(struct store_aggs_src){part, lay->nchunks, nchunks};
	}
	for (uint32_t c = 1; c <= nchunks; c++) {
		if ((rc = rows_next(rs)))
			return rc;
		if (!same_run(rs, k) || rs->k.leaf_bid != part.leaf_bid ||
		    rs->k.chunk != c)
			return FDO_ECORRUPT;
		if ((rc = decode_chunk(rs->v, rs->vl, &ps, &part, v)))
			return rc;
		if (lay) {
			/* checked: out of the RSS until the merge reads it */
			store_map_read(&lay->map, rs->vl);
			if (fdo_grow(lay->chunks, lay->cap_chunks,
				     lay->nchunks + 1))
				return FDO_ENOMEM;
			lay->chunks[lay->nchunks++] =
				(struct store_aggs_chunk){rs->v, rs->vl};
		}
	}
	if (ps.leaves != part.nleaves || ps.pairs != part.npairs)
		return FDO_ECORRUPT;
	return rows_next(rs);
}

/* Seeks run k's header row and checks it (of totals row now, unless
 * NULL): FDO_OK with its partitions' count, FDO_ENOT_FOUND, FDO_ECORRUPT
 * or the store's error. */
static int run_header(struct rows *rs, const struct store_totals_key *k,
		      const struct store_totals *now, uint32_t *nparts)
{
	struct store_aggs_key hk = {k->binary, k->labelset, k->bucket, 0, 0};
	int rc = rows_seek(rs, &hk);
	if (rc)
		return rc;
	if (!same_run(rs, k) || rs->k.leaf_bid || rs->k.chunk)
		return FDO_ENOT_FOUND;
	const uint8_t *h = rs->v;
	if (rs->vl != RUN_HDR_SIZE || h[0] != AGGS_FORMAT)
		return FDO_ECORRUPT;
	*nparts = fdo_get_be32(h + 4);
	if (now && (get_weight128(h + 8) != now->weight ||
		    fdo_get_be64(h + 24) != now->samples ||
		    fdo_get_be64(h + 32) != now->entries))
		return FDO_ECORRUPT; /* of another totals row */
	return FDO_OK;
}

static int decode_run(struct rows *rs, const struct store_totals_key *k,
		      const struct store_totals *now, uint32_t leaf_bid,
		      const struct store_aggs_visit *v,
		      struct store_aggs_layout *lay)
{
	uint32_t nparts;
	int rc = run_header(rs, k, now, &nparts);
	if (rc)
		return rc;
	if (leaf_bid) {
		struct store_aggs_key pk = {k->binary, k->labelset, k->bucket,
					    leaf_bid, 0};
		if ((rc = rows_seek(rs, &pk)))
			return rc;
		if (!same_run(rs, k) || rs->k.leaf_bid != leaf_bid)
			return FDO_OK; /* no stack with a leaf there */
		return decode_part(rs, k, v, lay);
	}
	if ((rc = rows_next(rs)))
		return rc;
	uint32_t prev = 0;
	for (uint32_t i = 0; i < nparts; i++) {
		if (!same_run(rs, k) || rs->k.leaf_bid <= prev)
			return FDO_ECORRUPT;
		prev = rs->k.leaf_bid;
		if ((rc = decode_part(rs, k, v, lay)))
			return rc;
	}
	return same_run(rs, k) ? FDO_ECORRUPT : FDO_OK;
}

/* Checked whole first, then visited. */
static int read_rows(struct rows *rs, const struct store_totals_key *k,
		     const struct store_totals *now, uint32_t leaf_bid,
		     const struct store_aggs_visit *v)
{
	int rc = decode_run(rs, k, now, leaf_bid, NULL, NULL);
	if (!rc && v)
		rc = decode_run(rs, k, now, leaf_bid, v, NULL);
	return rc;
}

/* Checked and noted in one pass: on any error l is as it was. */
static int layout_rows(struct rows *rs, const struct store_totals_key *k,
		       const struct store_totals *now, uint32_t leaf_bid,
		       struct store_aggs_layout *l)
{
	size_t nsrcs = l->nsrcs, nchunks = l->nchunks;
	int rc = decode_run(rs, k, now, leaf_bid, NULL, l);
	if (rc) {
		l->nsrcs = nsrcs;
		l->nchunks = nchunks;
	}
	return rc;
}

int store_aggs_read(store_txn *t, const struct store_totals_key *k,
		    const struct store_totals *now, uint32_t leaf_bid,
		    const struct store_aggs_visit *v)
{
	struct rows rs = {0};
	int rc = store_cursor_open(t, STORE_AGGS, &rs.c);
	if (rc)
		return rc;
	rc = read_rows(&rs, k, now, leaf_bid, v);
	store_cursor_close(rs.c);
	return rc;
}

int store_aggs_run_read(const struct store_aggs_run *r, uint32_t leaf_bid,
			const struct store_aggs_visit *v)
{
	if (r->err)
		return r->err;
	struct rows rs = {.buf = r->buf, .len = r->len};
	return read_rows(&rs, &r->k, NULL, leaf_bid, v);
}

int store_aggs_layout_add(store_txn *t, const struct store_totals_key *k,
			  const struct store_totals *now, uint32_t leaf_bid,
			  struct store_aggs_layout *l)
{
	struct rows rs = {0};
	int rc = store_cursor_open(t, STORE_AGGS, &rs.c);
	if (rc)
		return rc;
	if (!l->map.looked)
		store_map_of(t, &l->map);
	rc = layout_rows(&rs, k, now, leaf_bid, l);
	store_cursor_close(rs.c);
	return rc;
}

int store_aggs_run_layout_add(const struct store_aggs_run *r, uint32_t leaf_bid,
			      struct store_aggs_layout *l)
{
	if (r->err)
		return r->err;
	struct rows rs = {.buf = r->buf, .len = r->len};
	return layout_rows(&rs, &r->k, NULL, leaf_bid, l);
}

/* The partition headers of run k (rows from a cursor), each found by a
 * seek past the previous one's chunks. */
static int parts_rows(struct rows *rs, const struct store_totals_key *k,
		      const struct store_totals *now,
		      const struct store_aggs_visit *v)
{
	uint32_t nparts;
	int rc = run_header(rs, k, now, &nparts);
	if (rc)
		return rc;
	uint32_t prev = 0;
	for (uint32_t i = 0; i <= nparts; i++) {
		if (prev == UINT32_MAX)
			return i == nparts ? FDO_OK : FDO_ECORRUPT;
		struct store_aggs_key pk = {k->binary, k->labelset, k->bucket,
					    prev + 1, 0};
		if ((rc = rows_seek(rs, &pk)))
			return rc;
		if (i == nparts) /* no partition past the declared ones */
			return same_run(rs, k) ? FDO_ECORRUPT : FDO_OK;
		const uint8_t *p = rs->v;
		if (!same_run(rs, k) || rs->k.chunk != 0 ||
		    rs->vl != PART_HDR_SIZE || p[0] != AGGS_FORMAT)
			return FDO_ECORRUPT;
		prev = rs->k.leaf_bid;
		struct store_aggs_part part = {
			.leaf_bid = prev,
			.nleaves = fdo_get_be64(p + 8),
			.npairs = fdo_get_be64(p + 16),
			.weight = get_weight128(p + 24),
			.samples = fdo_get_be64(p + 40),
			.stacks = fdo_get_be64(p + 48),
		};
		if (part.nleaves >= MAX_PART_RECORDS ||
		    part.npairs >= MAX_PART_RECORDS)
			return FDO_ECORRUPT;
		if (v && v->part && (rc = v->part(v->arg, &part)))
			return rc;
	}
	return FDO_OK;
}

int store_aggs_parts(store_txn *t, const struct store_totals_key *k,
		     const struct store_totals *now,
		     const struct store_aggs_visit *v)
{
	struct rows rs = {0};
	int rc = store_cursor_open(t, STORE_AGGS, &rs.c);
	if (rc)
		return rc;
	/* Checked whole first, then visited. */
	rc = parts_rows(&rs, k, now, NULL);
	if (!rc && v)
		rc = parts_rows(&rs, k, now, v);
	store_cursor_close(rs.c);
	return rc;
}

int store_aggs_have(store_txn *t, const struct store_totals_key *k,
		    const struct store_totals *now)
{
	uint8_t key[STORE_AGGS_KEY_SIZE];
	store_aggs_key_encode(key,
			      &(struct store_aggs_key){k->binary, k->labelset,
						       k->bucket, 0, 0});
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_AGGS, key, sizeof key, &v, &vl);
	if (rc)
		return rc;
	const uint8_t *h = v;
	if (vl != RUN_HDR_SIZE || h[0] != AGGS_FORMAT ||
	    get_weight128(h + 8) != now->weight ||
	    fdo_get_be64(h + 24) != now->samples ||
	    fdo_get_be64(h + 32) != now->entries)
		return FDO_ECORRUPT;
	return FDO_OK;
}

void store_aggs_layout_fini(struct store_aggs_layout *l)
{
	free(l->srcs);
	free(l->chunks);
	memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------- iterator -- */

/* The records were checked when the layout took them (the same grammar
 * as decode_chunk's), so the walk trusts their bytes. */
static inline uint64_t uv(const uint8_t *p, size_t *at)
{
	uint64_t x = p[*at];
	(*at)++;
	if (x < 0x80)
		return x;
	x &= 0x7f;
	for (unsigned shift = 7;; shift += 7) {
		uint8_t b = p[(*at)++];
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80) || shift >= 63)
			return x;
	}
}

static inline wire_weight_t uvw(const uint8_t *p, size_t *at)
{
	uint64_t hi = uv(p, at);
	uint64_t lo = uv(p, at);
	return (wire_weight_t)hi << 64 | lo;
}

void store_aggs_iter_init(struct store_aggs_iter *it,
			  struct store_aggs_layout *l, size_t src)
{
	memset(it, 0, sizeof *it);
	const struct store_aggs_src *s = &l->srcs[src];
	it->next = l->chunks + s->first_chunk;
	it->end = it->next + s->nchunks;
	it->map = &l->map;
	it->bid = s->part.leaf_bid;
}

/* Opens the next chunk when the open one is done and the next is of
 * kind; 0 when there is no record of kind left. */
static int iter_room(struct store_aggs_iter *it, uint8_t kind)
{
	while (!it->left || it->kind != kind) {
		if (it->left || it->next == it->end || it->next->p[0] != kind) {
			if (!it->left && it->next == it->end && it->open) {
				store_map_read(it->map, it->open->len);
				it->open = NULL;
			}
			return 0;
		}
		if (it->open) /* read: toward the next forget */
			store_map_read(it->map, it->open->len);
		it->open = it->next;
		it->p = it->next->p;
		it->kind = kind;
		it->left = (unsigned)it->p[1] << 8 | it->p[2];
		it->at = CHUNK_HDR_SIZE;
		it->base_leaf = 0;
		it->base_callee = it->base_caller = (struct store_frame){0, 0};
		it->next++;
	}
	return 1;
}

int store_aggs_iter_leaf(struct store_aggs_iter *it, struct store_frame *f,
			 wire_weight_t *weight, uint64_t *samples)
{
	if (!iter_room(it, KIND_LEAVES))
		return 0;
	it->base_leaf += uv(it->p, &it->at);
	*weight = uvw(it->p, &it->at);
	*samples = uv(it->p, &it->at);
	f->build_id = it->bid;
	f->offset = it->base_leaf;
	it->left--;
	return 1;
}

static inline void frame_step(const uint8_t *p, size_t *at,
			      const struct store_frame *base,
			      struct store_frame *f)
{
	uint32_t db = (uint32_t)uv(p, at);
	uint64_t off = uv(p, at);
	f->build_id = base->build_id + db;
	f->offset = db ? off : base->offset + off;
}

int store_aggs_iter_pair(struct store_aggs_iter *it, struct store_frame *callee,
			 struct store_frame *caller, wire_weight_t *weight)
{
	if (!iter_room(it, KIND_PAIRS))
		return 0;
	/* The first record of a chunk: no caller base (decode_chunk's
	 * rule: a caller steps from the last caller of the same callee). */
	int first = it->at == CHUNK_HDR_SIZE;
	frame_step(it->p, &it->at, &it->base_callee, callee);
	int same = !first && callee->build_id == it->base_callee.build_id &&
		   callee->offset == it->base_callee.offset;
	static const struct store_frame zero = {0, 0};
	frame_step(it->p, &it->at, same ? &it->base_caller : &zero, caller);
	*weight = uvw(it->p, &it->at);
	it->base_callee = *callee;
	it->base_caller = *caller;
	it->left--;
	return 1;
}

/* ------------------------------------------------------------ writes -- */

int store_aggs_drop(store_txn *t, const struct store_totals_key *k)
{
	MDB_cursor *c;
	int mrc = mdb_cursor_open(t->txn, t->s->dbi[STORE_AGGS], &c);
	if (mrc)
		return store_mdb_err(t, mrc, "aggs");
	uint8_t start[STORE_AGGS_KEY_SIZE];
	store_aggs_key_encode(start,
			      &(struct store_aggs_key){k->binary, k->labelset,
						       k->bucket, 0, 0});
	for (;;) {
		MDB_val mk = {sizeof start, start}, mv;
		mrc = mdb_cursor_get(c, &mk, &mv, MDB_SET_RANGE);
		if (mrc || mk.mv_size != STORE_AGGS_KEY_SIZE ||
		    memcmp(mk.mv_data, start, 12))
			break;
		if ((mrc = mdb_cursor_del(c, 0)))
			break;
		store_note_write(t, STORE_AGGS, start, sizeof start);
	}
	mdb_cursor_close(c);
	return mrc && mrc != MDB_NOTFOUND ? store_mdb_err(t, mrc, "aggs")
					  : FDO_OK;
}

int store_aggs_run_put(store_txn *t, const struct store_aggs_run *r, int *stale)
{
	*stale = 1;
	if (r->err || !r->len)
		return r->err ? r->err : FDO_EINVAL;
	if (r->len > STORE_AGGS_RUN_MAX)
		return FDO_ELIMIT;
	uint8_t key[STORE_TOTALS_KEY_SIZE];
	store_totals_key_encode(key, &r->k);
	const void *v;
	size_t vl;
	struct store_totals now;
	int rc = store_get(t, STORE_TOTALS, key, sizeof key, &v, &vl);
	if (rc == FDO_ENOT_FOUND)
		return FDO_OK;
	if (rc)
		return rc;
	if (store_totals_decode(v, vl, &now) || now.weight != r->seen.weight ||
	    now.samples != r->seen.samples || now.entries != r->seen.entries)
		return FDO_OK;
	*stale = 0;
	if ((rc = store_aggs_drop(t, &r->k)))
		return rc;
	store_cursor *c;
	if ((rc = store_cursor_open(t, STORE_AGGS, &c)))
		return rc;
	for (size_t at = 0; at + ROW_PREFIX <= r->len && !rc;) {
		size_t n = fdo_get_be32(r->buf + at);
		rc = store_cursor_put(c, r->buf + at + 4, STORE_AGGS_KEY_SIZE,
				      r->buf + at + ROW_PREFIX, n, 0);
		at += ROW_PREFIX + n;
	}
	store_cursor_close(c);
	return rc;
}

int store_aggs_reseen(store_txn *t, const struct store_totals_key *k,
		      uint64_t was, uint64_t now)
{
	uint8_t key[STORE_AGGS_KEY_SIZE];
	store_aggs_key_encode(key,
			      &(struct store_aggs_key){k->binary, k->labelset,
						       k->bucket, 0, 0});
	const void *v;
	size_t vl;
	int rc = store_get(t, STORE_AGGS, key, sizeof key, &v, &vl);
	if (rc == FDO_ENOT_FOUND)
		return FDO_OK;
	if (rc)
		return rc;
	if (vl != RUN_HDR_SIZE || fdo_get_be64((const uint8_t *)v + 32) != was)
		return FDO_OK; /* of another totals row: readers ignore it */
	uint8_t h[RUN_HDR_SIZE];
	memcpy(h, v, sizeof h);
	fdo_put_be64(h + 32, now);
	return store_put(t, STORE_AGGS, key, sizeof key, h, sizeof h, 0);
}
