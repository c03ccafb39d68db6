/*
 * aggregator/chsink.h — the merger's copy of its counts into ClickHouse
 * (fdod --store clickhouse://..., docs/clickhouse.md "The merger's sink").
 *
 * Inside each merge's LMDB transaction, chsink_stage writes the merge's
 * summed count deltas (names, not node-local ids) and its new stacks to a
 * file of the outbox (DATA/clickhouse-outbox, fsynced) and records its
 * sequence number in the same transaction; a sender thread inserts the
 * files, oldest first, into ClickHouse and deletes each once ClickHouse
 * took it. Every counts block carries a marker row (binary "", labels
 * "node=ID", stack = sequence number) in the same INSERT, so a block whose
 * fate is unknown (a timeout, a crash) is looked up before it is sent
 * again: exactly once, on replicated tables and plain ones alike.
 */
#ifndef FDO_AGGREGATOR_CHSINK_H
#define FDO_AGGREGATOR_CHSINK_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/keysort.h"
#include "common/buf.h"
#include "storage/storage.h"

struct prep;
typedef struct chsink chsink;

/* Outbox files waiting (merges wait past either bound: what is acknowledged
 * meanwhile stays in the WAL, which has its own bound). */
#define CHSINK_MAX_FILES 16
#define CHSINK_MAX_BYTES (256ull << 20)

/*
 * chsink_open parses url (ch_url_parse: hostile input, refused with a
 * message), opens the outbox under dir (deleting files of merges that did
 * not commit), gives the store a node id (meta "ch.node") and starts the
 * sender. ClickHouse need not be up: the sender creates the schema and
 * sends when it answers. FDO_OK; FDO_EINVAL, FDO_EIO, FDO_ENOMEM or the
 * store's codes, err set.
 */
int chsink_open(const char *url, store *st, const char *dir, chsink **out,
		char *err, size_t errlen);
/* chsink_close stops the sender (after its current request); the outbox
 * stays for the next start. */
void chsink_close(chsink *s);

/* chsink_set_retention: the sender also drops, every `every` seconds
 * (0: 600) and at once, the UTC days of counts_local on its server that
 * end at or before now - seconds (ch_drop_before); 0: none (the
 * default). */
void chsink_set_retention(chsink *s, uint64_t seconds, uint64_t every);

/* chsink_set_piece_rows: the most rows of one counts piece (one INSERT,
 * one part), below the built-in bound (256 Ki rows, fewer for long
 * names: aggregator/chsink.c); 0: that bound. For tests: a merge of a
 * few rows cut into several pieces. */
void chsink_set_piece_rows(chsink *s, size_t rows);

/* The sink merges use (merge_create picks it up); NULL: none. Set before
 * the ingest starts. */
void chsink_set_global(chsink *s);
chsink *chsink_global(void);

/* For merge.c. chsink_room: FDO_OK, or FDO_EBUSY when the outbox is at
 * its bound (the merge waits; logged; batches past the backlog's bound
 * are refused as busy, which agents send again). chsink_stage, inside the merge's
 * transaction t: the outbox file of counts (sorted as flush_runs leaves
 * them) and candidate stacks (sorted by put_new_stacks), and meta
 * "ch.staged". chsink_committed, after the commit: the file may go. */
int chsink_room(chsink *s);
int chsink_stage(chsink *s, store_txn *t, struct prep *const *preps,
		 const struct entries *counts, const struct entries *stacks);
void chsink_committed(chsink *s);

/*
 * The outbox file's coding (layout at the top of aggregator/chsink.c).
 * chsink_file_begin appends the header of file seq to f;
 * chsink_file_piece appends a piece (kind CHSINK_STACKS with day 0, or
 * CHSINK_COUNTS) and counts it in the header (FDO_ENOMEM when f ran out
 * of memory). chsink_file_decode checks the whole file (header of seq,
 * every piece's length, kind and checksum, nothing after the last) and
 * only then calls fn with each piece, in order: FDO_OK, FDO_ECORRUPT (err
 * says what), or fn's nonzero return (fuzz target chsink).
 */
#define CHSINK_STACKS 1
#define CHSINK_COUNTS 2
typedef int (*chsink_piece_fn)(void *arg, int kind, uint32_t day,
			       const uint8_t *body, size_t len);
void chsink_file_begin(struct fdo_buf *f, uint64_t seq);
int chsink_file_piece(struct fdo_buf *f, int kind, uint32_t day,
		      const void *body, size_t len);
int chsink_file_decode(const uint8_t *p, size_t len, uint64_t seq,
		       chsink_piece_fn fn, void *arg, char *err, size_t errlen);

struct chsink_stats {
	uint64_t files, bytes;	/* in the outbox now */
	uint64_t sent, skipped; /* files sent; counts blocks found there */
	uint64_t failures;	/* requests that failed */
};
void chsink_stats(chsink *s, struct chsink_stats *st);

#endif
