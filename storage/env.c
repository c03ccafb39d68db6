/*
 * storage/env.c — the LMDB environment: open with a version check, the
 * named tables, transactions, and a map that grows when it fills.
 *
 * Workload: a few long-lived processes (fdod; fdoctl for a moment) share one
 * environment. Read transactions come from many threads (profile requests,
 * the symbolizer); write transactions from one group-commit writer, each
 * carrying many puts. Growth is rare (log2(final/initial) times in the
 * store's life), so it may stall everyone for a moment.
 *
 * DESIGN (threads and the resize gate)
 *   mdb_env_set_mapsize may only run while no transaction of this process is
 *   open. Every transaction passes a gate: begin waits while a resize is
 *   waiting or running and counts itself in `active`; end counts itself out.
 *   A resize (store_write after MDB_MAP_FULL, or any begin after
 *   MDB_MAP_RESIZED from another process) waits until active == 0, resizes,
 *   and lets everyone in again. Waiting resizers block new transactions so
 *   they cannot starve behind a stream of readers; a thread that already
 *   holds a transaction is let in anyway (it would otherwise wait on itself).
 *   A thread holding a transaction cannot resize: it gets FDO_EBUSY.
 *   The environment uses MDB_NOTLS, so a read transaction is not tied to a
 *   thread by LMDB; fdod still never hands one to another thread.
 *
 * On-disk: DIR/store/{data.mdb,lock.mdb}. The table "meta" holds the
 * layout version, the creation time, the dictionaries' next ids, the file
 * id mark and the WAL's applied position (layouts in storage/codec.c).
 * Stores of older versions are upgraded in place when opened, in the
 * opening write transaction (all or nothing, with the new version stamp):
 *   1 -> 2  the compact stacks layout; both are read (storage/codec.c),
 *           nothing is converted.
 *   2 -> 3  table totals, computed from counts (store_totals_build): one
 *           pass over every counts entry, writing one row per (binary,
 *           label set, bucket). The pass reads the whole table but writes
 *           only the rows, so it stays one transaction whatever the size:
 *           LMDB spills a large transaction's dirty pages to disk, and a
 *           full map is grown and the upgrade run again, as any write. It
 *           holds the writer lock while it reads: fdod does not start
 *           serving until it is done (0.1 s for 770,000 counts entries in
 *           the page cache; docs/scale.md), and it is logged.
 *   3 -> 4  file ids (key 'f' of table buildids: storage/codec.c). Nothing
 *           is converted here: fdod hashes the executables of the symbol
 *           tree once at start (store_symbols_index_file_ids: 8 KiB read
 *           per file), as the store does not know the tree.
 *   4 -> 5  table aggs (per-bucket leaf and pair sums of the compile-time
 *           profiles: storage/aggs.c), created empty: profile pulls fill
 *           it as they compute buckets that are over, so the upgrade
 *           reads and converts nothing.
 *   5 -> 6  table counts as sorted runs (storage/counts.c): one pass over
 *           the version 5 table "counts" (one entry per stack, in key
 *           order), writing each bucket's entries as one run into table
 *           "countruns", then dropping "counts"; logged "upgraded from
 *           version 5 to 6: N counts entries into M runs". A store of
 *           version 1 or 2 is converted first, then gets its totals from
 *           the runs. The runs take about a third of the old table's
 *           bytes; the map grows as for any write when they do not fit.
 * A store with any other version is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "storage/storage_int.h"

#define MIB		((uint64_t)1 << 20)
#define DEFAULT_INITIAL (64 * MIB)
#define DEFAULT_MAX	(64 * 1024 * MIB)
#define WRITE_ATTEMPTS	64

/* Transactions the calling thread holds, in any store. */
static __thread int txn_depth;

static const char *const table_names[STORE_NTABLES] = {
	[STORE_META] = "meta",	       [STORE_BUILDIDS] = "buildids",
	[STORE_BINARIES] = "binaries", [STORE_LABELSETS] = "labelsets",
	[STORE_STRINGS] = "strings",   [STORE_STACKS] = "stacks",
	[STORE_COUNTS] = "countruns",  [STORE_BRANCHES] = "branches",
	[STORE_PENDING] = "pending",   [STORE_SYMCACHE] = "symcache",
	[STORE_BATCHES] = "batches",   [STORE_PUBLISHED] = "published",
	[STORE_HOSTS] = "hosts",       [STORE_TOTALS] = "totals",
	[STORE_AGGS] = "aggs",
};

