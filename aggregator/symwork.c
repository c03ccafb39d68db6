/*
 * aggregator/symwork.c — delayed symbolization: pending (build-id, file
 * offset) pairs become symcache entries once the build-id's symbols are in
 * the symbol store.
 *
 * Workload: symbolization cost grows with unique addresses, never with
 * samples; a result is computed once per (build-id, offset), forever.
 *
 * DESIGN
 *   A set of build-id ids to look at ("dirty"), fed by the ingest writer
 *   (new pending addresses), by uploads (symbols arrived) and once at start
 *   (whatever was pending before a restart). `threads` workers each take a
 *   build-id no other worker holds, and loop: read up to CHUNK pending
 *   offsets in a read transaction, resolve them through the shared DWARF
 *   cache (sym_cache: one immutable index per build-id, shared read-only)
 *   with no transaction open, then in one write transaction intern the
 *   names, put the symcache entries and delete the pending keys. A
 *   build-id without symbols (no executable: a separate debug file alone
 *   cannot map file offsets) is dropped from the set; its addresses wait in
 *   `pending` until an upload (or a fetch from an upstream debuginfod
 *   server, which the missing hook asks for) wakes it again.
 *   Locking: mu guards dirty/busy/stopping, the missing hook and the stats;
 *   the hook is called with mu held, so clearing it guarantees no call is
 *   still running.
 *   Owner nodes: with an owner hook (a cluster of fdod nodes, server/
 *   cluster.c), a build-id whose owner is another node that answers is
 *   not symbolized here (nor are its symbols fetched): it goes to the
 *   "deferred" set, which is put back into dirty every RECHECK seconds,
 *   so a build-id is taken over once its owner stops answering. The hook
 *   may block (an HTTP probe): it is called without mu.
 *   Shutdown: destroy sets stopping; workers finish their chunk and exit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/aggregator.h"
#include "common/buf.h"
#include "common/common.h"
#include "symbolizer/symbolizer.h"

#define SYMWORK_CHUNK	   4096
#define SYMWORK_MAX_DEPTH  64
#define SYMWORK_DIRTY_MAX  65536
#define SYMWORK_RECHECK_NS (5ull * 1000000000ull) /* deferred build-ids */

struct agg_symwork {
	store *st;
	sym_cache *cache;
	char *datadir;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t *dirty; /* guarded by mu: build-ids to look at */
	size_t ndirty;
	uint32_t *busy; /* guarded by mu: build-ids a worker holds */
	size_t nbusy;
	int stopping;			/* guarded by mu */
	struct agg_symwork_stats stats; /* guarded by mu */
	agg_symwork_missing_fn missing; /* guarded by mu; may be NULL */
	void *missing_arg;
	agg_symwork_owner_fn owner; /* guarded by mu; may be NULL */
	void *owner_arg;
	uint32_t *deferred; /* guarded by mu: build-ids left to their owner */
	size_t ndeferred;
	uint64_t recheck_at; /* guarded by mu: when deferred goes to dirty */

	pthread_t *threads;
	unsigned nthreads;
};

static int has_id(const uint32_t *a, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] == id)
			return 1;
	return 0;
}

void agg_symwork_wake(agg_symwork *w, const uint32_t *ids, size_t n)
{
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < n; i++)
		if (!has_id(w->dirty, w->ndirty, ids[i]) &&
		    w->ndirty < SYMWORK_DIRTY_MAX)
			w->dirty[w->ndirty++] = ids[i];
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* One resolved address, kept between the read and the write phase. */
struct resolved {
	uint64_t offset;
	uint32_t nframes;
	uint32_t first; /* into the chunk's frame array */
};

struct chunk {
	uint32_t build_id;
	uint64_t offsets[SYMWORK_CHUNK];
	size_t n;
	struct resolved res[SYMWORK_CHUNK];
	struct sym_frame *frames; /* resolved frames (strings in index) */
	size_t nframes, capframes;
};

