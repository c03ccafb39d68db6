/*
 * storage/storage_int.h — what the files of storage/ share and nobody else
 * sees: the store and transaction structs and LMDB error translation.
 */
#ifndef FDO_STORAGE_INT_H
#define FDO_STORAGE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "common/map.h"
#include "storage/storage.h"

struct store {
	MDB_env *env;		    /* set at open; LMDB is thread safe */
	MDB_dbi dbi[STORE_NTABLES]; /* set at open, then read-only */
	char *dir;		    /* data directory; read-only */
	uint64_t max_size;	    /* read-only */
	size_t page_size;	    /* read-only */

	/* The resize gate: mdb_env_set_mapsize needs every transaction of the
	 * process closed. All fields below are guarded by mu; cv signals
	 * changes of active, growers and growing. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int active;	   /* transactions open in this process */
	int growers;	   /* threads waiting to resize */
	int growing;	   /* a resize is in progress */
	uint64_t map_size; /* current map size */
	/* Commits by store_write_derived that changed something: they do
	 * not count in store_stats' generation. gen_mu is held across such
	 * a commit and its count, and while store_stats reads both. */
	pthread_mutex_t gen_mu;
	uint64_t derived_commits;
	/* Per-binary generations (store_generation_of), under gen_mu: every
	 * commit of this process that wrote something takes the next seq;
	 * all_gen is the seq of the last that may change any binary's
	 * profile, bin_gen[bin_idx(binary)] that of the last that wrote the
	 * binary's own rows. Commits by other processes are the txn ids
	 * since the open that this process did not commit (foreign). */
	uint64_t base_txnid, own_commits, foreign, gen_seq, all_gen;
	struct fdo_map64 bin_idx; /* binary id + 1 -> index into bin_gen */
	uint64_t *bin_gen;
	size_t nbin_gen, cap_bin_gen;
};

struct store_txn {
	store *s;
	MDB_txn *txn;
	int write;
	int map_full;	     /* MDB_MAP_FULL seen: the txn is dead, grow */
	int resized;	     /* MDB_MAP_RESIZED seen: adopt the new size */
	uint64_t map_seen;   /* map size when the txn began */
	int dirty;	     /* something was written or deleted */
	int quiet;	     /* writes now change no profile (store_buildid_put
			      of the same symbol state) */
	int touched_all;     /* a write any binary's profile may read */
	uint32_t touched[8]; /* binaries whose own rows were written */
	unsigned ntouched;   /* > 8: as touched_all */
};

/* note_write: what a successful write of table's key in t changes, for
 * the generations (storage/env.c). */
void store_note_write(store_txn *t, enum store_table table, const void *key,
		      size_t klen);

/*
 * store_mdb_err translates an LMDB (or errno) code to FDO_E*, marks t as
 * needing growth on MDB_MAP_FULL and logs unexpected codes with what and
 * mdb_strerror. NOTFOUND and KEYEXIST are not logged. t may be NULL.
 */
int store_mdb_err(store_txn *t, int rc, const char *what);

/*
 * store_mkdir_p creates path and its missing parents (mode 0755); with sync,
 * fsyncs the parent of each directory it creates. Returns FDO_OK, FDO_EIO,
 * FDO_EDENIED, FDO_ELIMIT; logs failures.
 */
int store_mkdir_p(const char *path, int sync);

/*
 * store_walk_binary calls fn with each entry of table whose key begins
 * with the big-endian binary id (counts, totals, hosts), in key order,
 * until fn returns nonzero, which is returned; otherwise FDO_OK or the
 * store's error. Keys and values are valid as for store_get.
 */
typedef int (*store_entry_fn)(void *arg, const void *k, size_t kl,
			      const void *v, size_t vl);
int store_walk_binary(store_txn *t, enum store_table table, uint32_t binary,
		      store_entry_fn fn, void *arg);

/*
 * LEB128 varints (7 bits a byte, low first), as the stacks and aggs
 * layouts have them (storage/codec.c): store_put_uvarint writes v (at
 * most 10 bytes) and returns how many; store_get_uvarint reads one from
 * p[*at..len), advancing *at: 0 when it is truncated or longer than 64
 * bits.
 */
size_t store_put_uvarint(uint8_t *out, uint64_t v);
/* Inline: the aggs rows' check reads millions of them per pull, most of
 * several bytes (weights). */
static inline int store_get_uvarint(const uint8_t *p, size_t len, size_t *at,
				    uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64 && *at < len; shift += 7) {
		uint8_t b = p[(*at)++];
		if (shift == 63 && b > 1)
			return 0;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 1;
		}
	}
	return 0;
}

/*
 * store_totals_build computes table totals from table counts, replacing
 * whatever it held, in write transaction t: one pass over every counts
 * entry (storage/totals.c). *rows and *entries get the rows written and
 * the entries they sum. Returns FDO_OK, FDO_ELIMIT, or a store error.
 */
int store_totals_build(store_txn *t, uint64_t *rows, uint64_t *entries);

/*
 * store_counts_upgrade_v5 converts the version 5 table counts (open as
 * old: one entry per (binary, label set, bucket, stack)) into runs of
 * table counts, one run per bucket, and drops it, in write transaction t
 * (storage/counts.c). *groups and *entries: runs and entries written.
 */
int store_counts_upgrade_v5(store_txn *t, MDB_dbi old, uint64_t *groups,
			    uint64_t *entries);

/*
 * store_elf_same_slot_info is store_elf_same_slot for files already
 * inspected: ia and ib are what store_elf_inspect said of fd_a and fd_b,
 * so an upload compared with a stored slot is not parsed again
 * (storage/elfcheck.c).
 */
int store_elf_same_slot_info(int fd_a, const struct store_elf_info *ia,
			     int fd_b, const struct store_elf_info *ib,
			     unsigned kind, int *same);

#endif