const char *store_table_name(enum store_table table)
{
	if ((unsigned)table >= STORE_NTABLES)
		return "?";
	return table_names[table];
}

int store_mdb_err(store_txn *t, int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:
		return FDO_OK;
	case MDB_NOTFOUND:
		return FDO_ENOT_FOUND;
	case MDB_KEYEXIST:
		return FDO_EEXISTS;
	case MDB_MAP_FULL:
		if (t)
			t->map_full = 1;
		fdo_debug("store: %s: %s", what, mdb_strerror(rc));
		return FDO_ESTORE_FULL;
	case MDB_MAP_RESIZED:
		if (t)
			t->resized = 1;
		fdo_debug("store: %s: %s", what, mdb_strerror(rc));
		return FDO_EBUSY;
	case MDB_READERS_FULL:
		fdo_warn("store: %s: %s", what, mdb_strerror(rc));
		return FDO_EBUSY;
	case MDB_TXN_FULL:
		fdo_warn("store: %s: %s", what, mdb_strerror(rc));
		return FDO_ELIMIT;
	case MDB_BAD_VALSIZE:
		return FDO_EINVAL;
	case MDB_VERSION_MISMATCH:
		fdo_error("store: %s: %s", what, mdb_strerror(rc));
		return FDO_ESTORE_VERSION;
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		fdo_error("store: %s: %s", what, mdb_strerror(rc));
		return FDO_ECORRUPT;
	case ENOMEM:
		fdo_error("store: %s: %s", what, mdb_strerror(rc));
		return FDO_ENOMEM;
	case EACCES:
	case EPERM:
	case EROFS:
		fdo_error("store: %s: %s", what, mdb_strerror(rc));
		return FDO_EDENIED;
	case EIO:
	case ENOSPC:
	case EDQUOT:
		fdo_error("store: %s: %s", what, mdb_strerror(rc));
		return FDO_EIO;
	default:
		fdo_error("store: %s: %s (%d)", what, mdb_strerror(rc), rc);
		return FDO_ESTORE;
	}
}

/* ---------------------------------------------------------------- gate -- */

static void gate_enter(store *s, uint64_t *seen)
{
	pthread_mutex_lock(&s->mu);
	if (txn_depth == 0)
		while (s->growers || s->growing)
			pthread_cond_wait(&s->cv, &s->mu);
	else
		while (s->growing)
			pthread_cond_wait(&s->cv, &s->mu);
	s->active++;
	*seen = s->map_size;
	pthread_mutex_unlock(&s->mu);
	txn_depth++;
}

static void gate_leave(store *s)
{
	pthread_mutex_lock(&s->mu);
	if (--s->active == 0 && s->growers)
		pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	txn_depth--;
}

/*
 * The environment is opened without MDB_WRITEMAP: the map is read-only, a
 * write transaction copies the pages it changes into memory and its commit
 * pwrite()s them and fdatasync()s. With MDB_WRITEMAP (pages changed in the
 * map, msync at commit) every merge paid, per page it dirtied, a
 * write-protect fault, the TLB shootdowns of msync write-protecting it
 * again, and zero-fill of fresh pages: about 40% of the merger's time once
 * a merge dirties most of the counts and stacks tables. Over 60 s of the
 * ingest bench, with merges of up to 2M stacks: 880k Stack messages/s
 * with it, 0.98-1.11M without (docs/ingest.md). The price is heap: the copies of one merge's dirty pages,
 * which LMDB keeps for the next transaction.
 * The data file is still backed by allocated blocks up to the map size
 * before the map grows, so a full disk fails here, as FDO_ENOSPACE, with
 * nothing written, rather than in the middle of a commit.
 */
static int back_map(store *s, uint64_t size)
{
	mdb_filehandle_t fd;
	if (mdb_env_get_fd(s->env, &fd))
		return FDO_ESTORE;
	int err = posix_fallocate(fd, 0, (off_t)size);
	if (err == 0)
		return FDO_OK;
	fdo_error("store: %s: cannot reserve %llu bytes on disk for the map: "
		  "%s",
		  s->dir, (unsigned long long)size, strerror(err));
	return err == ENOSPC  ? FDO_ENOSPACE
	       : err == EFBIG ? FDO_ESTORE_FULL
			      : FDO_EIO;
}

static uint64_t env_map_size(store *s)
{
	MDB_envinfo info;
	mdb_env_info(s->env, &info);
	return info.me_mapsize;
}

