/*
 * server/upstream.c — missing symbols fetched from upstream debuginfod
 * servers with libdebuginfod, validated and stored as an upload would be.
 *
 * Workload: a few build-ids at a time (a new release, a shared library
 * nobody uploaded); each fetch is a network round trip of up to seconds
 * and a file of up to hundreds of MB. Asks (from the symbolizer, every
 * time it looks at a build-id without symbols) outnumber fetches by far:
 * most are answered by the table below without touching the network.
 *
 * DESIGN
 *   A table of build-ids (an array, found by interned id through an
 *   fdo_map64), each QUEUED, FETCHING, or negative (MISSING, FAILED, REJECTED)
 * until a deadline. srv_upstream_want, called by symbolizer workers, adds an id
 *   as QUEUED, or counts a negative-cache hit. `fetches` threads each own
 *   one libdebuginfod handle (handles are not thread safe) and loop: take
 *   the oldest QUEUED id (a negative entry past its deadline is queued
 *   again, so an id whose symbols appear upstream later is found without
 *   new samples), check in the store that it still has pending addresses
 *   and no executable, ask for `debuginfo` (unless stored already), then
 *   for `executable` when no server has debuginfo or it was a separate
 *   debug file (which cannot map sampled file offsets to addresses), with
 *   no lock held. A file must be ELF and carry
 *   the requested build-id; it is moved (rename, no copy) from
 *   libdebuginfod's cache into symbols/.incoming and adopted by the symbol
 *   store like an HTTP upload; then fetched_cb wakes the symbolizer. The
 *   id's entry goes; a failure becomes a negative entry for `retry`
 *   seconds. libdebuginfod's cache directory (DATADIR/debuginfod-client)
 *   only ever holds the fetch in progress: each fetch removes its
 *   directory there, including libdebuginfod's own negative-cache file,
 *   so our table alone decides when to ask again.
 *   Timeouts: libdebuginfod gives up on a transfer slower than 100 KiB/s
 *   for `timeout` seconds (DEBUGINFOD_TIMEOUT); the progress callback,
 *   called at least once a second, gives up when no server has started
 *   answering within `timeout` seconds (connecting included), and at
 *   shutdown.
 *   Locking: mu guards the table, the counters and stopping's writes;
 *   stopping is atomic so that progress callbacks read it without mu.
 *   fetched_cb and the store are called without mu.
 *   Shutdown: cancel sets stopping; fetches in progress end within a
 *   second; destroy joins the threads.
 *   Forwards (srv_upstream_forward): a debuginfod request fdod cannot
 *   answer from its store is fetched on the HTTP worker that serves it,
 *   with a libdebuginfod handle of its own, and stored like a fetch. The
 *   client cache has one directory per build-id, so a build-id is never
 *   fetched twice at once: a forward is refused (503) while a fetch
 *   thread or another forward holds it, and pick() skips build-ids being
 *   forwarded. Every request to upstream carries X-Fdod-Via (this node's
 *   id, appended to what a forwarded request carried): the loop guard of
 *   nodes that are each other's upstream (server/debuginfod.c).
 */
#include <dirent.h>
#include <elfutils/debuginfod.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/map.h"
#include "server/upstream.h"

#define UPSTREAM_MAX_IDS (1u << 16) /* build-ids remembered at most */
#define CLIENT_DIR	 "debuginfod-client"

enum up_state {
	UP_QUEUED = 1,
	UP_FETCHING,
	UP_MISSING,  /* negative: every server answered 404 */
	UP_FAILED,   /* negative: timeout, network or store error */
	UP_REJECTED, /* negative: the file was not the one asked for */
};

struct up_entry {
	uint32_t id;   /* interned build-id, never 0 */
	uint8_t state; /* enum up_state */
	uint8_t len;
	uint8_t build_id[FDO_BUILD_ID_MAX];
	uint64_t seq;	/* order of queueing (oldest first) */
	uint64_t until; /* negative entries: asked again after (mono ns) */
};

