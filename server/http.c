/*
 * server/http.c — the HTTP front of fdod on libmicrohttpd.
 *
 * Why libmicrohttpd: nng 1.5's HTTP server has no header, idle or body
 * timeout and no connection cap (measured for issue 21: half-sent headers
 * and idle connections stayed open past 185 s; 300 idle sockets under a
 * 256-descriptor limit stopped the API). Debian's libmicrohttpd bounds
 * connections in total and per client address, closes idle ones, answers
 * oversized headers with 431 and long request lines with 414, and sends
 * 100 Continue at once.
 *
 * DESIGN
 *   libmicrohttpd's one polling thread (epoll) reads requests: headers,
 *   then bodies, never on a worker. When a request's headers are complete
 *   the access handler matches the route, checks the token (the auth hook)
 *   and the announced length, then reads the body itself as it arrives:
 *   into memory up to the route's max_body, or streamed to a temp file for
 *   uploads (a debug file of hundreds of MB is never held in memory; the
 *   first bytes must match the route's magic). A complete request is
 *   queued for `threads` worker threads and its connection suspended; a
 *   worker runs the handler (it may block: LMDB reads, profile builds,
 *   fsync of an upload), turns the answer into a response and resumes the
 *   connection, whose next access-handler call queues it. A slow client
 *   therefore never holds a worker.
 *   Bounds: connections in total and per client address (libmicrohttpd
 *   closes the others at once); an idle timeout (no byte for that long);
 *   a header deadline (a request's line and headers within
 *   header_timeout of its first byte, or of the previous answer plus the
 *   idle timeout) and a body deadline for in-memory bodies, both enforced
 *   by the reaper thread, which shuts such a connection's socket down so
 *   libmicrohttpd closes it; header memory per connection (431 past it);
 *   the bytes of in-memory bodies held at once, from admission until the
 *   handler returns (lim.body_memory: a request whose announced body does
 *   not fit beside those held gets 503 with Retry-After before a byte of
 *   it is read; one body alone is always admitted, so a body larger than
 *   the budget is not refused for ever). Without it every connection
 *   could hold a route's largest body (256 x 16 MiB).
 *   The worker queue is bounded (HTTP_QUEUE_MAX); a request that finds it
 *   full gets 503.
 *   Shutdown: srv_http_stop marks the front stopping (new requests get
 *   503), lets the workers finish what they hold, answers what is queued
 *   with 503, stops the reaper, then stops libmicrohttpd (no connection is
 *   left suspended).
 *   Locking: mu guards the job queue, queued, stopping, streams, the
 *   body memory held and refused, and every
 *   struct conn's state, deadline and list links (the polling thread
 *   writes them, the reaper reads them).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/common.h"
#include "common/opts.h"
#include "server/http.h"

#define HTTP_QUEUE_MAX	   1024
#define HTTP_PATH_MAX	   2048 /* path and query of a request target */
#define HTTP_TMPL_MAX	   4096
#define HTTP_HEADER_MEMORY (32u << 10) /* per connection; past it: 431 */
#define HTTP_HEADERS_MAX   64	       /* request headers kept for handlers */
#define HTTP_DISCARD_MAX                                                       \
	(64ull << 20) /* body read past a refusal, then
					  the connection is closed */

/* Where a connection is, for the reaper's deadlines. */
enum conn_state {
	CONN_HEADERS,  /* waiting for a request line and its headers */
	CONN_BODY,     /* reading a request body */
	CONN_HANDLING, /* queued or handled by a worker, or answering */
	CONN_IDLE,     /* answered; waiting for the next request */
};

/* One TCP connection (libmicrohttpd's socket context). */
struct conn {
	int fd;
	char peer[64];
	enum conn_state state;	  /* guarded by srv_http.mu */
	uint64_t deadline;	  /* fdo_now_ns; 0 none; guarded by mu */
	int reaped;		  /* shut down by the reaper; guarded by mu */
	struct conn *prev, *next; /* all connections; guarded by mu */
	char uri[HTTP_PATH_MAX + 1]; /* raw target of the current request */
	int uri_too_long;
};

/* One request, from complete headers to the answer sent. */
struct hreq {
	struct srv_http *s;
	struct MHD_Connection *mc;
	struct conn *c;
	const struct srv_route *route;
	struct srv_req req;
	struct srv_resp resp;
	char path[HTTP_PATH_MAX];
	char tmpl[HTTP_TMPL_MAX];
	char *mem;		/* an in-memory body */
	uint64_t held;		/* its bytes counted in s->body_held */
	uint64_t expected, got; /* announced body length, bytes so far */
	int streaming;		/* counted in s->streams */
	int refused;		/* an HTTP status decided while reading */
	uint64_t refused_at;	/* body bytes taken when it was decided */
	int dispatched;
	struct MHD_Response *response; /* set by a worker, queued on resume */
	unsigned status;
	/* Request headers, copied for the workers (the connection is
	 * suspended while they run). */
	const char *hname[HTTP_HEADERS_MAX], *hvalue[HTTP_HEADERS_MAX];
	size_t nheaders;
	struct fdo_buf hbuf;
	struct hreq *next; /* job queue link */
};

