/*
 * server/otlp_grpc.c — OTLP/gRPC profiles: the unary method
 * opentelemetry.proto.collector.profiles.v1development.ProfilesService/
 * Export on its own listener (--otlp-grpc), served with gRPC's C core
 * (Debian's libgrpc). Each request goes through srv_otlp_ingest, the
 * same decode, identity, token check and store as POST
 * /v1development/profiles (server/otlp.c); the answer is an
 * ExportProfilesServiceResponse, or a gRPC status. docs/ingest.md
 * "OpenTelemetry profiles" is the user's side.
 *
 * Workload: one call every 5-60 s per host, ~10 KiB-1 MiB, as over HTTP.
 *
 * Bounds, before the token is looked at: connections, accepted by fdod
 * (the door, below; gRPC 1.51 has no cap on them): at most
 * max_connections at once, max_per_peer from one address (more are
 * closed as they arrive), each closed unless its HTTP/2 preface comes
 * within handshake_timeout; then gRPC's own limits on a connection
 * (closed after idle_timeout without a call, max_calls streams);
 * max_calls calls at once in all (one more is answered RESOURCE_EXHAUSTED at
 * once), a message of at most max_message bytes as sent (gRPC answers
 * RESOURCE_EXHAUSTED), which must arrive within recv_timeout of the
 * call (else DEADLINE_EXCEEDED). gRPC's own per-message decompression is
 * off: gRPC 1.51 checks max_message against the compressed size and
 * then inflates without a bound, so a gzip bomb would cost memory
 * without limit. Instead the compressed message is handed over as it
 * came and inflated here by wire_gunzip, stopped at max_inflated
 * (RESOURCE_EXHAUSTED); only identity and gzip are enabled.
 * Then the token (authorization: Bearer TOKEN, scope ingest:
 * UNAUTHENTICATED, PERMISSION_DENIED), read from the call's metadata
 * before its message is asked for.
 *
 * Statuses: srv_otlp_ingest's HTTP status mapped by grpc_code (400
 * INVALID_ARGUMENT, 403 PERMISSION_DENIED, 413/503/507
 * RESOURCE_EXHAUSTED, 422 OUT_OF_RANGE, ...); UNAVAILABLE while fdod
 * stops. Counted by code in /metrics (fdod_otlp_grpc_requests_total);
 * batches and samples in the same counters as OTLP/HTTP.
 *
 * DESIGN
 *   Threads: NTHREADS threads wait on one completion queue; each event is
 *   handled on the thread that took it, and a request is stored on that
 *   thread (srv_otlp_ingest blocks until the batches are durable), while
 *   the other threads keep answering. Every thread keeps one
 *   grpc_server_request_call outstanding (NTHREADS in all), so a new call
 *   is seen even while the others store.
 *   A call: NEW (requested call arrived) → refused at once (a status), or
 *   RECV_CLOSE_ON_SERVER and SEND_INITIAL_METADATA + RECV_MESSAGE
 *   started → RECV (message in) → stored → SEND_MESSAGE +
 *   SEND_STATUS_FROM_SERVER. struct call's refs counts the batches in
 *   flight plus one while a thread works on it; the last one frees it
 *   (grpc_call_unref), whichever thread that is.
 *   Deadlines: a call waiting for its message is on g->waiting; every
 *   thread wakes at least once a second and cancels those past
 *   recv_timeout (grpc_call_cancel_with_status, thread-safe).
 *   The door: one thread polls the listening sockets, the connections
 *   awaiting their preface and (for their end) those gRPC serves; the
 *   table of connections (g->conns) is written by it alone, under g->mu,
 *   which the call threads take to find a call's client address.
 *   Shutdown (srv_grpc_stop): the door thread ends and the listening
 *   sockets close, stopping is set (new calls are answered
 *   UNAVAILABLE), calls on g->waiting are cancelled with UNAVAILABLE,
 *   grpc_server_shutdown_and_notify; calls being stored finish; after 5
 *   s whatever is left is cancelled (grpc_server_cancel_all_calls). When
 *   the shutdown tag arrives the queue is shut down, the threads end on
 *   GRPC_QUEUE_SHUTDOWN and are joined, then server and queue are
 *   destroyed, and fdod's descriptors of the connections closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "common/common.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/otlp_grpc.h"

#define NTHREADS     2
#define GRPC_CODES   17 /* OK .. UNAUTHENTICATED */
#define STOP_GRACE   5	/* seconds calls being stored get at shutdown */
#define MAX_LISTEN   4	/* sockets one --otlp-grpc address binds */
#define ACCEPT_BURST 64
/* What every HTTP/2 connection begins with (RFC 9113 3.4). */
#define PREFACE	    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN 24

static const char *const code_names[GRPC_CODES] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
};

enum tag_kind { TAG_NEW, TAG_RECV, TAG_SEND, TAG_CLOSE, TAG_SHUTDOWN };

struct call;
struct tag {
	enum tag_kind kind;
	struct call *call;
};

struct call {
	struct srv_grpc *g;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	struct tag t_new, t_recv, t_send, t_close;
	atomic_int refs;	/* batches in flight + 1 while handled */
	int counted;		/* holds one of g->active */
	int cancelled;		/* RECV_CLOSE_ON_SERVER's answer */
	grpc_byte_buffer *in;	/* the request message */
	grpc_byte_buffer *out;	/* the response message */
	grpc_slice details_out; /* the status message sent */
	int has_details_out;
	const struct srv_token *tok; /* the caller's (NULL: no token file) */
	time_t recv_since;	     /* when RECV_MESSAGE was started */
	int abandoned;		     /* cancelled by sweep or stop (g->mu) */
	struct call *next, *prev;    /* on g->waiting; guarded by g->mu */
	char peer[64];
};

