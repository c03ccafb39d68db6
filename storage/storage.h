/*
 * storage/storage.h — fdod's storage: one LMDB environment of named tables,
 * key codecs, interning of names to 32-bit ids, and the symbol store (ELF
 * files by build-id). The only header of storage/ that other parts include;
 * only storage/ includes lmdb.h.
 *
 * On disk, under a data directory DIR (default ./var/fdod):
 *   DIR/store/data.mdb, DIR/store/lock.mdb     the LMDB environment
 *   DIR/symbols/<2 hex>/<build-id hex>/{executable,debuginfo}
 *
 * Threads: a store is shared by all threads. A transaction (store_txn) is
 * used by the one thread that began it, from begin to commit/abort, and never
 * crosses threads (so a thread may hold read transactions while another
 * writes). Read transactions run in parallel; LMDB serializes write
 * transactions (across processes too). A thread holds at most one write
 * transaction; while it holds any transaction it must not call store_write
 * (growing the map needs every transaction of the process closed).
 *
 * Memory: values and keys returned by store_get, cursors and lookups point
 * into the map and stay valid only until the transaction ends (or, in a
 * write transaction, until the next write to that table).
 */
#ifndef FDO_STORAGE_H
#define FDO_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "schemas/schemas.h"

/* The store layout version this code reads and writes. See storage/env.c. */
#define STORE_VERSION 6

typedef struct store store;
typedef struct store_txn store_txn;
typedef struct store_cursor store_cursor;

/* ------------------------------------------------------------------ env -- */

struct store_opts {
	/* Data directory; the environment lives in DIR/store/ (both created
	 * if missing). Required. */
	const char *dir;
	/* Map size at open, in bytes; 0 = 64 MiB. Rounded up to a page. An
	 * existing environment that is already larger keeps its size. */
	uint64_t initial_size;
	/* The map (and so the data file) never grows past this; a write that
	 * needs more fails with FDO_ESTORE_FULL. 0 = 64 GiB. */
	uint64_t max_size;
	/* Concurrent read transactions across all processes; 0 = 126. */
	unsigned max_readers;
};

/*
 * store_open opens (creating if needed) the environment under opts->dir and
 * every table, checks the version stamp and hands back a store in *out.
 * A store of an older layout (versions 1 to 5) is upgraded in place
 * first, in the same write transaction (storage/env.c; logged).
 * Returns FDO_OK; FDO_ESTORE_VERSION when the store was written by a
 * layout version it does not know (logged with both versions); FDO_EIO,
 * FDO_ESTORE_FULL (no room for the upgrade), FDO_EDENIED,
 * FDO_ECORRUPT, FDO_ESTORE or FDO_ENOMEM. Blocks on disk I/O. Any thread.
 * Close with store_close.
 */
int store_open(const struct store_opts *opts, store **out);

/*
 * store_close closes the environment and frees s. Every transaction must
 * have ended. NULL is a no-op.
 */
void store_close(store *s);

/*
 * store_backup writes a consistent, compacted copy of the environment to
 * DIR/store/ (DIR is created; refuses FDO_EEXISTS when it already holds a
 * store) while other threads and processes go on writing. The copy holds
 * what was committed when it began; opened with store_open({.dir = DIR})
 * it is a working store. Blocks. Returns FDO_OK, FDO_EEXISTS, FDO_EIO,
 * FDO_ENOSPACE, FDO_ESTORE.
 */
int store_backup(store *s, const char *dir);

/* store_dir returns the data directory s was opened with; owned by s. */
const char *store_dir(const store *s);

struct store_stats {
	uint64_t map_size;   /* current map size, bytes */
	uint64_t max_size;   /* configured limit, bytes */
	uint64_t used_size;  /* bytes up to the last used page */
	uint64_t generation; /* id of the last committed write transaction
				(by any process), less the commits of
				store_write_derived in this process: grows
				with every change of what the store holds */
};
/* store_stats fills st with the current sizes. Any thread; does not block
 * on transactions. */
void store_stats(store *s, struct store_stats *st);

/*
 * store_txn_begin begins a transaction: read-only when write == 0, otherwise
 * a write transaction (blocks until LMDB's writer lock is free, also against
 * other processes). Prefer store_write for writes: a direct write
 * transaction that fills the map returns FDO_ESTORE_FULL from the failing
 * call even when the map could grow (the map is grown when it ends, so a
 * retry may succeed). Returns FDO_OK with *out set, FDO_EBUSY (reader table
 * full, or a map resize by another process while this thread holds a
 * transaction), FDO_ESTORE. End with store_txn_commit or store_txn_abort on
 * the same thread.
 */
int store_txn_begin(store *s, int write, store_txn **out);

/*
 * store_txn_commit commits t (for a read transaction: just ends it) and
 * frees t, whatever the result. Returns FDO_OK, FDO_ESTORE_FULL (map full at
 * commit: nothing of t is stored), FDO_EIO, FDO_ESTORE. Blocks on fsync for
 * write transactions.
 */
int store_txn_commit(store_txn *t);

/* store_txn_abort discards t's changes and frees t. NULL is a no-op. */
void store_txn_abort(store_txn *t);

/*
 * store_write runs fn(txn, arg) in a write transaction and commits when fn
 * returns FDO_OK; any other return aborts and is returned. When the map
 * fills (during fn or at commit), the transaction is aborted, the map grown
 * (doubling, up to max_size) and fn called again from scratch in a new
 * transaction, so fn must have no effects outside the transaction that a
 * second call would repeat. Returns fn's result, the commit's, or
 * FDO_ESTORE_FULL when max_size is reached (nothing of this write stored),
 * FDO_ENOSPACE when the disk has no room for a larger map (the same),
 * FDO_EBUSY when called while this thread holds a transaction and the map
 * must grow. Blocks. Any thread.
 */
int store_write(store *s, int (*fn)(store_txn *t, void *arg), void *arg);

/*
 * store_generation_of: a number that changes whenever a commit may have
 * changed what a profile of binary (its id) reads: a write of its rows of
 * counts, totals, branches or hosts; of any symbolization result or
 * build-id's symbol state (every binary); any commit by another process
 * since the open. Commits that wrote other binaries' rows only, table
 * aggs, batch records or published versions leave it, so identical pulls
 * of one binary share a build across merges of others (server/pcache.c).
 * Its top bit is set, so it never equals a store_stats generation. Any
 * thread; waits for a commit in progress.
 */
uint64_t store_generation_of(store *s, uint32_t binary);

/*
 * store_write_derived is store_write for a write that changes no answer:
 * one that only adds what can be computed again from the rest of the
 * store (table aggs: sums of counts and stacks), or rewrites rows without
 * changing a sum (a compaction step of counts runs: storage/counts.c).
 * Its commit moves neither store_stats' generation nor any binary's
 * store_generation_of, so answers cached by generation (server/pcache.c)
 * stay valid across it. Returns as store_write.
 */
int store_write_derived(store *s, int (*fn)(store_txn *t, void *arg),
			void *arg);

/* --------------------------------------------------------------- tables -- */

/* Tables (LMDB named databases). Layouts: storage/codec.c. Numbers are
 * in-memory only; the names are what is on disk. */