struct srv_http {
	struct MHD_Daemon *d;
	const struct srv_route *routes;
	void *app;
	char *tmpdir;
	int port;
	srv_auth_fn auth;	    /* read-only */
	struct srv_http_limits lim; /* read-only after start */

	pthread_mutex_t mu;
	pthread_cond_t cv;	  /* workers: a job, or stopping */
	pthread_cond_t reap_cv;	  /* reaper: a new deadline, or stopping */
	struct hreq *head, *tail; /* guarded by mu */
	size_t queued;		  /* guarded by mu */
	int stopping;		  /* guarded by mu */
	unsigned max_streams;	  /* streamed bodies at once; 0 = no limit */
	unsigned streams;	  /* being received now; guarded by mu */
	uint64_t body_held;	  /* bytes of in-memory bodies; mu */
	uint64_t body_refused;	  /* requests refused for them; mu */
	struct conn *conns;	  /* guarded by mu */
	uint64_t reaped;	  /* connections the reaper closed; mu */

	pthread_t *threads;
	unsigned nthreads;
	pthread_t reaper;
	int reaper_started;
};

static uint64_t secs_ns(unsigned s)
{
	return (uint64_t)s * 1000000000ull;
}

/* Percent-decode [s, s+n) into out (cap bytes); '+' is a space in queries. */
static int pct_decode(const char *s, size_t n, int plus, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n ||
			    (hi = fdo_hex_value((unsigned char)s[i + 1])) < 0 ||
			    (lo = fdo_hex_value((unsigned char)s[i + 2])) < 0)
				return FDO_EPARSE;
			c = (char)(hi << 4 | lo);
			if (!c)
				return FDO_EPARSE;
			i += 2;
		} else if (c == '+' && plus)
			c = ' ';
		if (o + 1 >= cap)
			return FDO_ELIMIT;
		out[o++] = c;
	}
	out[o] = 0;
	return FDO_OK;
}

int srv_query_get(const char *query, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);
	const char *p = query;
	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len >= klen && !strncmp(p, key, klen) &&
		    (len == klen || p[klen] == '=')) {
			const char *v = len == klen ? p + len : p + klen + 1;
			size_t vlen = len == klen ? 0 : len - klen - 1;
			return pct_decode(v, vlen, 1, out, outlen);
		}
		p = amp ? amp + 1 : NULL;
	}
	return FDO_ENOT_FOUND;
}

/*
 * match_route: does path fit pattern? "{}" matches one non-empty segment,
 * whose start and length go to req->param (segments are NUL-split in a copy).
 */
static int match_route(const char *pattern, char *path, struct srv_req *req)
{
	const char *p = pattern;
	char *q = path;
	int np = 0;
	while (*p && *q) {
		if (p[0] == '{' && p[1] == '}') {
			char *end = q;
			while (*end && *end != '/')
				end++;
			if (end == q || np == SRV_MAX_PARAMS)
				return 0;
			req->param[np++] = q;
			p += 2;
			q = end;
			continue;
		}
		if (*p != *q)
			return 0;
		p++;
		q++;
	}
	if (*p || *q)
		return 0;
	req->nparam = np;
	return 1;
}

int srv_route_find(const struct srv_route *routes, const char *method,
		   const char *uri, char *path, size_t cap, struct srv_req *req,
		   const struct srv_route **found)
{
	const char *qm = strchr(uri, '?');
	req->query = qm ? qm + 1 : "";
	if (cap > HTTP_PATH_MAX)
		cap = HTTP_PATH_MAX; /* the probe copy below */
	if (pct_decode(uri, qm ? (size_t)(qm - uri) : strlen(uri), 0, path,
		       cap) != FDO_OK)
		return 400;
	req->path = path;
	if (!strcmp(method, "HEAD"))
		method = "GET";
	int wrong_method = 0;
	for (const struct srv_route *r = routes; r->pattern; r++) {
		char copy[HTTP_PATH_MAX];
		struct srv_req probe = {0};
		memcpy(copy, path, strlen(path) + 1);
		if (!match_route(r->pattern, copy, &probe))
			continue;
		if (strcmp(r->method, method)) {
			wrong_method = 1;
			continue;
		}
		match_route(r->pattern, path, req);
		*found = r;
		return 0;
	}
	return wrong_method ? 405 : 404;
}