/* Read phase: up to SYMWORK_CHUNK pending offsets of build-id id. */
static int read_pending(store *st, uint32_t id, struct chunk *c)
{
	store_txn *t;
	int rc = store_txn_begin(st, 0, &t);
	if (rc)
		return rc;
	store_cursor *cur;
	c->n = 0;
	if ((rc = store_cursor_open(t, STORE_PENDING, &cur))) {
		store_txn_abort(t);
		return rc;
	}
	uint8_t start[STORE_ADDR_KEY_SIZE];
	struct store_frame a = {id, 0};
	store_addr_key_encode(start, &a);
	const void *k, *v;
	size_t kl, vl;
	rc = store_cursor_seek(cur, start, sizeof start, &k, &kl, &v, &vl);
	while (rc == FDO_OK && c->n < SYMWORK_CHUNK) {
		if (store_addr_key_decode(k, kl, &a) || a.build_id != id)
			break;
		c->offsets[c->n++] = a.offset;
		rc = store_cursor_next(cur, &k, &kl, &v, &vl);
	}
	store_cursor_close(cur);
	store_txn_abort(t);
	return rc == FDO_ENOT_FOUND || rc == FDO_OK ? FDO_OK : rc;
}

/*
 * Frames an OpenTelemetry sender keyed by a file id alone (schemas/otlp.c)
 * are stored under that id as their build-id; once a file with that file
 * id is uploaded, they resolve through its GNU build-id's files: *rec
 * becomes that build-id's record. Otherwise *rec stays as it is.
 */
static int alias_of_file_id(store_txn *t, struct store_buildid *rec)
{
	uint32_t gid;
	struct store_buildid g;
	int rc = store_fileid_alias(t, rec, &gid);
	if (rc == FDO_OK)
		rc = store_buildid_get(t, gid, &g);
	if (rc == FDO_ENOT_FOUND)
		return FDO_OK;
	if (rc == FDO_OK)
		*rec = g;
	return rc;
}

/* Which files the symbol store holds for id; FDO_ENOT_FOUND when they
 * are not enough (no executable yet). */
static int symbol_files(agg_symwork *w, uint32_t id, uint8_t *bid,
			size_t *bid_len, char *elf, char *dbg, size_t cap)
{
	store_txn *t;
	struct store_buildid rec;
	int rc = store_txn_begin(w->st, 0, &t);
	if (rc)
		return rc;
	rc = store_buildid_get(t, id, &rec);
	if (!rc)
		rc = alias_of_file_id(t, &rec);
	store_txn_abort(t);
	if (rc)
		return rc;
	memcpy(bid, rec.build_id, rec.build_id_len);
	*bid_len = rec.build_id_len;
	dbg[0] = 0;
	if (rec.sym_state & STORE_SYM_DEBUGINFO)
		store_symbols_path(w->datadir, rec.build_id, rec.build_id_len,
				   STORE_SYM_DEBUGINFO, dbg, cap);
	if (rec.sym_state & STORE_SYM_EXECUTABLE) {
		store_symbols_path(w->datadir, rec.build_id, rec.build_id_len,
				   STORE_SYM_EXECUTABLE, elf, cap);
		return FDO_OK;
	}
	/* A debug file alone (debuginfo without executable is one with no
	 * loadable bytes: objcopy --only-keep-debug) keeps the program
	 * headers but not their file offsets and sizes, so sampled file
	 * offsets cannot be mapped to addresses: resolving now would store
	 * "unknown" forever. The addresses wait for the executable. */
	return FDO_ENOT_FOUND;
}

static int resolve(const sym_index *idx, struct chunk *c)
{
	c->nframes = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct resolved *r = &c->res[i];
		r->offset = c->offsets[i];
		r->first = (uint32_t)c->nframes;
		r->nframes = 0;
		uint64_t vaddr;
		if (sym_index_offset_to_vaddr(idx, r->offset, &vaddr))
			continue; /* not in any PT_LOAD: stays unknown */
		if (fdo_grow(c->frames, c->capframes,
			     c->nframes + SYMWORK_MAX_DEPTH))
			return FDO_ENOMEM;
		struct sym_frame *f = c->frames + c->nframes;
		struct sym_symbol sym;
		size_t n = 0;
		sym_index_lookup(idx, vaddr, f, SYMWORK_MAX_DEPTH, &n, &sym);
		if (n > SYMWORK_MAX_DEPTH)
			n = SYMWORK_MAX_DEPTH;
		if (n == 0 && sym.found) {
			/* No DWARF here: the symbol table names the function. */
			memset(f, 0, sizeof *f);
			f->function = sym.name;
			n = 1;
		}
		r->nframes = (uint32_t)n;
		c->nframes += n;
	}
	return FDO_OK;
}