/* A connection fdod accepted. */
struct conn {
	int fd;		/* fdod's descriptor of the socket */
	int gfd;	/* gRPC's duplicate of it; -1: not (or no more) */
	int handed;	/* the preface came: gRPC serves it */
	uint64_t since; /* fdo_now_ns when accepted */
	char peer[64];	/* the client's address */
};

enum { REFUSED_ALL, REFUSED_PEER, CLOSED_HANDSHAKE, CLOSED_PREFACE, NDOOR };

struct srv_grpc {
	struct srv_app *app;
	struct srv_grpc_opts o;
	char addr[256];
	int port;
	grpc_server *server;
	grpc_server_credentials *creds; /* insecure: for the fd channels */
	grpc_completion_queue *cq;
	pthread_t threads[NTHREADS];
	unsigned nthreads; /* started */
	struct tag t_shutdown;
	int lfd[MAX_LISTEN]; /* the listening sockets */
	unsigned nlfd;
	int wake; /* eventfd: the door thread ends */
	pthread_t door;
	int door_started;
	struct pollfd *pfd;  /* the door thread's: wake, lfd, conns */
	uint64_t last_log;   /* when a refusal was last logged (door) */
	pthread_mutex_t mu;  /* guards the fields below */
	pthread_cond_t cond; /* shut_down became 1 */
	struct conn *conns;  /* [nconns] of max_connections; written by the
				door thread only */
	unsigned nconns;
	struct call waiting; /* list head: calls awaiting a message */
	unsigned active;     /* calls counted against max_calls */
	int stopping;	     /* srv_grpc_stop has begun */
	int shut_down;	     /* the shutdown tag arrived */
	/* For /metrics. */
	atomic_uint_fast64_t requests[GRPC_CODES];
	atomic_uint_fast64_t over_cap, timed_out;
	atomic_uint_fast64_t closed[NDOOR];
};

/* Start a grpc_server_request_call for the next call (unless stopping). */
static void request_next(struct srv_grpc *g)
{
	struct call *c = calloc(1, sizeof *c);
	if (!c) {
		fdo_error("otlp-grpc: out of memory: a thread stops taking "
			  "new calls");
		return;
	}
	c->g = g;
	c->t_new = (struct tag){TAG_NEW, c};
	c->t_recv = (struct tag){TAG_RECV, c};
	c->t_send = (struct tag){TAG_SEND, c};
	c->t_close = (struct tag){TAG_CLOSE, c};
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	/* Under mu, so that no request follows srv_grpc_stop's shutdown. */
	pthread_mutex_lock(&g->mu);
	grpc_call_error e = GRPC_CALL_ERROR;
	if (!g->stopping)
		e = grpc_server_request_call(g->server, &c->call, &c->details,
					     &c->md, g->cq, g->cq, &c->t_new);
	pthread_mutex_unlock(&g->mu);
	if (e != GRPC_CALL_OK) {
		grpc_call_details_destroy(&c->details);
		grpc_metadata_array_destroy(&c->md);
		free(c);
	}
}

static void call_free(struct call *c)
{
	struct srv_grpc *g = c->g;
	if (c->counted) {
		pthread_mutex_lock(&g->mu);
		g->active--;
		pthread_mutex_unlock(&g->mu);
	}
	if (c->in)
		grpc_byte_buffer_destroy(c->in);
	if (c->out)
		grpc_byte_buffer_destroy(c->out);
	if (c->has_details_out)
		grpc_slice_unref(c->details_out);
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	free(c);
}

static void call_release(struct call *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		call_free(c);
}

/* Start ops[0..n) on c; the batch holds a reference until it completes.
 * 0, or -1 when gRPC refused the batch (logged). */
static int call_batch(struct call *c, const grpc_op *ops, size_t n,
		      struct tag *tag)
{
	atomic_fetch_add(&c->refs, 1);
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
	if (e == GRPC_CALL_OK)
		return 0;
	fdo_warn("otlp-grpc: call from %s: grpc_call_start_batch: %s", c->peer,
		 grpc_call_error_to_string(e));
	atomic_fetch_sub(&c->refs, 1);
	return -1;
}

/* Answer c with status code and message (msg may be NULL: none) after
 * the response message out (NULL: none). */
