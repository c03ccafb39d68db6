/*
 * server/pcache.h — built profiles shared by the pulls that ask the same
 * of the same store (server/pcache.c): a fleet of build jobs pulling one
 * profile costs one build.
 *
 * A key is the request's text (format and query); a generation is the
 * store's (store_stats: the last committed write). A pull that finds an
 * answer of its key and generation takes it; one that finds its key being
 * built, of any generation, waits for that build and takes its answer;
 * otherwise it builds and publishes its own. Since a pull first merges
 * everything acknowledged before it (agg_ingest_flush) and only then
 * reads the generation, an answer of the same generation holds every
 * sample the pull must see; a build it joins holds what was merged when
 * that build began (at most one build's time before the pull arrived):
 * under live ingest every merge changes the generation, and a fleet's
 * build jobs pulling one profile at once must still cost one build.
 *
 * Threads: any; one mutex guards the table, a condition variable wakes the
 * pulls waiting for a build. Entries are immutable once built and
 * reference counted, so an answer is copied out without the lock.
 */
#ifndef FDO_SERVER_PCACHE_H
#define FDO_SERVER_PCACHE_H

#include <stddef.h>
#include <stdint.h>

struct pcache;

/* What a built profile answers with: enough to write the response. */
struct pcache_answer {
	int status;		  /* 200, or a refusal the same store state
				     gives again (404, 409 not ready, 422) */
	const char *content_type; /* static; NULL: the default */
	uint8_t *body;
	size_t len;
	char hash_hex[65];
	uint64_t samples, hosts;
	char build_ids[8 * 129 + 8];
	/* for_build_id= pulls (server/profiles.c): the release and the
	 * shares of the profile fresh, matched, renamed, dropped */
	char for_build_id[129];
	double stale[4];
	size_t stale_n[4];
};

struct pcache_entry; /* opaque */

/*
 * pcache_create: a cache holding at most max_entries built answers and
 * max_bytes of their bodies (least recently used first out); entries
 * older than max_age_s seconds are not reused (a window or a half-life
 * moves with the clock). 0 entries: every pull builds (nothing kept, no
 * one waits). FDO_OK or FDO_ENOMEM.
 */
int pcache_create(unsigned max_entries, size_t max_bytes, unsigned max_age_s,
		  struct pcache **out);
void pcache_destroy(struct pcache *c);

/*
 * pcache_get looks key up at generation gen. Returns:
 *   1 with *e an entry whose answer is ready (pcache_answer_of, then
 *     pcache_release): of generation gen, or built by a build that began
 *     at or after since_ns (the pull's arrival, fdo_now_ns, before its
 *     flush), or of the build of key that was running when the call came
 *     (any generation, begun at most max_age ago), after waiting for it;
 *   0 with *e an entry this caller must build: then exactly one of
 *     pcache_publish (it built an answer) or pcache_fail (it did not:
 *     waiting pulls then build themselves), which also release it;
 *     *e is NULL when the cache keeps nothing or memory ran out: build
 *     without it.
 */
int pcache_get(struct pcache *c, const char *key, uint64_t gen,
	       uint64_t since_ns, struct pcache_entry **e);
const struct pcache_answer *pcache_answer_of(const struct pcache_entry *e);
void pcache_release(struct pcache *c, struct pcache_entry *e);
/* pcache_publish takes over a->body (malloc'd) and the rest of *a. */
void pcache_publish(struct pcache *c, struct pcache_entry *e,
		    struct pcache_answer *a);
void pcache_fail(struct pcache *c, struct pcache_entry *e);

struct pcache_stats {
	uint64_t hits, builds, waits; /* waits: hits that waited for a build */
	size_t entries, bytes;
};
void pcache_stats(struct pcache *c, struct pcache_stats *st);

#endif