struct srv_upstream {
	store *st;
	char *datadir;
	char *urls;
	char client_dir[4096]; /* DATADIR/debuginfod-client */
	uint64_t timeout_ns, retry_ns;
	void (*fetched_cb)(void *arg, uint32_t id);
	void *fetched_arg;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct up_entry *ents; /* guarded by mu: n of them, room for cap */
	size_t cap, n;
	struct fdo_map64 index; /* guarded by mu: id -> index in ents */
	uint64_t next_seq;	/* guarded by mu */
	struct srv_upstream_stats stats; /* guarded by mu */
	int full_logged;		 /* guarded by mu */
	atomic_int stopping;

	pthread_t *threads;
	unsigned nthreads;

	char node_id[256];	 /* in X-Fdod-Via */
	struct up_forward *fwds; /* guarded by mu: forwards in progress */
	unsigned nfwd, maxfwd;
};

/* A forward in progress (srv_upstream_forward). */
struct up_forward {
	uint8_t len;
	uint8_t build_id[FDO_BUILD_ID_MAX];
};

/* What one fetch thread's progress callback needs. */
struct fetch_ctx {
	srv_upstream *u;
	uint64_t start; /* of the current find call, mono ns */
	int cancelled;	/* 1: no answer in time, 2: stopping */
};

enum outcome {
	OUT_OK,
	OUT_SKIP,
	OUT_MISSING,
	OUT_FAILED,
	OUT_REJECTED,
	OUT_CANCELLED
};

/* ------------------------------------------------------------- table -- */

static struct up_entry *find(srv_upstream *u, uint32_t id)
{
	uint32_t i;
	return fdo_map64_get(&u->index, id, &i) ? &u->ents[i] : NULL;
}

/* The last entry moves into the hole. Neither put can fail: the map has
 * just lost a key, so it does not grow. */
static void remove_entry(srv_upstream *u, struct up_entry *e)
{
	size_t i = (size_t)(e - u->ents), last = --u->n;
	uint32_t v;
	int found;
	fdo_map64_del(&u->index, e->id);
	if (i != last) {
		u->ents[i] = u->ents[last];
		fdo_map64_del(&u->index, u->ents[i].id);
		(void)fdo_map64_put(&u->index, u->ents[i].id, (uint32_t)i, &v,
				    &found);
	}
	memset(&u->ents[last], 0, sizeof u->ents[last]);
}

/* A new zeroed entry for id (absent), or NULL when out of memory. */
static struct up_entry *insert(srv_upstream *u, uint32_t id)
{
	uint32_t v;
	int found;
	if (fdo_grow(u->ents, u->cap, u->n + 1) ||
	    fdo_map64_put(&u->index, id, (uint32_t)u->n, &v, &found))
		return NULL;
	struct up_entry *e = &u->ents[u->n++];
	memset(e, 0, sizeof *e);
	e->id = id;
	return e;
}

static int negative(const struct up_entry *e)
{
	return e->state >= UP_MISSING;
}

/* Is build-id bid being forwarded? Called with mu held. */
static int forwarding(const srv_upstream *u, const uint8_t *bid, size_t len)
{
	for (unsigned i = 0; i < u->nfwd; i++)
		if (u->fwds[i].len == len &&
		    !memcmp(u->fwds[i].build_id, bid, len))
			return 1;
	return 0;
}

/* Is build-id bid being fetched by a fetch thread? Called with mu held. */
static int fetching(const srv_upstream *u, const uint8_t *bid, size_t len)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->ents[i].state == UP_FETCHING && u->ents[i].len == len &&
		    !memcmp(u->ents[i].build_id, bid, len))
			return 1;
	return 0;
}

/* ---------------------------------------------------------------- API -- */