static void answer(struct call *c, grpc_status_code code, const char *msg,
		   grpc_byte_buffer *out, int initial_md)
{
	struct srv_grpc *g = c->g;
	if ((unsigned)code < GRPC_CODES)
		atomic_fetch_add(&g->requests[code], 1);
	grpc_op ops[3];
	size_t n = 0;
	memset(ops, 0, sizeof ops);
	if (initial_md)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (out) {
		c->out = out;
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = out;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	if (msg) {
		c->details_out = grpc_slice_from_copied_string(msg);
		c->has_details_out = 1;
		ops[n].data.send_status_from_server.status_details =
			&c->details_out;
	}
	n++;
	call_batch(c, ops, n, &c->t_send);
}

/* Refuse c with code and why, logged once here. */
static void refuse(struct call *c, grpc_status_code code, const char *who,
		   const char *why, int initial_md)
{
	fdo_warn("OTLP/gRPC profiles from %s refused (%s): %s: %s", c->peer,
		 who, code_names[code], why);
	answer(c, code, why, NULL, initial_md);
}

/* The address of the client of call: gRPC names the connection "fd:N"
 * after the descriptor fdod handed it; fdod knows whose that is. */
static void peer_host(struct srv_grpc *g, grpc_call *call, char *out,
		      size_t len)
{
	char *p = grpc_call_get_peer(call);
	snprintf(out, len, "?");
	char *end = NULL;
	long fd = -1;
	if (p && !strncmp(p, "fd:", 3))
		fd = strtol(p + 3, &end, 10);
	if (fd >= 0 && !*end) {
		pthread_mutex_lock(&g->mu);
		for (unsigned i = 0; i < g->nconns; i++)
			if (g->conns[i].gfd == fd)
				snprintf(out, len, "%s", g->conns[i].peer);
		pthread_mutex_unlock(&g->mu);
	}
	gpr_free(p);
}

/* The token of "authorization: Bearer TOKEN" in c's metadata. */
static const char *bearer(const struct call *c, size_t *len)
{
	for (size_t i = 0; i < c->md.count; i++) {
		const grpc_metadata *m = &c->md.metadata[i];
		if (grpc_slice_str_cmp(m->key, "authorization"))
			continue;
		const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
		size_t n = GRPC_SLICE_LENGTH(m->value);
		if (n > 7 && !strncasecmp(v, "Bearer ", 7)) {
			*len = n - 7;
			return v + 7;
		}
	}
	*len = 0;
	return NULL;
}

static grpc_status_code grpc_code(int http_status)
{
	switch (http_status) {
	case 200:
		return GRPC_STATUS_OK;
	case 401:
		return GRPC_STATUS_UNAUTHENTICATED;
	case 403:
		return GRPC_STATUS_PERMISSION_DENIED;
	case 409:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case 413:
	case 503:
	case 507:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case 422:
		return GRPC_STATUS_OUT_OF_RANGE;
	case 500:
		return GRPC_STATUS_INTERNAL;
	default:
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
}

/* A requested call arrived: refuse it, or start reading its message. */
static void on_new(struct call *c, int ok)
{
	struct srv_grpc *g = c->g;
	if (!ok) {
		/* The server is shutting down: no call came. */
		call_free(c);
		return;
	}
	request_next(g);
	atomic_store(&c->refs, 1);
	peer_host(g, c->call, c->peer, sizeof c->peer);
	grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
	close_op.data.recv_close_on_server.cancelled = &c->cancelled;
	if (call_batch(c, &close_op, 1, &c->t_close)) {
		call_release(c);
		return;
	}
	pthread_mutex_lock(&g->mu);
	int stopping = g->stopping, over = g->active >= g->o.max_calls;
	if (!stopping && !over) {
		g->active++;
		c->counted = 1;
	}
	pthread_mutex_unlock(&g->mu);
	if (stopping) {
		answer(c, GRPC_STATUS_UNAVAILABLE, "fdod is stopping", NULL, 1);
	} else if (over) {
		char why[128];
		snprintf(why, sizeof why,
			 "%u calls at once already (--http-body-memory / "
			 "16 MiB): retry later",
			 g->o.max_calls);
		atomic_fetch_add(&g->over_cap, 1);
		refuse(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
		       "not yet authenticated", why, 1);
	} else if (grpc_slice_str_cmp(c->details.method, SRV_GRPC_EXPORT)) {
		answer(c, GRPC_STATUS_UNIMPLEMENTED,
		       "fdod serves only " SRV_GRPC_EXPORT, NULL, 1);
	} else {
		size_t len;
		const char *token = bearer(c, &len);
		int rc = srv_auth_check(g->app->auth, token, len,
					SRV_SCOPE_INGEST, &c->tok);
		if (rc == FDO_EDENIED) {
			refuse(c, GRPC_STATUS_PERMISSION_DENIED,
			       srv_token_name(c->tok),
			       "this token lacks scope ingest", 1);
		} else if (rc) {
			refuse(c, GRPC_STATUS_UNAUTHENTICATED, "anonymous",
			       "a valid token is needed: metadata "
			       "authorization: Bearer TOKEN",
			       1);
		} else {
			grpc_op ops[2];
			memset(ops, 0, sizeof ops);
			ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
			ops[1].op = GRPC_OP_RECV_MESSAGE;
			ops[1].data.recv_message.recv_message = &c->in;
			pthread_mutex_lock(&g->mu);
			c->recv_since = time(NULL);
			c->next = g->waiting.next;
			c->prev = &g->waiting;
			c->next->prev = c;
			g->waiting.next = c;
			pthread_mutex_unlock(&g->mu);
			if (call_batch(c, ops, 2, &c->t_recv)) {
				pthread_mutex_lock(&g->mu);
				c->prev->next = c->next;
				c->next->prev = c->prev;
				pthread_mutex_unlock(&g->mu);
			}
		}
	}
	call_release(c);
}

/* The message of c, inflated when it came gzipped: into *body (malloc'd,
 * the caller frees) or a status and why. */
static grpc_status_code message_bytes(struct call *c, uint8_t **body,
				      size_t *len, char *why, size_t whylen)
{
	grpc_byte_buffer *in = c->in;
	grpc_slice_buffer *sb = &in->data.raw.slice_buffer;
	size_t n = sb->length;
	uint8_t *raw = malloc(n ? n : 1);
	if (!raw) {
		snprintf(why, whylen, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	size_t at = 0;
	for (size_t i = 0; i < sb->count; i++) {
		size_t k = GRPC_SLICE_LENGTH(sb->slices[i]);
		memcpy(raw + at, GRPC_SLICE_START_PTR(sb->slices[i]), k);
		at += k;
	}
	grpc_compression_algorithm alg = in->data.raw.compression;
	if (alg == GRPC_COMPRESS_NONE) {
		*body = raw;
		*len = n;
		return GRPC_STATUS_OK;
	}
	if (alg != GRPC_COMPRESS_GZIP) {
		free(raw);
		snprintf(why, whylen,
			 "grpc-encoding %d: only gzip (or identity)", (int)alg);
		return GRPC_STATUS_UNIMPLEMENTED;
	}
	char err[256] = "";
	int rc = wire_gunzip(raw, n, c->g->o.max_inflated, body, len, err,
			     sizeof err);
	free(raw);
	if (!rc)
		return GRPC_STATUS_OK;
	snprintf(why, whylen, "grpc-encoding gzip: %s%s",
		 err[0] ? err : fdo_strerror(rc),
		 rc == FDO_ELIMIT ? " (the limit of a request)" : "");
	return grpc_code(srv_import_status(rc));
}

/* Store body[0..len), c's request, and answer c. */
static void ingest_message(struct call *c, const char *who, const uint8_t *body,
			   size_t len)
{
	struct srv_otlp_outcome *o = malloc(sizeof *o);
	if (!o) {
		refuse(c, GRPC_STATUS_RESOURCE_EXHAUSTED, who, "out of memory",
		       0);
		return;
	}
	srv_otlp_ingest(c->g->app, c->tok, c->peer, body, len, o);
	if (o->status != 200) {
		/* No RetryInfo detail without its proto: the wait goes in
		 * the text. */
		size_t n = strlen(o->why);
		if (o->retry_ms && n + 32 < sizeof o->why)
			snprintf(o->why + n, sizeof o->why - n,
				 " (retry in %us)", (o->retry_ms + 999) / 1000);
		refuse(c, grpc_code(o->status), who, o->why, 0);
	} else {
		struct fdo_buf resp;
		fdo_buf_init(&resp);
		srv_otlp_response(&o->st, &resp);
		grpc_slice sl = grpc_slice_from_copied_buffer(
			resp.data ? resp.data : "", resp.len);
		grpc_byte_buffer *out = grpc_raw_byte_buffer_create(&sl, 1);
		grpc_slice_unref(sl);
		fdo_buf_fini(&resp);
		answer(c, GRPC_STATUS_OK, NULL, out, 0);
	}
	wire_otlp_result_fini(&o->result);
	free(o);
}

/* c's message arrived (or did not): store it, answer. */
static void on_recv(struct call *c, int ok)
{
	struct srv_grpc *g = c->g;
	pthread_mutex_lock(&g->mu);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	int stopping = g->stopping, abandoned = c->abandoned;
	pthread_mutex_unlock(&g->mu);
	/* The RECV batch's reference is this thread's until it returns. */
	if (!ok || abandoned) {
		/* Cancelled (by the client, its deadline, ours, or a stop):
		 * the status was set by whoever cancelled. */
		call_release(c);
		return;
	}
	const char *who = srv_token_name(c->tok);
	if (stopping) {
		answer(c, GRPC_STATUS_UNAVAILABLE, "fdod is stopping", NULL, 0);
	} else if (!c->in) {
		refuse(c, GRPC_STATUS_INVALID_ARGUMENT, who,
		       "the call ended, or its client went, before its "
		       "request message was complete",
		       0);
	} else {
		uint8_t *body = NULL;
		size_t len = 0;
		char why[600];
		grpc_status_code code =
			message_bytes(c, &body, &len, why, sizeof why);
		grpc_byte_buffer_destroy(c->in);
		c->in = NULL;
		if (code != GRPC_STATUS_OK)
			refuse(c, code, who, why, 0);
		else
			ingest_message(c, who, body, len);
		free(body);
	}
	call_release(c);
}

/* Cancel the calls whose message is later than recv_timeout. */
static void sweep(struct srv_grpc *g)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&g->mu);
	for (struct call *c = g->waiting.next; c != &g->waiting; c = c->next) {
		if (now - c->recv_since < (time_t)g->o.recv_timeout ||
		    c->abandoned)
			continue;
		/* Once: the call stays listed until its RECV completes. */
		c->abandoned = 1;
		atomic_fetch_add(&g->timed_out, 1);
		atomic_fetch_add(&g->requests[GRPC_STATUS_DEADLINE_EXCEEDED],
				 1);
		fdo_warn("OTLP/gRPC profiles from %s refused: no message "
			 "within %us",
			 c->peer, g->o.recv_timeout);
		grpc_call_cancel_with_status(c->call,
					     GRPC_STATUS_DEADLINE_EXCEEDED,
					     "the request message did not "
					     "arrive in time",
					     NULL);
	}
	pthread_mutex_unlock(&g->mu);
}

static void *cq_thread(void *arg)
{
	struct srv_grpc *g = arg;
	request_next(g);
	for (;;) {
		gpr_timespec dl =
			gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				     gpr_time_from_millis(1000, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(g->cq, dl, NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			sweep(g);
			continue;
		}
		struct tag *t = ev.tag;
		switch (t->kind) {
		case TAG_NEW:
			on_new(t->call, ev.success);
			break;
		case TAG_RECV:
			on_recv(t->call, ev.success);
			break;
		case TAG_SEND:
		case TAG_CLOSE:
			call_release(t->call);
			break;
		case TAG_SHUTDOWN:
			pthread_mutex_lock(&g->mu);
			g->shut_down = 1;
			pthread_cond_broadcast(&g->cond);
			pthread_mutex_unlock(&g->mu);
			break;
		}
		sweep(g);
	}
	return NULL;
}

/*
 * The door: fdod accepts the connections itself (gRPC 1.51 has no cap on
 * them), refuses those over max_connections or max_per_peer as they
 * arrive, waits up to handshake_timeout for the HTTP/2 preface (peeked,
 * so that gRPC reads it too), and then hands a duplicate of the socket
 * to gRPC (grpc_server_add_channel_from_fd; non-blocking, as gRPC's own
 * listener makes them: over a blocking one, a message larger than
 * max_message was neither refused nor received). fdod keeps its own descriptor
 * only to see the connection end: gRPC shuts a socket down before it closes it
 * (idle, error, its client gone), which polls as a hangup here; fdod then shuts
 * it down too, so that a connection it no longer counts is dead, and closes its
 * descriptor. A connection costs two descriptors while gRPC has it.
 */

/* Log why the door closed peer's connection (peer NULL: why it cannot
 * accept one), at most once in 10 s. */
static void log_refusal(struct srv_grpc *g, const char *peer, const char *why)
{
	uint64_t now = fdo_now_ns();
	if (g->last_log && now - g->last_log < 10 * 1000000000ull)
		return;
	g->last_log = now;
	if (!peer) {
		fdo_warn("otlp-grpc: cannot accept a connection now: %s "
			 "(it waits in the backlog; retried in 0.1 s)",
			 why);
		return;
	}
	fdo_warn("otlp-grpc: connection from %s closed: %s (further ones in "
		 "the next 10 s are counted in /metrics only)",
		 peer, why);
}

/* Forget conns[i] (door thread): the socket is shut down and closed. */
static void conn_drop(struct srv_grpc *g, unsigned i)
{
	struct conn *c = &g->conns[i];
	shutdown(c->fd, SHUT_RDWR);
	close(c->fd);
	pthread_mutex_lock(&g->mu);
	*c = g->conns[--g->nconns];
	pthread_mutex_unlock(&g->mu);
}

/* conns[i] sent its preface: a duplicate of its socket goes to gRPC. */
static void conn_hand_over(struct srv_grpc *g, unsigned i)
{
	struct conn *c = &g->conns[i];
	int one = 1;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
	int gfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
	if (gfd < 0) {
		fdo_warn("otlp-grpc: connection from %s closed: %s", c->peer,
			 strerror(errno));
		conn_drop(g, i);
		return;
	}
	pthread_mutex_lock(&g->mu);
	/* gRPC closed a connection's descriptor of that number, so that
	 * connection is dead, only not yet seen to be. */
	for (unsigned k = 0; k < g->nconns; k++)
		if (g->conns[k].gfd == gfd)
			g->conns[k].gfd = -1;
	c->gfd = gfd;
	c->handed = 1;
	pthread_mutex_unlock(&g->mu);
	grpc_server_add_channel_from_fd(g->server, gfd, g->creds);
}

/* What conns[i]'s poll said (revents re), or its deadline: hand it
 * over, forget it, or wait. */
static void conn_event(struct srv_grpc *g, unsigned i, short re, uint64_t now)
{
	struct conn *c = &g->conns[i];
	short gone = POLLHUP | POLLRDHUP | POLLERR | POLLNVAL;
	if (c->handed) {
		if (re & gone)
			conn_drop(g, i);
		return;
	}
	if (re) {
		char buf[PREFACE_LEN];
		ssize_t n = recv(c->fd, buf, sizeof buf, MSG_PEEK);
		if (n == PREFACE_LEN && !memcmp(buf, PREFACE, PREFACE_LEN)) {
			conn_hand_over(g, i);
			return;
		}
		if (n > 0 && memcmp(buf, PREFACE, (size_t)n)) {
			atomic_fetch_add(&g->closed[CLOSED_PREFACE], 1);
			log_refusal(g, c->peer, "not HTTP/2 (no preface)");
			conn_drop(g, i);
			return;
		}
		if ((re & gone) || !n ||
		    (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_drop(g, i); /* its client went */
			return;
		}
	}
	if (now - c->since >= (uint64_t)g->o.handshake_timeout * 1000000000) {
		atomic_fetch_add(&g->closed[CLOSED_HANDSHAKE], 1);
		log_refusal(g, c->peer, "no HTTP/2 preface in time");
		conn_drop(g, i);
	}
}

/* "1.2.3.4" or "::1" (an IPv4-mapped IPv6 address as IPv4). */
static void addr_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
	snprintf(out, len, "?");
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
			  out, (socklen_t)len);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out,
				  (socklen_t)len);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)len);
	}
}