enum store_table {
	STORE_META,	 /* "meta": version stamp, id counters */
	STORE_BUILDIDS,	 /* "buildids": build-id <-> id, symbol state */
	STORE_BINARIES,	 /* "binaries": binary name <-> id */
	STORE_LABELSETS, /* "labelsets": canonical label set <-> id */
	STORE_STRINGS,	 /* "strings": any other string <-> id */
	STORE_STACKS,	 /* "stacks": stack id -> frames */
	STORE_COUNTS,	 /* "countruns": (binary,labels,bucket,run,chunk) ->
			    sorted (stack, weight) entries (storage/counts.c) */
	STORE_BRANCHES,	 /* "branches": (...,build-id,from,to) -> weight */
	STORE_PENDING,	 /* "pending": (build-id, offset) not yet symbolized */
	STORE_SYMCACHE,	 /* "symcache": (build-id, offset) -> inline chain */
	STORE_BATCHES,	 /* "batches": (agent, seq) -> commit time */
	STORE_PUBLISHED, /* "published": (binary, version) -> profile */
	STORE_HOSTS,	 /* "hosts": (binary, host) -> first/last seen */
	STORE_TOTALS, /* "totals": (binary,labels,bucket) -> sums of counts */
	STORE_AGGS,   /* "aggs": (binary,labels,bucket,leaf build-id) ->
			 leaf and caller->callee pair sums */
	STORE_NTABLES
};

/* store_table_name returns the on-disk name of table; static. */
const char *store_table_name(enum store_table table);

/*
 * store_get looks key up in table. On FDO_OK, *val and *vlen point into the map
 * (valid until the transaction ends or the table is next written). Returns
 * FDO_ENOT_FOUND when absent, FDO_ESTORE, FDO_EINVAL (key empty or longer
 * than STORE_KEY_MAX).
 */
#define STORE_KEY_MAX 511
int store_get(store_txn *t, enum store_table table, const void *key,
	      size_t klen, const void **val, size_t *vlen);

/* Flags of store_put. */
#define STORE_NOOVERWRITE 0x1 /* fail with FDO_EEXISTS if key exists */

/*
 * store_put writes key -> val (copying both) in a write transaction.
 * Returns FDO_OK, FDO_EEXISTS (STORE_NOOVERWRITE and the key exists),
 * FDO_ESTORE_FULL (map full: the transaction is dead, end it; store_write
 * grows and retries), FDO_ELIMIT (transaction too large), FDO_EINVAL (read
 * transaction, bad key size), FDO_ESTORE.
 */
int store_put(store_txn *t, enum store_table table, const void *key,
	      size_t klen, const void *val, size_t vlen, unsigned flags);

/* store_del deletes key. Returns FDO_OK, FDO_ENOT_FOUND, or as store_put. */
int store_del(store_txn *t, enum store_table table, const void *key,
	      size_t klen);

/* store_live_bytes: bytes of pages holding data in every table (unlike the
 * map's high-water mark, it shrinks when data is deleted). */
int store_live_bytes(store_txn *t, uint64_t *bytes);
/* store_table_bytes: the same for one table. */
int store_table_bytes(store_txn *t, enum store_table table, uint64_t *bytes);

/* store_count sets *n to the number of entries of table. */
int store_count(store_txn *t, enum store_table table, uint64_t *n);

/*
 * Cursors walk a table in key order. store_cursor_open opens one in t;
 * close it with store_cursor_close before t ends. store_cursor_seek moves to
 * the first key >= key (klen 0: the first key of the table);
 * store_cursor_next to the following one. Both return FDO_OK with the
 * entry in the out-parameters (valid as for store_get), FDO_ENOT_FOUND past
 * the end, FDO_ESTORE.
 */
int store_cursor_open(store_txn *t, enum store_table table, store_cursor **out);
int store_cursor_seek(store_cursor *c, const void *key, size_t klen,
		      const void **k, size_t *kl, const void **v, size_t *vl);
int store_cursor_next(store_cursor *c, const void **k, size_t *kl,
		      const void **v, size_t *vl);
/*
 * store_cursor_put writes key -> val as store_put does, through a cursor
 * of a write transaction, and leaves the cursor on it. With STORE_CURRENT
 * it replaces the value of the entry the cursor is on, whose key must be
 * key, without searching the table again. Keys written in order through one
 * cursor mostly land on the page it is on, which LMDB checks first.
 * Returns as store_put.
 */
#define STORE_CURRENT 0x2
int store_cursor_put(store_cursor *c, const void *key, size_t klen,
		     const void *val, size_t vlen, unsigned flags);
void store_cursor_close(store_cursor *c);

/* --------------------------------------------------------------- codecs -- */
/*
 * Fixed-width big-endian keys (byte order = numeric order) and the values
 * that go with them. Layouts, as OFFSET SIZE DESCRIPTION tables, are in
 * storage/codec.c. encode writes exactly *_SIZE bytes; decode returns
 * FDO_OK or FDO_ECORRUPT when len is not the size of the layout.
 */

/* One normalized frame: a file offset in the ELF file of a build-id. */
struct store_frame {
	uint32_t build_id; /* interned build-id id */
	uint64_t offset;   /* file offset */
};

#define STORE_COUNTS_KEY_SIZE 20
struct store_counts_key {
	uint32_t binary;   /* interned binary id */
	uint32_t labelset; /* interned label set id */
	uint32_t bucket;   /* bucket start, unix seconds */
	uint64_t stack;	   /* stack id */
};
void store_counts_key_encode(uint8_t out[STORE_COUNTS_KEY_SIZE],
			     const struct store_counts_key *k);
int store_counts_key_decode(const void *p, size_t len,
			    struct store_counts_key *k);

#define STORE_BRANCHES_KEY_SIZE 32
struct store_branches_key {
	uint32_t binary, labelset, bucket; /* as in counts */
	uint32_t build_id;		   /* interned build-id id */
	uint64_t from, to;		   /* file offsets */
};
void store_branches_key_encode(uint8_t out[STORE_BRANCHES_KEY_SIZE],
			       const struct store_branches_key *k);
int store_branches_key_decode(const void *p, size_t len,
			      struct store_branches_key *k);

/*
 * Weights are the exact 128-bit integers of schemas/schemas.h:
 * sum of count x period x round(weight x WIRE_WEIGHT_SCALE).
 */
#define STORE_WEIGHT_VAL_SIZE 24
struct store_weight {
	wire_weight_t weight; /* sum of count x period x fleet weight, fixed */
	uint64_t samples;     /* sum of raw sample counts */
};
void store_weight_encode(uint8_t out[STORE_WEIGHT_VAL_SIZE],
			 const struct store_weight *w);
int store_weight_decode(const void *p, size_t len, struct store_weight *w);

/* pending and symcache keys: (build-id id, file offset). */
#define STORE_ADDR_KEY_SIZE 12
void store_addr_key_encode(uint8_t out[STORE_ADDR_KEY_SIZE],
			   const struct store_frame *a);
int store_addr_key_decode(const void *p, size_t len, struct store_frame *a);

/* stacks: key = stack id (be64); value = frames, leaf first. */
#define STORE_STACK_KEY_SIZE   8
#define STORE_FRAME_SIZE       12
#define STORE_STACK_MAX_FRAMES 1024
/* The compact layout's first byte; no id of the buildids dictionary
 * reaches STORE_BUILDID_MAX_ID, so no fixed-layout value starts with it. */
#define STORE_STACK_COMPACT	       0xff
#define STORE_BUILDID_MAX_ID	       0xff000000u
#define STORE_STACK_COMPACT_MAX_OFFSET (UINT64_MAX >> 1)
void store_stack_key_encode(uint8_t out[STORE_STACK_KEY_SIZE], uint64_t id);
/* A frame as the stack id sees it: a hash of the raw build-id, not its id. */
struct store_hframe {
	uint64_t build_id_hash; /* store_buildid_hash of the raw build-id */
	uint64_t offset;
};
/* store_buildid_hash: 64-bit hash of raw build-id bytes (stable forever). */
uint64_t store_buildid_hash(const uint8_t *id, size_t len);
/* store_stack_id hashes frames (64-bit, stable forever: it is on disk). */
uint64_t store_stack_id(const struct store_hframe *frames, size_t n);
/* store_stack_encode writes n*STORE_FRAME_SIZE bytes into out (capacity
 * cap): FDO_OK, FDO_ELIMIT when cap is short or n > STORE_STACK_MAX_FRAMES. */