void srv_upstream_want(void *arg, uint32_t id, const uint8_t *build_id,
		       size_t len)
{
	srv_upstream *u = arg;
	if (!id || !len || len > FDO_BUILD_ID_MAX)
		return;
	pthread_mutex_lock(&u->mu);
	if (atomic_load(&u->stopping)) {
		pthread_mutex_unlock(&u->mu);
		return;
	}
	struct up_entry *e = find(u, id);
	if (e && negative(e) && e->until > fdo_now_ns()) {
		u->stats.negative_hits++;
	} else if (e && negative(e)) {
		e->state = UP_QUEUED; /* its time has come */
		e->seq = u->next_seq++;
		pthread_cond_signal(&u->cv);
	} else if (!e) {
		if (u->n >= UPSTREAM_MAX_IDS || !(e = insert(u, id))) {
			if (!u->full_logged)
				fdo_warn("debuginfod: %zu build-ids waiting "
					 "for upstream fetches; not asking "
					 "for more until some are done",
					 u->n);
			u->full_logged = 1;
		} else {
			e->state = UP_QUEUED;
			e->len = (uint8_t)len;
			memcpy(e->build_id, build_id, len);
			e->seq = u->next_seq++;
			pthread_cond_signal(&u->cv);
		}
	}
	pthread_mutex_unlock(&u->mu);
}

const char *srv_upstream_state(srv_upstream *u, uint32_t id)
{
	if (!u)
		return NULL;
	static const char *const names[] = {
		[UP_QUEUED] = "queued",
		[UP_FETCHING] = "fetching",
		[UP_MISSING] = "not found upstream",
		[UP_FAILED] = "fetch failed",
		[UP_REJECTED] = "rejected",
	};
	const char *s = NULL;
	pthread_mutex_lock(&u->mu);
	struct up_entry *e = find(u, id);
	if (e)
		s = names[e->state];
	pthread_mutex_unlock(&u->mu);
	return s;
}

void srv_upstream_stats(srv_upstream *u, struct srv_upstream_stats *st)
{
	memset(st, 0, sizeof *st);
	if (!u)
		return;
	pthread_mutex_lock(&u->mu);
	*st = u->stats;
	st->queued = st->running = 0;
	for (size_t i = 0; i < u->n; i++)
		if (u->ents[i].state == UP_QUEUED)
			st->queued++;
		else if (u->ents[i].state == UP_FETCHING)
			st->running++;
	pthread_mutex_unlock(&u->mu);
}

/* ------------------------------------------------------------ fetching -- */

/* libdebuginfod calls this at least once a second while it works. */
static int progress(debuginfod_client *c, long a, long b)
{
	struct fetch_ctx *x = debuginfod_get_user_data(c);
	if (atomic_load(&x->u->stopping)) {
		x->cancelled = 2;
		return 1;
	}
	/* The URL is known once a server has started sending the file. */
	if (!debuginfod_get_url(c) &&
	    fdo_now_ns() - x->start > x->u->timeout_ns) {
		x->cancelled = 1;
		return 1;
	}
	return 0;
}

/* Remove DIR/<hex>/ of libdebuginfod's cache and what it holds (the file
 * fetched when it could not be moved, temp files, negative-cache marks). */