/* A connection arrived: count it, or close it (over a cap). */
static void conn_admit(struct srv_grpc *g, int fd,
		       const struct sockaddr_storage *ss, uint64_t now)
{
	char peer[64];
	addr_text(ss, peer, sizeof peer);
	unsigned same = 0;
	for (unsigned i = 0; g->nconns < g->o.max_connections && i < g->nconns;
	     i++)
		same += !strcmp(g->conns[i].peer, peer);
	const char *why = NULL;
	if (g->nconns >= g->o.max_connections) {
		atomic_fetch_add(&g->closed[REFUSED_ALL], 1);
		why = "too many connections in all (--otlp-grpc-connections)";
	} else if (g->o.max_per_peer && same >= g->o.max_per_peer) {
		atomic_fetch_add(&g->closed[REFUSED_PEER], 1);
		why = "too many connections from one address "
		      "(--otlp-grpc-connections-per-peer)";
	}
	if (why) {
		log_refusal(g, peer, why);
		close(fd);
		return;
	}
	int one = 1, lowat = PREFACE_LEN;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* Woken when the whole preface is in (or the client goes). */
	setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
	struct conn c = {.fd = fd, .gfd = -1, .since = now};
	snprintf(c.peer, sizeof c.peer, "%s", peer);
	pthread_mutex_lock(&g->mu);
	g->conns[g->nconns++] = c;
	pthread_mutex_unlock(&g->mu);
}

