/*
 * server/pcache.c — built profiles shared by identical pulls (see
 * server/pcache.h for the contract).
 *
 * DESIGN
 *   Table: a short list, most recently used first (a cache of a few
 *   dozen entries; a linear search costs nothing beside a build). An
 *   entry is BUILDING (one pull builds it; others wait on the condition
 *   variable), READY (its answer is immutable) or FAILED (taken out of
 *   the list; its waiters look again and one of them builds).
 *   Lifetime: refs counts the pulls holding an entry; in_list whether the
 *   list does. It is freed when neither holds it, so an answer evicted
 *   while a pull still copies it stays valid until that pull releases it.
 *   Bounds: at most max_entries entries and max_bytes of READY bodies;
 *   over either, READY entries leave from the least recently used end
 *   (an entry being built is never evicted; one answer larger than
 *   max_bytes is handed to its waiters and not kept). Entries of a key at
 *   an older generation leave when a newer one is added: they can never
 *   be asked for again.
 *   Joining: a pull that finds its key being built joins that build even
 *   when the store has changed since it began (under live ingest every
 *   merge is a change, so a burst of pulls would otherwise each build):
 *   it gets what was merged when the build began, at most one build's
 *   time (and never over max_age) older than its own arrival. So does a
 *   READY answer whose build began after the pull arrived (the pull spent
 *   its time in the flush, under ingest). A pull that finds only a READY
 *   answer of an older generation, begun before it arrived, builds again.
 *   Workload: a handful of distinct profiles pulled by many build jobs;
 *   every store change (generation) makes the next pull build again.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "server/pcache.h"

enum { BUILDING, READY, FAILED };

struct pcache_entry {
	struct pcache_entry *prev, *next;
	char *key;
	uint64_t gen;
	uint64_t started_ns; /* monotonic, when its build began */
	uint64_t built_ns;   /* monotonic, when READY */
	int state;
	int in_list;
	unsigned refs;
	struct pcache_answer a;
};

struct pcache {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pcache_entry *head, *tail;
	unsigned n, max_entries;
	size_t bytes, max_bytes;
	uint64_t max_age_ns;
	uint64_t hits, builds, waits;
};

int pcache_create(unsigned max_entries, size_t max_bytes, unsigned max_age_s,
		  struct pcache **out)
{
	struct pcache *c = calloc(1, sizeof *c);
	if (!c)
		return FDO_ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->max_entries = max_entries;
	c->max_bytes = max_bytes;
	c->max_age_ns = (uint64_t)max_age_s * 1000000000ull;
	*out = c;
	return FDO_OK;
}

static void entry_free(struct pcache_entry *e)
{
	free(e->key);
	free(e->a.body);
	free(e);
}

static void unlink_entry(struct pcache *c, struct pcache_entry *e)
{
	if (!e->in_list)
		return;
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
	e->in_list = 0;
	c->n--;
	if (e->state == READY)
		c->bytes -= e->a.len;
}

/* unlink_entry, and free it when no pull holds it. */
static void drop(struct pcache *c, struct pcache_entry *e)
{
	unlink_entry(c, e);
	if (!e->refs)
		entry_free(e);
}

static void push_front(struct pcache *c, struct pcache_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	else
		c->tail = e;
	c->head = e;
	e->in_list = 1;
	c->n++;
	if (e->state == READY)
		c->bytes += e->a.len;
}

/* Over a bound: READY entries leave from the least recently used end. */
static void evict(struct pcache *c)
{
	struct pcache_entry *e = c->tail;
	while (e && (c->n > c->max_entries || c->bytes > c->max_bytes)) {
		struct pcache_entry *prev = e->prev;
		if (e->state == READY)
			drop(c, e);
		e = prev;
	}
}

void pcache_destroy(struct pcache *c)
{
	if (!c)
		return;
	while (c->head)
		drop(c, c->head); /* every pull has ended: refs are 0 */
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int pcache_get(struct pcache *c, const char *key, uint64_t gen,
	       uint64_t since_ns, struct pcache_entry **out)
{
	*out = NULL;
	if (!c->max_entries)
		return 0;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		uint64_t now = fdo_now_ns();
		struct pcache_entry *e = c->head, *found = NULL;
		while (e) {
			struct pcache_entry *next = e->next;
			if (!strcmp(e->key, key)) {
				if (e->state == BUILDING
					    ? e->gen == gen ||
						      now - e->started_ns <=
							      c->max_age_ns
					    : (e->gen == gen ||
					       e->started_ns >= since_ns) &&
						      now - e->built_ns <=
							      c->max_age_ns) {
					found = e;
					break;
				}
				if (e->state == READY)
					drop(c, e); /* older, or too old */
			}
			e = next;
		}
		if (!found)
			break;
		found->refs++;
		if (found->state == BUILDING) {
			c->waits++;
			while (found->state == BUILDING)
				pthread_cond_wait(&c->cv, &c->mu);
		}
		if (found->state == READY) {
			c->hits++;
			if (found->in_list) {
				unlink_entry(c, found);
				push_front(c, found);
			}
			pthread_mutex_unlock(&c->mu);
			*out = found;
			return 1;
		}
		/* Its build failed: look again (another pull may lead). */
		found->refs--;
		if (!found->refs && !found->in_list)
			entry_free(found);
	}
	struct pcache_entry *e = calloc(1, sizeof *e);
	if (e && !(e->key = strdup(key))) {
		free(e);
		e = NULL;
	}
	if (e) {
		e->gen = gen;
		e->started_ns = fdo_now_ns();
		e->state = BUILDING;
		e->refs = 1;
		push_front(c, e);
		c->builds++;
		evict(c);
	}
	pthread_mutex_unlock(&c->mu);
	*out = e;
	return 0;
}

const struct pcache_answer *pcache_answer_of(const struct pcache_entry *e)
{
	return &e->a;
}

void pcache_release(struct pcache *c, struct pcache_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&c->mu);
	if (!--e->refs && !e->in_list)
		entry_free(e);
	pthread_mutex_unlock(&c->mu);
}

void pcache_publish(struct pcache *c, struct pcache_entry *e,
		    struct pcache_answer *a)
{
	pthread_mutex_lock(&c->mu);
	int listed = e->in_list;
	unlink_entry(c, e);
	e->a = *a;
	a->body = NULL;
	e->state = READY;
	e->built_ns = fdo_now_ns();
	if (listed) {
		push_front(c, e);
		evict(c);
	}
	pthread_cond_broadcast(&c->cv);
	if (!--e->refs && !e->in_list)
		entry_free(e);
	pthread_mutex_unlock(&c->mu);
}

void pcache_fail(struct pcache *c, struct pcache_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&c->mu);
	unlink_entry(c, e);
	e->state = FAILED;
	pthread_cond_broadcast(&c->cv);
	if (!--e->refs)
		entry_free(e);
	pthread_mutex_unlock(&c->mu);
}

void pcache_stats(struct pcache *c, struct pcache_stats *st)
{
	pthread_mutex_lock(&c->mu);
	st->hits = c->hits;
	st->builds = c->builds;
	st->waits = c->waits;
	st->entries = c->n;
	st->bytes = c->bytes;
	pthread_mutex_unlock(&c->mu);
}