static void clean_client_dir(const char *client_dir, const char *name)
{
	char dir[4096 + 160], path[4096 + 512];
	snprintf(dir, sizeof dir, "%s/%s", client_dir, name);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

/* Does id still need symbols: pending addresses and no executable?
 * *have gets the slots the store holds. */
static int still_wanted(srv_upstream *u, uint32_t id, unsigned *have)
{
	store_txn *t;
	*have = 0;
	if (store_txn_begin(u->st, 0, &t))
		return 1; /* ask anyway; storing will report the error */
	struct store_buildid rec;
	int want = store_buildid_get(t, id, &rec) == FDO_OK &&
		   !(rec.sym_state & STORE_SYM_EXECUTABLE);
	if (want)
		*have = rec.sym_state;
	store_cursor *cur;
	if (want && store_cursor_open(t, STORE_PENDING, &cur) == FDO_OK) {
		uint8_t key[STORE_ADDR_KEY_SIZE];
		struct store_frame a = {id, 0};
		store_addr_key_encode(key, &a);
		const void *k, *v;
		size_t kl, vl;
		want = store_cursor_seek(cur, key, sizeof key, &k, &kl, &v,
					 &vl) == FDO_OK &&
		       store_addr_key_decode(k, kl, &a) == FDO_OK &&
		       a.build_id == id;
		store_cursor_close(cur);
	}
	store_txn_abort(t);
	return want;
}

/* Validate the fetched file open on fd (at path in the client cache) and
 * put it in the symbol store; *size gets its size, *slots the slots it
 * filled or found filled. wait is for the log. */
static enum outcome store_fetched(srv_upstream *u, const uint8_t *bid,
				  size_t len, const char *hex, const char *kind,
				  const char *url, int fd, const char *path,
				  const char *wait, uint64_t *size,
				  unsigned *slots)
{
	struct store_elf_info info;
	char why[256];
	int rc = store_elf_inspect(fd, &info, why, sizeof why);
	if (rc) {
		fdo_warn("debuginfod: %s of %s from %s rejected: %s; asking "
			 "again in %s",
			 kind, hex, url, why[0] ? why : fdo_strerror(rc), wait);
		return OUT_REJECTED;
	}
	if (info.build_id_len != len || memcmp(info.build_id, bid, len)) {
		char other[2 * FDO_BUILD_ID_MAX + 1];
		fdo_hex_encode(info.build_id, info.build_id_len, other);
		fdo_warn("debuginfod: %s of %s from %s rejected: the file "
			 "carries build-id %s; asking again in %s",
			 kind, hex, url, other, wait);
		return OUT_REJECTED;
	}
	/* Move it beside HTTP uploads and adopt it; copy only when the
	 * cache is on another file system. */
	fchmod(fd, 0644); /* libdebuginfod leaves 0400 */
	struct store_sym_result res;
	memset(&res, 0, sizeof res);
	char tmp[4096];
	int tfd;
	rc = store_symbols_tmpfile(u->datadir, tmp, sizeof tmp, &tfd);
	if (rc == FDO_OK) {
		close(tfd);
		if (rename(path, tmp) == 0) {
			rc = store_symbols_adopt(u->st, u->datadir, tmp, NULL,
						 0, &res);
		} else {
			unlink(tmp);
			rc = store_symbols_add_fd(u->st, u->datadir, fd, NULL,
						  &res);
		}
	}
	if (rc != FDO_OK && rc != FDO_EEXISTS) {
		fdo_error("debuginfod: cannot store %s of %s: %s; asking again "
			  "in %s",
			  kind, hex, res.why[0] ? res.why : fdo_strerror(rc),
			  wait);
		return OUT_FAILED;
	}
	*size = info.size;
	*slots = res.slots;
	return OUT_OK;
}

static void describe_wait(const srv_upstream *u, char *buf, size_t cap)
{
	uint64_t s = u->retry_ns / 1000000000ull;
	if (s % 3600 == 0)
		snprintf(buf, cap, "%lluh", (unsigned long long)(s / 3600));
	else if (s % 60 == 0)
		snprintf(buf, cap, "%llum", (unsigned long long)(s / 60));
	else
		snprintf(buf, cap, "%llus", (unsigned long long)s);
}

/* One find call: fd (>= 0) or -errno; x->cancelled says whether the
 * progress callback gave up. *path (free) is the file in the cache. */
static int ask(debuginfod_client *c, struct fetch_ctx *x, const char *hex,
	       unsigned kind, char **path)
{
	x->cancelled = 0;
	x->start = fdo_now_ns();
	*path = NULL;
	/* The hex form: libdebuginfod refuses 64-byte ids given as bytes. */
	const unsigned char *id = (const unsigned char *)hex;
	return kind == STORE_SYM_DEBUGINFO
		       ? debuginfod_find_debuginfo(c, id, 0, path)
		       : debuginfod_find_executable(c, id, 0, path);
}

/*
 * Fetch what id lacks: debuginfo first, unless the store has it; then the
 * executable, when no server had debuginfo or it was a separate debug file
 * (whose program headers cannot map sampled file offsets). The fetch is a
 * success once the store holds an executable.
 */
static enum outcome fetch_one(srv_upstream *u, debuginfod_client *c,
			      struct fetch_ctx *x, uint32_t id,
			      const uint8_t *bid, size_t len, uint64_t *bytes)
{
	unsigned have;
	if (!still_wanted(u, id, &have))
		return OUT_SKIP;
	char hex[2 * FDO_BUILD_ID_MAX + 1], wait[32];
	fdo_hex_encode(bid, len, hex);
	describe_wait(u, wait, sizeof wait);
	enum outcome out = OUT_MISSING;
	const unsigned kinds[2] = {STORE_SYM_DEBUGINFO, STORE_SYM_EXECUTABLE};
	for (int k = 0; k < 2 && out == OUT_MISSING; k++) {
		if (have & kinds[k])
			continue;
		const char *kind = k ? "executable" : "debuginfo";
		char *path;
		int fd = ask(c, x, hex, kinds[k], &path);
		if (x->cancelled && fd >= 0) {
			close(fd); /* given up: what came is not used */
			fd = -EINTR;
		}
		if (x->cancelled == 2) {
			out = OUT_CANCELLED;
		} else if (x->cancelled) {
			fdo_warn("debuginfod: %s: no answer from %s within "
				 "%llu s; asking again in %s",
				 hex, u->urls,
				 (unsigned long long)(u->timeout_ns /
						      1000000000ull),
				 wait);
			out = OUT_FAILED;
		} else if (fd == -ENOENT) {
			out = OUT_MISSING; /* try the next kind */
		} else if (fd < 0) {
			fdo_warn("debuginfod: %s: fetching %s from %s failed: "
				 "%s; asking again in %s",
				 hex, kind, u->urls, strerror(-fd), wait);
			out = OUT_FAILED;
		} else {
			const char *url = debuginfod_get_url(c);
			unsigned slots = 0;
			uint64_t size = 0;
			out = store_fetched(u, bid, len, hex, kind,
					    url ? url : u->urls, fd, path, wait,
					    &size, &slots);
			if (out == OUT_OK)
				fdo_info("debuginfod: fetched %s of %s from %s "
					 "(%llu bytes, %.0f ms)",
					 kind, hex, url ? url : u->urls,
					 (unsigned long long)size,
					 (fdo_now_ns() - x->start) / 1e6);
			*bytes += size;
			have |= slots;
			if (out == OUT_OK && !(have & STORE_SYM_EXECUTABLE))
				out = OUT_MISSING; /* a debug file alone */
			close(fd);
		}
		free(path);
	}
	if (out == OUT_MISSING)
		fdo_info("debuginfod: %s %s; asking again in %s", hex,
			 have & STORE_SYM_DEBUGINFO
				 ? "has debuginfo but no executable upstream"
				 : "not found upstream (debuginfo, executable)",
			 wait);
	clean_client_dir(u->client_dir, hex);
	return out;
}

/* The oldest QUEUED entry (negative entries past their deadline are
 * queued again first), or NULL. Called with mu held. */
static struct up_entry *pick(srv_upstream *u)
{
	uint64_t now = fdo_now_ns();
	struct up_entry *best = NULL;
	for (size_t i = 0; i < u->n; i++) {
		struct up_entry *e = &u->ents[i];
		if (negative(e) && e->until <= now) {
			e->state = UP_QUEUED;
			e->seq = u->next_seq++;
		}
		if (e->state == UP_QUEUED && (!best || e->seq < best->seq) &&
		    !forwarding(u, e->build_id, e->len))
			best = e;
	}
	return best;
}

static void *fetch_main(void *arg)
{
	srv_upstream *u = arg;
	debuginfod_client *c = debuginfod_begin();
	if (!c) {
		fdo_error("debuginfod: cannot start a client: %s",
			  strerror(errno));
		return NULL;
	}
	struct fetch_ctx x = {.u = u};
	debuginfod_set_user_data(c, &x);
	debuginfod_set_progressfn(c, progress);
	char via[sizeof u->node_id + 16];
	snprintf(via, sizeof via, "X-Fdod-Via: %s", u->node_id);
	if (debuginfod_add_http_header(c, via))
		fdo_warn("debuginfod: cannot add the X-Fdod-Via header");
	pthread_mutex_lock(&u->mu);
	while (!atomic_load(&u->stopping)) {
		struct up_entry *e = pick(u);
		if (!e) {
			/* Wake up once a second for negative entries whose
			 * time has come. */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&u->cv, &u->mu, &ts);
			continue;
		}
		e->state = UP_FETCHING;
		uint32_t id = e->id;
		uint8_t bid[FDO_BUILD_ID_MAX];
		size_t len = e->len;
		memcpy(bid, e->build_id, len);
		pthread_mutex_unlock(&u->mu);

		uint64_t bytes = 0;
		enum outcome out = fetch_one(u, c, &x, id, bid, len, &bytes);
		if (out == OUT_OK && u->fetched_cb)
			u->fetched_cb(u->fetched_arg, id);

		pthread_mutex_lock(&u->mu);
		e = find(u, id); /* entries may have moved meanwhile */
		if (!e)
			continue;
		switch (out) {
		case OUT_OK:
			u->stats.ok++;
			u->stats.bytes += bytes;
			/* fall through */
		case OUT_SKIP:
		case OUT_CANCELLED:
			remove_entry(u, e);
			u->full_logged = 0;
			break;
		case OUT_MISSING:
		case OUT_FAILED:
		case OUT_REJECTED:
			e->state = out == OUT_MISSING  ? UP_MISSING
				   : out == OUT_FAILED ? UP_FAILED
						       : UP_REJECTED;
			e->until = fdo_now_ns() + u->retry_ns;
			if (out == OUT_MISSING)
				u->stats.missing++;
			else if (out == OUT_FAILED)
				u->stats.failed++;
			else
				u->stats.rejected++;
			break;
		}
	}
	pthread_mutex_unlock(&u->mu);
	debuginfod_end(c);
	return NULL;
}