/* Accept what waits on lfd (up to ACCEPT_BURST). 1 when accept4 ran
 * out of descriptors or memory. */
static int door_accept(struct srv_grpc *g, int lfd, uint64_t now)
{
	for (int k = 0; k < ACCEPT_BURST; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_admit(g, fd, &ss, now);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_refusal(g, NULL, strerror(errno));
			return 1;
		}
		break; /* EAGAIN, or a client gone */
	}
	return 0;
}

static void *door_thread(void *arg)
{
	struct srv_grpc *g = arg;
	uint64_t hs = (uint64_t)g->o.handshake_timeout * 1000000000;
	uint64_t paused_until = 0; /* out of descriptors: accept later */
	for (;;) {
		uint64_t now = fdo_now_ns(), wait = 1000000000;
		nfds_t n = 0;
		g->pfd[n++] = (struct pollfd){g->wake, POLLIN, 0};
		for (unsigned i = 0; i < g->nlfd; i++)
			g->pfd[n++] = (struct pollfd){
				g->lfd[i], now < paused_until ? 0 : POLLIN, 0};
		if (now < paused_until && paused_until - now < wait)
			wait = paused_until - now;
		for (unsigned i = 0; i < g->nconns; i++) {
			const struct conn *c = &g->conns[i];
			short ev = POLLRDHUP;
			if (!c->handed) {
				ev |= POLLIN;
				uint64_t left = c->since + hs > now
							? c->since + hs - now
							: 0;
				if (left < wait)
					wait = left;
			}
			g->pfd[n++] = (struct pollfd){c->fd, ev, 0};
		}
		int ms = (int)((wait + 999999) / 1000000);
		if (poll(g->pfd, n, ms) < 0 && errno != EINTR) {
			fdo_warn("otlp-grpc: poll: %s", strerror(errno));
			usleep(100000);
			continue;
		}
		if (g->pfd[0].revents)
			break;
		now = fdo_now_ns();
		/* From the last: a slot left is taken by the last one, whose
		 * event is handled already. */
		for (unsigned i = g->nconns; i-- > 0;)
			conn_event(g, i, g->pfd[1 + g->nlfd + i].revents, now);
		for (unsigned i = 0; i < g->nlfd; i++)
			if ((g->pfd[1 + i].revents & POLLIN) &&
			    door_accept(g, g->lfd[i], now))
				paused_until = now + 100000000;
	}
	return NULL;
}