int store_stack_encode(const struct store_frame *frames, size_t n, uint8_t *out,
		       size_t cap, size_t *len);
/* store_stack_decode decodes up to cap frames: FDO_OK with *n set,
 * FDO_ECORRUPT (len not a multiple of the frame size), FDO_ELIMIT. */
int store_stack_decode(const void *p, size_t len, struct store_frame *frames,
		       size_t cap, size_t *n);

/* symcache value: the inline chain of one address, innermost first. */
struct store_sym_frame {
	uint32_t function; /* string id of the (linkage) function name */
	uint32_t file;	   /* string id of the source file, 0 unknown */
	uint32_t line;	   /* 0 unknown */
	uint32_t column;   /* 0 unknown */
	uint32_t discriminator;
	uint32_t start_line; /* the function's declaration line, 0 unknown */
};
#define STORE_SYMCACHE_MAX_FRAMES 255
#define STORE_SYMCACHE_HDR_SIZE	  4
#define STORE_SYM_FRAME_SIZE	  24
/* Encodes n frames (0 = the address has no symbol): FDO_OK, FDO_ELIMIT. */
int store_symcache_encode(const struct store_sym_frame *f, size_t n,
			  uint8_t *out, size_t cap, size_t *len);
/* Decodes up to cap frames: FDO_OK, FDO_ECORRUPT, FDO_ELIMIT. */
int store_symcache_decode(const void *p, size_t len, struct store_sym_frame *f,
			  size_t cap, size_t *n);

#define STORE_BATCHES_KEY_SIZE 12
void store_batches_key_encode(uint8_t out[STORE_BATCHES_KEY_SIZE],
			      uint32_t agent, uint64_t seq);
int store_batches_key_decode(const void *p, size_t len, uint32_t *agent,
			     uint64_t *seq);

/* batches value: what the first commit of an (agent, seq) said. Records
 * written before the content digest (issue 21) have 24 bytes. */
#define STORE_BATCHES_VAL_SIZE	  32
#define STORE_BATCHES_VAL_SIZE_V1 24
struct store_batch {
	uint64_t committed; /* commit time, unix seconds */
	uint64_t accepted;  /* samples accepted, as the first Ack said */
	uint64_t unmapped;  /* samples unmapped (written 0) */
	uint64_t digest;    /* content digest, never 0; 0 = a 24-byte record */
};
/* Writes STORE_BATCHES_VAL_SIZE bytes; b->digest must not be 0. */
void store_batches_encode(uint8_t out[STORE_BATCHES_VAL_SIZE],
			  const struct store_batch *b);
/* Decodes a value of either size: FDO_OK, or FDO_ECORRUPT when len is
 * neither size or a 32-byte record has digest 0. */
int store_batches_decode(const void *p, size_t len, struct store_batch *b);

/* hosts: key (binary id, host string id); value first and last seen. */
#define STORE_HOSTS_KEY_SIZE 8
#define STORE_HOSTS_VAL_SIZE 16
void store_hosts_key_encode(uint8_t out[STORE_HOSTS_KEY_SIZE], uint32_t binary,
			    uint32_t host);
int store_hosts_key_decode(const void *p, size_t len, uint32_t *binary,
			   uint32_t *host);
struct store_host {
	uint64_t first, last; /* first and last batch time, unix seconds */
};
void store_hosts_encode(uint8_t out[STORE_HOSTS_VAL_SIZE],
			const struct store_host *h);
/* FDO_OK, or FDO_ECORRUPT when len is not STORE_HOSTS_VAL_SIZE or first
 * is after last. */
int store_hosts_decode(const void *p, size_t len, struct store_host *h);

/* store_hosts_count sets *n to the distinct hosts recorded for binary. */
int store_hosts_count(store_txn *t, uint32_t binary, uint64_t *n);
/* store_hosts_each calls fn with each host of binary (its string id and
 * first/last seen); a nonzero return ends the walk and is returned. */
typedef int (*store_hosts_fn)(void *arg, uint32_t host,
			      const struct store_host *h);
int store_hosts_each(store_txn *t, uint32_t binary, store_hosts_fn fn,
		     void *arg);

/*
 * Table counts is kept as sorted, immutable runs (storage/counts.c; layout
 * in storage/codec.c): per (binary, label set, bucket), runs of entries
 * (stack id, weight, samples) sorted by stack id, each run cut into chunks
 * of at most STORE_RUN_CHUNK_MAX bytes. The logical counts entry of a
 * (binary, label set, bucket, stack) is the sum of that stack's entries
 * over the bucket's runs: what store_counts_iter yields.
 */
#define STORE_RUN_KEY_SIZE 24
struct store_run_key {
	uint32_t binary, labelset, bucket; /* as in counts */
	uint64_t run;			   /* run id (meta "runs.next") */
	uint32_t chunk;			   /* 0, 1, ... within the run */
};
void store_run_key_encode(uint8_t out[STORE_RUN_KEY_SIZE],
			  const struct store_run_key *k);
int store_run_key_decode(const void *p, size_t len, struct store_run_key *k);

/* A chunk is at most 8 pages of 4 KiB of LMDB overflow (less their
 * 16-byte header). */
#define STORE_RUN_CHUNK_MAX 32752
struct store_count_entry {
	uint64_t stack;
	wire_weight_t weight;
	uint64_t samples;
};

/* The chunk codec. store_chunk_header writes the 8-byte header of a chunk
 * of `entries` entries; store_chunk_put encodes e after the entry of id
 * prev (first: the chunk's first entry) at out (at most 40 bytes) and
 * returns its length. store_chunk_open checks a chunk's header;
 * store_chunk_next decodes the next entry: FDO_OK, FDO_ENOT_FOUND after
 * the last, FDO_ECORRUPT (bad varint, ids not increasing, count or length
 * wrong). store_chunk_sums: weight, samples and entries of a chunk. */
struct store_chunk_reader {
	const uint8_t *p;
	size_t len, at;
	uint32_t left;
	uint64_t last;
	int first;
};
void store_chunk_header(uint8_t out[8], uint32_t entries);
size_t store_chunk_put(uint8_t *out, uint64_t prev, int first,
		       const struct store_count_entry *e);
int store_chunk_open(struct store_chunk_reader *r, const void *p, size_t len);
int store_chunk_next(struct store_chunk_reader *r, struct store_count_entry *e);
struct store_totals;
int store_chunk_sums(const void *p, size_t len, struct store_totals *sum);

/*
 * The run writer: entries added in increasing stack id order are packed
 * into chunks and written (store_put) as each fills; finish writes the
 * last. With t NULL the chunks are kept in memory (compaction). Returns
 * FDO_OK, FDO_EINVAL (ids not increasing), FDO_ENOMEM, or as store_put.
 */
typedef struct store_run_writer store_run_writer;
int store_run_writer_open(store_txn *t, store_run_writer **w);
void store_run_writer_start(store_run_writer *w,
			    const struct store_run_key *first);
int store_run_writer_add(store_run_writer *w,
			 const struct store_count_entry *e);
int store_run_writer_finish(store_run_writer *w);
uint64_t store_run_writer_entries(const store_run_writer *w);
uint64_t store_run_writer_bytes(const store_run_writer *w);
void store_run_writer_close(store_run_writer *w);

/* store_run_id_next takes the next run id (meta "runs.next"), in a write
 * transaction. */
int store_run_id_next(store_txn *t, uint64_t *id);

/*
 * store_counts_iter: the counts entries whose key begins with prefix (0,
 * 4: binary, 8: + label set, or 12 bytes: + bucket, big-endian) in key
 * order (binary, label set, bucket, stack), each the sum of the stack's
 * entries over the bucket's runs (a k-way merge; runs are read in place).
 * next returns FDO_OK, FDO_ENOT_FOUND at the end, FDO_ECORRUPT (a chunk
 * that does not decode: logged), or the store's error. The transaction
 * must not write table counts while the iterator is open.
 */