/*
 * gate_resize grows the map (adopt == 0) or adopts the size another process
 * set (adopt == 1), unless it changed since `seen` (someone else did it).
 * Returns FDO_OK (retry), FDO_ESTORE_FULL (at max_size), FDO_EBUSY (this
 * thread holds a transaction), FDO_ESTORE.
 */
static int gate_resize(store *s, uint64_t seen, int adopt)
{
	if (txn_depth > 0) {
		fdo_error("store: %s: cannot resize the map while this thread "
			  "holds a transaction",
			  s->dir);
		return FDO_EBUSY;
	}
	pthread_mutex_lock(&s->mu);
	s->growers++;
	while (s->active || s->growing)
		pthread_cond_wait(&s->cv, &s->mu);
	s->growers--;
	s->growing = 1;
	int rc = FDO_OK;
	if (s->map_size != seen) {
		/* Another thread resized since our transaction began. */
	} else if (adopt) {
		int mrc = mdb_env_set_mapsize(s->env, 0);
		if (mrc)
			rc = store_mdb_err(NULL, mrc, "adopt map size");
		s->map_size = env_map_size(s);
	} else if (s->map_size >= s->max_size) {
		rc = FDO_ESTORE_FULL;
	} else {
		uint64_t want = s->map_size * 2;
		if (want < s->map_size || want > s->max_size)
			want = s->max_size;
		rc = back_map(s, want);
		int mrc = rc ? 0 : mdb_env_set_mapsize(s->env, (size_t)want);
		if (mrc)
			rc = store_mdb_err(NULL, mrc, "grow map");
		s->map_size = env_map_size(s);
		if (!rc)
			fdo_info(
				"store: %s: map grown to %llu bytes (max %llu)",
				s->dir, (unsigned long long)s->map_size,
				(unsigned long long)s->max_size);
	}
	s->growing = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* --------------------------------------------------------- generations -- */

/*
 * What a profile of one binary reads: its rows of counts, totals,
 * branches and hosts (keys that begin with its id), and, for every
 * binary, the symbolization results and the build-id records (symbol
 * state, file ids). Other tables change no profile on their own (a new
 * stack, label set or string is read only through new counts; pending
 * addresses, batch records, published versions and table aggs are not
 * read by a build, or are sums that give the same profile).
 */
void store_note_write(store_txn *t, enum store_table table, const void *key,
		      size_t klen)
{
	t->dirty = 1;
	if (t->quiet)
		return;
	switch (table) {
	case STORE_COUNTS:
	case STORE_TOTALS:
	case STORE_BRANCHES:
	case STORE_HOSTS:
		if (klen >= 4) {
			uint32_t b = fdo_get_be32(key);
			for (unsigned i = 0; i < t->ntouched && i < 8; i++)
				if (t->touched[i] == b)
					return;
			if (t->ntouched < 8)
				t->touched[t->ntouched] = b;
			t->ntouched++;
			return;
		}
		t->touched_all = 1;
		return;
	case STORE_BUILDIDS:
	case STORE_SYMCACHE:
		t->touched_all = 1;
		return;
	default:
		return;
	}
}

static void set_bin_gen(store *s, uint32_t binary, uint64_t seq)
{
	uint32_t v;
	int found;
	if (fdo_map64_put(&s->bin_idx, (uint64_t)binary + 1,
			  (uint32_t)s->nbin_gen, &v, &found)) {
		s->all_gen = seq; /* no memory: every binary changed */
		return;
	}
	if (!found) {
		if (fdo_grow(s->bin_gen, s->cap_bin_gen, s->nbin_gen + 1)) {
			fdo_map64_del(&s->bin_idx, (uint64_t)binary + 1);
			s->all_gen = seq;
			return;
		}
		s->nbin_gen++;
	}
	s->bin_gen[v] = seq;
}

/* After t committed, with gen_mu held. A commit that wrote nothing took
 * no txn id. */
static void committed(store_txn *t, int derived)
{
	store *s = t->s;
	if (!t->dirty)
		return;
	s->own_commits++;
	if (derived) {
		/* It changed no answer: no generation moves. */
		s->derived_commits++;
		return;
	}
	uint64_t seq = ++s->gen_seq;
	if (t->touched_all || t->ntouched > 8)
		s->all_gen = seq;
	else
		for (unsigned i = 0; i < t->ntouched; i++)
			set_bin_gen(s, t->touched[i], seq);
}

uint64_t store_generation_of(store *s, uint32_t binary)
{
	MDB_envinfo info;
	pthread_mutex_lock(&s->gen_mu);
	mdb_env_info(s->env, &info);
	uint64_t theirs =
		(uint64_t)info.me_last_txnid - s->base_txnid - s->own_commits;
	if (theirs > s->foreign && theirs < (uint64_t)1 << 62)
		s->foreign = theirs;
	uint32_t v;
	uint64_t own = fdo_map64_get(&s->bin_idx, (uint64_t)binary + 1, &v)
			       ? s->bin_gen[v]
			       : 0;
	/* Each part only grows: the sum moves whenever one does. */
	uint64_t g = s->foreign + s->all_gen + own;
	pthread_mutex_unlock(&s->gen_mu);
	return g | (uint64_t)1 << 63;
}

/* ---------------------------------------------------------------- txns -- */

int store_txn_begin(store *s, int write, store_txn **out)
{
	*out = NULL;
	store_txn *t = calloc(1, sizeof *t);
	if (!t)
		return FDO_ENOMEM;
	t->s = s;
	t->write = !!write;
	for (int tries = 0;; tries++) {
		gate_enter(s, &t->map_seen);
		int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY,
				       &t->txn);
		if (rc == MDB_SUCCESS)
			break;
		gate_leave(s);
		int err = store_mdb_err(t, rc, "begin transaction");
		if (rc == MDB_MAP_RESIZED && tries < 8)
			err = gate_resize(s, t->map_seen, 1);
		if (err || rc != MDB_MAP_RESIZED || tries >= 8) {
			free(t);
			return err ? err : FDO_EBUSY;
		}
	}
	*out = t;
	return FDO_OK;
}