/* Bind one listening socket to sa; its port into *port when that was
 * 0. 0, or an errno. */
static int listen_on(struct srv_grpc *g, const struct sockaddr *sa,
		     socklen_t len, int v6only, int *port)
{
	struct sockaddr_storage ss;
	memcpy(&ss, sa, len);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)*port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port =
			htons((uint16_t)*port);
	int fd = socket(ss.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			   sizeof v6only);
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, SOMAXCONN) ||
	    getsockname(fd, (struct sockaddr *)&bound, &bl)) {
		int e = errno;
		close(fd);
		return e;
	}
	*port = ntohs(bound.ss_family == AF_INET
			      ? ((struct sockaddr_in *)&bound)->sin_port
			      : ((struct sockaddr_in6 *)&bound)->sin6_port);
	g->lfd[g->nlfd++] = fd;
	return 0;
}

/* Listen on g->addr: HOST:PORT or [V6]:PORT; a wildcard host (0.0.0.0,
 * ::) on both IPv6 and IPv4 as gRPC did, a name on every address it has.
 * FDO_OK, or FDO_ETRANSPORT logged. */
static int door_listen(struct srv_grpc *g)
{
	char host[256];
	const char *colon = strrchr(g->addr, ':');
	size_t hl = colon ? (size_t)(colon - g->addr) : 0;
	const char *h = g->addr;
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	char *end;
	unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 1UL << 20;
	if (!colon || hl >= sizeof host || !colon[1] || *end || port > 65535) {
		fdo_error("fdod: --otlp-grpc %s: expected HOST:PORT or "
			  "[IPV6]:PORT",
			  g->addr);
		return FDO_ETRANSPORT;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	int p = (int)port, err = 0;
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !host[0]) {
		struct sockaddr_in6 any6 = {.sin6_family = AF_INET6,
					    .sin6_addr = IN6ADDR_ANY_INIT};
		err = listen_on(g, (struct sockaddr *)&any6, sizeof any6, 0,
				&p);
		if (err == EAFNOSUPPORT) {
			struct sockaddr_in any4 = {.sin_family = AF_INET};
			err = listen_on(g, (struct sockaddr *)&any4,
					sizeof any4, 0, &p);
		}
	} else {
		struct addrinfo hints = {.ai_flags = AI_PASSIVE,
					 .ai_socktype = SOCK_STREAM},
				*ai = NULL;
		int rc = getaddrinfo(host, NULL, &hints, &ai);
		if (rc) {
			fdo_error("fdod: --otlp-grpc %s: %s", g->addr,
				  gai_strerror(rc));
			return FDO_ETRANSPORT;
		}
		for (struct addrinfo *a = ai; a && g->nlfd < MAX_LISTEN;
		     a = a->ai_next) {
			int dup = 0;
			for (struct addrinfo *b = ai; b != a; b = b->ai_next)
				dup |= b->ai_addrlen == a->ai_addrlen &&
				       !memcmp(b->ai_addr, a->ai_addr,
					       a->ai_addrlen);
			int e = dup ? 0
				    : listen_on(g, a->ai_addr, a->ai_addrlen, 1,
						&p);
			if (e && !err)
				err = e;
		}
		freeaddrinfo(ai);
		if (g->nlfd)
			err = 0; /* e.g. localhost on a host without IPv6 */
	}
	if (err || !g->nlfd) {
		fdo_error("fdod: --otlp-grpc %s: cannot listen there: %s",
			  g->addr, strerror(err ? err : EADDRNOTAVAIL));
		return FDO_ETRANSPORT;
	}
	g->port = p;
	return FDO_OK;
}