typedef struct store_counts_iter store_counts_iter;
int store_counts_iter_open(store_txn *t, const void *prefix, size_t plen,
			   store_counts_iter **it);
int store_counts_iter_next(store_counts_iter *it, struct store_counts_key *k,
			   struct store_weight *w);
/* store_counts_iter_from: an iterator of one group (opened with a 12-byte
 * prefix) starts at the first stack id >= from; called before the first
 * next, else FDO_EINVAL. */
int store_counts_iter_from(store_counts_iter *it, uint64_t from);
size_t store_counts_iter_runs(const store_counts_iter *it);
void store_counts_iter_close(store_counts_iter *it);

/*
 * store_counts_each walks the counts entries of binary in key order (label
 * set, bucket, stack) through store_counts_iter and calls fn with each. A
 * nonzero return from fn ends the walk and is returned; otherwise FDO_OK
 * or the iterator's error.
 */
typedef int (*store_counts_fn)(void *arg, const struct store_counts_key *k,
			       const struct store_weight *w);
int store_counts_each(store_txn *t, uint32_t binary, store_counts_fn fn,
		      void *arg);

/* store_counts_runs lists the runs of one (binary, label set, bucket):
 * id, bytes and chunks, in run id order; FDO_ELIMIT (with cap listed)
 * when there are more. */
struct store_run_info {
	uint64_t run, bytes, chunks;
};
struct store_totals_key;
int store_counts_runs(store_txn *t, const struct store_totals_key *g,
		      struct store_run_info *out, size_t cap, size_t *n);

/* ------------------------------------------------------------- totals -- */
/*
 * Table totals (storage/totals.c; layout in storage/codec.c): one row per
 * (binary, label set, bucket) that holds counts entries, with the sums of
 * those entries. Whoever writes or deletes counts entries changes the row
 * in the same write transaction (store_totals_add), so a reader that wants
 * a binary's figures per label set and bucket reads a few rows instead of
 * every counts entry.
 */
#define STORE_TOTALS_KEY_SIZE 12
struct store_totals_key {
	uint32_t binary, labelset, bucket; /* as in counts */
};
void store_totals_key_encode(uint8_t out[STORE_TOTALS_KEY_SIZE],
			     const struct store_totals_key *k);
int store_totals_key_decode(const void *p, size_t len,
			    struct store_totals_key *k);

#define STORE_TOTALS_VAL_SIZE 32
struct store_totals {
	wire_weight_t weight; /* sum of the entries' weights */
	uint64_t samples;     /* sum of the entries' samples */
	uint64_t entries;     /* run entries: distinct stacks once the
				 bucket is one run; >= 1 */
};
void store_totals_encode(uint8_t out[STORE_TOTALS_VAL_SIZE],
			 const struct store_totals *v);
int store_totals_decode(const void *p, size_t len, struct store_totals *v);

/*
 * store_totals_each walks the totals rows of binary in key order (label
 * set, bucket) and calls fn with each. A nonzero return from fn ends the
 * walk and is returned; a row that does not decode ends it with
 * FDO_ECORRUPT; otherwise FDO_OK or the store's error. Any transaction.
 */
typedef int (*store_totals_fn)(void *arg, const struct store_totals_key *k,
			       const struct store_totals *v);
int store_totals_each(store_txn *t, uint32_t binary, store_totals_fn fn,
		      void *arg);

/*
 * store_totals_add changes the row of k by d, in a write transaction:
 * adds d (creating the row) when sub is 0; takes d away when sub is 1,
 * deleting the row when its entries reach 0. The caller has just written
 * (or deleted) the counts entries d sums, in the same transaction.
 * Returns FDO_OK, FDO_ELIMIT (the weight would pass 2^128), FDO_ECORRUPT
 * (the row does not decode, or holds less than sub takes away: the table
 * no longer matches counts; logged), or as store_put.
 */
int store_totals_add(store_txn *t, const struct store_totals_key *k,
		     const struct store_totals *d, int sub);

/*
 * Compaction (storage/counts.c): store_counts_compact_plan picks runs of
 * g to merge (job->nin 0: none): every run when the bucket is closed and
 * has two or more; else, size-tiered, the runs of the smallest tier that
 * has four or more (a run's tier: log4 of its size in chunks); past 16
 * runs, the smallest, leaving 8.
 * store_counts_compact_step merges the next max_bytes of output in one
 * write transaction of its own (store_write) and sets *done when the
 * inputs are used up. Sums do not change; totals' entries shrink by the
 * equal ids merged (store_totals_compacted).
 */
#define STORE_COMPACT_MAX_IN 64
struct store_compact {
	struct store_totals_key g;
	uint64_t in[STORE_COMPACT_MAX_IN];
	size_t nin;
	uint64_t out;	    /* output run id (0: not yet taken) */
	uint32_t out_chunk; /* its next chunk */
	uint64_t steps, bytes, merged;
};

int store_counts_compact_plan(store *st, const struct store_totals_key *g,
			      int closed, struct store_compact *job);
int store_counts_compact_step(store *st, struct store_compact *job,
			      size_t max_bytes, int *done);

/*
 * store_totals_compacted: compaction merged `fewer` run entries of k into
 * others (the sums stay): the row's entries shrink by as many, and so does
 * the copy in k's aggs run header when it was of this row
 * (store_aggs_reseen), so the aggs rows stay. FDO_ECORRUPT (logged) when
 * the row is missing or holds too few entries.
 */
int store_totals_compacted(store_txn *t, const struct store_totals_key *k,
			   uint64_t fewer);
int store_aggs_reseen(store_txn *t, const struct store_totals_key *k,
		      uint64_t was, uint64_t now);

/* -------------------------------------------------------------- aggs -- */
/*
 * Table aggs (storage/aggs.c; layout in storage/codec.c): what the
 * compile-time profiles read of one (binary, label set, bucket) of counts
 * (a "run"), per leaf build-id: the exact sums of the weights of the
 * run's stacks by leaf frame (with their raw samples) and by caller ->
 * callee pair of adjacent frames (a stack adds its weight once per
 * distinct pair), and the sums of the partition's stacks. Frames are
 * (build-id id, offset), so symbolization does not change them. Kept
 * only for runs whose bucket is over; a run's rows record the totals row
 * they were computed from, and any change to that totals row
 * (store_totals_add: a late batch, retention) deletes them in the same
 * transaction, so rows present always describe the counts beside them.
 *
 * A run is encoded in memory first (struct store_aggs_run, the rows as
 * they go to the table), read back from memory or from the table through
 * the same decoder, and written in one call.
 */
#define STORE_AGGS_KEY_SIZE 20
struct store_aggs_key {
	uint32_t binary, labelset, bucket; /* as in totals */
	uint32_t leaf_bid; /* leaf build-id id; 0: the run's header row */
	uint32_t chunk;	   /* 0: the partition's header, then 1, 2, ... */
};
void store_aggs_key_encode(uint8_t out[STORE_AGGS_KEY_SIZE],
			   const struct store_aggs_key *k);
int store_aggs_key_decode(const void *p, size_t len, struct store_aggs_key *k);

/* The sums of one partition (the run's stacks whose leaf is of one
 * build-id). */
struct store_aggs_part {
	uint32_t leaf_bid;
	wire_weight_t weight; /* of its stacks */
	uint64_t samples;     /* ... their raw samples */
	uint64_t stacks;      /* ... how many */
	uint64_t nleaves, npairs;
};

/* Largest encoded run stored (bytes of its rows); larger runs are read
 * from the stacks every time. */
#define STORE_AGGS_RUN_MAX ((size_t)256 << 20)