/* txn_finish leaves the gate and frees t; if the map filled, grows it and
 * returns the result of that (FDO_OK when there was nothing to do). */
static int txn_finish(store_txn *t)
{
	store *s = t->s;
	int full = t->map_full;
	uint64_t seen = t->map_seen;
	gate_leave(s);
	free(t);
	return full ? gate_resize(s, seen, 0) : FDO_OK;
}

int store_txn_commit(store_txn *t)
{
	int rc = FDO_OK;
	if (t->map_full) {
		/* LMDB's txn is unusable after MAP_FULL. */
		mdb_txn_abort(t->txn);
		rc = FDO_ESTORE_FULL;
	} else {
		if (t->write)
			pthread_mutex_lock(&t->s->gen_mu);
		int mrc = mdb_txn_commit(t->txn);
		if (mrc)
			rc = store_mdb_err(t, mrc, "commit");
		else if (t->write)
			committed(t, 0);
		if (t->write)
			pthread_mutex_unlock(&t->s->gen_mu);
	}
	txn_finish(t);
	return rc;
}

void store_txn_abort(store_txn *t)
{
	if (!t)
		return;
	mdb_txn_abort(t->txn);
	txn_finish(t);
}

static int write_txn(store *s, int (*fn)(store_txn *t, void *arg), void *arg,
		     int derived)
{
	for (int attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
		store_txn *t;
		int rc = store_txn_begin(s, 1, &t);
		if (rc)
			return rc;
		rc = fn(t, arg);
		if (rc == FDO_OK && !t->map_full) {
			/* The commit and its count in the generations are one
			 * step for store_stats and store_generation_of. */
			pthread_mutex_lock(&s->gen_mu);
			int mrc = mdb_txn_commit(t->txn);
			if (mrc)
				rc = store_mdb_err(t, mrc, "commit");
			else
				committed(t, derived);
			pthread_mutex_unlock(&s->gen_mu);
		} else {
			mdb_txn_abort(t->txn);
		}
		int full = t->map_full;
		uint64_t seen = t->map_seen;
		gate_leave(s);
		free(t);
		if (!full)
			return rc;
		int g = gate_resize(s, seen, 0);
		if (g == FDO_ESTORE_FULL) {
			fdo_error("store: %s: the map reached max_size (%llu "
				  "bytes); write refused, nothing of it stored",
				  s->dir, (unsigned long long)s->max_size);
			return FDO_ESTORE_FULL;
		}
		if (g)
			return g;
	}
	fdo_error("store: %s: write still full after %d resizes", s->dir,
		  WRITE_ATTEMPTS);
	return FDO_ESTORE_FULL;
}

int store_write(store *s, int (*fn)(store_txn *t, void *arg), void *arg)
{
	return write_txn(s, fn, arg, 0);
}