/* gRPC's own log lines (errors by default, GRPC_VERBOSITY) into fdod's
 * log, so that they have its form and level. */
static void grpc_log(gpr_log_func_args *a)
{
	if (a->severity == GPR_LOG_SEVERITY_ERROR)
		fdo_warn("otlp-grpc: gRPC: %s", a->message);
	else
		fdo_debug("otlp-grpc: gRPC: %s", a->message);
}

/* Close the door's sockets and free its tables (its thread is not
 * running). */
static void door_close(struct srv_grpc *g)
{
	for (unsigned i = 0; i < g->nlfd; i++)
		close(g->lfd[i]);
	g->nlfd = 0;
	while (g->nconns)
		conn_drop(g, g->nconns - 1);
	if (g->wake >= 0)
		close(g->wake);
	g->wake = -1;
	free(g->conns);
	free(g->pfd);
	g->conns = NULL;
	g->pfd = NULL;
}

/* Free g, its server destroyed and its queue shut down and drained. */
static void free_all(struct srv_grpc *g)
{
	grpc_server_credentials_release(g->creds);
	grpc_completion_queue_destroy(g->cq);
	grpc_shutdown();
	door_close(g);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* Undo srv_grpc_start before grpc_server_start. */
static void start_fail(struct srv_grpc *g)
{
	grpc_server_destroy(g->server);
	grpc_completion_queue_shutdown(g->cq);
	while (grpc_completion_queue_next(
		       g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		       .type != GRPC_QUEUE_SHUTDOWN)
		;
	free_all(g);
}

int srv_grpc_start(struct srv_app *app, const struct srv_grpc_opts *o,
		   struct srv_grpc **out)
{
	*out = NULL;
	struct srv_grpc *g = calloc(1, sizeof *g);
	if (!g)
		return FDO_ENOMEM;
	g->app = app;
	g->o = *o;
	if (!g->o.max_connections)
		g->o.max_connections = 1;
	snprintf(g->addr, sizeof g->addr, "%s", o->addr);
	g->waiting.next = g->waiting.prev = &g->waiting;
	g->t_shutdown.kind = TAG_SHUTDOWN;
	g->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g->conns = calloc(g->o.max_connections, sizeof *g->conns);
	g->pfd = calloc(1 + MAX_LISTEN + (size_t)g->o.max_connections,
			sizeof *g->pfd);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cond, NULL);
	gpr_set_log_function(grpc_log);
	grpc_init();
	int ms = (int)(o->idle_timeout > 86400 ? 86400000
					       : o->idle_timeout * 1000);
	grpc_arg args[] = {
		{GRPC_ARG_INTEGER,
		 GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		 {.integer = (int)o->max_message}},
		{GRPC_ARG_INTEGER,
		 GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION,
		 {.integer = 0}},
		{GRPC_ARG_INTEGER,
		 GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET,
		 {.integer = (1 << GRPC_COMPRESS_NONE) |
			     (1 << GRPC_COMPRESS_GZIP)}},
		{GRPC_ARG_INTEGER,
		 GRPC_ARG_MAX_CONCURRENT_STREAMS,
		 {.integer = (int)o->max_calls}},
		{GRPC_ARG_INTEGER,
		 GRPC_ARG_MAX_CONNECTION_IDLE_MS,
		 {.integer = ms}},
	};
	grpc_channel_args ca = {sizeof args / sizeof args[0], args};
	g->server = grpc_server_create(&ca, NULL);
	g->creds = grpc_insecure_server_credentials_create();
	g->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(g->server, g->cq, NULL);
	if (g->wake < 0 || !g->conns || !g->pfd) {
		fdo_error("fdod: --otlp-grpc: out of memory or descriptors");
		start_fail(g);
		return FDO_ENOMEM;
	}
	if (door_listen(g)) {
		start_fail(g);
		return FDO_ETRANSPORT;
	}
	grpc_server_start(g->server);
	for (; g->nthreads < NTHREADS; g->nthreads++)
		if (pthread_create(&g->threads[g->nthreads], NULL, cq_thread,
				   g))
			break;
	if (g->nthreads && !pthread_create(&g->door, NULL, door_thread, g))
		g->door_started = 1;
	if (!g->door_started) {
		fdo_error("fdod: --otlp-grpc: cannot start a thread");
		srv_grpc_stop(g);
		return FDO_ENOMEM;
	}
	fdo_info("fdod: serving OTLP/gRPC profiles on %s (port %d, %u "
		 "connections at once, %u from one address, %u calls at "
		 "once)",
		 o->addr, g->port, g->o.max_connections, o->max_per_peer,
		 o->max_calls);
	*out = g;
	return FDO_OK;
}

int srv_grpc_port(const struct srv_grpc *g)
{
	return g->port;
}

void srv_grpc_stop(struct srv_grpc *g)
{
	if (!g)
		return;
	/* No connection more: the door closes. */
	if (g->door_started) {
		uint64_t one = 1;
		if (write(g->wake, &one, sizeof one) < 0)
			fdo_warn("otlp-grpc: eventfd: %s", strerror(errno));
		pthread_join(g->door, NULL);
	}
	for (unsigned i = 0; i < g->nlfd; i++)
		close(g->lfd[i]);
	g->nlfd = 0;
	pthread_mutex_lock(&g->mu);
	g->stopping = 1;
	for (struct call *c = g->waiting.next; c != &g->waiting; c = c->next) {
		if (c->abandoned)
			continue;
		c->abandoned = 1;
		atomic_fetch_add(&g->requests[GRPC_STATUS_UNAVAILABLE], 1);
		grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
					     "fdod is stopping", NULL);
	}
	pthread_mutex_unlock(&g->mu);
	grpc_server_shutdown_and_notify(g->server, g->cq, &g->t_shutdown);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_GRACE;
	pthread_mutex_lock(&g->mu);
	while (!g->shut_down && g->nthreads &&
	       pthread_cond_timedwait(&g->cond, &g->mu, &until) != ETIMEDOUT)
		;
	int done = g->shut_down;
	pthread_mutex_unlock(&g->mu);
	if (!done) {
		fdo_warn("otlp-grpc: calls still open after %ds: cancelled",
			 STOP_GRACE);
		grpc_server_cancel_all_calls(g->server);
		pthread_mutex_lock(&g->mu);
		while (!g->shut_down && g->nthreads)
			pthread_cond_wait(&g->cond, &g->mu);
		pthread_mutex_unlock(&g->mu);
	}
	if (!g->nthreads) {
		/* No thread took the shutdown tag: take it here. */
		grpc_server_cancel_all_calls(g->server);
		grpc_event ev;
		do
			ev = grpc_completion_queue_next(
				g->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
				NULL);
		while (ev.tag != &g->t_shutdown);
	}
	grpc_completion_queue_shutdown(g->cq);
	for (unsigned i = 0; i < g->nthreads; i++)
		pthread_join(g->threads[i], NULL);
	grpc_server_destroy(g->server);
	free_all(g);
}

