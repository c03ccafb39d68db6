/*
 * server/listen.h — the agents' door: an nng REP socket listening on one or
 * more URLs (tcp://, ipc://, tls+tcp://). Each request is one message;
 * the reply is whatever the message function wrote. nng stays in here.
 */
#ifndef FDO_SERVER_LISTEN_H
#define FDO_SERVER_LISTEN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/*
 * srv_msg_fn handles one request message and writes the reply into reply.
 * Called on a listener thread; may block (it waits for the durable commit).
 * Must always write a reply: the agent waits for one.
 */
typedef void (*srv_msg_fn)(void *app, const uint8_t *msg, size_t len,
			   struct fdo_buf *reply);

struct srv_listen_opts {
	char *const *urls;	/* listen addresses */
	size_t nurls;
	const char *tls_cert;	/* PEM certificate, for tls+tcp:// */
	const char *tls_key;	/* PEM private key, for tls+tcp:// */
	size_t max_msg;		/* messages above this are cut off by nng */
	unsigned contexts;	/* requests handled at once (threads) */
};

struct srv_listen;

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
