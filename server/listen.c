/*
 * server/listen.c — nng REP listener for agents.
 *
 * DESIGN
 *   One rep0 socket, one nng listener per URL. `contexts` threads each own
 *   an nng context and loop: receive (with a short timeout so a stop is
 *   noticed), call the message function (which blocks until the batch is
 *   durably committed), send the reply. Each context is a REQ/REP
 *   conversation of its own, so up to `contexts` batches are in flight and
 *   the group-commit writer sees many at once; when all are busy, nng holds
 *   further requests in its queues and the agents wait (backpressure).
 *   Stop: set `stopping`; each thread finishes the request it holds, sends
 *   its reply and exits at its next receive timeout (no new request is
 *   taken); then the listeners and the socket are closed. Closing a
 *   listener first would close its connections and lose those replies.
 *   Requests still queued in nng are dropped unanswered: their agents retry
 *   with the same seq, which exactly-once makes harmless.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include "common/common.h"
#include "server/listen.h"

#define LISTEN_POLL_MS 200
#define LISTEN_SEND_MS 10000

struct srv_listen {
	nng_socket sock;
	nng_listener *listeners;
	size_t nlisteners;
	pthread_t *threads;
	unsigned nthreads;
	srv_msg_fn fn;
	void *app;
	atomic_int stopping;
	int port;
};

static void *ctx_main(void *arg)
{
	struct srv_listen *l = arg;
	nng_ctx ctx;
	nng_aio *aio;
	struct fdo_buf reply;
	fdo_buf_init(&reply);
	if (nng_ctx_open(&ctx, l->sock) != 0 ||
	    nng_aio_alloc(&aio, NULL, NULL) != 0) {
		fdo_error("listen: cannot open an nng context");
		return NULL;
	}
	while (!atomic_load(&l->stopping)) {
		nng_aio_set_timeout(aio, LISTEN_POLL_MS);
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		int rv = nng_aio_result(aio);
		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0) {
			if (rv != NNG_ECLOSED)
				fdo_warn("listen: receive: %s", nng_strerror(rv));
			if (rv == NNG_ECLOSED)
				break;
			continue;
		}
		nng_msg *msg = nng_aio_get_msg(aio);
		fdo_buf_reset(&reply);
		l->fn(l->app, nng_msg_body(msg), nng_msg_len(msg), &reply);
		/* Reuse the request message for the reply. */
		nng_msg_clear(msg);
		if (reply.oom || nng_msg_append(msg, reply.data, reply.len)) {
			fdo_error("listen: out of memory building a reply");
			nng_msg_free(msg);
			continue;
		}
		nng_aio_set_msg(aio, msg);
		nng_aio_set_timeout(aio, LISTEN_SEND_MS);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if ((rv = nng_aio_result(aio)) != 0) {
			/* The agent went away; it will retry with the same seq. */
			fdo_warn("listen: reply not sent: %s", nng_strerror(rv));
			nng_msg_free(nng_aio_get_msg(aio));
		}
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	fdo_buf_fini(&reply);
	return NULL;
}

static int setup_tls(nng_listener lst, const struct srv_listen_opts *o,
		     const char *url)
{
	if (!o->tls_cert || !o->tls_key) {
		fdo_error("listen: %s needs --tls-cert and --tls-key", url);
		return NNG_EINVAL;
	}
	char *cert = fdo_read_small_file(o->tls_cert, 1u << 20);
	char *key = fdo_read_small_file(o->tls_key, 1u << 20);
	nng_tls_config *cfg = NULL;
	int rv = NNG_EINVAL;
	if (!cert || !key) {
		fdo_error("listen: cannot read %s", cert ? o->tls_key : o->tls_cert);
		goto out;
	}
	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER)) != 0)
		goto out;
	if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
		fdo_error("listen: certificate %s / key %s refused: %s",
			  o->tls_cert, o->tls_key, nng_strerror(rv));
		goto out;
	}
	rv = nng_listener_set_ptr(lst, NNG_OPT_TLS_CONFIG, cfg);
out:
	if (cfg)
		nng_tls_config_free(cfg);
	free(cert);
	free(key);
	return rv;
}

int srv_listen_start(const struct srv_listen_opts *opts, srv_msg_fn fn,
		     void *app, struct srv_listen **out)
{
	struct srv_listen *l = calloc(1, sizeof *l);
	if (!l)
		return FDO_ENOMEM;
	l->fn = fn;
	l->app = app;
	int rv;
	if ((rv = nng_rep0_open(&l->sock)) != 0) {
		fdo_error("listen: cannot open a REP socket: %s", nng_strerror(rv));
		free(l);
		return FDO_ETRANSPORT;
	}
	nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, opts->max_msg);
	l->listeners = calloc(opts->nurls ? opts->nurls : 1, sizeof *l->listeners);
	for (size_t i = 0; i < opts->nurls; i++) {
		const char *url = opts->urls[i];
		nng_listener lst;
		if ((rv = nng_listener_create(&lst, l->sock, url)) != 0) {
			fdo_error("listen: bad address %s: %s", url,
				  nng_strerror(rv));
			goto fail;
		}
		if (!strncmp(url, "tls+", 4) && (rv = setup_tls(lst, opts, url))) {
			nng_listener_close(lst);
			goto fail;
		}
		if ((rv = nng_listener_start(lst, 0)) != 0) {
			fdo_error("listen: cannot listen on %s: %s", url,
				  nng_strerror(rv));
			nng_listener_close(lst);
			goto fail;
		}
		l->listeners[l->nlisteners++] = lst;
		nng_sockaddr sa;
		if (!l->port && nng_listener_get_addr(lst, NNG_OPT_LOCADDR, &sa) == 0 &&
		    (sa.s_family == NNG_AF_INET || sa.s_family == NNG_AF_INET6)) {
			const uint8_t *p = sa.s_family == NNG_AF_INET
				? (const uint8_t *)&sa.s_in.sa_port
				: (const uint8_t *)&sa.s_in6.sa_port;
			l->port = p[0] << 8 | p[1];
		}
		fdo_info("listening for agents on %s", url);
	}
	unsigned n = opts->contexts ? opts->contexts : 16;
	l->threads = calloc(n, sizeof *l->threads);
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&l->threads[i], NULL, ctx_main, l))
			break;
		l->nthreads++;
	}
	*out = l;
	return FDO_OK;
fail:
	srv_listen_stop(l);
	return FDO_ETRANSPORT;
}

int srv_listen_port(struct srv_listen *l)
{
	return l->port;
}

void srv_listen_stop(struct srv_listen *l)
{
	if (!l)
		return;
	/* Closing a listener closes its connections, so first let every
	 * thread finish its request and send the reply, then close. */
	atomic_store(&l->stopping, 1);
	for (unsigned i = 0; i < l->nthreads; i++)
		pthread_join(l->threads[i], NULL);
	for (size_t i = 0; i < l->nlisteners; i++)
		nng_listener_close(l->listeners[i]);
	nng_close(l->sock);
	free(l->threads);
	free(l->listeners);
	free(l);
}