int store_write_derived(store *s, int (*fn)(store_txn *t, void *arg), void *arg)
{
	return write_txn(s, fn, arg, 1);
}

/* ---------------------------------------------------------- get / put -- */

static int key_ok(size_t klen)
{
	return klen > 0 && klen <= STORE_KEY_MAX;
}

int store_get(store_txn *t, enum store_table table, const void *key,
	      size_t klen, const void **val, size_t *vlen)
{
	if ((unsigned)table >= STORE_NTABLES || !key_ok(klen))
		return FDO_EINVAL;
	if (t->map_full)
		return FDO_ESTORE_FULL;
	MDB_val k = {klen, (void *)key}, v;
	int rc = mdb_get(t->txn, t->s->dbi[table], &k, &v);
	if (rc)
		return store_mdb_err(t, rc, table_names[table]);
	*val = v.mv_data;
	*vlen = v.mv_size;
	return FDO_OK;
}

int store_put(store_txn *t, enum store_table table, const void *key,
	      size_t klen, const void *val, size_t vlen, unsigned flags)
{
	if ((unsigned)table >= STORE_NTABLES || !key_ok(klen) || !t->write)
		return FDO_EINVAL;
	if (t->map_full)
		return FDO_ESTORE_FULL;
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	int rc = mdb_put(t->txn, t->s->dbi[table], &k, &v,
			 (flags & STORE_NOOVERWRITE) ? MDB_NOOVERWRITE : 0);
	if (rc)
		return store_mdb_err(t, rc, table_names[table]);
	store_note_write(t, table, key, klen);
	return FDO_OK;
}

int store_del(store_txn *t, enum store_table table, const void *key,
	      size_t klen)
{
	if ((unsigned)table >= STORE_NTABLES || !key_ok(klen) || !t->write)
		return FDO_EINVAL;
	if (t->map_full)
		return FDO_ESTORE_FULL;
	MDB_val k = {klen, (void *)key};
	int rc = mdb_del(t->txn, t->s->dbi[table], &k, NULL);
	if (rc)
		return store_mdb_err(t, rc, table_names[table]);
	store_note_write(t, table, key, klen);
	return FDO_OK;
}

/* LMDB's figures of one table. */
static int table_stat(store_txn *t, enum store_table table, MDB_stat *st)
{
	if ((unsigned)table >= STORE_NTABLES)
		return FDO_EINVAL;
	int rc = mdb_stat(t->txn, t->s->dbi[table], st);
	return rc ? store_mdb_err(t, rc, table_names[table]) : FDO_OK;
}

int store_count(store_txn *t, enum store_table table, uint64_t *n)
{
	MDB_stat st;
	int rc = table_stat(t, table, &st);
	if (!rc)
		*n = st.ms_entries;
	return rc;
}

int store_table_bytes(store_txn *t, enum store_table table, uint64_t *bytes)
{
	MDB_stat st;
	int rc = table_stat(t, table, &st);
	if (!rc)
		*bytes = (uint64_t)st.ms_psize *
			 (st.ms_branch_pages + st.ms_leaf_pages +
			  st.ms_overflow_pages);
	return rc;
}

int store_live_bytes(store_txn *t, uint64_t *bytes)
{
	*bytes = 0;
	for (unsigned i = 0; i < STORE_NTABLES; i++) {
		uint64_t b = 0;
		int rc = store_table_bytes(t, (enum store_table)i, &b);
		if (rc)
			return rc;
		*bytes += b;
	}
	return FDO_OK;
}

struct store_cursor {
	MDB_cursor *c;
	store_txn *t;
	enum store_table table;
};

int store_cursor_open(store_txn *t, enum store_table table, store_cursor **out)
{
	*out = NULL;
	if ((unsigned)table >= STORE_NTABLES)
		return FDO_EINVAL;
	store_cursor *c = calloc(1, sizeof *c);
	if (!c)
		return FDO_ENOMEM;
	int rc = mdb_cursor_open(t->txn, t->s->dbi[table], &c->c);
	if (rc) {
		free(c);
		return store_mdb_err(t, rc, table_names[table]);
	}
	c->t = t;
	c->table = table;
	*out = c;
	return FDO_OK;
}

static int cursor_get(store_cursor *c, MDB_val *k, MDB_cursor_op op,
		      const void **kp, size_t *kl, const void **vp, size_t *vl)
{
	MDB_val v;
	int rc = mdb_cursor_get(c->c, k, &v, op);
	if (rc)
		return store_mdb_err(c->t, rc, table_names[c->table]);
	*kp = k->mv_data;
	*kl = k->mv_size;
	*vp = v.mv_data;
	*vl = v.mv_size;
	return FDO_OK;
}

