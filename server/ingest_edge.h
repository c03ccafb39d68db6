/*
 * server/ingest_edge.h — the agent listener's wire edge (ingest_edge.c).
 */
#ifndef FDO_SERVER_INGEST_EDGE_H
#define FDO_SERVER_INGEST_EDGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct srv_app;

/*
 * srv_ingest_message stores an encoded SampleBatch received from peer (the
 * client's address, named in refusal log lines; may be NULL) in
 * app->ingest and appends the encoded Ack to reply. With app->auth, the
 * batch's token must allow ingest as the agent, host and binary it
 * claims. Malformed, oversized or unauthorized messages get an error Ack
 * and change nothing. *authorized is set to 1 when the message carried a
 * token that was accepted (or there are no tokens), else 0; may be NULL.
 * Any thread; blocks until the batch is durable (agg_ingest_batch).
 */
void srv_ingest_message(struct srv_app *app, const uint8_t *msg, size_t len,
			const char *peer, struct fdo_buf *reply,
			int *authorized);

#endif