static int intern_opt(store_txn *t, const char *s, uint32_t *id)
{
	*id = 0;
	if (!s || !*s)
		return FDO_OK;
	size_t len = strlen(s);
	if (len > STORE_NAME_MAX)
		len = STORE_NAME_MAX; /* absurd names are cut, not refused */
	return store_intern_string(t, s, len, 1, id);
}

/* Write phase (store_write callback; may run twice after map growth). */
static int write_chunk(store_txn *t, void *arg)
{
	struct chunk *c = arg;
	struct store_sym_frame sf[STORE_SYMCACHE_MAX_FRAMES];
	uint8_t val[STORE_SYMCACHE_HDR_SIZE +
		    STORE_SYMCACHE_MAX_FRAMES * STORE_SYM_FRAME_SIZE];
	int rc;
	for (size_t i = 0; i < c->n; i++) {
		const struct resolved *r = &c->res[i];
		size_t n = r->nframes;
		if (n > STORE_SYMCACHE_MAX_FRAMES)
			n = STORE_SYMCACHE_MAX_FRAMES;
		for (size_t k = 0; k < n; k++) {
			const struct sym_frame *f = &c->frames[r->first + k];
			if ((rc = intern_opt(t, f->function,
					     &sf[k].function)) ||
			    (rc = intern_opt(t, f->file, &sf[k].file)))
				return rc;
			sf[k].line = f->line;
			sf[k].column = f->column;
			sf[k].discriminator = f->discriminator;
			sf[k].start_line = f->start_line;
		}
		size_t vlen;
		if ((rc = store_symcache_encode(sf, n, val, sizeof val, &vlen)))
			return rc;
		uint8_t key[STORE_ADDR_KEY_SIZE];
		struct store_frame a = {c->build_id, r->offset};
		store_addr_key_encode(key, &a);
		if ((rc = store_put(t, STORE_SYMCACHE, key, sizeof key, val,
				    vlen, 0)))
			return rc;
		rc = store_del(t, STORE_PENDING, key, sizeof key);
		if (rc && rc != FDO_ENOT_FOUND)
			return rc;
	}
	return FDO_OK;
}

/* Ask the owner hook whether id is symbolized here; when not, id joins
 * the deferred set. Logs when a build-id is first left to its owner and
 * when it is taken over. */
static int owner_says_here(agg_symwork *w, uint32_t id, const uint8_t *bid,
			   size_t len)
{
	pthread_mutex_lock(&w->mu);
	agg_symwork_owner_fn fn = w->owner;
	void *arg = w->owner_arg;
	pthread_mutex_unlock(&w->mu);
	if (!fn)
		return 1;
	const char *owner = NULL;
	int here = fn(arg, bid, len, &owner);
	char hex[2 * FDO_BUILD_ID_MAX + 1];
	fdo_hex_encode(bid, len, hex);
	pthread_mutex_lock(&w->mu);
	size_t at = w->ndeferred;
	for (size_t i = 0; i < w->ndeferred; i++)
		if (w->deferred[i] == id)
			at = i;
	if (!here && at == w->ndeferred && w->ndeferred < SYMWORK_DIRTY_MAX) {
		w->deferred[w->ndeferred++] = id;
		if (w->ndeferred == 1)
			w->recheck_at = fdo_now_ns() + SYMWORK_RECHECK_NS;
		fdo_info("symbolize %s: left to its owner %s", hex,
			 owner ? owner : "?");
	} else if (here && at < w->ndeferred) {
		w->deferred[at] = w->deferred[--w->ndeferred];
		fdo_info("symbolize %s: its owner %s does not answer; "
			 "symbolizing here",
			 hex, owner ? owner : "?");
	}
	pthread_mutex_unlock(&w->mu);
	return here;
}

