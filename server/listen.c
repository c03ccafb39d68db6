/*
 * server/listen.c — nng REP listener for agents.
 *
 * DESIGN
 *   One rep0 socket, one nng listener per URL. `contexts` threads each own
 *   an nng context and loop: receive, call the message function (which
 *   blocks until the batch is durably committed), send the reply. Each
 *   context is a REQ/REP conversation of its own, so up to `contexts`
 *   batches are in flight and the group-commit writer sees many at once;
 *   when all are busy, nng holds further requests in its queues and the
 *   agents wait (backpressure).
 *   Bounds (issue 21): nng's TCP transport allocates a message's declared
 *   size before fdod sees a byte of it, and the token is inside the
 *   message, so memory before authentication is bounded by bounding the
 *   connections that have not yet delivered an authorized batch: at most
 *   max_unauth of them (max_unauth_per_peer from one address), each
 *   holding at most one message of max_msg bytes (nng's receive limit).
 *   Connections are also capped in total and per address. A pipe
 *   notification refuses a connection over a cap as it arrives (nng closes
 *   it before any message). The reaper thread closes a connection that
 *   delivered no authorized batch within auth_timeout of connecting (a
 *   half-sent message included), and one with no message for
 *   idle_timeout; it sleeps until the next deadline.
 *   Locking: mu guards the pipe table, the counters, `stopping` and every
 *   context's `receiving` flag.
 *   Stop: under mu set `stopping` and cancel the receives in progress; a
 *   thread holding a request finishes it, sends its reply and exits (no
 *   new request is taken); then the reaper stops and the listeners and
 *   the socket are closed. Closing a listener first would close its
 *   connections and lose those replies. Requests still queued in nng are
 *   dropped unanswered: their agents retry with the same seq, which
 *   exactly-once makes harmless. No timer wakes an idle daemon.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include "common/common.h"
#include "server/listen.h"

#define LISTEN_SEND_MS 10000

/* One agent connection. */
struct pipe_ent {
	uint32_t id;
	char peer[64];
	int authed;	/* delivered an authorized batch */
	int closing;	/* closed by the reaper */
	uint64_t since; /* connected, fdo_now_ns */
	uint64_t last;	/* last message received */
};

struct ctx {
	struct srv_listen *l;
	nng_ctx ctx;
	nng_aio *aio;
	int receiving; /* guarded by l->mu */
	pthread_t thread;
	int started;
};

struct srv_listen {
	nng_socket sock;
	nng_listener *listeners;
	size_t nlisteners;
	struct ctx *ctxs;
	unsigned nctx;
	srv_msg_fn fn;
	void *app;
	struct srv_listen_opts o;
	int port;

	pthread_mutex_t mu;
	pthread_cond_t reap_cv;
	int stopping;		/* guarded by mu */
	struct pipe_ent *pipes; /* guarded by mu */
	size_t npipes, cap;
	unsigned unauth;	    /* pipes not yet authed; guarded by mu */
	struct srv_listen_stats st; /* guarded by mu */
	uint64_t last_refusal_log;  /* fdo_now_ns; guarded by mu */
	pthread_t reaper;
	int reaper_started;
};

static uint64_t secs_ns(unsigned s)
{
	return (uint64_t)s * 1000000000ull;
}

static struct pipe_ent *pipe_find(struct srv_listen *l, uint32_t id)
{
	for (size_t i = 0; i < l->npipes; i++)
		if (l->pipes[i].id == id)
			return &l->pipes[i];
	return NULL;
}

static void peer_of(nng_pipe p, char *out, size_t cap)
{
	nng_sockaddr sa;
	snprintf(out, cap, "local");
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET)
		inet_ntop(AF_INET, &sa.s_in.sa_addr, out, (socklen_t)cap);
	else if (sa.s_family == NNG_AF_INET6)
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, out, (socklen_t)cap);
}

/* Count what one address holds. Called with mu held. */
static void peer_counts(struct srv_listen *l, const char *peer, unsigned *all,
			unsigned *unauth)
{
	*all = *unauth = 0;
	for (size_t i = 0; i < l->npipes; i++)
		if (!strcmp(l->pipes[i].peer, peer)) {
			(*all)++;
			*unauth += !l->pipes[i].authed;
		}
}