/* ------------------------------------------------------------ forwards -- */

/* A loop-guard header we may extend: absent, or printable and bounded. */
static int header_ok(const char *h)
{
	if (!h)
		return 1;
	size_t n = strlen(h);
	for (size_t i = 0; i < n; i++)
		if (h[i] < 0x20 || h[i] > 0x7e)
			return 0;
	return n <= SRV_LOOP_HEADER_MAX;
}

/* Hops an X-Forwarded-For lists: its comma-separated items. */
static unsigned hops(const char *xff)
{
	if (!xff || !xff[strspn(xff, " \t")])
		return 0;
	unsigned n = 1;
	for (; *xff; xff++)
		n += *xff == ',';
	return n;
}

/* Does the comma-separated list via hold node (spaces around items)? */
static int lists(const char *via, const char *node)
{
	size_t len = strlen(node);
	while (via && *via) {
		via += strspn(via, " \t");
		size_t n = strcspn(via, ",");
		size_t m = n;
		while (m && (via[m - 1] == ' ' || via[m - 1] == '\t'))
			m--;
		if (m == len && !memcmp(via, node, len))
			return 1;
		via += n;
		via += *via == ',';
	}
	return 0;
}

/* Join "a, b" (b alone when a is absent or empty) into buf. */
static void append(char *buf, size_t cap, const char *a, const char *b)
{
	if (a && a[strspn(a, " \t")])
		snprintf(buf, cap, "%s, %s", a, b);
	else
		snprintf(buf, cap, "%s", b);
}