int store_cursor_seek(store_cursor *c, const void *key, size_t klen,
		      const void **k, size_t *kl, const void **v, size_t *vl)
{
	if (klen > STORE_KEY_MAX)
		return FDO_EINVAL;
	MDB_val mk = {klen, (void *)key};
	return cursor_get(c, &mk, klen ? MDB_SET_RANGE : MDB_FIRST, k, kl, v,
			  vl);
}

int store_cursor_next(store_cursor *c, const void **k, size_t *kl,
		      const void **v, size_t *vl)
{
	MDB_val mk = {0, NULL};
	return cursor_get(c, &mk, MDB_NEXT, k, kl, v, vl);
}

int store_cursor_put(store_cursor *c, const void *key, size_t klen,
		     const void *val, size_t vlen, unsigned flags)
{
	if (!key_ok(klen) || !c->t->write)
		return FDO_EINVAL;
	if (c->t->map_full)
		return FDO_ESTORE_FULL;
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	unsigned mf = ((flags & STORE_NOOVERWRITE) ? MDB_NOOVERWRITE : 0) |
		      ((flags & STORE_CURRENT) ? MDB_CURRENT : 0);
	int rc = mdb_cursor_put(c->c, &k, &v, mf);
	if (rc)
		return store_mdb_err(c->t, rc, table_names[c->table]);
	store_note_write(c->t, c->table, key, klen);
	return FDO_OK;
}

void store_cursor_close(store_cursor *c)
{
	if (!c)
		return;
	mdb_cursor_close(c->c);
	free(c);
}

/* ---------------------------------------------------------- open/close -- */

struct open_ctx {
	uint32_t found; /* version stamp found, when it is not ours */
};

/* upgrade brings a store of version `from` (1 to 5) to STORE_VERSION,
 * in t, after every table is open. Version 3 added table totals (computed
 * here from counts); version 4 file ids in table buildids (the symbol
 * tree's files are hashed at start: store_symbols_index_file_ids);
 * version 5 table aggs (opened empty with every table); version 6 counts
 * as runs (converted here from the old table). */
static int upgrade(store_txn *t, MDB_dbi meta, uint32_t from)
{
	store *s = t->s;
	uint64_t rows = 0, entries = 0, runs = 0, converted = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (from < 6) {
		/* Table counts of one entry per stack becomes runs. */
		MDB_dbi old;
		int mrc = mdb_dbi_open(t->txn, "counts", 0, &old);
		if (mrc && mrc != MDB_NOTFOUND)
			return store_mdb_err(t, mrc, "open table counts");
		if (!mrc) {
			fdo_info("store: %s: upgrading from version %u to %d: "
				 "counts into sorted runs",
				 s->dir, from, STORE_VERSION);
			int rc = store_counts_upgrade_v5(t, old, &runs,
							 &converted);
			if (rc == FDO_ESTORE_FULL) {
				/* store_write grows the map and runs the
				 * upgrade again (or says the store is full). */
				fdo_info("store: %s: the map is full while "
					 "converting counts: growing it",
					 s->dir);
				return rc;
			}
			if (rc) {
				fdo_error("store: %s: upgrade from version %u "
					  "failed while converting counts: "
					  "%s; the store is left as it was",
					  s->dir, from, fdo_strerror(rc));
				return rc;
			}
		}
	}
	if (from < 3) {
		fdo_info("store: %s: upgrading from version %u to %d: "
			 "computing table totals from counts",
			 s->dir, from, STORE_VERSION);
		int rc = store_totals_build(t, &rows, &entries);
		if (rc) {
			fdo_error("store: %s: upgrade from version %u failed "
				  "while computing totals: %s; the store is "
				  "left as it was",
				  s->dir, from, fdo_strerror(rc));
			return rc;
		}
	}
	uint8_t b[4];
	fdo_put_be32(b, STORE_VERSION);
	int mrc = mdb_put(t->txn, meta, &(MDB_val){7, "version"},
			  &(MDB_val){4, b}, 0);
	if (mrc)
		return store_mdb_err(t, mrc, "write version");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (from < 3)
		fdo_info("store: %s: upgraded from version %u to %d: %llu "
			 "totals rows from %llu counts entries, %llu entries "
			 "into %llu runs, in %.1f s",
			 s->dir, from, STORE_VERSION, (unsigned long long)rows,
			 (unsigned long long)entries,
			 (unsigned long long)converted,
			 (unsigned long long)runs, secs);
	else if (from < 6)
		fdo_info("store: %s: upgraded from version %u to %d: %llu "
			 "counts entries into %llu runs in %.1f s",
			 s->dir, from, STORE_VERSION,
			 (unsigned long long)converted,
			 (unsigned long long)runs, secs);
	else
		fdo_info("store: %s: upgraded from version %u to %d", s->dir,
			 from, STORE_VERSION);
	return FDO_OK;
}

