/*
 * server/listen.h — the agents' door: an nng REP socket listening on one or
 * more URLs (tcp://, ipc://, tls+tcp://). Each request is one message;
 * the reply is whatever the message function wrote. Connections are capped
 * (in total, per address, and before authentication) and closed when idle
 * (server/listen.c). nng stays in here.
 */
#ifndef FDO_SERVER_LISTEN_H
#define FDO_SERVER_LISTEN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/*
 * srv_msg_fn handles one request message from peer (the client's address,
 * for logs) and writes the reply into reply; it sets *authorized to 1 when
 * the message carried a token allowed to send batches (or no token file
 * is in use and the batch decoded): the connection then no longer counts
 * as unauthenticated. Called on a listener thread; may block (it waits
 * for the durable commit). Must always write a reply: the agent waits.
 */
typedef void (*srv_msg_fn)(void *app, const uint8_t *msg, size_t len,
			   const char *peer, struct fdo_buf *reply,
			   int *authorized);

struct srv_listen_opts {
	char *const *urls; /* listen addresses */
	size_t nurls;
	const char *tls_cert;	  /* PEM certificate, for tls+tcp:// */
	const char *tls_key;	  /* PEM private key, for tls+tcp:// */
	size_t max_msg;		  /* largest message; nng closes a connection
				   announcing more (before allocating) */
	unsigned contexts;	  /* requests handled at once (threads) */
	unsigned max_connections; /* agent connections in all */
	unsigned max_per_peer;	  /* ... from one address; 0 no cap */
	unsigned max_unauth;	  /* connections that have not yet sent
					 an authorized batch: memory before
					 authentication is at most
					 max_unauth x max_msg */
	unsigned max_unauth_per_peer; /* ... from one address; 0 no cap */
	unsigned auth_timeout; /* seconds for a new connection to deliver an
				   authorized batch */
	unsigned idle_timeout; /* seconds without a message: closed */
};
/* The defaults (max_msg 16 MiB, 256 connections, 32 per address, 4
 * unauthenticated, 2 per address, 30 s, 300 s); 0 in a field means it. */
extern const struct srv_listen_opts srv_listen_defaults;

struct srv_listen;

/* Figures for /metrics. */
struct srv_listen_stats {
	uint64_t connections;	  /* open now */
	uint64_t unauthenticated; /* ... of which no authorized batch yet */
	uint64_t refused;	  /* connections refused by a cap */
	uint64_t reaped;	  /* closed by the auth or idle timeout */
};
void srv_listen_stats(struct srv_listen *l, struct srv_listen_stats *st);

/*
 * srv_listen_start opens the socket, starts every listener and the
 * handler threads. Returns FDO_OK, or FDO_ETRANSPORT with a log line naming
 * the URL that failed (nothing is left running then).
 */
int srv_listen_start(const struct srv_listen_opts *opts, srv_msg_fn fn,
		     void *app, struct srv_listen **out);

/* srv_listen_port returns the TCP port of the first tcp listener, or 0. */
int srv_listen_port(struct srv_listen *l);

/*
 * srv_listen_stop closes the listeners, lets every request already received
 * finish and send its reply, then closes the socket. Blocks.
 */
void srv_listen_stop(struct srv_listen *l);

#endif
