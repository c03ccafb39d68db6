/*
 * aggregator/ingest.c — from a SampleBatch to durable, aggregated counts.
 *
 * Workload: many agents, each sending a batch every few seconds; a batch
 * holds ~1,000 distinct stacks of ~20 frames, of which ~95% were seen
 * before. A sample must cost a hash and a counter update, so:
 *
 * DESIGN
 *   Submitter threads (the agent listener's, one per in-flight request)
 *   decode, validate and normalize a batch into a `prep` without touching
 *   LMDB: every address becomes (mapping, file offset); non-leaf frames are
 *   return addresses and are stored as offset - 1, the last byte of the
 *   call instruction, so that symbolization never needs to know a frame's
 *   position. The prep goes on a bounded queue; when the queue is full the
 *   submitter waits (backpressure reaches the agent, nothing is dropped).
 *   One writer thread takes everything queued (up to group_max) and applies
 *   it in ONE write transaction (group commit): interning, the exactly-once
 *   check, new stacks and their pending addresses, and the counts of the
 *   whole group merged in memory first, so a stack seen in ten batches
 *   costs one read-modify-write. After the durable commit it marks every
 *   prep done and wakes the submitters, who then send their Acks. No
 *   explicit wait gathers a group: batches that arrive during one commit
 *   (~6 ms of fsync here) form the next group, which adapts to load.
 *   Locking: mu guards the queue, the done flags and the stats; the writer
 *   alone touches LMDB and the known-stack set.
 *   Shutdown: destroy sets `stopping`; the writer drains the queue, then
 *   exits.
 *
 * Stored weights: count x period x round(weight x WIRE_WEIGHT_SCALE), as
 * 128-bit integers (schemas/schemas.h), so sums are exact and independent of
 * arrival order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/aggregator.h"
#include "common/common.h"

#define KNOWN_STACKS_MAX (1u << 20) /* slots of the known-stack set */
#define SWEEP_INTERVAL_S 60
#define SWEEP_MAX_DELETES 20000

/* --------------------------------------------------------- prepared batch */

struct prep_map {
	uint8_t build_id[FDO_BUILD_ID_MAX];
	uint8_t build_id_len;
	uint32_t id; /* interned, filled by the writer */
};

struct prep_stack {
	uint32_t first, n; /* frames[first .. first+n) */
	wire_weight_t weight;
	uint64_t samples;
};

struct prep_frame {
	uint32_t map; /* index into maps */
	uint64_t offset;
};

struct prep_branch {
	uint32_t map;
	uint64_t from, to;
	wire_weight_t weight;
	uint64_t samples;
};

struct prep {
	char *agent, *binary, *host;
	char labels[2048];
	uint64_t seq;
	uint32_t bucket;
	uint64_t time_end;
	struct prep_map *maps;
	size_t nmaps;
	struct prep_frame *frames;
	size_t nframes;
	struct prep_stack *stacks;
	size_t nstacks;
	struct prep_branch *branches;
	size_t nbranches;
	struct agg_result *res; /* the submitter's; written by the writer */
	int done;               /* guarded by ing->mu */
	struct prep *next;
};

static void prep_free(struct prep *p)
{
	if (!p)
		return;
	free(p->agent);
	free(p->binary);
	free(p->host);
	free(p->maps);
	free(p->frames);
	free(p->stacks);
	free(p->branches);
	free(p);
}

/* Mapping lookup: indices of batch mappings sorted by start. */
struct map_ref {
	uint64_t start, limit, file_offset;
	uint32_t index;
};