/* open_tables runs in the first write transaction: checks the stamp before
 * creating anything, then opens (creating) every table, and upgrades an
 * older layout. */
static int open_tables(store_txn *t, void *arg)
{
	struct open_ctx *ctx = arg;
	store *s = t->s;
	MDB_dbi meta;
	int is_new = 0;
	uint32_t from = 0; /* an older version to upgrade */
	int rc = mdb_dbi_open(t->txn, table_names[STORE_META], 0, &meta);
	if (rc == MDB_NOTFOUND) {
		is_new = 1;
	} else if (rc) {
		return store_mdb_err(t, rc, "open table meta");
	} else {
		MDB_val k = {7, "version"}, v;
		rc = mdb_get(t->txn, meta, &k, &v);
		if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 4)) {
			fdo_error("store: %s: table meta has no valid version "
				  "stamp",
				  s->dir);
			return FDO_ECORRUPT;
		}
		if (rc)
			return store_mdb_err(t, rc, "read version");
		uint32_t ver = fdo_get_be32(v.mv_data);
		if (ver >= 1 && ver < STORE_VERSION) {
			from = ver;
		} else if (ver != STORE_VERSION) {
			ctx->found = ver;
			return FDO_ESTORE_VERSION;
		}
	}
	for (int i = 0; i < STORE_NTABLES; i++) {
		rc = mdb_dbi_open(t->txn, table_names[i], MDB_CREATE,
				  &s->dbi[i]);
		if (rc)
			return store_mdb_err(t, rc, table_names[i]);
	}
	if (from)
		return upgrade(t, meta, from);
	if (is_new) {
		uint8_t ver[4], now[8];
		fdo_put_be32(ver, STORE_VERSION);
		fdo_put_be64(now, (uint64_t)time(NULL));
		rc = store_put(t, STORE_META, "version", 7, ver, 4, 0);
		if (!rc)
			rc = store_put(t, STORE_META, "created", 7, now, 8, 0);
		if (rc)
			return rc;
		fdo_info("store: %s: created, version %d", s->dir,
			 STORE_VERSION);
	}
	return FDO_OK;
}

int store_mkdir_p(const char *path, int sync)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return FDO_ELIMIT;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) == 0) {
			if (sync) {
				/* Make the new entry durable in its parent. */
				char *slash = strrchr(buf, '/');
				int fd;
				if (slash == buf)
					fd = open("/", O_RDONLY | O_DIRECTORY);
				else if (slash) {
					*slash = '\0';
					fd = open(buf, O_RDONLY | O_DIRECTORY);
					*slash = '/';
				} else
					fd = open(".", O_RDONLY | O_DIRECTORY);
				if (fd >= 0) {
					fsync(fd);
					close(fd);
				}
			}
		} else if (errno != EEXIST) {
			int e = errno;
			fdo_error("store: mkdir %s: %s", buf, strerror(e));
			return e == EACCES || e == EPERM || e == EROFS
				       ? FDO_EDENIED
				       : FDO_EIO;
		}
		buf[i] = saved;
	}
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fdo_error("store: %s is not a directory", path);
		return FDO_EIO;
	}
	return FDO_OK;
}

