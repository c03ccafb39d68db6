/*
 * symbolizer/cache.c — the DWARF cache: open indexes keyed by build-id,
 * shared by worker threads, evicted least-recently-used under a budget.
 *
 * DESIGN
 *   Threads: any number of symbolizer workers call get/release; no thread
 *   of our own. One mutex guards the table, the LRU list and every
 *   entry's refs/loading fields; index contents are immutable and read
 *   without it.
 *   A miss inserts a "loading" entry and opens the index with the lock
 *   released (opening may build for seconds); other threads asking for the
 *   same build-id wait on the condition variable, then share the result.
 *   Entries with refs == 0 sit on the LRU list (most recent at the head);
 *   after each release or load, entries are evicted from the tail while
 *   resident bytes exceed the budget. Entries in use are never evicted.
 *   Shutdown: sym_cache_destroy with no references outstanding.
 *   Workload: a hit per symbolization batch; misses once per build-id.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/sym_int.h"

struct centry {
	uint8_t id[FDO_BUILD_ID_MAX];
	size_t len;
	sym_index *idx; /* NULL while loading */
	unsigned refs;
	int loading;
	int orphan; /* forgotten while in use: freed by its last release */
	size_t bytes;
	struct centry *hnext, *prev, *next; /* prev/next: LRU when refs==0 */
};

#define NBUCKETS 256

struct sym_cache {
	pthread_mutex_t lock;
	pthread_cond_t loaded;
	size_t budget, bytes, count;
	uint64_t hits, misses;
	char *dir;
	struct centry *buckets[NBUCKETS];
	struct centry *lru_head, *lru_tail;
};

static unsigned bucket_of(const uint8_t *id, size_t len)
{
	unsigned h = 0;
	for (size_t i = 0; i < len; i++)
		h = h * 31 + id[i];
	return h % NBUCKETS;
}

static void lru_unlink(sym_cache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else if (c->lru_head == e)
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else if (c->lru_tail == e)
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_head(sym_cache *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head)
		c->lru_head->prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

static void table_remove(sym_cache *c, struct centry *e)
{
	struct centry **pp = &c->buckets[bucket_of(e->id, e->len)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
}

/* Called with the lock held. */
static void evict(sym_cache *c)
{
	while (c->bytes > c->budget && c->lru_tail) {
		struct centry *e = c->lru_tail;
		lru_unlink(c, e);
		table_remove(c, e);
		c->bytes -= e->bytes;
		c->count--;
		sym_index_close(e->idx);
		free(e);
	}
}

int sym_cache_create(size_t budget_bytes, const char *cache_dir,
		     sym_cache **out)
{
	sym_cache *c = calloc(1, sizeof *c);
	if (!c)
		return FDO_ENOMEM;
	c->budget = budget_bytes;
	if (cache_dir && !(c->dir = strdup(cache_dir))) {
		free(c);
		return FDO_ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->loaded, NULL);
	*out = c;
	return FDO_OK;
}

void sym_cache_destroy(sym_cache *c)
{
	if (!c)
		return;
	for (int b = 0; b < NBUCKETS; b++) {
		struct centry *e = c->buckets[b];
		while (e) {
			struct centry *n = e->hnext;
			sym_index_close(e->idx);
			free(e);
			e = n;
		}
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->loaded);
	free(c->dir);
	free(c);
}

int sym_cache_get(sym_cache *c, const uint8_t *id, size_t len,
		  const char *elf_path, const char *debug_path, sym_index **out)
{
	*out = NULL;
	if (!len || len > FDO_BUILD_ID_MAX)
		return FDO_EBAD_BUILD_ID;
	pthread_mutex_lock(&c->lock);
	unsigned b = bucket_of(id, len);
	for (;;) {
		struct centry *e = c->buckets[b];
		while (e && !(e->len == len && !memcmp(e->id, id, len)))
			e = e->hnext;
		if (!e)
			break;
		if (e->loading) {
			pthread_cond_wait(&c->loaded, &c->lock);
			continue; /* the entry may have gone: look again */
		}
		if (e->refs++ == 0)
			lru_unlink(c, e);
		c->hits++;
		*out = e->idx;
		pthread_mutex_unlock(&c->lock);
		return FDO_OK;
	}
	struct centry *e = calloc(1, sizeof *e);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return FDO_ENOMEM;
	}
	memcpy(e->id, id, len);
	e->len = len;
	e->loading = 1;
	e->refs = 1;
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	c->misses++;
	pthread_mutex_unlock(&c->lock);

	sym_index *idx = NULL;
	int err = sym_index_open(elf_path, debug_path, c->dir, &idx);
	if (!err &&
	    (idx->v.build_id_len != len || memcmp(idx->v.build_id, id, len))) {
		fdo_warn("symbolizer: %s does not have the requested build-id",
			 elf_path);
		sym_index_close(idx);
		idx = NULL;
		err = FDO_EINVAL;
	}

	pthread_mutex_lock(&c->lock);
	if (err) {
		table_remove(c, e);
		free(e);
	} else {
		e->idx = idx;
		e->bytes = sym_index_memory(idx);
		e->loading = 0;
		idx->centry = e;
		c->bytes += e->bytes;
		c->count++;
		evict(c);
		*out = idx;
	}
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->lock);
	return err;
}

void sym_cache_release(sym_cache *c, sym_index *idx)
{
	if (!idx)
		return;
	pthread_mutex_lock(&c->lock);
	struct centry *e = idx->centry;
	if (e && e->refs > 0 && --e->refs == 0) {
		if (e->orphan) {
			c->bytes -= e->bytes;
			c->count--;
			sym_index_close(e->idx);
			free(e);
		} else {
			lru_push_head(c, e);
			evict(c);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void sym_cache_forget(sym_cache *c, const uint8_t *id, size_t len)
{
	pthread_mutex_lock(&c->lock);
	unsigned b = bucket_of(id, len);
	for (;;) {
		struct centry *e = c->buckets[b];
		while (e && !(e->len == len && !memcmp(e->id, id, len)))
			e = e->hnext;
		if (!e)
			break;
		if (e->loading) {
			pthread_cond_wait(&c->loaded, &c->lock);
			continue;
		}
		table_remove(c, e);
		if (e->refs) {
			e->orphan = 1; /* its users finish with the old index */
		} else {
			lru_unlink(c, e);
			c->bytes -= e->bytes;
			c->count--;
			sym_index_close(e->idx);
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
}

void sym_cache_stats(sym_cache *c, size_t *count, size_t *bytes, uint64_t *hits,
		     uint64_t *misses)
{
	pthread_mutex_lock(&c->lock);
	if (count)
		*count = c->count;
	if (bytes)
		*bytes = c->bytes;
	if (hits)
		*hits = c->hits;
	if (misses)
		*misses = c->misses;
	pthread_mutex_unlock(&c->lock);
}