const char *srv_upstream_loop_guard(const char *xff, const char *via,
				    const char *peer, const char *self,
				    unsigned limit, char *nxff, char *nvia)
{
	if (!header_ok(xff) || !header_ok(via))
		return "X-Forwarded-For or X-Fdod-Via over 1024 characters or "
		       "not printable";
	if (hops(xff) >= limit)
		return "X-Forwarded-For reached the hop limit";
	if (lists(via, self))
		return "it came through this node";
	append(nxff, SRV_LOOP_HEADER_CAP, xff, peer);
	append(nvia, SRV_LOOP_HEADER_CAP, via, self);
	return NULL;
}

static int add_header(debuginfod_client *c, const char *name, const char *value)
{
	char h[4096];
	if (!value || !*value)
		return 0;
	if ((size_t)snprintf(h, sizeof h, "%s: %s", name, value) >= sizeof h)
		return -1;
	return debuginfod_add_http_header(c, h);
}

int srv_upstream_forward(srv_upstream *u, const uint8_t *bid, size_t len,
			 unsigned kind, const char *xff, const char *via)
{
	if (!len || len > FDO_BUILD_ID_MAX)
		return FDO_ENOT_FOUND;
	pthread_mutex_lock(&u->mu);
	if (atomic_load(&u->stopping) || u->nfwd >= u->maxfwd ||
	    forwarding(u, bid, len) || fetching(u, bid, len)) {
		pthread_mutex_unlock(&u->mu);
		return FDO_EBUSY;
	}
	struct up_forward *slot = &u->fwds[u->nfwd++];
	slot->len = (uint8_t)len;
	memcpy(slot->build_id, bid, len);
	pthread_mutex_unlock(&u->mu);

	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(bid, len, hex);
	const char *kname = kind == STORE_SYM_DEBUGINFO ? "debuginfo"
							: "executable";
	enum outcome out = OUT_FAILED;
	struct fetch_ctx x = {.u = u};
	debuginfod_client *c = debuginfod_begin();
	if (!c) {
		fdo_error("debuginfod: cannot start a client: %s",
			  strerror(errno));
	} else if (add_header(c, "X-Forwarded-For", xff) ||
		   add_header(c, "X-Fdod-Via", via)) {
		fdo_warn("debuginfod: forwarding %s of %s: cannot add the "
			 "loop guard's headers",
			 kname, hex);
	} else {
		debuginfod_set_user_data(c, &x);
		debuginfod_set_progressfn(c, progress);
		char *path;
		int fd = ask(c, &x, hex, kind, &path);
		if (x.cancelled && fd >= 0) {
			close(fd);
			fd = -EINTR;
		}
		if (fd == -ENOENT && !x.cancelled) {
			out = OUT_MISSING;
		} else if (fd < 0) {
			fdo_warn(
				"debuginfod: forwarding %s of %s to %s failed: "
				"%s",
				kname, hex, u->urls,
				x.cancelled ? "no answer in time"
					    : strerror(-fd));
		} else {
			const char *url = debuginfod_get_url(c);
			unsigned slots = 0;
			uint64_t size = 0;
			out = store_fetched(u, bid, len, hex, kname,
					    url ? url : u->urls, fd, path,
					    "the next request", &size, &slots);
			if (out == OUT_OK)
				fdo_info("debuginfod: forwarded %s of %s from "
					 "%s (%llu bytes, %.0f ms)",
					 kname, hex, url ? url : u->urls,
					 (unsigned long long)size,
					 (fdo_now_ns() - x.start) / 1e6);
			close(fd);
		}
		free(path);
		clean_client_dir(u->client_dir, hex);
	}
	if (c)
		debuginfod_end(c);

	pthread_mutex_lock(&u->mu);
	for (unsigned i = 0; i < u->nfwd; i++)
		if (u->fwds[i].len == len &&
		    !memcmp(u->fwds[i].build_id, bid, len)) {
			u->fwds[i] = u->fwds[--u->nfwd];
			break;
		}
	if (out == OUT_OK)
		u->stats.forwarded++;
	else if (out == OUT_MISSING || out == OUT_REJECTED)
		u->stats.forward_missing++;
	else
		u->stats.forward_failed++;
	pthread_mutex_unlock(&u->mu);
	return out == OUT_OK	   ? FDO_OK
	       : out == OUT_FAILED ? FDO_ETRANSPORT
				   : FDO_ENOT_FOUND;
}