/* One run's rows being built, or built (owned by the caller). */
struct store_aggs_run {
	struct store_totals_key k;
	struct store_totals seen; /* the totals row it is computed from */
	uint8_t *buf;		  /* rows: be32 value length, key, value */
	size_t len, cap;
	uint32_t nparts;
	/* encoder state */
	size_t part_at, chunk_at; /* offsets of the open rows' lengths */
	uint32_t chunk, chunk_records;
	uint8_t kind;		     /* of the open chunk: 1 leaves, 2 pairs */
	struct store_aggs_part part; /* the open partition, as declared */
	uint64_t leaves_done, pairs_done;
	struct store_frame last_callee, last_caller; /* ordering */
	struct store_frame base_callee, base_caller; /* the chunk's deltas */
	uint64_t last_leaf, base_leaf;
	int err;    /* first error; every later call returns it */
	size_t max; /* bytes of rows at most (0: STORE_AGGS_RUN_MAX); a
		       reader may take a larger run from memory, the table
		       never (store_aggs_run_put: FDO_ELIMIT) */
};

/*
 * Encoding, in order: store_aggs_run_init; per partition in increasing
 * leaf build-id order store_aggs_run_part (its sums and how many leaves
 * and pairs follow), its leaves by increasing offset
 * (store_aggs_run_leaf), then its pairs by increasing (callee, caller)
 * frame (store_aggs_run_pair); then store_aggs_run_finish. Each returns
 * FDO_OK, FDO_EINVAL (out of order, more than declared, an offset of 2^63
 * or more), FDO_ELIMIT (past STORE_AGGS_RUN_MAX) or FDO_ENOMEM; after an
 * error the run is only fit for fini. store_aggs_run_fini frees it.
 */
void store_aggs_run_init(struct store_aggs_run *r,
			 const struct store_totals_key *k,
			 const struct store_totals *seen);
int store_aggs_run_part(struct store_aggs_run *r,
			const struct store_aggs_part *part);
int store_aggs_run_leaf(struct store_aggs_run *r, uint64_t offset,
			wire_weight_t weight, uint64_t samples);
int store_aggs_run_pair(struct store_aggs_run *r,
			const struct store_frame *callee,
			const struct store_frame *caller, wire_weight_t weight);
int store_aggs_run_finish(struct store_aggs_run *r);
void store_aggs_run_fini(struct store_aggs_run *r);

/* What a decoder hands over, in the encoder's order; a nonzero return
 * ends the visit and is returned. */
struct store_aggs_visit {
	int (*part)(void *arg, const struct store_aggs_part *part);
	int (*leaf)(void *arg, const struct store_frame *f,
		    wire_weight_t weight, uint64_t samples);
	int (*pair)(void *arg, const struct store_frame *callee,
		    const struct store_frame *caller, wire_weight_t weight);
	void *arg;
};

/*
 * store_aggs_read visits the stored run k, every partition (leaf_bid 0)
 * or only leaf_bid's, after checking the whole of what it visits: the
 * rows decode, their counts are as declared, the run was computed from
 * the totals row `now` (the row the caller read in t). Nothing is
 * visited unless all of it checks. Returns FDO_OK, FDO_ENOT_FOUND (no
 * rows for k), FDO_ECORRUPT (rows that do not check, or of another
 * totals row: the caller computes the run from the stacks), the visit's
 * return, or the store's error. No allocation; any transaction.
 */
int store_aggs_read(store_txn *t, const struct store_totals_key *k,
		    const struct store_totals *now, uint32_t leaf_bid,
		    const struct store_aggs_visit *v);
/* store_aggs_run_read: the same for a run encoded in memory (finished). */
int store_aggs_run_read(const struct store_aggs_run *r, uint32_t leaf_bid,
			const struct store_aggs_visit *v);

/*
 * store_map_of finds where t's map is (once per transaction: it reads
 * /proc/self/maps; the map does not move while t is open); m is all 0
 * when it is not found. store_map_forget unmaps from this process the
 * pages of that map around [p, p + len) (whole fault-around windows,
 * STORE_MAP_WINDOW, within the map; nothing when p is not in it): the
 * file's pages stay in the page cache and a later read maps them again,
 * as a first read does. Linux maps up to 64 KiB around every page a read
 * faults in (fault-around, whatever madvise's advice), so a pull that
 * reads a table's pages scattered over the file once (table aggs'
 * chunks, table symcache in key order) keeps several times their size in
 * its RSS. A hint: no effect on what is read.
 */
#define STORE_MAP_WINDOW ((uintptr_t)64 << 10)
struct store_map {
	uintptr_t lo, hi;
	size_t read; /* bytes counted by store_map_read since it forgot */
	int looked;  /* store_map_of ran (found or not: not asked again) */
};
void store_map_of(store_txn *t, struct store_map *m);
void store_map_forget(const struct store_map *m, const void *p, size_t len);
/*
 * store_map_read counts len bytes of m that a reader is done with and,
 * once STORE_MAP_BATCH are counted, forgets the whole map: one madvise
 * per batch. Each madvise of a multi-threaded process flushes the TLBs of
 * the CPUs its threads ran on, which forgetting window by window paid
 * thousands of times a pull; what a batch leaves mapped is bounded by
 * what the reads of one batch fault in.
 */
#define STORE_MAP_BATCH ((size_t)4 << 20)
void store_map_read(struct store_map *m, size_t len);

/*
 * A run's partitions as the bytes of their chunks, for a reader that
 * merges many runs record by record (aggregator/reduce.c) instead of
 * visiting one run at a time. store_aggs_layout_add checks the run as
 * store_aggs_read does (same returns, plus FDO_ENOMEM) and, only when
 * all of it checks, appends its partitions (every one, or leaf_bid's) to
 * l, in the encoder's order. The bytes stay those of t's map (valid
 * while t is open) or of the encoded run r (valid while r is).
 * store_aggs_iter_* then walk one partition: its leaves first, then its
 * pairs (each returns 1 with a record, 0 at the end of its kind). The
 * layout must not grow while an iterator is on it.
 */
struct store_aggs_chunk {
	const uint8_t *p;
	size_t len;
};
struct store_aggs_src {
	struct store_aggs_part part;
	size_t first_chunk, nchunks; /* into the layout's chunks */
};
struct store_aggs_layout {
	struct store_aggs_src *srcs;
	size_t nsrcs, cap_srcs;
	struct store_aggs_chunk *chunks;
	size_t nchunks, cap_chunks;
	/* t's map (set by store_aggs_layout_add): its chunks count as read
	 * once checked and once walked (store_map_read) */
	struct store_map map;
};
int store_aggs_layout_add(store_txn *t, const struct store_totals_key *k,
			  const struct store_totals *now, uint32_t leaf_bid,
			  struct store_aggs_layout *l);
int store_aggs_run_layout_add(const struct store_aggs_run *r, uint32_t leaf_bid,
			      struct store_aggs_layout *l);
void store_aggs_layout_fini(struct store_aggs_layout *l);

/* store_aggs_parts visits only the partition headers of the stored run k
 * (their sums: v->part; leaves and pairs are neither read nor visited),
 * after checking what it visits: the run was computed from totals row
 * now, its headers decode, leaf build-ids increase, as many as the run
 * declares. The rows between headers are skipped by cursor seeks, so the
 * cost is the partitions', not the records'. Returns as store_aggs_read. */
int store_aggs_parts(store_txn *t, const struct store_totals_key *k,
		     const struct store_totals *now,
		     const struct store_aggs_visit *v);
/* store_aggs_have: does run k have rows computed from totals row now?
 * FDO_OK (its header row says so; the rest is checked when read),
 * FDO_ENOT_FOUND, FDO_ECORRUPT (another totals row's, or no header a
 * reader takes), or the store's error. Reads one row. */
int store_aggs_have(store_txn *t, const struct store_totals_key *k,
		    const struct store_totals *now);

