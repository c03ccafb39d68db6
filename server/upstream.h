/*
 * server/upstream.h — symbols fetched from upstream debuginfod servers
 * (libdebuginfod) for build-ids that have samples but no symbols, stored
 * like an upload. server/upstream.c is the only include of
 * elfutils/debuginfod.h.
 */
#ifndef FDO_SERVER_UPSTREAM_H
#define FDO_SERVER_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

typedef struct srv_upstream srv_upstream;

struct srv_upstream_opts {
	const char *urls;    /* upstream base URLs, space separated; not "" */
	const char *datadir; /* symbol store and libdebuginfod's cache */
	unsigned timeout;    /* seconds an upstream may take to start
				answering, or stall a transfer */
	unsigned fetches;    /* fetches at once (threads); >= 1 */
	uint64_t retry;	     /* seconds before an id that was not found
				(or failed) is asked again */
	const char *node_id; /* this node in X-Fdod-Via (the loop guard); NULL:
				a random one */
	store *st;
	/* Called by a fetch thread when symbols of build-id id were stored
	 * (wake the symbolizer); no lock of upstream's is held. */
	void (*fetched_cb)(void *arg, uint32_t id);
	void *fetched_arg;
};

/*
 * srv_upstream_env sets the environment libdebuginfod reads from o->urls,
 * o->timeout and o->datadir (DEBUGINFOD_URLS, _TIMEOUT, _CACHE_PATH =
 * DATADIR/debuginfod-client, _RETRY_LIMIT = 0; clears _PROGRESS,
 * _VERBOSE, _MAXTIME and _MAXSIZE), overriding what fdod inherited.
 * setenv is not thread safe: call from main before any thread starts.
 * Returns FDO_OK or FDO_ENOMEM.
 */
int srv_upstream_env(const struct srv_upstream_opts *o);

/*
 * srv_upstream_create removes what a previous run left in the client cache
 * and starts o->fetches fetch threads. Strings in o are copied; o->st must
 * outlive it. Returns FDO_OK, FDO_ENOMEM.
 */
int srv_upstream_create(const struct srv_upstream_opts *o, srv_upstream **out);

/*
 * srv_upstream_want asks for the symbols of build-id id (bytes build_id,
 * len): queued unless queued or being fetched already, or answered by the
 * negative cache (not found or failed less than `retry` seconds ago).
 * Never blocks on I/O (one mutex, O(1)); any thread. Fits
 * agg_symwork_on_missing.
 */
void srv_upstream_want(void *u, uint32_t id, const uint8_t *build_id,
		       size_t len);

/*
 * srv_upstream_state: what upstream fetching says of build-id id, as a
 * static string ("queued", "fetching", "not found upstream", "fetch
 * failed", "rejected"), or NULL when it has nothing to say. Any thread.
 */
const char *srv_upstream_state(srv_upstream *u, uint32_t id);

/*
 * srv_upstream_forward fetches kind (STORE_SYM_DEBUGINFO or _EXECUTABLE) of
 * build-id bid from the upstream servers now, for a debuginfod request fdod
 * could not answer from its store, and stores it as a fetch would; the
 * caller then serves it from the store. The request to upstream carries
 * `X-Forwarded-For: xff` and `X-Fdod-Via: via` (both already extended by
 * the caller; printable ASCII). Blocks up to the timeout; at most
 * `fetches` forwards at once, and never one for a build-id a fetch thread
 * or another forward holds. Returns FDO_OK (stored, or already there),
 * FDO_ENOT_FOUND (no server has it, or what came was rejected),
 * FDO_ETRANSPORT (timeout, network or store error), FDO_EBUSY (no room:
 * answer 503). Any thread.
 */
int srv_upstream_forward(srv_upstream *u, const uint8_t *bid, size_t len,
			 unsigned kind, const char *xff, const char *via);

/* Loop-guard headers fdod extends: at most SRV_LOOP_HEADER_MAX characters
 * as received; buffers for the extended ones: SRV_LOOP_HEADER_CAP bytes. */
#define SRV_LOOP_HEADER_MAX 1024
#define SRV_LOOP_HEADER_CAP (SRV_LOOP_HEADER_MAX + 320)

/*
 * srv_upstream_loop_guard: may node self (printable, no comma or space,
 * under 256 characters) forward a debuginfod request that carried
 * X-Forwarded-For xff and X-Fdod-Via via (NULL: absent; hostile), from
 * client address peer, with hop limit limit (>= 1)? NULL when it may:
 * nxff and nvia (SRV_LOOP_HEADER_CAP bytes each) get the headers to send
 * upstream, xff plus peer and via plus self. Else the reason it may not:
 * the hop limit (xff lists limit items or more), self already in via,
 * or a header that is over SRV_LOOP_HEADER_MAX or not printable ASCII.
 */
const char *srv_upstream_loop_guard(const char *xff, const char *via,
				    const char *peer, const char *self,
				    unsigned limit, char *nxff, char *nvia);

/* srv_upstream_node: this node's id in X-Fdod-Via. */
const char *srv_upstream_node(srv_upstream *u);

struct srv_upstream_stats {
	uint64_t ok;		/* fetches stored (or already there) */
	uint64_t missing;	/* not found upstream (every server said so) */
	uint64_t failed;	/* timeouts, connection and store errors */
	uint64_t rejected;	/* files that were not ELF or carried another
				   build-id */
	uint64_t negative_hits; /* asks answered by the negative cache */
	uint64_t bytes;		/* bytes of the files stored */
	uint64_t queued;	/* build-ids waiting for a fetch thread */
	uint64_t running;	/* fetches in progress */
	uint64_t forwarded;	/* forwards stored (debuginfod requests) */
	uint64_t forward_missing; /* forwards no server could answer */
	uint64_t forward_failed;  /* forwards that timed out or failed */
};
/* srv_upstream_stats: counters since start; u may be NULL (all zero). */
void srv_upstream_stats(srv_upstream *u, struct srv_upstream_stats *st);

/*
 * srv_upstream_cancel makes running fetches give up within about a second
 * and no new one start. Does not block; any thread.
 */
void srv_upstream_cancel(srv_upstream *u);

/* srv_upstream_destroy cancels, joins the fetch threads and frees u.
 * Blocks (about a second at most). NULL is a no-op. */
void srv_upstream_destroy(srv_upstream *u);

#endif
