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

/* The sink merges use (merge_create picks it up); NULL: none. Set before
 * the ingest starts. */
void chsink_set_global(chsink *s);
chsink *chsink_global(void);

/* For merge.c. chsink_room: FDO_OK, or FDO_ETRANSPORT when the outbox is
 * at its bound (the merge waits; logged). chsink_stage, inside the merge's
 * transaction t: the outbox file of counts (sorted as flush_runs leaves
 * them) and candidate stacks (sorted by put_new_stacks), and meta
 * "ch.staged". chsink_committed, after the commit: the file may go. */
int chsink_room(chsink *s);
int chsink_stage(chsink *s, store_txn *t, struct prep *const *preps,
		 const struct entries *counts, const struct entries *stacks);
void chsink_committed(chsink *s);

struct chsink_stats {
	uint64_t files, bytes;	/* in the outbox now */
	uint64_t sent, skipped; /* files sent; counts blocks found there */
	uint64_t failures;	/* requests that failed */
};
void chsink_stats(chsink *s, struct chsink_stats *st);

#endif