struct store_aggs_iter {
	const struct store_aggs_chunk *next, *end; /* chunks not opened */
	const struct store_aggs_chunk *open;	   /* the open chunk */
	struct store_map *map;			   /* the layout's */
	const uint8_t *p;			   /* the open chunk's bytes */
	size_t at;
	unsigned left; /* its records not read */
	uint8_t kind;
	uint32_t bid;
	uint64_t base_leaf;
	struct store_frame base_callee, base_caller;
};
void store_aggs_iter_init(struct store_aggs_iter *it,
			  struct store_aggs_layout *l, size_t src);
int store_aggs_iter_leaf(struct store_aggs_iter *it, struct store_frame *f,
			 wire_weight_t *weight, uint64_t *samples);
int store_aggs_iter_pair(struct store_aggs_iter *it, struct store_frame *callee,
			 struct store_frame *caller, wire_weight_t *weight);

/*
 * store_aggs_run_put writes r (finished) in write transaction t, in place
 * of any rows of its key, when the totals row of its key is still r->seen;
 * else writes nothing and sets *stale. Returns FDO_OK or as store_put.
 */
int store_aggs_run_put(store_txn *t, const struct store_aggs_run *r,
		       int *stale);

/* store_aggs_drop deletes every row of run k (none: FDO_OK). Returns
 * FDO_OK or as store_del. */
int store_aggs_drop(store_txn *t, const struct store_totals_key *k);

#define STORE_PUBLISHED_KEY_SIZE 8
void store_published_key_encode(uint8_t out[STORE_PUBLISHED_KEY_SIZE],
				uint32_t binary, uint32_t version);
int store_published_key_decode(const void *p, size_t len, uint32_t *binary,
			       uint32_t *version);

/*
 * published value: one frozen profile, its inputs and its SHA-256 (the
 * version's id). Written once by server/publish.c, never changed.
 */
#define STORE_PUBLISHED_HDR_SIZE 48
#define STORE_SHA256_SIZE	 32
struct store_published {
	uint8_t format;	  /* profile format code (prof_emitter code) */
	uint64_t created; /* unix seconds */
	uint8_t sha256[STORE_SHA256_SIZE]; /* of bytes[0..bytes_len) */
	const char *inputs; /* inputs description, JSON text (no NUL) */
	size_t inputs_len;
	const void *bytes; /* the profile */
	size_t bytes_len;
};
/* store_published_size: the encoded size of v, or 0 when inputs_len does
 * not fit the layout (more than 2^32 - 1 bytes) or the sum overflows. */
size_t store_published_size(const struct store_published *v);
/* Writes store_published_size(v) bytes into out (capacity cap), *len set:
 * FDO_OK, or FDO_ELIMIT when cap is short or v does not fit the layout. */
int store_published_encode(const struct store_published *v, uint8_t *out,
			   size_t cap, size_t *len);
/* Decodes a value; v->inputs and v->bytes point into p (valid as long as
 * p: for an LMDB value, until its transaction ends). FDO_OK, or
 * FDO_ECORRUPT when the value is short, of another record format, or its
 * inputs length runs past its end. */
int store_published_decode(const void *p, size_t len,
			   struct store_published *v);

/* ------------------------------------------------------------ interning -- */
/*
 * Dictionaries map names (bytes) to 32-bit ids and back; ids start at 1 and
 * are never reused (0 means "none"). Lookups are far more frequent than
 * inserts, which happen once per distinct name, ever.
 */
enum store_dict {
	STORE_DICT_STRINGS,
	STORE_DICT_BINARIES,
	STORE_DICT_LABELSETS,
	STORE_DICT_BUILDIDS,
	STORE_NDICTS
};
/* Longest name (LMDB's key limit less the prefix byte). */
#define STORE_NAME_MAX 510

/*
 * store_intern maps bytes[0..len) to its id in *id. When absent and create
 * is set, allocates the next id (t must be a write transaction); when absent
 * and !create returns FDO_ENOT_FOUND. Returns FDO_OK, FDO_ENOT_FOUND,
 * FDO_EINVAL (empty binary or build-id name, label set not canonical, create
 * in a read transaction), FDO_EBAD_BUILD_ID, FDO_ELIMIT (name longer than
 * STORE_NAME_MAX, ids exhausted), or as store_put.
 */
int store_intern(store_txn *t, enum store_dict dict, const void *bytes,
		 size_t len, int create, uint32_t *id);
int store_intern_string(store_txn *t, const void *bytes, size_t len, int create,
			uint32_t *id);
int store_intern_binary(store_txn *t, const void *bytes, size_t len, int create,
			uint32_t *id);
/* bytes must be canonical: see store_labelset_canon. */
int store_intern_labelset(store_txn *t, const void *bytes, size_t len,
			  int create, uint32_t *id);
/* bytes is the raw build-id, 1..64 bytes; a new one gets an empty record. */
int store_intern_buildid(store_txn *t, const void *bytes, size_t len,
			 int create, uint32_t *id);

/*
 * store_intern_name is the reverse lookup: *bytes and *len get the name of id
 * (for build-ids, the raw build-id), valid as for store_get. Returns FDO_OK,
 * FDO_ENOT_FOUND, FDO_ECORRUPT.
 */
int store_intern_name(store_txn *t, enum store_dict dict, uint32_t id,
		      const void **bytes, size_t *len);

/*
 * store_labelset_canon builds the canonical text of a label set from n
 * "key=value" strings: sorted by key, joined by ',' ("" for none), written
 * NUL-terminated into out (capacity cap), length in *len. Keys are non-empty
 * and hold no '=' ',' or control characters; values hold no ',' or control
 * characters; a key may appear once. Returns FDO_OK, FDO_EINVAL, FDO_ELIMIT.
 */
int store_labelset_canon(const char *const *labels, size_t n, char *out,
			 size_t cap, size_t *len);

/* Symbol state of a build-id: which files the symbol store holds. */
#define STORE_SYM_EXECUTABLE 0x1 /* symbols/.../executable exists */
#define STORE_SYM_DEBUGINFO  0x2 /* symbols/.../debuginfo exists */
#define STORE_SYM_DWARF	     0x4 /* and debuginfo carries DWARF */

/* The record of one build-id (table buildids). */
struct store_buildid {
	uint8_t build_id[FDO_BUILD_ID_MAX];
	size_t build_id_len;
	uint32_t binary;     /* binary id, 0 unknown */
	uint64_t first_seen; /* unix seconds of its first sample, 0 never */
	uint64_t last_seen;  /* unix seconds of its last sample, 0 never */
	uint32_t sym_state;  /* STORE_SYM_* */
};
/* store_buildid_get reads the record of build-id id into *rec: FDO_OK,
 * FDO_ENOT_FOUND, FDO_ECORRUPT. */
int store_buildid_get(store_txn *t, uint32_t id, struct store_buildid *rec);
/* store_buildid_put rewrites the record of an interned build-id id (its
 * build_id bytes must match): FDO_OK, FDO_ENOT_FOUND, FDO_EINVAL, or as
 * store_put. */
int store_buildid_put(store_txn *t, uint32_t id,
		      const struct store_buildid *rec);
/* store_buildid_widen widens rec's first/last seen to include unix time
 * now, last seen only when now is at least step seconds past it (step 60
 * keeps it to the minute, so most batches write nothing): 1 when rec
 * changed. store_buildid_seen does it to id's record with step 1 and
 * writes only when it changes. */
int store_buildid_widen(struct store_buildid *rec, uint64_t now, uint64_t step);
int store_buildid_seen(store_txn *t, uint32_t id, uint64_t now);

/*
 * File ids: the OpenTelemetry profiles' id of an executable file
 * (mapping attribute process.executable.build_id.htlhash, named .profiling
 * in newer semantic conventions): SHA-256 of the file's first 4096 bytes,
 * its last 4096 bytes (they overlap in a smaller file) and its length as
 * a big-endian 64-bit integer, cut to its first 16 bytes. A sender that
 * cannot read a GNU build-id (or does not try) sends only that; fdod
 * indexes every uploaded file with loadable bytes by it (table buildids,
 * key 'f': storage/codec.c), so such frames resolve to the GNU build-id.
 */