void srv_grpc_metrics(struct srv_grpc *g, struct fdo_buf *b)
{
	if (!g)
		return;
	fdo_buf_puts(b, "# HELP fdod_otlp_grpc_requests_total OTLP/gRPC "
			"ProfilesService/Export calls, by gRPC status.\n"
			"# TYPE fdod_otlp_grpc_requests_total counter\n");
	for (int i = 0; i < GRPC_CODES; i++) {
		uint64_t n = atomic_load(&g->requests[i]);
		if (n || i == GRPC_STATUS_OK)
			fdo_buf_printf(b,
				       "fdod_otlp_grpc_requests_total"
				       "{code=\"%s\"} %llu\n",
				       code_names[i], (unsigned long long)n);
	}
	pthread_mutex_lock(&g->mu);
	unsigned active = g->active, conns = g->nconns;
	pthread_mutex_unlock(&g->mu);
	fdo_buf_printf(
		b,
		"# HELP fdod_otlp_grpc_connections OTLP/gRPC connections open "
		"(served, or awaiting their HTTP/2 preface).\n"
		"# TYPE fdod_otlp_grpc_connections gauge\n"
		"fdod_otlp_grpc_connections %u\n"
		"# HELP fdod_otlp_grpc_connections_closed_total OTLP/gRPC "
		"connections closed by fdod before gRPC served them: over "
		"--otlp-grpc-connections (all) or its per-peer cap (peer), no "
		"HTTP/2 preface within --http-header-timeout (handshake), not "
		"HTTP/2 (preface).\n"
		"# TYPE fdod_otlp_grpc_connections_closed_total counter\n"
		"fdod_otlp_grpc_connections_closed_total{reason=\"all\"} "
		"%llu\n"
		"fdod_otlp_grpc_connections_closed_total{reason=\"peer\"} "
		"%llu\n"
		"fdod_otlp_grpc_connections_closed_total{reason=\"handshake\"}"
		" %llu\n"
		"fdod_otlp_grpc_connections_closed_total{reason=\"preface\"} "
		"%llu\n",
		conns, (unsigned long long)atomic_load(&g->closed[REFUSED_ALL]),
		(unsigned long long)atomic_load(&g->closed[REFUSED_PEER]),
		(unsigned long long)atomic_load(&g->closed[CLOSED_HANDSHAKE]),
		(unsigned long long)atomic_load(&g->closed[CLOSED_PREFACE]));
	fdo_buf_printf(b,
		       "# HELP fdod_otlp_grpc_calls OTLP/gRPC calls being "
		       "received or stored now.\n"
		       "# TYPE fdod_otlp_grpc_calls gauge\n"
		       "fdod_otlp_grpc_calls %u\n"
		       "# HELP fdod_otlp_grpc_refused_total OTLP/gRPC calls "
		       "refused before their message: over the cap of calls "
		       "at once, or no message in time.\n"
		       "# TYPE fdod_otlp_grpc_refused_total counter\n"
		       "fdod_otlp_grpc_refused_total{reason=\"calls\"} %llu\n"
		       "fdod_otlp_grpc_refused_total{reason=\"timeout\"} "
		       "%llu\n",
		       active, (unsigned long long)atomic_load(&g->over_cap),
		       (unsigned long long)atomic_load(&g->timed_out));
}