/* Runs on an nng thread as a connection arrives or goes. */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct srv_listen *l = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	pthread_mutex_lock(&l->mu);
	if (ev == NNG_PIPE_EV_REM_POST) {
		struct pipe_ent *e = pipe_find(l, id);
		if (e) {
			l->unauth -= !e->authed;
			*e = l->pipes[--l->npipes];
		}
		pthread_mutex_unlock(&l->mu);
		return;
	}
	char peer[64];
	peer_of(p, peer, sizeof peer);
	unsigned all, unauth;
	peer_counts(l, peer, &all, &unauth);
	const char *why = NULL;
	if (l->npipes >= l->o.max_connections)
		why = "connections in total";
	else if (l->o.max_per_peer && all >= l->o.max_per_peer)
		why = "connections from one address";
	else if (l->unauth >= l->o.max_unauth)
		why = "connections without an authorized batch yet";
	else if (l->o.max_unauth_per_peer && unauth >= l->o.max_unauth_per_peer)
		why = "connections without an authorized batch from one "
		      "address";
	else if (l->npipes == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct pipe_ent *n = realloc(l->pipes, cap * sizeof *n);
		if (!n)
			why = "memory";
		else {
			l->pipes = n;
			l->cap = cap;
		}
	}
	if (why) {
		l->st.refused++;
		uint64_t now = fdo_now_ns();
		int log = now - l->last_refusal_log > secs_ns(10);
		if (log)
			l->last_refusal_log = now;
		pthread_mutex_unlock(&l->mu);
		nng_pipe_close(p);
		if (log)
			fdo_warn("listen: connection from %s refused: too many "
				 "%s (further refusals in the next 10 s are "
				 "counted in /metrics only)",
				 peer, why);
		return;
	}
	struct pipe_ent *e = &l->pipes[l->npipes++];
	memset(e, 0, sizeof *e);
	e->id = id;
	snprintf(e->peer, sizeof e->peer, "%s", peer);
	e->since = e->last = fdo_now_ns();
	l->unauth++;
	pthread_cond_signal(&l->reap_cv);
	pthread_mutex_unlock(&l->mu);
}

/*
 * The reaper: closes connections past their deadline (no authorized batch
 * within auth_timeout of connecting; no message for idle_timeout). Sleeps
 * until the next deadline, or until a connection arrives.
 */
static void *reaper_main(void *arg)
{
	struct srv_listen *l = arg;
	uint32_t *victims = NULL;
	size_t cap = 0;
	pthread_mutex_lock(&l->mu);
	while (!l->stopping) {
		uint64_t now = fdo_now_ns(), next = 0;
		size_t n = 0;
		char last[64] = "";
		for (size_t i = 0; i < l->npipes; i++) {
			struct pipe_ent *e = &l->pipes[i];
			if (e->closing)
				continue;
			uint64_t d = e->last + secs_ns(l->o.idle_timeout);
			if (!e->authed) {
				uint64_t a =
					e->since + secs_ns(l->o.auth_timeout);
				d = a < d ? a : d;
			}
			if (d > now) {
				if (!next || d < next)
					next = d;
				continue;
			}
			if (n == cap) {
				size_t c = cap ? 2 * cap : 64;
				uint32_t *v = realloc(victims, c * sizeof *v);
				if (!v)
					break;
				victims = v;
				cap = c;
			}
			e->closing = 1;
			victims[n++] = e->id;
			snprintf(last, sizeof last, "%s", e->peer);
		}
		if (n) {
			l->st.reaped += n;
			pthread_mutex_unlock(&l->mu);
			for (size_t i = 0; i < n; i++) {
				nng_pipe p = NNG_PIPE_INITIALIZER;
				p.id = victims[i];
				nng_pipe_close(p);
			}
			fdo_warn("listen: closed %zu agent connection%s: no "
				 "authorized batch within %us of connecting, "
				 "or no message for %us (last from %s)",
				 n, n > 1 ? "s" : "", l->o.auth_timeout,
				 l->o.idle_timeout, last);
			pthread_mutex_lock(&l->mu);
			continue;
		}
		if (!next) {
			pthread_cond_wait(&l->reap_cv, &l->mu);
			continue;
		}
		uint64_t wait = next - now + 1000000;
		if (wait < 100000000)
			wait = 100000000;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + wait % 1000000000u;
		ts.tv_sec += (time_t)(wait / 1000000000u + ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&l->reap_cv, &l->mu, &ts);
	}
	pthread_mutex_unlock(&l->mu);
	free(victims);
	return NULL;
}