#define STORE_FILE_ID_SIZE FDO_FILE_ID_SIZE
/* store_file_id computes the file id of the file open on fd (pread, size
 * from fstat): FDO_OK or FDO_EIO. */
int store_file_id(int fd, uint8_t out[STORE_FILE_ID_SIZE]);
/* store_fileid_put records that file id fid is a file with GNU build-id
 * bid (1..64 bytes); a file id already recorded is left as it is. */
int store_fileid_put(store_txn *t, const uint8_t fid[STORE_FILE_ID_SIZE],
		     const uint8_t *bid, size_t len);
/* store_fileid_get: the build-id of file id fid into bid (capacity
 * FDO_BUILD_ID_MAX) and *len: FDO_OK, FDO_ENOT_FOUND, FDO_ECORRUPT. */
int store_fileid_get(store_txn *t, const uint8_t fid[STORE_FILE_ID_SIZE],
		     uint8_t *bid, size_t *len);
/* store_fileid_alias: when rec (a build-id's record) is a file id
 * (STORE_FILE_ID_SIZE bytes, no executable of its own) that an uploaded
 * file has, the id of that file's build-id into *gnu: FDO_OK; else
 * FDO_ENOT_FOUND (or a store error). Frames stored under the file id
 * are read as frames of that build-id (symbols, code, profiles). */
int store_fileid_alias(store_txn *t, const struct store_buildid *rec,
		       uint32_t *gnu);

/* --------------------------------------------------------- symbol store -- */
/*
 * What an ELF file is, as far as the symbol store cares. Filled by
 * store_elf_inspect (storage/elfcheck.c).
 */
#define STORE_ELF_PIE	     0x01 /* ET_DYN with PT_INTERP or DF_1_PIE */
#define STORE_ELF_SHARED     0x02 /* ET_DYN and not PIE: a shared object */
#define STORE_ELF_DWARF	     0x04 /* .debug_info or .zdebug_info present */
#define STORE_ELF_DEBUG_ONLY 0x08 /* separate debug file: no loadable bytes */
#define STORE_ELF_SYMTAB     0x10 /* has a non-empty .symtab */
struct store_elf_info {
	uint8_t build_id[FDO_BUILD_ID_MAX];
	size_t build_id_len;
	int elf_class;	   /* 32 or 64 */
	int big_endian;	   /* 1 for ELFDATA2MSB */
	uint16_t type;	   /* e_type: ET_EXEC or ET_DYN */
	uint16_t machine;  /* e_machine */
	unsigned flags;	   /* STORE_ELF_* */
	uint64_t size;	   /* file size, bytes */
	uint64_t inflated; /* bytes its compressed sections (SHF_COMPRESSED,
			      .zdebug_*) claim once inflated, from their
			      headers; what a reader of its DWARF allocates */
};

/*
 * store_elf_inspect reads the ELF file open on fd (from offset 0, with
 * pread; fd's offset is not used) and fills *info. Hostile input is
 * expected: every offset is checked against the file size, nothing is
 * mapped, at most a few KiB are held in memory. why (capacity why_cap, may
 * be NULL) gets a one-line reason on failure. Returns FDO_OK; FDO_ENOT_ELF
 * (not ELF, empty, unknown class/encoding), FDO_ETRUNCATED (headers,
 * sections or segments past the end of the file), FDO_EPARSE (inconsistent
 * headers), FDO_EUNSUPPORTED (not an executable, shared object or debug
 * file), FDO_ENO_BUILD_ID, FDO_EBAD_BUILD_ID, FDO_ELIMIT, FDO_EIO. Blocks
 * on reads. Any thread.
 */
int store_elf_inspect(int fd, struct store_elf_info *info, char *why,
		      size_t why_cap);

/*
 * store_elf_same_slot: are the ELF files on fd_a and fd_b (same build-id)
 * the same file as far as slot kind (STORE_SYM_EXECUTABLE or _DEBUGINFO)
 * goes? executable: the same PT_LOAD headers and loadable bytes, and the
 * same symbol table when both have one (a stripped and an unstripped copy
 * of one build are the same executable); debuginfo: the same .debug_* /
 * .zdebug_* sections, byte for byte. *same = 1 or 0. Returns FDO_OK, or
 * the errors of store_elf_inspect (then *same = 0). Reads both files
 * through (pread, 128 KiB at a time). Any thread.
 */
int store_elf_same_slot(int fd_a, int fd_b, unsigned kind, int *same);

/* store_elf_kind_name names what info describes: "executable", "pie",
 * "shared-object", "debug-file"; static. */
const char *store_elf_kind_name(const struct store_elf_info *info);

/*
 * store_symbols_path writes DIR/symbols/<2 hex>/<hex>/<kind> into buf
 * (capacity cap), kind being STORE_SYM_EXECUTABLE or STORE_SYM_DEBUGINFO.
 * Returns FDO_OK, FDO_EBAD_BUILD_ID (len not 1..64), FDO_EINVAL (kind),
 * FDO_ELIMIT (cap too small). Pure; any thread.
 */
int store_symbols_path(const char *datadir, const uint8_t *build_id,
		       size_t build_id_len, unsigned kind, char *buf,
		       size_t cap);

/* The outcome of adding one file to the symbol store. */
struct store_sym_result {
	struct store_elf_info elf;
	unsigned slots;	  /* STORE_SYM_EXECUTABLE|_DEBUGINFO it qualifies for */
	unsigned stored;  /* slots this call wrote */
	unsigned present; /* slots already filled, left alone */
	unsigned replaced; /* slots whose different file this call replaced
			      (STORE_SYM_REPLACE) */
	unsigned conflict; /* slots held by a different file (FDO_ECONFLICT) */
	int has_file_id;   /* the file has loadable bytes: file_id is set */
	uint8_t file_id[STORE_FILE_ID_SIZE]; /* store_file_id of the file */
	char why[512]; /* on failure, a one-line reason for the user */
};

/* store_symbols_adopt flags. */
#define STORE_SYM_REPLACE 0x1 /* a different file in a slot is replaced */

/*
 * store_symbols_add_fd validates and classifies the ELF file open on fd
 * (read with pread from offset 0), then copies it, streaming, into the
 * symbol tree under datadir: a file with loadable bytes fills the
 * `executable` slot, a file with DWARF or a separate debug file fills
 * `debuginfo`; an executable with DWARF fills both with one inode (hard
 * link). A filled slot is never overwritten (build-ids are immutable), except
 * that a debuginfo without DWARF is replaced by one with DWARF, and a stored
 * file that no longer validates is replaced. A slot held by a different
 * file (store_elf_same_slot) refuses the whole file with FDO_ECONFLICT
 * (res->conflict names the slots): the first upload of a build-id cannot
 * decide for good what a later, real one is. A file whose compressed
 * sections claim more than store_symbols_limit_inflated bytes is refused
 * with FDO_ELIMIT before anything is written. Each file is
 * written to a temporary name in its directory, fsynced, linked into place
 * and the directory fsynced, so a crash leaves the whole file or none.
 * When s is not NULL, the build-id's record in table buildids gets the
 * symbol state, and binary (may be NULL) as its binary when it had none.
 * Returns FDO_OK when at least one slot was written, FDO_EEXISTS when every
 * slot was already there (nothing written), or the errors of
 * store_elf_inspect (nothing written, no directory created), FDO_EIO,
 * FDO_ELIMIT, or a store error (the files are then in place). res->why
 * explains failures. Blocks on I/O. Any thread.
 */
int store_symbols_add_fd(store *s, const char *datadir, int fd,
			 const char *binary, struct store_sym_result *res);

/* store_symbols_add_file is store_symbols_add_fd on the file at path. */
int store_symbols_add_file(store *s, const char *datadir, const char *path,
			   const char *binary, struct store_sym_result *res);