int store_open(const struct store_opts *opts, store **out)
{
	*out = NULL;
	if (!opts || !opts->dir || !opts->dir[0])
		return FDO_EINVAL;
	long psz = sysconf(_SC_PAGESIZE);
	if (psz <= 0)
		psz = 4096;
	uint64_t max = opts->max_size ? opts->max_size : DEFAULT_MAX;
	uint64_t init = opts->initial_size ? opts->initial_size
					   : DEFAULT_INITIAL;
	max -= max % (uint64_t)psz;
	if (max < 16 * (uint64_t)psz)
		max = 16 * (uint64_t)psz;
	if (init > max)
		init = max;
	init = (init + (uint64_t)psz - 1) / (uint64_t)psz * (uint64_t)psz;
	if ((uint64_t)(size_t)max != max)
		max = (uint64_t)SIZE_MAX / 2;

	store *s = calloc(1, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	s->dir = strdup(opts->dir);
	if (!s->dir) {
		free(s);
		return FDO_ENOMEM;
	}
	s->max_size = max;
	s->page_size = (size_t)psz;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->gen_mu, NULL);
	pthread_cond_init(&s->cv, NULL);

	char path[PATH_MAX];
	int rc;
	if (snprintf(path, sizeof path, "%s/store", opts->dir) >=
	    (int)sizeof path) {
		rc = FDO_ELIMIT;
		goto fail;
	}
	rc = store_mkdir_p(path, 1);
	if (rc)
		goto fail;
	int mrc = mdb_env_create(&s->env);
	if (!mrc)
		mrc = mdb_env_set_maxdbs(s->env, STORE_NTABLES + 4);
	if (!mrc)
		mrc = mdb_env_set_maxreaders(
			s->env, opts->max_readers ? opts->max_readers : 126);
	if (!mrc)
		mrc = mdb_env_set_mapsize(s->env, (size_t)init);
	if (!mrc)
		mrc = mdb_env_open(s->env, path, MDB_NOTLS, 0644);
	if (mrc) {
		rc = store_mdb_err(NULL, mrc, path);
		goto fail;
	}
	if (mdb_env_get_maxkeysize(s->env) < STORE_KEY_MAX) {
		fdo_error("store: liblmdb allows keys of %d bytes; fdod needs "
			  "%d",
			  mdb_env_get_maxkeysize(s->env), STORE_KEY_MAX);
		rc = FDO_ESTORE;
		goto fail;
	}
	s->map_size = env_map_size(s);
	if ((rc = back_map(s, s->map_size)))
		goto fail;

	struct open_ctx ctx = {0};
	rc = store_write(s, open_tables, &ctx);
	if (!rc) { /* generations count from here */
		MDB_envinfo info;
		mdb_env_info(s->env, &info);
		s->base_txnid = (uint64_t)info.me_last_txnid;
		s->own_commits = s->derived_commits = 0;
	}
	if (rc == FDO_ESTORE_VERSION && ctx.found) {
		fdo_error("store: %s has version %u; this fdod reads version "
			  "%d (and upgrades 1 to 5): refusing to open it",
			  path, ctx.found, STORE_VERSION);
	}
	if (rc)
		goto fail;
	*out = s;
	return FDO_OK;
fail:
	store_close(s);
	return rc;
}

void store_close(store *s)
{
	if (!s)
		return;
	if (s->env)
		mdb_env_close(s->env);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->gen_mu);
	fdo_map64_fini(&s->bin_idx);
	free(s->bin_gen);
	free(s->dir);
	free(s);
}

int store_backup(store *s, const char *dir)
{
	char path[4096];
	if (snprintf(path, sizeof path, "%s/store", dir) >= (int)sizeof path)
		return FDO_ELIMIT;
	if ((mkdir(dir, 0755) && errno != EEXIST) ||
	    (mkdir(path, 0755) && errno != EEXIST)) {
		fdo_error("store: backup: cannot create %s: %s", path,
			  strerror(errno));
		return errno == ENOSPC ? FDO_ENOSPACE : FDO_EIO;
	}
	char probe[4200];
	snprintf(probe, sizeof probe, "%s/data.mdb", path);
	if (access(probe, F_OK) == 0) {
		fdo_error("store: backup: %s already holds a store", path);
		return FDO_EEXISTS;
	}
	/* A read transaction inside: a consistent snapshot, while writers
	 * go on; compaction leaves free pages out. */
	int mrc = mdb_env_copy2(s->env, path, MDB_CP_COMPACT);
	if (mrc) {
		unlink(probe);
		return store_mdb_err(NULL, mrc, "backup");
	}
	return FDO_OK;
}

const char *store_dir(const store *s)
{
	return s->dir;
}

void store_stats(store *s, struct store_stats *st)
{
	MDB_envinfo info;
	pthread_mutex_lock(&s->gen_mu);
	mdb_env_info(s->env, &info);
	uint64_t derived = s->derived_commits;
	pthread_mutex_unlock(&s->gen_mu);
	st->map_size = info.me_mapsize;
	st->max_size = s->max_size;
	st->used_size = ((uint64_t)info.me_last_pgno + 1) * s->page_size;
	st->generation = (uint64_t)info.me_last_txnid - derived;
}