static void *ctx_main(void *arg)
{
	struct ctx *c = arg;
	struct srv_listen *l = c->l;
	struct fdo_buf reply;
	fdo_buf_init(&reply);
	for (;;) {
		pthread_mutex_lock(&l->mu);
		if (l->stopping) {
			pthread_mutex_unlock(&l->mu);
			break;
		}
		/* No timeout: a stop cancels this receive (under mu, so it
		 * cannot be missed), and an idle daemon does not wake. */
		nng_aio_set_timeout(c->aio, NNG_DURATION_INFINITE);
		nng_ctx_recv(c->ctx, c->aio);
		c->receiving = 1;
		pthread_mutex_unlock(&l->mu);
		nng_aio_wait(c->aio);
		pthread_mutex_lock(&l->mu);
		c->receiving = 0;
		pthread_mutex_unlock(&l->mu);
		int rv = nng_aio_result(c->aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			break;
		if (rv != 0) {
			fdo_warn("listen: receive: %s", nng_strerror(rv));
			continue;
		}
		nng_msg *msg = nng_aio_get_msg(c->aio);
		uint32_t pid = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
		char peer[64] = "?";
		pthread_mutex_lock(&l->mu);
		struct pipe_ent *e = pipe_find(l, pid);
		if (e) {
			e->last = fdo_now_ns();
			snprintf(peer, sizeof peer, "%s", e->peer);
		}
		pthread_mutex_unlock(&l->mu);
		fdo_buf_reset(&reply);
		int authorized = 0;
		l->fn(l->app, nng_msg_body(msg), nng_msg_len(msg), peer, &reply,
		      &authorized);
		if (authorized) {
			pthread_mutex_lock(&l->mu);
			if ((e = pipe_find(l, pid)) && !e->authed) {
				e->authed = 1;
				l->unauth--;
			}
			pthread_mutex_unlock(&l->mu);
		}
		/* Reuse the request message for the reply. */
		nng_msg_clear(msg);
		if (reply.oom || nng_msg_append(msg, reply.data, reply.len)) {
			fdo_error("listen: out of memory building a reply");
			nng_msg_free(msg);
			continue;
		}
		nng_aio_set_msg(c->aio, msg);
		nng_aio_set_timeout(c->aio, LISTEN_SEND_MS);
		nng_ctx_send(c->ctx, c->aio);
		nng_aio_wait(c->aio);
		if ((rv = nng_aio_result(c->aio)) != 0) {
			/* The agent went away; it will retry with the same seq. */
			fdo_warn("listen: reply to %s not sent: %s", peer,
				 nng_strerror(rv));
			nng_msg_free(nng_aio_get_msg(c->aio));
		}
	}
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
		fdo_error("listen: cannot read %s",
			  cert ? o->tls_key : o->tls_cert);
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

const struct srv_listen_opts srv_listen_defaults = {
	.max_msg = 16u << 20,
	.contexts = 64,
	.max_connections = 256,
	.max_per_peer = 32,
	.max_unauth = 4,
	.max_unauth_per_peer = 2,
	.auth_timeout = 30,
	.idle_timeout = 300,
};

int srv_listen_start(const struct srv_listen_opts *opts, srv_msg_fn fn,
		     void *app, struct srv_listen **out)
{
	struct srv_listen *l = calloc(1, sizeof *l);
	if (!l)
		return FDO_ENOMEM;
	l->fn = fn;
	l->app = app;
	l->o = *opts;
	const struct srv_listen_opts *d = &srv_listen_defaults;
	if (!l->o.max_msg)
		l->o.max_msg = d->max_msg;
	if (!l->o.contexts)
		l->o.contexts = 16;
	if (!l->o.max_connections)
		l->o.max_connections = d->max_connections;
	if (!l->o.max_unauth)
		l->o.max_unauth = d->max_unauth;
	if (!l->o.auth_timeout)
		l->o.auth_timeout = d->auth_timeout;
	if (!l->o.idle_timeout)
		l->o.idle_timeout = d->idle_timeout;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->reap_cv, NULL);
	int rv;
	if ((rv = nng_rep0_open(&l->sock)) != 0) {
		fdo_error("listen: cannot open a REP socket: %s",
			  nng_strerror(rv));
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->reap_cv);
		free(l);
		return FDO_ETRANSPORT;
	}
	/* The SP header of a request (its 4-byte id, and a few more per hop
	 * of a device) travels in the same frame as the body. */
	nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, l->o.max_msg + 64);
	nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, l);
	nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, on_pipe, l);
	if (!pthread_create(&l->reaper, NULL, reaper_main, l))
		l->reaper_started = 1;
	l->listeners =
		calloc(l->o.nurls ? l->o.nurls : 1, sizeof *l->listeners);
	for (size_t i = 0; i < l->o.nurls; i++) {
		const char *url = l->o.urls[i];
		nng_listener lst;
		if ((rv = nng_listener_create(&lst, l->sock, url)) != 0) {
			fdo_error("listen: bad address %s: %s", url,
				  nng_strerror(rv));
			goto fail;
		}
		if (!strncmp(url, "tls+", 4) &&
		    (rv = setup_tls(lst, &l->o, url))) {
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
		if (!l->port &&
		    nng_listener_get_addr(lst, NNG_OPT_LOCADDR, &sa) == 0 &&
		    (sa.s_family == NNG_AF_INET ||
		     sa.s_family == NNG_AF_INET6)) {
			const uint8_t *p =
				sa.s_family == NNG_AF_INET
					? (const uint8_t *)&sa.s_in.sa_port
					: (const uint8_t *)&sa.s_in6.sa_port;
			l->port = p[0] << 8 | p[1];
		}
		fdo_info("listening for agents on %s", url);
	}
	l->ctxs = calloc(l->o.contexts, sizeof *l->ctxs);
	for (unsigned i = 0; l->ctxs && i < l->o.contexts; i++) {
		struct ctx *c = &l->ctxs[i];
		c->l = l;
		if (nng_ctx_open(&c->ctx, l->sock) != 0)
			break;
		if (nng_aio_alloc(&c->aio, NULL, NULL) != 0) {
			nng_ctx_close(c->ctx);
			break;
		}
		l->nctx++;
		if (!pthread_create(&c->thread, NULL, ctx_main, c))
			c->started = 1;
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

void srv_listen_stats(struct srv_listen *l, struct srv_listen_stats *st)
{
	pthread_mutex_lock(&l->mu);
	*st = l->st;
	st->connections = l->npipes;
	st->unauthenticated = l->unauth;
	pthread_mutex_unlock(&l->mu);
}

void srv_listen_stop(struct srv_listen *l)
{
	if (!l)
		return;
	/* Closing a listener closes its connections, so first let every
	 * thread finish its request and send the reply, then close. */
	pthread_mutex_lock(&l->mu);
	l->stopping = 1;
	for (unsigned i = 0; i < l->nctx; i++)
		if (l->ctxs[i].receiving)
			nng_aio_cancel(l->ctxs[i].aio);
	pthread_cond_broadcast(&l->reap_cv);
	pthread_mutex_unlock(&l->mu);
	for (unsigned i = 0; i < l->nctx; i++)
		if (l->ctxs[i].started)
			pthread_join(l->ctxs[i].thread, NULL);
	if (l->reaper_started)
		pthread_join(l->reaper, NULL);
	for (size_t i = 0; i < l->nlisteners; i++)
		nng_listener_close(l->listeners[i]);
	for (unsigned i = 0; i < l->nctx; i++) {
		nng_aio_free(l->ctxs[i].aio);
		nng_ctx_close(l->ctxs[i].ctx);
	}
	nng_close(l->sock);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->reap_cv);
	free(l->pipes);
	free(l->ctxs);
	free(l->listeners);
	free(l);
}