/*
 * store_symbols_tmpfile creates an empty temporary file under
 * datadir/symbols/.incoming/ (same file system as the tree), for a caller
 * that streams an upload (an HTTP body) to disk before knowing its
 * build-id. Its path goes to path (capacity cap), an fd open for reading
 * and writing to *fd (caller closes). Returns FDO_OK, FDO_EIO, FDO_ELIMIT.
 */
int store_symbols_tmpfile(const char *datadir, char *path, size_t cap, int *fd);

/*
 * store_symbols_adopt is store_symbols_add_fd for a file made by
 * store_symbols_tmpfile: the file is validated, fsynced and linked into
 * place without a copy, then unlinked from .incoming whatever the result.
 * flags: STORE_SYM_REPLACE replaces a different file in a slot (renamed
 * over it, so readers see one or the other) and sends the build-id's
 * symbolized addresses back to pending, to be resolved from the new file.
 */
int store_symbols_adopt(store *s, const char *datadir, const char *tmp_path,
			const char *binary, unsigned flags,
			struct store_sym_result *res);

/*
 * store_symbols_limit_inflated sets the largest size (bytes) the
 * compressed sections of an added file may claim once inflated (0: no
 * limit; default 512 MiB). Call at start, before any upload.
 */
void store_symbols_limit_inflated(uint64_t bytes);

/*
 * store_symbols_index_file_ids indexes by file id (store_file_id) every
 * executable the symbol tree under datadir holds, once per store: a store
 * of layout version 3 or older had no file ids, and uploads index their
 * own since. Meta key "fileids" marks it done; *indexed (may be NULL)
 * gets the number of files indexed by this call. Blocks on I/O (two 4 KiB
 * reads per executable). Call at start, before serving.
 */
int store_symbols_index_file_ids(store *s, const char *datadir,
				 uint64_t *indexed);

/* ---------------------------------------------------- write-ahead log -- */
/*
 * The ingest write-ahead log (storage/wal.c, layout there): records are
 * appended and made durable with one fdatasync per group; LMDB absorbs
 * them later, recording how far it got (the "applied" position, in table
 * meta, in the same transaction as the data), and whole segments behind
 * that position are deleted. Files live in DATADIR/wal/.
 * One thread appends and syncs; replay runs before appending starts.
 */
typedef struct store_wal store_wal;

/* A position in the log: just after a record. {0,0} = the beginning. */
struct store_wal_pos {
	uint64_t segment;
	uint64_t offset;
};

#define STORE_WAL_RECORD_MAX (64u << 20)

/* Durable files, as the WAL writes them (storage/wal.c), for other files
 * that must survive a crash (the ClickHouse outbox): store_write_all
 * writes all n bytes of p to fd (FDO_OK, FDO_ENOSPACE, FDO_EIO);
 * store_fsync_dir makes a directory's entries durable (a created,
 * renamed or removed name; FDO_OK or FDO_EIO). */
int store_write_all(int fd, const void *p, size_t n);
int store_fsync_dir(const char *dir);

/*
 * store_wal_open opens (creating) DATADIR/wal, cuts a torn tail off the
 * last segment (a crash mid-append; nothing there was acknowledged) and
 * positions appends at its end. segment_bytes: rotate after this size
 * (0 = 64 MiB). Returns FDO_OK, FDO_EIO, FDO_ENOMEM, FDO_ENOSPACE.
 */
int store_wal_open(const char *datadir, uint64_t segment_bytes,
		   store_wal **out);
void store_wal_close(store_wal *w);

/*
 * store_wal_append writes one record (1..STORE_WAL_RECORD_MAX bytes),
 * not yet durable; *end (may be NULL) gets the position after it. On
 * failure nothing of the record stays in the file. Returns FDO_OK,
 * FDO_EINVAL, FDO_EIO, FDO_ENOSPACE (disk full).
 */
int store_wal_append(store_wal *w, const void *rec, size_t len,
		     struct store_wal_pos *end);

/* store_wal_sync makes every appended record durable. FDO_OK, FDO_EIO. */
int store_wal_sync(store_wal *w);

/*
 * store_wal_replay calls fn for every whole record after position from,
 * in order, with the position after it; stops at fn's first non-zero
 * return and returns it. FDO_ECORRUPT when a segment other than the last
 * is damaged. Records passed to fn live until fn returns.
 */
int store_wal_replay(store_wal *w, struct store_wal_pos from,
		     int (*fn)(void *arg, const void *rec, size_t len,
			       struct store_wal_pos end),
		     void *arg);

/*
 * store_wal_start_after makes the next record land after position pos
 * (a store restored from a backup, or a removed log, may have applied a
 * position beyond the log on disk): when the log ends before pos, a new
 * segment numbered past pos.segment is started. Returns FDO_OK or the
 * errors of segment creation.
 */
int store_wal_start_after(store_wal *w, struct store_wal_pos pos);

/* store_wal_trim deletes segments wholly before position applied. */
int store_wal_trim(store_wal *w, struct store_wal_pos applied);

/* store_wal_stats: segments on disk and an upper bound of their bytes. */
void store_wal_stats(store_wal *w, uint64_t *segments, uint64_t *bytes);

/* The applied position, read and written inside a store transaction. */
int store_wal_applied_get(store_txn *t, struct store_wal_pos *pos);
int store_wal_applied_put(store_txn *t, struct store_wal_pos pos);

struct fdo_buf;

/*
 * The WAL record of one batch (storage/walrec.c, layout there): what the
 * aggregator logs before it acknowledges a batch and merges after, in the
 * prepared form (addresses as (mapping, file offset), stacks hashed to
 * their ids). Fields marked "not stored" are left for the reader: a
 * decode derives or zeroes them.
 */
struct store_walmap {
	uint8_t build_id[FDO_BUILD_ID_MAX];
	uint8_t build_id_len;
	uint8_t main;  /* the mapped file's name is the binary's name */
	uint64_t hash; /* store_buildid_hash; not stored, set by the decode */
	uint32_t id;   /* interned; not stored (the merge sets it) */
};

struct store_walframe {
	uint32_t map; /* index into maps */
	uint64_t offset;
};

struct store_walstack {
	uint64_t id;	   /* store_stack_id */
	uint64_t samples;  /* raw count; weight = samples x period x wq */
	uint32_t first, n; /* frames[first .. first+n); n = 0 when an earlier
			      record carries this stack's frames */
};

struct store_walbranch {
	uint32_t map;
	uint64_t from, to, samples;
};

struct store_walbatch {
	char *agent, *binary, *host, *labels;
	uint64_t seq;
	uint32_t bucket;
	uint64_t time_end;
	uint64_t period, wq; /* wq = round(weight x WIRE_WEIGHT_SCALE) */
	struct store_walmap *maps;
	size_t nmaps;
	struct store_walframe *frames;
	size_t nframes;
	struct store_walstack *stacks;
	size_t nstacks;
	struct store_walbranch *branches;
	size_t nbranches;
};

/*
 * store_walbatch_encode appends b's record to out (the frames of stacks
 * with n > 0 only). FDO_OK, FDO_EINVAL when a count or a string does not
 * fit its field, FDO_ENOMEM.
 */
int store_walbatch_encode(const struct store_walbatch *b, struct fdo_buf *out);
/*
 * store_walbatch_decode fills *b (zeroed first) from a record, every
 * count and index bounds-checked against the record's bytes. FDO_OK;
 * FDO_ECORRUPT for bytes that are not a whole record, FDO_ENOMEM; on
 * error *b holds nothing to free.
 */
int store_walbatch_decode(const void *rec, size_t len,
			  struct store_walbatch *b);
/* store_walbatch_clear frees what b holds and zeroes it. */
void store_walbatch_clear(struct store_walbatch *b);

#endif