void agg_symwork_on_owner(agg_symwork *w, agg_symwork_owner_fn fn, void *arg)
{
	pthread_mutex_lock(&w->mu);
	w->owner = fn;
	w->owner_arg = arg;
	pthread_mutex_unlock(&w->mu);
}

/* Resolve everything pending for id. */
static void work_on(agg_symwork *w, uint32_t id, struct chunk *c)
{
	uint8_t bid[FDO_BUILD_ID_MAX];
	size_t bid_len;
	char elf[4096], dbg[4096], hex[2 * FDO_BUILD_ID_MAX + 1];
	bid_len = 0;
	int rc = symbol_files(w, id, bid, &bid_len, elf, dbg, sizeof elf);
	if (bid_len && !owner_says_here(w, id, bid, bid_len))
		return;
	if (rc) {
		/* No symbols yet: the addresses wait; someone may fetch them. */
		pthread_mutex_lock(&w->mu);
		if (rc == FDO_ENOT_FOUND && bid_len && w->missing &&
		    !w->stopping)
			w->missing(w->missing_arg, id, bid, bid_len);
		pthread_mutex_unlock(&w->mu);
		return;
	}
	fdo_hex_encode(bid, bid_len, hex);
	sym_index *idx;
	rc = sym_cache_get(w->cache, bid, bid_len, elf, dbg[0] ? dbg : NULL,
			   &idx);
	if (rc) {
		fdo_warn("symbolize %s: cannot open %s: %s", hex, elf,
			 fdo_strerror(rc));
		pthread_mutex_lock(&w->mu);
		w->stats.failures++;
		pthread_mutex_unlock(&w->mu);
		return;
	}
	c->build_id = id;
	uint64_t total = 0, t0 = fdo_now_ns();
	for (;;) {
		pthread_mutex_lock(&w->mu);
		int stop = w->stopping;
		pthread_mutex_unlock(&w->mu);
		if (stop)
			break;
		if ((rc = read_pending(w->st, id, c)) || c->n == 0)
			break;
		if ((rc = resolve(idx, c)))
			break;
		if ((rc = store_write(w->st, write_chunk, c)))
			break;
		total += c->n;
		pthread_mutex_lock(&w->mu);
		w->stats.resolved += c->n;
		pthread_mutex_unlock(&w->mu);
		if (c->n < SYMWORK_CHUNK)
			break;
	}
	sym_cache_release(w->cache, idx);
	if (rc)
		fdo_error("symbolize %s: %s", hex, fdo_strerror(rc));
	if (total)
		fdo_info("symbolized %llu addresses of %s in %.1f ms",
			 (unsigned long long)total, hex,
			 (fdo_now_ns() - t0) / 1e6);
}

static void *worker_main(void *arg)
{
	agg_symwork *w = arg;
	struct chunk *c = calloc(1, sizeof *c);
	if (!c) {
		fdo_error("symbolize: worker out of memory");
		return NULL;
	}
	pthread_mutex_lock(&w->mu);
	for (;;) {
		/* Take the first dirty build-id that no worker holds. */
		size_t pick = w->ndirty;
		for (size_t i = 0; i < w->ndirty; i++)
			if (!has_id(w->busy, w->nbusy, w->dirty[i])) {
				pick = i;
				break;
			}
		if (w->stopping)
			break;
		if (pick == w->ndirty && w->ndeferred &&
		    fdo_now_ns() >= w->recheck_at) {
			/* Ask the owner hook again: an owner may be gone. */
			for (size_t i = 0; i < w->ndeferred; i++)
				if (!has_id(w->dirty, w->ndirty,
					    w->deferred[i]) &&
				    w->ndirty < SYMWORK_DIRTY_MAX)
					w->dirty[w->ndirty++] = w->deferred[i];
			w->recheck_at = fdo_now_ns() + SYMWORK_RECHECK_NS;
			continue;
		}
		if (pick == w->ndirty && w->ndeferred) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
			continue;
		}
		if (pick == w->ndirty) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		uint32_t id = w->dirty[pick];
		w->dirty[pick] = w->dirty[--w->ndirty];
		w->busy[w->nbusy++] = id;
		pthread_mutex_unlock(&w->mu);
		work_on(w, id, c);
		pthread_mutex_lock(&w->mu);
		for (size_t i = 0; i < w->nbusy; i++)
			if (w->busy[i] == id) {
				w->busy[i] = w->busy[--w->nbusy];
				break;
			}
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	free(c->frames);
	free(c);
	return NULL;
}