const char *srv_upstream_node(srv_upstream *u)
{
	return u->node_id;
}

/* ------------------------------------------------------ start and stop -- */

int srv_upstream_env(const struct srv_upstream_opts *o)
{
	char dir[4096 + 32], timeout[32];
	snprintf(dir, sizeof dir, "%s/" CLIENT_DIR, o->datadir);
	snprintf(timeout, sizeof timeout, "%u", o->timeout);
	if (setenv(DEBUGINFOD_URLS_ENV_VAR, o->urls, 1) ||
	    setenv(DEBUGINFOD_CACHE_PATH_ENV_VAR, dir, 1) ||
	    setenv(DEBUGINFOD_TIMEOUT_ENV_VAR, timeout, 1) ||
	    setenv(DEBUGINFOD_RETRY_LIMIT_ENV_VAR, "0", 1))
		return FDO_ENOMEM;
	/* Progress bars and debug output would break fdod's one-line log;
	 * the total time is bounded by the timeouts above. With a maximum
	 * size, libdebuginfod 0.188 dprintf()s to its verbose fd even when
	 * that is -1, and glibc's dprintf leaks its buffer on a bad fd: 4 KiB
	 * per request. Disk space is the symbol store's concern anyway. */
	unsetenv(DEBUGINFOD_PROGRESS_ENV_VAR);
	unsetenv(DEBUGINFOD_VERBOSE_ENV_VAR);
	unsetenv(DEBUGINFOD_MAXTIME_ENV_VAR);
	unsetenv(DEBUGINFOD_MAXSIZE_ENV_VAR);
	return FDO_OK;
}