/* After a match, cut the parameter segments out as separate strings. */
static void split_params(struct srv_req *req)
{
	for (int i = 0; i < req->nparam; i++) {
		char *slash = strchr(req->param[i], '/');
		if (slash)
			*slash = 0;
	}
}

void srv_resp_header(struct srv_resp *resp, const char *name, const char *fmt,
		     ...)
{
	char value[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(value, sizeof value, fmt, ap);
	va_end(ap);
	fdo_buf_printf(&resp->headers, "%s: %s\n", name, value);
}

void srv_resp_error(struct srv_resp *resp, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	resp->status = status;
	resp->content_type = "application/json";
	fdo_buf_reset(&resp->body);
	fdo_buf_puts(&resp->body, "{\"error\":");
	fdo_buf_json_str(&resp->body, msg);
	fdo_buf_puts(&resp->body, "}\n");
}

const char *srv_req_header(struct srv_req *req, const char *name)
{
	struct hreq *h = req->priv;
	if (!h)
		return NULL;
	for (size_t i = 0; i < h->nheaders; i++)
		if (!strcasecmp(h->hname[i], name))
			return h->hvalue[i];
	return NULL;
}

/* ------------------------------------------------------ connections -- */

static void on_connection(void *cls, struct MHD_Connection *mc,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct srv_http *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct conn *c = calloc(1, sizeof *c);
		*socket_context = c;
		if (!c)
			return;
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		ci = MHD_get_connection_info(
			mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const struct sockaddr *sa = ci ? ci->client_addr : NULL;
		if (sa && sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
				  &((const struct sockaddr_in *)sa)->sin_addr,
				  c->peer, sizeof c->peer);
		else if (sa && sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6,
				  &((const struct sockaddr_in6 *)sa)->sin6_addr,
				  c->peer, sizeof c->peer);
		else
			snprintf(c->peer, sizeof c->peer, "?");
		pthread_mutex_lock(&s->mu);
		c->state = CONN_HEADERS;
		c->deadline = fdo_now_ns() + secs_ns(s->lim.header_timeout);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		pthread_cond_signal(&s->reap_cv);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	struct conn *c = *socket_context;
	if (!c)
		return;
	/* Called before libmicrohttpd closes the socket: once c is off the
	 * list, the reaper cannot touch its descriptor any more. */
	pthread_mutex_lock(&s->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&s->mu);
	free(c);
	*socket_context = NULL;
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void conn_set(struct srv_http *s, struct conn *c, enum conn_state st,
		     uint64_t deadline)
{
	if (!c)
		return;
	pthread_mutex_lock(&s->mu);
	c->state = st;
	c->deadline = deadline;
	if (deadline)
		pthread_cond_signal(&s->reap_cv);
	pthread_mutex_unlock(&s->mu);
}

/* The raw request target, before libmicrohttpd decodes it: our own route
 * matching and query parsing read it. A new request line also starts a
 * new header deadline. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct srv_http *s = cls;
	struct conn *c = conn_of(mc);
	if (c) {
		size_t n = strlen(uri);
		c->uri_too_long = n > HTTP_PATH_MAX;
		memcpy(c->uri, uri, c->uri_too_long ? 0 : n + 1);
		pthread_mutex_lock(&s->mu);
		if (c->state == CONN_IDLE) {
			c->state = CONN_HEADERS;
			c->deadline =
				fdo_now_ns() + secs_ns(s->lim.header_timeout);
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

/*
 * The reaper: shuts down the socket of every connection past its header or
 * body deadline (libmicrohttpd then closes it and frees what it held), and
 * sleeps until the next deadline; with no connection it sleeps until one
 * arrives, so an idle fdod does not wake.
 */
static void *reaper_main(void *arg)
{
	struct srv_http *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		uint64_t now = fdo_now_ns(), next = 0;
		unsigned closed = 0;
		char last[64] = "";
		for (struct conn *c = s->conns; c; c = c->next) {
			if (!c->deadline || c->reaped ||
			    c->state == CONN_HANDLING)
				continue;
			if (c->deadline <= now) {
				if (c->fd >= 0)
					shutdown(c->fd, SHUT_RDWR);
				c->reaped = 1;
				closed++;
				snprintf(last, sizeof last, "%s", c->peer);
			} else if (!next || c->deadline < next) {
				next = c->deadline;
			}
		}
		if (closed) {
			s->reaped += closed;
			fdo_warn("http: closed %u connection%s that sent no "
				 "complete request in time (header timeout "
				 "%us, body timeout %us; last from %s)",
				 closed, closed > 1 ? "s" : "",
				 s->lim.header_timeout, s->lim.body_timeout,
				 last);
		}
		if (!next) {
			pthread_cond_wait(&s->reap_cv, &s->mu);
		} else {
			/* Wake a little after the deadline, at most every
			 * 100 ms: a few timers, not a busy loop. */
			uint64_t wait = next - now + 1000000;
			if (wait < 100000000)
				wait = 100000000;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + wait % 1000000000u;
			ts.tv_sec +=
				(time_t)(wait / 1000000000u + ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			pthread_cond_timedwait(&s->reap_cv, &s->mu, &ts);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ------------------------------------------------------------ answers -- */

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind,
				   const char *key, const char *value)
{
	struct hreq *h = cls;
	if (h->nheaders == HTTP_HEADERS_MAX || !key)
		return MHD_YES;
	size_t at = h->hbuf.len;
	fdo_buf_append(&h->hbuf, key, strlen(key) + 1);
	fdo_buf_append(&h->hbuf, value ? value : "",
		       strlen(value ? value : "") + 1);
	/* Offsets for now: the buffer may move while it grows. */
	h->hname[h->nheaders] = (const char *)(uintptr_t)at;
	h->hvalue[h->nheaders] =
		(const char *)(uintptr_t)(at + strlen(key) + 1);
	h->nheaders++;
	return MHD_YES;
}

static void snapshot_headers(struct hreq *h)
{
	fdo_buf_init(&h->hbuf);
	MHD_get_connection_values(h->mc, MHD_HEADER_KIND, copy_header, h);
	if (h->hbuf.oom) {
		h->nheaders = 0;
		return;
	}
	for (size_t i = 0; i < h->nheaders; i++) {
		h->hname[i] =
			(const char *)h->hbuf.data + (uintptr_t)h->hname[i];
		h->hvalue[i] =
			(const char *)h->hbuf.data + (uintptr_t)h->hvalue[i];
	}
}

/* An MHD response from resp: its body (copied) or file, headers, type. */
static struct MHD_Response *make_response(struct srv_resp *resp, int close_conn)
{
	struct MHD_Response *r;
	if (resp->body_fd >= 0) {
		/* libmicrohttpd owns the descriptor from here (sendfile). */
		r = MHD_create_response_from_fd64(resp->body_size,
						  resp->body_fd);
		if (r)
			resp->body_fd = -1;
	} else {
		r = MHD_create_response_from_buffer(
			resp->body.len, resp->body.data, MHD_RESPMEM_MUST_COPY);
	}
	if (!r)
		return NULL;
	MHD_add_response_header(r, "Content-Type",
				resp->content_type ? resp->content_type
						   : "application/json");
	if (close_conn)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	char *h = resp->headers.len ? (char *)fdo_buf_cstr(&resp->headers)
				    : NULL;
	while (h && *h) {
		char *nl = strchr(h, '\n'), *colon = strchr(h, ':');
		if (!nl || !colon || colon > nl)
			break;
		*nl = 0;
		*colon = 0;
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		MHD_add_response_header(r, h, v);
		h = nl + 1;
	}
	return r;
}

/* Queue an answer from the polling thread (headers or body phase). */
static enum MHD_Result answer_now(struct hreq *h, int close_conn)
{
	struct MHD_Response *r = make_response(&h->resp, close_conn);
	if (!r)
		return MHD_NO;
	conn_set(h->s, h->c, CONN_HANDLING, 0);
	enum MHD_Result rv =
		MHD_queue_response(h->mc, (unsigned)h->resp.status, r);
	MHD_destroy_response(r);
	return rv;
}

static void release_stream(struct hreq *h)
{
	if (!h->streaming)
		return;
	pthread_mutex_lock(&h->s->mu);
	h->s->streams--;
	pthread_mutex_unlock(&h->s->mu);
	h->streaming = 0;
}

/* The in-memory body is done with: free it and give its bytes back. */
static void release_mem(struct hreq *h)
{
	free(h->mem);
	h->mem = NULL;
	h->req.body = NULL;
	h->req.body_len = 0;
	if (!h->held)
		return;
	pthread_mutex_lock(&h->s->mu);
	h->s->body_held -= h->held;
	pthread_mutex_unlock(&h->s->mu);
	h->held = 0;
}

static void hreq_free(struct hreq *h)
{
	release_stream(h);
	release_mem(h);
	if (h->req.body_fd >= 0) {
		close(h->req.body_fd);
		if (unlink(h->tmpl) != 0 && errno != ENOENT)
			fdo_warn("http: cannot remove %s: %s", h->tmpl,
				 strerror(errno));
	}
	if (h->resp.body_fd >= 0)
		close(h->resp.body_fd);
	if (h->response)
		MHD_destroy_response(h->response);
	fdo_buf_fini(&h->resp.body);
	fdo_buf_fini(&h->resp.headers);
	fdo_buf_fini(&h->hbuf);
	free(h);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct srv_http *s = cls;
	struct hreq *h = *con_cls;
	struct conn *c = conn_of(mc);
	if (h) {
		if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && h->route &&
		    h->route->stream_body && !h->dispatched)
			fdo_warn("http: %s %s from %s: request body not "
				 "received",
				 h->req.method, h->path, c ? c->peer : "?");
		hreq_free(h);
		*con_cls = NULL;
	}
	conn_set(s, c, CONN_IDLE,
		 fdo_now_ns() +
			 secs_ns(s->lim.idle_timeout + s->lim.header_timeout));
}

/* ------------------------------------------------------------ workers -- */

static void dispatch(struct hreq *h)
{
	struct srv_http *s = h->s;
	h->dispatched = 1;
	conn_set(s, h->c, CONN_HANDLING, 0);
	MHD_suspend_connection(h->mc);
	pthread_mutex_lock(&s->mu);
	int full = s->stopping || s->queued >= HTTP_QUEUE_MAX;
	if (!full) {
		h->next = NULL;
		if (s->tail)
			s->tail->next = h;
		else
			s->head = h;
		s->tail = h;
		s->queued++;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	if (full) {
		srv_resp_error(&h->resp, 503,
			       "fdod is busy or stopping; "
			       "retry later");
		srv_resp_header(&h->resp, "Retry-After", "1");
		h->response = make_response(&h->resp, 1);
		h->status = 503;
		MHD_resume_connection(h->mc);
	}
}

static void *worker_main(void *arg)
{
	struct srv_http *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		struct hreq *h = s->head;
		s->head = h->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		pthread_mutex_unlock(&s->mu);
		if (h->req.body_fd >= 0 && lseek(h->req.body_fd, 0, SEEK_SET))
			srv_resp_error(&h->resp, 500, "cannot read the body");
		else {
			split_params(&h->req);
			h->route->fn(s->app, &h->req, &h->resp);
		}
		/* The upload's temp file is done with (or renamed away):
		 * remove it before the client hears the answer, so that no
		 * one sees it after a refusal. An in-memory body is given
		 * back to the budget. */
		release_stream(h);
		release_mem(h);
		if (h->req.body_fd >= 0) {
			close(h->req.body_fd);
			h->req.body_fd = -1;
			if (unlink(h->tmpl) != 0 && errno != ENOENT)
				fdo_warn("http: cannot remove %s: %s", h->tmpl,
					 strerror(errno));
		}
		h->response = make_response(&h->resp, 0);
		h->status = (unsigned)h->resp.status;
		MHD_resume_connection(h->mc);
	}
	return NULL;
}

/* --------------------------------------------------------- the handler -- */

/* The checks of a request whose headers are complete: route, token,
 * announced body. 0 to go on, else the HTTP status (resp written). */
static int admit(struct hreq *h)
{
	struct srv_http *s = h->s;
	struct srv_resp *resp = &h->resp;
	struct srv_req *req = &h->req;
	if (h->c && h->c->uri_too_long) {
		srv_resp_error(resp, 414,
			       "request target longer than %d "
			       "bytes",
			       HTTP_PATH_MAX);
		return 414;
	}
	const char *uri = h->c ? h->c->uri : "";
	int miss = srv_route_find(s->routes, req->method, uri, h->path,
				  sizeof h->path, req, &h->route);
	if (miss) {
		if (miss == 400)
			srv_resp_error(resp, 400, "malformed request path");
		else if (miss == 405)
			srv_resp_error(resp, 405, "method %s not allowed on %s",
				       req->method, h->path);
		else
			srv_resp_error(resp, 404, "no such resource: %s",
				       h->path);
		return miss;
	}
	if (h->route->scope && s->auth) {
		int refuse = s->auth(s->app, req, h->route->scope, resp);
		if (refuse)
			return refuse;
	}
	const char *cl = srv_req_header(req, "Content-Length");
	const char *te = srv_req_header(req, "Transfer-Encoding");
	if (te) {
		srv_resp_error(resp, 411, "a Content-Length is required");
		return 411;
	}
	if (cl && fdo_parse_uint(cl, &h->expected) != FDO_OK) {
		srv_resp_error(resp, 400, "bad Content-Length");
		return 400;
	}
	if (h->expected > h->route->max_body) {
		srv_resp_error(resp, 413, "request body larger than %llu bytes",
			       (unsigned long long)h->route->max_body);
		return 413;
	}
	if (!h->expected)
		return 0;
	if (!h->route->stream_body) {
		/* In memory: within the budget of bodies held at once. */
		uint64_t need = h->expected + 1, held,
			 limit = s->lim.body_memory;
		pthread_mutex_lock(&s->mu);
		held = s->body_held;
		if (!held || held + need <= limit) {
			s->body_held += need;
			h->held = need;
		} else {
			s->body_refused++;
		}
		pthread_mutex_unlock(&s->mu);
		if (!h->held) {
			srv_resp_error(resp, 503,
				       "request bodies of %llu bytes are held "
				       "(--http-body-memory %llu); retry later",
				       (unsigned long long)held,
				       (unsigned long long)limit);
			srv_resp_header(resp, "Retry-After", "1");
			fdo_warn("http: %s %s from %s refused: a body of %llu "
				 "bytes beside %llu held (--http-body-memory "
				 "%llu)",
				 req->method, h->path, req->peer,
				 (unsigned long long)h->expected,
				 (unsigned long long)held,
				 (unsigned long long)limit);
			return 503;
		}
		if (!(h->mem = malloc(h->expected + 1))) {
			srv_resp_error(resp, 503, "out of memory");
			srv_resp_header(resp, "Retry-After", "1");
			return 503;
		}
		return 0;
	}
	/* Uploads hold disk and a descriptor while their body arrives: bound
	 * them, so one client cannot start many. */
	pthread_mutex_lock(&s->mu);
	unsigned limit = s->max_streams;
	if (!limit || s->streams < limit) {
		s->streams++;
		h->streaming = 1;
	}
	pthread_mutex_unlock(&s->mu);
	if (!h->streaming) {
		srv_resp_error(resp, 503,
			       "%u uploads are being received (the limit, "
			       "--max-uploads); retry later",
			       limit);
		srv_resp_header(resp, "Retry-After", "5");
		fdo_warn("http: %s %s from %s refused: %u uploads in progress",
			 req->method, h->path, req->peer, limit);
		return 503;
	}
	snprintf(h->tmpl, sizeof h->tmpl, "%s/upload-XXXXXX", s->tmpdir);
	int fd = mkstemp(h->tmpl);
	if (fd < 0) {
		fdo_error("http: cannot create %s: %s", h->tmpl,
			  strerror(errno));
		srv_resp_error(resp, 507, "no space to store the upload");
		return 507;
	}
	req->body_fd = fd;
	req->body_path = h->tmpl;
	return 0;
}

/* Take a chunk of the body. 0, or an HTTP status to refuse with. */
static int take_body(struct hreq *h, const char *data, size_t n)
{
	if (n > h->expected - h->got)
		n = (size_t)(h->expected - h->got); /* never past the length */
	const char *magic = h->route->magic;
	if (magic) {
		size_t m = strlen(magic);
		for (size_t i = 0; i < n && h->got + i < m; i++)
			if (data[i] != magic[h->got + i]) {
				srv_resp_error(&h->resp, 400, "%s",
					       h->route->magic_why
						       ? h->route->magic_why
						       : "unexpected body");
				return 400;
			}
	}
	if (h->mem) {
		memcpy(h->mem + h->got, data, n);
	} else {
		for (size_t off = 0; off < n;) {
			ssize_t w = write(h->req.body_fd, data + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				int e = errno;
				fdo_error("http: writing upload to %s: %s",
					  h->tmpl, strerror(e));
				srv_resp_error(
					&h->resp, e == ENOSPC ? 507 : 500, "%s",
					e == ENOSPC
						? "no space to store the upload"
						: "cannot store the upload");
				return e == ENOSPC ? 507 : 500;
			}
			off += (size_t)w;
		}
	}
	h->got += n;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct srv_http *s = cls;
	struct hreq *h = *con_cls;
	if (!h) {
		/* Headers complete: a new request. */
		if (!(h = calloc(1, sizeof *h)))
			return MHD_NO;
		*con_cls = h;
		h->s = s;
		h->mc = mc;
		h->c = conn_of(mc);
		h->req.body_fd = -1;
		h->resp.body_fd = -1;
		h->resp.status = 200;
		h->req.priv = h;
		h->req.method = method;
		h->req.peer = h->c ? h->c->peer : "?";
		h->req.query = "";
		h->path[0] = 0;
		h->req.path = h->path;
		snapshot_headers(h);
		pthread_mutex_lock(&s->mu);
		int stopping = s->stopping;
		pthread_mutex_unlock(&s->mu);
		int st = stopping ? 503 : admit(h);
		if (stopping)
			srv_resp_error(&h->resp, 503, "fdod is stopping");
		if (st) {
			h->resp.status = st;
			/* The body, if any, stays unread: close after. */
			return answer_now(h, 1);
		}
		if (!h->expected) {
			dispatch(h);
			return MHD_YES;
		}
		conn_set(s, h->c, CONN_BODY,
			 h->route->stream_body
				 ? 0
				 : fdo_now_ns() + secs_ns(s->lim.body_timeout));
		return MHD_YES;
	}
	if (h->response) {
		/* A worker's answer, after the resume. */
		conn_set(s, h->c, CONN_HANDLING, 0);
		enum MHD_Result rv =
			MHD_queue_response(mc, h->status, h->response);
		MHD_destroy_response(h->response);
		h->response = NULL;
		return rv;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (h->refused) {
			/* Discarded, never written; the answer goes out when
			 * the body ends (clients read it only then), unless
			 * far too much would still come. */
			h->got += n;
			return h->got > h->refused_at + HTTP_DISCARD_MAX
				       ? MHD_NO
				       : MHD_YES;
		}
		int st = take_body(h, upload_data, n);
		if (st) {
			h->refused = st;
			h->refused_at = h->got;
			fdo_warn("http: %s %s from %s refused after %llu body "
				 "bytes: %s",
				 h->req.method, h->path, h->req.peer,
				 (unsigned long long)h->got,
				 st == 400 && h->route->magic ? "wrong magic"
							      : "write error");
		}
		return MHD_YES;
	}
	if (h->dispatched)
		return MHD_NO; /* resumed without an answer (out of memory) */
	if (h->refused == 400 && h->route->magic) {
		/* The handler answers (and counts) a body of the wrong kind;
		 * nothing of it was kept. */
		if (h->req.body_fd >= 0) {
			close(h->req.body_fd);
			unlink(h->tmpl);
			h->req.body_fd = -1;
		}
		fdo_buf_reset(&h->resp.body);
		h->resp.status = 200;
		h->req.refusal = h->route->magic_why ? h->route->magic_why
						     : "unexpected body";
		h->req.body_size = h->got;
		dispatch(h);
		return MHD_YES;
	}
	if (h->refused) {
		h->resp.status = h->refused;
		return answer_now(h, 1);
	}
	/* The whole body is here. */
	if (h->mem) {
		h->mem[h->got] = 0;
		h->req.body = h->mem;
		h->req.body_len = (size_t)h->got;
	}
	h->req.body_size = h->got;
	dispatch(h);
	return MHD_YES;
}

/* ----------------------------------------------------------- start/stop -- */

/* host and port of an http:// or https:// URL into a socket address. */
static int resolve(const char *url, struct sockaddr_storage *ss, socklen_t *len,
		   int *tls)
{
	const char *p;
	if (!strncmp(url, "http://", 7)) {
		p = url + 7;
		*tls = 0;
	} else if (!strncmp(url, "https://", 8)) {
		p = url + 8;
		*tls = 1;
	} else {
		return FDO_EINVAL;
	}
	char host[256], port[16];
	const char *colon;
	if (*p == '[') {
		const char *end = strchr(p, ']');
		if (!end || (size_t)(end - p - 1) >= sizeof host)
			return FDO_EINVAL;
		memcpy(host, p + 1, (size_t)(end - p - 1));
		host[end - p - 1] = 0;
		colon = end + 1;
	} else {
		size_t n = strcspn(p, ":/");
		if (n >= sizeof host)
			return FDO_EINVAL;
		memcpy(host, p, n);
		host[n] = 0;
		colon = p + n;
	}
	if (*colon == ':') {
		size_t n = strcspn(colon + 1, "/");
		if (!n || n >= sizeof port)
			return FDO_EINVAL;
		memcpy(port, colon + 1, n);
		port[n] = 0;
	} else {
		snprintf(port, sizeof port, "%s", *tls ? "443" : "80");
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
			*ai;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai))
		return FDO_EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return FDO_OK;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	fdo_debug("http: libmicrohttpd: %s", msg);
}

const struct srv_http_limits srv_http_limits_default = {
	.max_connections = 256,
	.max_per_peer = 32,
	.header_timeout = 10,
	.idle_timeout = 30,
	.body_timeout = 10,
	.body_memory = 64u << 20,
};

int srv_http_open(const struct srv_http_opts *o, struct srv_http **out)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int tls;
	if (resolve(o->url, &ss, &sslen, &tls)) {
		fdo_error("http: bad URL %s (http://HOST:PORT or "
			  "https://HOST:PORT)",
			  o->url);
		return FDO_ETRANSPORT;
	}
	if (tls && (!o->cert || !o->key)) {
		fdo_error("http: %s needs --tls-cert and --tls-key", o->url);
		return FDO_ETRANSPORT;
	}
	struct srv_http *s = calloc(1, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	s->auth = o->auth;
	s->routes = o->routes;
	s->app = o->app;
	s->lim = o->limits ? *o->limits : srv_http_limits_default;
	if (!s->lim.max_connections)
		s->lim.max_connections =
			srv_http_limits_default.max_connections;
	if (!s->lim.header_timeout)
		s->lim.header_timeout = srv_http_limits_default.header_timeout;
	if (!s->lim.idle_timeout)
		s->lim.idle_timeout = srv_http_limits_default.idle_timeout;
	if (!s->lim.body_timeout)
		s->lim.body_timeout = srv_http_limits_default.body_timeout;
	if (!s->lim.body_memory)
		s->lim.body_memory = srv_http_limits_default.body_memory;
	s->tmpdir = strdup(o->tmpdir ? o->tmpdir : "/tmp");
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->reap_cv, NULL);
	char *cert = NULL, *key = NULL;
	if (tls) {
		cert = fdo_read_small_file(o->cert, 1u << 20);
		key = fdo_read_small_file(o->key, 1u << 20);
		if (!cert || !key) {
			fdo_error("http: cannot read certificate %s / key %s "
				  "for %s",
				  o->cert, o->key, o->url);
			goto fail;
		}
	}
	unsigned threads = o->threads ? o->threads : 1;
	s->threads = calloc(threads, sizeof *s->threads);
	for (unsigned i = 0; s->threads && i < threads; i++) {
		if (pthread_create(&s->threads[i], NULL, worker_main, s))
			break;
		s->nthreads++;
	}
	if (!pthread_create(&s->reaper, NULL, reaper_main, s))
		s->reaper_started = 1;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			 (tls ? MHD_USE_TLS : 0) |
			 (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_SOCK_ADDR, 0, &ss},
		{MHD_OPTION_CONNECTION_LIMIT, s->lim.max_connections, NULL},
		{MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->lim.max_per_peer, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, s->lim.idle_timeout, NULL},
		{MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_HEADER_MEMORY, NULL},
		{MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
		{MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s},
		{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
		{tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
		{tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key},
		{MHD_OPTION_END, 0, NULL},
	};
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	free(cert);
	free(key);
	cert = key = NULL;
	if (!s->d) {
		fdo_error("http: cannot listen on %s: %s", o->url,
			  strerror(errno));
		goto fail;
	}
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_LISTEN_FD);
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	if (di &&
	    getsockname(di->listen_fd, (struct sockaddr *)&bound, &blen) == 0)
		s->port = ntohs(
			bound.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&bound)->sin6_port
				: ((struct sockaddr_in *)&bound)->sin_port);
	*out = s;
	return FDO_OK;
fail:
	free(cert);
	free(key);
	srv_http_stop(s);
	return FDO_ETRANSPORT;
}

int srv_http_start(const char *url, const struct srv_route *routes, void *app,
		   const char *tmpdir, unsigned threads, srv_auth_fn auth,
		   struct srv_http **out)
{
	struct srv_http_opts o = {.url = url,
				  .routes = routes,
				  .app = app,
				  .tmpdir = tmpdir,
				  .threads = threads,
				  .auth = auth};
	return srv_http_open(&o, out);
}

int srv_http_start_tls(const char *url, const char *cert, const char *key,
		       const struct srv_route *routes, void *app,
		       const char *tmpdir, unsigned threads, srv_auth_fn auth,
		       struct srv_http **out)
{
	struct srv_http_opts o = {.url = url,
				  .cert = cert,
				  .key = key,
				  .routes = routes,
				  .app = app,
				  .tmpdir = tmpdir,
				  .threads = threads,
				  .auth = auth};
	if (!cert || !key) {
		fdo_error("http: %s needs --tls-cert and --tls-key", url);
		return FDO_ETRANSPORT;
	}
	return srv_http_open(&o, out);
}

void srv_http_limit_streams(struct srv_http *h, unsigned n)
{
	pthread_mutex_lock(&h->mu);
	h->max_streams = n;
	pthread_mutex_unlock(&h->mu);
}

int srv_http_port(struct srv_http *h)
{
	return h->port;
}

void srv_http_stats(struct srv_http *h, struct srv_http_stats *st)
{
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&h->mu);
	st->reaped = h->reaped;
	for (struct conn *c = h->conns; c; c = c->next)
		st->connections++;
	st->queued = h->queued;
	st->body_bytes = h->body_held;
	st->body_refused = h->body_refused;
	pthread_mutex_unlock(&h->mu);
}

void srv_http_stop(struct srv_http *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_cond_broadcast(&s->reap_cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	if (s->reaper_started)
		pthread_join(s->reaper, NULL);
	/* Workers are gone: answer what is still queued, so that no
	 * connection stays suspended when libmicrohttpd stops. */
	pthread_mutex_lock(&s->mu);
	struct hreq *q = s->head;
	s->head = s->tail = NULL;
	s->queued = 0;
	pthread_mutex_unlock(&s->mu);
	while (q) {
		struct hreq *h = q;
		q = h->next;
		srv_resp_error(&h->resp, 503, "fdod is stopping");
		h->response = make_response(&h->resp, 1);
		h->status = 503;
		MHD_resume_connection(h->mc);
	}
	if (s->d)
		MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->reap_cv);
	free(s->threads);
	free(s->tmpdir);
	free(s);
}