/* At start: every build-id that has pending addresses is dirty. */
static void wake_all_pending(agg_symwork *w)
{
	store_txn *t;
	if (store_txn_begin(w->st, 0, &t))
		return;
	store_cursor *cur;
	if (store_cursor_open(t, STORE_PENDING, &cur)) {
		store_txn_abort(t);
		return;
	}
	const void *k, *v;
	size_t kl, vl;
	struct store_frame a;
	uint32_t ids[256];
	size_t n = 0;
	int rc = store_cursor_seek(cur, NULL, 0, &k, &kl, &v, &vl);
	while (rc == FDO_OK && n < 256) {
		if (store_addr_key_decode(k, kl, &a))
			break;
		ids[n++] = a.build_id;
		/* Jump to the next build-id. */
		uint8_t next[STORE_ADDR_KEY_SIZE];
		struct store_frame b = {a.build_id + 1, 0};
		if (b.build_id == 0)
			break;
		store_addr_key_encode(next, &b);
		rc = store_cursor_seek(cur, next, sizeof next, &k, &kl, &v,
				       &vl);
	}
	store_cursor_close(cur);
	store_txn_abort(t);
	agg_symwork_wake(w, ids, n);
}

void agg_symwork_on_missing(agg_symwork *w, agg_symwork_missing_fn fn,
			    void *arg)
{
	pthread_mutex_lock(&w->mu);
	w->missing = fn;
	w->missing_arg = arg;
	pthread_mutex_unlock(&w->mu);
	/* Build-ids looked at before the hook was set get their turn. */
	if (fn)
		wake_all_pending(w);
}

int agg_symwork_create(store *st, sym_cache *cache, const char *datadir,
		       unsigned threads, agg_symwork **out)
{
	agg_symwork *w = calloc(1, sizeof *w);
	if (!w)
		return FDO_ENOMEM;
	w->st = st;
	w->cache = cache;
	w->datadir = strdup(datadir);
	w->dirty = calloc(SYMWORK_DIRTY_MAX, sizeof *w->dirty);
	w->deferred = calloc(SYMWORK_DIRTY_MAX, sizeof *w->deferred);
	w->busy = calloc(threads ? threads : 1, sizeof *w->busy);
	w->threads = calloc(threads ? threads : 1, sizeof *w->threads);
	if (!w->datadir || !w->dirty || !w->deferred || !w->busy ||
	    !w->threads) {
		free(w->datadir);
		free(w->dirty);
		free(w->deferred);
		free(w->busy);
		free(w->threads);
		free(w);
		return FDO_ENOMEM;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	for (unsigned i = 0; i < (threads ? threads : 1); i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w))
			break;
		w->nthreads++;
	}
	wake_all_pending(w);
	*out = w;
	return FDO_OK;
}

void agg_symwork_destroy(agg_symwork *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->datadir);
	free(w->dirty);
	free(w->deferred);
	free(w->busy);
	free(w->threads);
	free(w);
}

void agg_symwork_stats(agg_symwork *w, struct agg_symwork_stats *st)
{
	pthread_mutex_lock(&w->mu);
	*st = w->stats;
	st->queued = w->ndirty;
	st->busy = w->nbusy;
	st->deferred = w->ndeferred;
	pthread_mutex_unlock(&w->mu);
}

int agg_symwork_idle(agg_symwork *w)
{
	pthread_mutex_lock(&w->mu);
	int idle = w->ndirty == 0 && w->nbusy == 0;
	pthread_mutex_unlock(&w->mu);
	return idle;
}