/* A previous run may have left fetches half done in the client cache. */
static void clean_client_cache(const char *client_dir)
{
	mkdir(client_dir, 0700);
	DIR *d = opendir(client_dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		uint8_t id[FDO_BUILD_ID_MAX];
		size_t len;
		/* Only build-id directories; libdebuginfod's settings stay. */
		if (fdo_build_id_parse(de->d_name, id, &len) == FDO_OK)
			clean_client_dir(client_dir, de->d_name);
	}
	closedir(d);
}

int srv_upstream_create(const struct srv_upstream_opts *o, srv_upstream **out)
{
	srv_upstream *u = calloc(1, sizeof *u);
	if (!u)
		return FDO_ENOMEM;
	u->st = o->st;
	u->datadir = strdup(o->datadir);
	u->urls = strdup(o->urls);
	u->timeout_ns = (uint64_t)(o->timeout ? o->timeout : 1) * 1000000000ull;
	u->retry_ns = o->retry * 1000000000ull;
	u->fetched_cb = o->fetched_cb;
	u->fetched_arg = o->fetched_arg;
	unsigned n = o->fetches ? o->fetches : 1;
	u->threads = calloc(n, sizeof *u->threads);
	u->maxfwd = n;
	u->fwds = calloc(n, sizeof *u->fwds);
	if (!u->datadir || !u->urls || !u->threads || !u->fwds) {
		free(u->datadir);
		free(u->urls);
		free(u->threads);
		free(u->fwds);
		free(u);
		return FDO_ENOMEM;
	}
	snprintf(u->client_dir, sizeof u->client_dir, "%s/" CLIENT_DIR,
		 o->datadir);
	if (o->node_id && *o->node_id) {
		snprintf(u->node_id, sizeof u->node_id, "%s", o->node_id);
	} else {
		/* Unique enough to recognise our own requests coming back. */
		uint8_t r[8] = {0};
		if (getrandom(r, sizeof r, 0) != sizeof r) {
			uint64_t t = fdo_now_ns() ^ (uint64_t)getpid() << 32;
			memcpy(r, &t, sizeof r);
		}
		char h[2 * sizeof r + 1];
		fdo_hex_encode(r, sizeof r, h);
		snprintf(u->node_id, sizeof u->node_id, "fdod-%s", h);
	}
	clean_client_cache(u->client_dir);
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	atomic_init(&u->stopping, 0);
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&u->threads[i], NULL, fetch_main, u))
			break;
		u->nthreads++;
	}
	if (u->nthreads < n)
		fdo_error("debuginfod: only %u of %u fetch threads started",
			  u->nthreads, n);
	*out = u;
	return FDO_OK;
}

void srv_upstream_cancel(srv_upstream *u)
{
	if (!u)
		return;
	pthread_mutex_lock(&u->mu);
	atomic_store(&u->stopping, 1);
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

void srv_upstream_destroy(srv_upstream *u)
{
	if (!u)
		return;
	srv_upstream_cancel(u);
	for (unsigned i = 0; i < u->nthreads; i++)
		pthread_join(u->threads[i], NULL);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u->datadir);
	free(u->urls);
	free(u->ents);
	fdo_map64_fini(&u->index);
	free(u->threads);
	free(u->fwds);
	free(u);
}