static int map_ref_cmp(const void *a, const void *b)
{
	const struct map_ref *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static const struct map_ref *map_find(const struct map_ref *refs, size_t n,
				      uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (refs[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct map_ref *m = &refs[lo - 1];
	return addr < m->limit ? m : NULL;
}

/*
 * prep_build validates and normalizes batch into a new prep. Pure: no
 * LMDB. Returns FDO_OK or an error with res->message set.
 */
static int prep_build(const Fdod__SampleBatch *b,
		      const struct wire_limits *limits, uint32_t bucket_seconds,
		      struct prep **out, struct agg_result *res)
{
	int rc = wire_batch_validate(b, limits, res->message,
				     sizeof res->message);
	if (rc)
		return rc;
	struct prep *p = calloc(1, sizeof *p);
	if (!p)
		return FDO_ENOMEM;
	p->seq = b->seq;
	p->time_end = b->time_end;
	uint64_t t = b->time_start ? b->time_start : b->time_end;
	p->bucket = (uint32_t)(t / bucket_seconds * bucket_seconds);
	p->agent = strdup(b->agent_id);
	p->binary = strdup(b->binary);
	p->host = strdup(b->host);

	/* Label set, canonical ("k=v,k=v" sorted by key). */
	char **kv = calloc(b->n_labels ? b->n_labels : 1, sizeof *kv);
	if (!kv) {
		prep_free(p);
		return FDO_ENOMEM;
	}
	for (size_t i = 0; i < b->n_labels; i++) {
		size_t kl = strlen(b->labels[i]->key),
		       vl = strlen(b->labels[i]->value);
		kv[i] = malloc(kl + vl + 2);
		if (kv[i]) {
			memcpy(kv[i], b->labels[i]->key, kl);
			kv[i][kl] = '=';
			memcpy(kv[i] + kl + 1, b->labels[i]->value, vl + 1);
		}
	}
	size_t llen;
	rc = FDO_OK;
	for (size_t i = 0; i < b->n_labels; i++)
		if (!kv[i])
			rc = FDO_ENOMEM;
	if (!rc)
		rc = store_labelset_canon((const char *const *)kv, b->n_labels,
					  p->labels, sizeof p->labels, &llen);
	for (size_t i = 0; i < b->n_labels; i++)
		free(kv[i]);
	free(kv);
	if (rc) {
		snprintf(res->message, sizeof res->message,
			 "labels: %s", fdo_strerror(rc));
		prep_free(p);
		return rc;
	}

	p->nmaps = b->n_mappings;
	p->maps = calloc(p->nmaps ? p->nmaps : 1, sizeof *p->maps);
	struct map_ref *refs = calloc(p->nmaps ? p->nmaps : 1, sizeof *refs);
	size_t total = 0;
	for (size_t i = 0; i < b->n_stacks; i++)
		total += b->stacks[i]->n_addrs;
	p->frames = malloc((total ? total : 1) * sizeof *p->frames);
	p->stacks = malloc((b->n_stacks ? b->n_stacks : 1) * sizeof *p->stacks);
	p->branches =
		malloc((b->n_branches ? b->n_branches : 1) * sizeof *p->branches);
	if (!p->agent || !p->binary || !p->host || !p->maps || !refs ||
	    !p->frames || !p->stacks || !p->branches) {
		free(refs);
		prep_free(p);
		return FDO_ENOMEM;
	}
	for (size_t i = 0; i < p->nmaps; i++) {
		const Fdod__Mapping *m = b->mappings[i];
		memcpy(p->maps[i].build_id, m->build_id.data, m->build_id.len);
		p->maps[i].build_id_len = (uint8_t)m->build_id.len;
		refs[i] = (struct map_ref){m->start, m->limit, m->file_offset,
					   (uint32_t)i};
	}
	qsort(refs, p->nmaps, sizeof *refs, map_ref_cmp);

	uint64_t wq;
	if ((rc = wire_weight_quantize(b->weight, &wq))) {
		free(refs);
		prep_free(p);
		return rc;
	}
	for (size_t i = 0; i < b->n_stacks; i++) {
		const Fdod__Stack *s = b->stacks[i];
		struct prep_stack *ps = &p->stacks[p->nstacks];
		ps->first = (uint32_t)p->nframes;
		ps->n = 0;
		for (size_t k = 0; k < s->n_addrs; k++) {
			const struct map_ref *m =
				map_find(refs, p->nmaps, s->addrs[k]);
			if (!m) {
				res->frames_unmapped++;
				continue;
			}
			uint64_t off = s->addrs[k] - m->start + m->file_offset;
			/* A caller frame is a return address: its call site
			 * ends one byte before it. */
			if (k > 0 && off > 0)
				off--;
			p->frames[p->nframes++] =
				(struct prep_frame){m->index, off};
			ps->n++;
		}
		if (ps->n == 0) {
			res->samples_unmapped += s->count;
			continue;
		}
		/* validate bounded count and period: 1e9 x 1e12 x 2^53 fits
		 * 128 bits, so this cannot fail for a valid batch. */
		if ((rc = wire_weight_fixed_wide(s->count, b->period, b->weight,
						 &ps->weight))) {
			free(refs);
			prep_free(p);
			return rc;
		}
		ps->samples = s->count;
		res->samples_accepted += s->count;
		p->nstacks++;
	}
	for (size_t i = 0; i < b->n_branches; i++) {
		const Fdod__Branch *br = b->branches[i];
		const struct map_ref *mf = map_find(refs, p->nmaps, br->from);
		const struct map_ref *mt = map_find(refs, p->nmaps, br->to);
		if (!mf || mf != mt) {
			res->branches_unmapped += br->count;
			continue;
		}
		struct prep_branch *pb = &p->branches[p->nbranches++];
		pb->map = mf->index;
		pb->from = br->from - mf->start + mf->file_offset;
		pb->to = br->to - mf->start + mf->file_offset;
		pb->samples = br->count;
		if ((rc = wire_weight_fixed_wide(br->count, b->period,
						 b->weight, &pb->weight))) {
			free(refs);
			prep_free(p);
			return rc;
		}
		res->branches_accepted += br->count;
	}
	free(refs);
	*out = p;
	return FDO_OK;
}

/* ------------------------------------------------ group aggregation map -- */

/* Open addressing map from a fixed-size key (<= 32 bytes) to a weight. */
struct wmap_slot {
	uint8_t key[32];
	uint8_t used;
	wire_weight_t weight;
	uint64_t samples;
};

struct wmap {
	struct wmap_slot *slots;
	size_t cap, n, klen;
};

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a mix */
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static int wmap_grow(struct wmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct wmap_slot *s = calloc(cap, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].used)
			continue;
		size_t j = hash_bytes(m->slots[i].key, m->klen) & (cap - 1);
		while (s[j].used)
			j = (j + 1) & (cap - 1);
		s[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = s;
	m->cap = cap;
	return FDO_OK;
}

static int wmap_add(struct wmap *m, const uint8_t *key, wire_weight_t w,
		    uint64_t samples)
{
	if ((m->n + 1) * 2 > m->cap && wmap_grow(m))
		return FDO_ENOMEM;
	size_t j = hash_bytes(key, m->klen) & (m->cap - 1);
	while (m->slots[j].used && memcmp(m->slots[j].key, key, m->klen))
		j = (j + 1) & (m->cap - 1);
	struct wmap_slot *s = &m->slots[j];
	if (!s->used) {
		memcpy(s->key, key, m->klen);
		s->used = 1;
		m->n++;
	}
	s->weight += w; /* per-group sums stay far below 2^128 */
	s->samples += samples;
	return FDO_OK;
}

static void wmap_clear(struct wmap *m)
{
	if (m->n)
		memset(m->slots, 0, m->cap * sizeof *m->slots);
	m->n = 0;
}

/* Set of stack ids known to be in table stacks (so no lookup is needed).
 * Lossy: cleared when full; correctness never depends on it. */
struct idset {
	uint64_t *slots; /* 0 = empty; stack ids are never 0 (see below) */
	size_t cap, n;
};

static int idset_has(const struct idset *s, uint64_t id)
{
	if (!s->slots)
		return 0;
	size_t j = (id * 0x9e3779b97f4a7c15ull) >> 44 & (s->cap - 1);
	while (s->slots[j]) {
		if (s->slots[j] == id)
			return 1;
		j = (j + 1) & (s->cap - 1);
	}
	return 0;
}

static void idset_add(struct idset *s, uint64_t id)
{
	if (!s->slots) {
		s->slots = calloc(KNOWN_STACKS_MAX, sizeof *s->slots);
		if (!s->slots)
			return;
		s->cap = KNOWN_STACKS_MAX;
	}
	if ((s->n + 1) * 4 > s->cap * 3) {
		memset(s->slots, 0, s->cap * sizeof *s->slots);
		s->n = 0;
	}
	size_t j = (id * 0x9e3779b97f4a7c15ull) >> 44 & (s->cap - 1);
	while (s->slots[j]) {
		if (s->slots[j] == id)
			return;
		j = (j + 1) & (s->cap - 1);
	}
	s->slots[j] = id;
	s->n++;
}

/* ---------------------------------------------------------------- ingest -- */

struct agg_ingest {
	store *st;
	struct agg_ingest_opts o;
	const struct wire_limits *limits;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;  /* writer: queue not empty or stopping */
	pthread_cond_t space_cv; /* submitters: queue has room */
	pthread_cond_t done_cv;  /* submitters: a commit finished */
	struct prep *head, *tail; /* guarded by mu */
	size_t queued;            /* guarded by mu */
	int stopping;             /* guarded by mu */
	struct agg_ingest_stats stats; /* guarded by mu */
	pthread_t writer;

	/* Writer thread only. */
	struct wmap counts, branches;
	struct idset known;
	uint64_t *new_stacks; /* stack ids this txn put, added to known after
				 the commit */
	size_t n_new_stacks, cap_new_stacks;
	uint32_t *pending_ids; /* build-ids that got pending addresses */
	size_t n_pending_ids, cap_pending_ids;
	time_t last_sweep;
};

struct group {
	agg_ingest *ing;
	struct prep **p;
	size_t n;
	uint64_t now;
};

static int push_u64(uint64_t **arr, size_t *n, size_t *cap, uint64_t v)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		uint64_t *a = realloc(*arr, c * sizeof *a);
		if (!a)
			return FDO_ENOMEM;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = v;
	return FDO_OK;
}

static int note_pending(agg_ingest *ing, uint32_t id)
{
	for (size_t i = 0; i < ing->n_pending_ids; i++)
		if (ing->pending_ids[i] == id)
			return FDO_OK;
	if (ing->n_pending_ids == ing->cap_pending_ids) {
		size_t c = ing->cap_pending_ids ? ing->cap_pending_ids * 2 : 16;
		uint32_t *a = realloc(ing->pending_ids, c * sizeof *a);
		if (!a)
			return FDO_ENOMEM;
		ing->pending_ids = a;
		ing->cap_pending_ids = c;
	}
	ing->pending_ids[ing->n_pending_ids++] = id;
	return FDO_OK;
}

/* Value of table batches: commit time and the figures of the first Ack. */
#define BATCH_VAL_SIZE 24
/*
 * batches value layout:
 *   OFFSET SIZE DESCRIPTION
 *   0      8    commit time, unix seconds, big-endian
 *   8      8    samples accepted, big-endian
 *   16     8    samples unmapped, big-endian
 */

/* A new stack: store its frames and mark its unknown addresses pending. */
static int put_stack(agg_ingest *ing, store_txn *t, uint64_t id,
		     const struct store_frame *f, size_t n)
{
	uint8_t key[STORE_STACK_KEY_SIZE];
	uint8_t val[STORE_STACK_MAX_FRAMES * STORE_FRAME_SIZE];
	size_t vlen;
	int rc = store_stack_encode(f, n, val, sizeof val, &vlen);
	if (rc)
		return rc;
	store_stack_key_encode(key, id);
	rc = store_put(t, STORE_STACKS, key, sizeof key, val, vlen,
		       STORE_NOOVERWRITE);
	if (rc == FDO_EEXISTS)
		return push_u64(&ing->new_stacks, &ing->n_new_stacks,
				&ing->cap_new_stacks, id);
	if (rc)
		return rc;
	if ((rc = push_u64(&ing->new_stacks, &ing->n_new_stacks,
			   &ing->cap_new_stacks, id)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		uint8_t ak[STORE_ADDR_KEY_SIZE];
		const void *v;
		size_t vl;
		store_addr_key_encode(ak, &f[i]);
		rc = store_get(t, STORE_SYMCACHE, ak, sizeof ak, &v, &vl);
		if (rc == FDO_OK)
			continue;
		if (rc != FDO_ENOT_FOUND)
			return rc;
		rc = store_put(t, STORE_PENDING, ak, sizeof ak, "", 0,
			       STORE_NOOVERWRITE);
		if (rc == FDO_EEXISTS)
			continue;
		if (rc || (rc = note_pending(ing, f[i].build_id)))
			return rc;
	}
	return FDO_OK;
}

static int add_weight(store_txn *t, enum store_table table, const uint8_t *key,
		      size_t klen, wire_weight_t w, uint64_t samples)
{
	struct store_weight cur = {0};
	const void *v;
	size_t vl;
	int rc = store_get(t, table, key, klen, &v, &vl);
	if (rc == FDO_OK) {
		if ((rc = store_weight_decode(v, vl, &cur)))
			return rc;
	} else if (rc != FDO_ENOT_FOUND)
		return rc;
	if (wire_weight_add(&cur.weight, w))
		return FDO_ELIMIT;
	cur.samples += samples;
	uint8_t val[STORE_WEIGHT_VAL_SIZE];
	store_weight_encode(val, &cur);
	return store_put(t, table, key, klen, val, sizeof val, 0);
}

/* Record the batch's host among the binary's hosts (table hosts). */
static int note_host(store_txn *t, uint32_t binary, const struct prep *p)
{
	uint32_t host;
	int rc = store_intern_string(t, p->host, strlen(p->host), 1, &host);
	if (rc)
		return rc;
	uint8_t key[STORE_HOSTS_KEY_SIZE], val[STORE_HOSTS_VAL_SIZE];
	store_hosts_key_encode(key, binary, host);
	const void *v;
	size_t vl;
	uint64_t first = p->time_end, last = p->time_end;
	rc = store_get(t, STORE_HOSTS, key, sizeof key, &v, &vl);
	if (rc == FDO_OK && vl == STORE_HOSTS_VAL_SIZE) {
		uint64_t f0 = fdo_get_be64(v), l0 = fdo_get_be64((const uint8_t *)v + 8);
		if (f0 <= first && l0 >= last)
			return FDO_OK;
		first = f0 < first ? f0 : first;
		last = l0 > last ? l0 : last;
	} else if (rc != FDO_OK && rc != FDO_ENOT_FOUND)
		return rc;
	fdo_put_be64(val, first);
	fdo_put_be64(val + 8, last);
	return store_put(t, STORE_HOSTS, key, sizeof key, val, sizeof val, 0);
}

/* Apply one prep inside the group transaction. */
static int apply_prep(agg_ingest *ing, store_txn *t, struct prep *p,
		      uint64_t now)
{
	uint32_t agent, binary, labelset;
	int rc;
	if ((rc = store_intern_string(t, p->agent, strlen(p->agent), 1, &agent)))
		return rc;
	uint8_t bkey[STORE_BATCHES_KEY_SIZE];
	store_batches_key_encode(bkey, agent, p->seq);
	const void *v;
	size_t vl;
	rc = store_get(t, STORE_BATCHES, bkey, sizeof bkey, &v, &vl);
	if (rc == FDO_OK) {
		/* Committed before: acknowledge again, count nothing. */
		p->res->duplicate = 1;
		if (vl == BATCH_VAL_SIZE) {
			p->res->samples_accepted = fdo_get_be64((const uint8_t *)v + 8);
			p->res->samples_unmapped = fdo_get_be64((const uint8_t *)v + 16);
		}
		return FDO_OK;
	}
	if (rc != FDO_ENOT_FOUND)
		return rc;
	if ((rc = store_intern_binary(t, p->binary, strlen(p->binary), 1,
				      &binary)) ||
	    (rc = store_intern_labelset(t, p->labels, strlen(p->labels), 1,
					&labelset)))
		return rc;
	for (size_t i = 0; i < p->nmaps; i++) {
		if ((rc = store_intern_buildid(t, p->maps[i].build_id,
					       p->maps[i].build_id_len, 1,
					       &p->maps[i].id)))
			return rc;
	}
	if ((rc = note_host(t, binary, p)))
		return rc;
	/* Only mappings that carry samples are "seen". */
	for (size_t i = 0; i < p->nmaps; i++) {
		int used = 0;
		for (size_t k = 0; k < p->nframes && !used; k++)
			used = p->frames[k].map == i;
		if (!used)
			continue;
		struct store_buildid rec;
		if ((rc = store_buildid_get(t, p->maps[i].id, &rec)))
			return rc;
		int dirty = 0;
		if (!rec.binary && p->nstacks &&
		    p->frames[p->stacks[0].first].map == i) {
			/* The build-id of the leaf's object names the binary
			 * only when it is the main executable; the first
			 * mapping that holds leaves is the best guess. */
			rec.binary = binary;
			dirty = 1;
		}
		if (!rec.first_seen || p->time_end < rec.first_seen) {
			rec.first_seen = p->time_end;
			dirty = 1;
		}
		if (p->time_end > rec.last_seen) {
			rec.last_seen = p->time_end;
			dirty = 1;
		}
		if (dirty && (rc = store_buildid_put(t, p->maps[i].id, &rec)))
			return rc;
	}
	struct store_frame f[STORE_STACK_MAX_FRAMES];
	for (size_t i = 0; i < p->nstacks; i++) {
		const struct prep_stack *ps = &p->stacks[i];
		size_t n = ps->n > STORE_STACK_MAX_FRAMES ? STORE_STACK_MAX_FRAMES
							  : ps->n;
		for (size_t k = 0; k < n; k++) {
			const struct prep_frame *pf = &p->frames[ps->first + k];
			f[k].build_id = p->maps[pf->map].id;
			f[k].offset = pf->offset;
		}
		uint64_t id = store_stack_id(f, n);
		if (!idset_has(&ing->known, id) &&
		    (rc = put_stack(ing, t, id, f, n)))
			return rc;
		struct store_counts_key ck = {binary, labelset, p->bucket, id};
		uint8_t key[32] = {0};
		store_counts_key_encode(key, &ck);
		if ((rc = wmap_add(&ing->counts, key, ps->weight, ps->samples)))
			return rc;
	}
	for (size_t i = 0; i < p->nbranches; i++) {
		const struct prep_branch *pb = &p->branches[i];
		struct store_branches_key bk = {binary, labelset, p->bucket,
						p->maps[pb->map].id, pb->from,
						pb->to};
		uint8_t key[32] = {0};
		store_branches_key_encode(key, &bk);
		if ((rc = wmap_add(&ing->branches, key, pb->weight,
				   pb->samples)))
			return rc;
	}
	uint8_t bval[BATCH_VAL_SIZE];
	fdo_put_be64(bval, now);
	fdo_put_be64(bval + 8, p->res->samples_accepted);
	fdo_put_be64(bval + 16, p->res->samples_unmapped);
	return store_put(t, STORE_BATCHES, bkey, sizeof bkey, bval,
			 sizeof bval, 0);
}

/* store_write callback: the whole group in one transaction. Called again
 * from scratch when the map had to grow, so it resets its state first. */
static int apply_group(store_txn *t, void *arg)
{
	struct group *g = arg;
	agg_ingest *ing = g->ing;
	int rc;
	wmap_clear(&ing->counts);
	wmap_clear(&ing->branches);
	ing->n_new_stacks = 0;
	ing->n_pending_ids = 0;
	for (size_t i = 0; i < g->n; i++) {
		g->p[i]->res->duplicate = 0;
		if ((rc = apply_prep(ing, t, g->p[i], g->now)))
			return rc;
	}
	for (size_t i = 0; i < ing->counts.cap; i++) {
		const struct wmap_slot *s = &ing->counts.slots[i];
		if (s->used && (rc = add_weight(t, STORE_COUNTS, s->key,
						STORE_COUNTS_KEY_SIZE,
						s->weight, s->samples)))
			return rc;
	}
	for (size_t i = 0; i < ing->branches.cap; i++) {
		const struct wmap_slot *s = &ing->branches.slots[i];
		if (s->used && (rc = add_weight(t, STORE_BRANCHES, s->key,
						STORE_BRANCHES_KEY_SIZE,
						s->weight, s->samples)))
			return rc;
	}
	return FDO_OK;
}

/* Delete (agent, seq) records older than the dedup TTL, a slice at a time. */
struct sweep {
	uint64_t cutoff;
	size_t deleted;
};

static int sweep_batches(store_txn *t, void *arg)
{
	struct sweep *sw = arg;
	store_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	sw->deleted = 0;
	int rc = store_cursor_open(t, STORE_BATCHES, &c);
	if (rc)
		return rc;
	rc = store_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
	/* Collect first, delete after: no deletes under an open cursor. */
	struct {
		uint8_t key[STORE_BATCHES_KEY_SIZE];
	} *victims = malloc(SWEEP_MAX_DELETES * sizeof *victims);
	if (!victims) {
		store_cursor_close(c);
		return FDO_ENOMEM;
	}
	while (rc == FDO_OK && sw->deleted < SWEEP_MAX_DELETES) {
		if (vl >= 8 && kl == STORE_BATCHES_KEY_SIZE &&
		    fdo_get_be64(v) < sw->cutoff)
			memcpy(victims[sw->deleted++].key, k, kl);
		rc = store_cursor_next(c, &k, &kl, &v, &vl);
	}
	store_cursor_close(c);
	if (rc != FDO_OK && rc != FDO_ENOT_FOUND) {
		free(victims);
		return rc;
	}
	rc = FDO_OK;
	for (size_t i = 0; i < sw->deleted && !rc; i++) {
		rc = store_del(t, STORE_BATCHES, victims[i].key,
			       STORE_BATCHES_KEY_SIZE);
		if (rc == FDO_ENOT_FOUND)
			rc = FDO_OK;
	}
	free(victims);
	return rc;
}

static void maybe_sweep(agg_ingest *ing)
{
	time_t now = time(NULL);
	if (now - ing->last_sweep < SWEEP_INTERVAL_S)
		return;
	ing->last_sweep = now;
	struct sweep sw = {.cutoff = (uint64_t)now > ing->o.dedup_ttl
					     ? (uint64_t)now - ing->o.dedup_ttl
					     : 0};
	int rc = store_write(ing->st, sweep_batches, &sw);
	if (rc)
		fdo_warn("ingest: expiring batch records: %s", fdo_strerror(rc));
	else if (sw.deleted)
		fdo_info("ingest: expired %zu batch records", sw.deleted);
}

static void *writer_main(void *arg)
{
	agg_ingest *ing = arg;
	struct prep **group = malloc(ing->o.group_max * sizeof *group);
	if (!group) {
		fdo_error("ingest: writer out of memory");
		abort();
	}
	for (;;) {
		pthread_mutex_lock(&ing->mu);
		while (!ing->head && !ing->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&ing->work_cv, &ing->mu, &ts);
			if (!ing->head && !ing->stopping) {
				pthread_mutex_unlock(&ing->mu);
				maybe_sweep(ing);
				pthread_mutex_lock(&ing->mu);
			}
		}
		if (!ing->head && ing->stopping) {
			pthread_mutex_unlock(&ing->mu);
			break;
		}
		size_t n = 0;
		while (ing->head && n < ing->o.group_max) {
			group[n++] = ing->head;
			ing->head = ing->head->next;
			ing->queued--;
		}
		if (!ing->head)
			ing->tail = NULL;
		pthread_cond_broadcast(&ing->space_cv);
		pthread_mutex_unlock(&ing->mu);

		struct group g = {ing, group, n, (uint64_t)time(NULL)};
		int rc = store_write(ing->st, apply_group, &g);
		if (rc == FDO_OK) {
			for (size_t i = 0; i < ing->n_new_stacks; i++)
				idset_add(&ing->known, ing->new_stacks[i]);
			if (ing->n_pending_ids && ing->o.pending_cb)
				ing->o.pending_cb(ing->o.pending_arg,
						  ing->pending_ids,
						  ing->n_pending_ids);
		} else {
			fdo_error("ingest: commit of %zu batches failed: %s", n,
				  fdo_strerror(rc));
		}
		pthread_mutex_lock(&ing->mu);
		ing->stats.commits++;
		for (size_t i = 0; i < n; i++) {
			struct agg_result *r = group[i]->res;
			if (rc) {
				r->status = rc;
				r->duplicate = 0;
				r->samples_accepted = 0;
				snprintf(r->message, sizeof r->message,
					 "not stored: %s; retry later",
					 fdo_strerror(rc));
				ing->stats.refused++;
			} else if (r->duplicate) {
				ing->stats.duplicates++;
				snprintf(r->message, sizeof r->message,
					 "duplicate of a committed batch; counted once");
			} else {
				ing->stats.batches++;
				ing->stats.samples += r->samples_accepted;
				snprintf(r->message, sizeof r->message, "ok");
			}
			group[i]->done = 1;
		}
		pthread_cond_broadcast(&ing->done_cv);
		pthread_mutex_unlock(&ing->mu);
	}
	free(group);
	return NULL;
}

int agg_ingest_create(store *s, const struct agg_ingest_opts *opts,
		      agg_ingest **out)
{
	agg_ingest *ing = calloc(1, sizeof *ing);
	if (!ing)
		return FDO_ENOMEM;
	ing->st = s;
	if (opts)
		ing->o = *opts;
	if (!ing->o.bucket_seconds)
		ing->o.bucket_seconds = 3600;
	if (!ing->o.dedup_ttl)
		ing->o.dedup_ttl = 7 * 86400;
	if (!ing->o.queue_max)
		ing->o.queue_max = 256;
	if (!ing->o.group_max)
		ing->o.group_max = 512;
	ing->limits = ing->o.limits ? ing->o.limits : &wire_limits_default;
	ing->counts.klen = STORE_COUNTS_KEY_SIZE;
	ing->branches.klen = STORE_BRANCHES_KEY_SIZE;
	ing->last_sweep = 0;
	pthread_mutex_init(&ing->mu, NULL);
	pthread_cond_init(&ing->work_cv, NULL);
	pthread_cond_init(&ing->space_cv, NULL);
	pthread_cond_init(&ing->done_cv, NULL);
	if (pthread_create(&ing->writer, NULL, writer_main, ing)) {
		free(ing);
		return FDO_ENOMEM;
	}
	*out = ing;
	return FDO_OK;
}

void agg_ingest_destroy(agg_ingest *ing)
{
	if (!ing)
		return;
	pthread_mutex_lock(&ing->mu);
	ing->stopping = 1;
	pthread_cond_broadcast(&ing->work_cv);
	pthread_cond_broadcast(&ing->space_cv);
	pthread_mutex_unlock(&ing->mu);
	pthread_join(ing->writer, NULL);
	free(ing->counts.slots);
	free(ing->branches.slots);
	free(ing->known.slots);
	free(ing->new_stacks);
	free(ing->pending_ids);
	pthread_mutex_destroy(&ing->mu);
	pthread_cond_destroy(&ing->work_cv);
	pthread_cond_destroy(&ing->space_cv);
	pthread_cond_destroy(&ing->done_cv);
	free(ing);
}

void agg_ingest_batch(agg_ingest *ing, const Fdod__SampleBatch *batch,
		      struct agg_result *res)
{
	memset(res, 0, sizeof *res);
	struct prep *p = NULL;
	int rc = prep_build(batch, ing->limits, ing->o.bucket_seconds, &p, res);
	if (rc) {
		res->status = rc;
		if (!res->message[0])
			snprintf(res->message, sizeof res->message, "%s",
				 fdo_strerror(rc));
		res->samples_accepted = 0;
		pthread_mutex_lock(&ing->mu);
		ing->stats.refused++;
		pthread_mutex_unlock(&ing->mu);
		return;
	}
	p->res = res;
	pthread_mutex_lock(&ing->mu);
	while (ing->queued >= ing->o.queue_max && !ing->stopping)
		pthread_cond_wait(&ing->space_cv, &ing->mu);
	if (ing->stopping) {
		pthread_mutex_unlock(&ing->mu);
		prep_free(p);
		res->status = FDO_EBUSY;
		res->samples_accepted = 0;
		snprintf(res->message, sizeof res->message,
			 "fdod is shutting down; retry later");
		return;
	}
	if (ing->tail)
		ing->tail->next = p;
	else
		ing->head = p;
	ing->tail = p;
	ing->queued++;
	pthread_cond_signal(&ing->work_cv);
	while (!p->done)
		pthread_cond_wait(&ing->done_cv, &ing->mu);
	pthread_mutex_unlock(&ing->mu);
	prep_free(p);
}

void agg_ingest_message(agg_ingest *ing, const uint8_t *msg, size_t len,
			struct fdo_buf *reply)
{
	struct agg_result res = {0};
	Fdod__SampleBatch *b = NULL;
	int rc = wire_batch_decode(msg, len, ing->limits, &b);
	Fdod__Ack ack = FDOD__ACK__INIT;
	if (rc) {
		res.status = rc;
		if (rc == FDO_ELIMIT)
			snprintf(res.message, sizeof res.message,
				 "batch too large: %zu bytes (limits: %zu bytes "
				 "encoded, %zu bytes decoded); split it",
				 len, ing->limits->max_message_bytes,
				 ing->limits->max_decoded_bytes);
		else
			snprintf(res.message, sizeof res.message,
				 "malformed SampleBatch (%zu bytes): %s", len,
				 fdo_strerror(rc));
		pthread_mutex_lock(&ing->mu);
		ing->stats.refused++;
		pthread_mutex_unlock(&ing->mu);
	} else {
		agg_ingest_batch(ing, b, &res);
		ack.seq = b->seq;
	}
	ack.status = (uint32_t)res.status;
	ack.message = res.message;
	ack.duplicate = res.duplicate;
	ack.samples_accepted = res.samples_accepted;
	ack.samples_unmapped = res.samples_unmapped;
	ack.frames_unmapped = res.frames_unmapped;
	ack.branches_accepted = res.branches_accepted;
	ack.branches_unmapped = res.branches_unmapped;
	ack.schema_version = WIRE_SCHEMA_VERSION;
	if (res.status == FDO_EBUSY || res.status == FDO_ESTORE_FULL)
		ack.retry_after_ms = 1000;
	uint8_t *out;
	size_t olen;
	if (wire_ack_encode(&ack, &out, &olen) == FDO_OK) {
		fdo_buf_append(reply, out, olen);
		free(out);
	}
	wire_batch_free(b);
}

void agg_ingest_stats(agg_ingest *ing, struct agg_ingest_stats *st)
{
	pthread_mutex_lock(&ing->mu);
	*st = ing->stats;
	st->queue_len = ing->queued;
	pthread_mutex_unlock(&ing->mu);
}
