/*
 * server/http.c — the HTTP front of fdod on nng's HTTP server.
 *
 * DESIGN
 *   One catch-all nng handler (tree "/" for every method) receives each
 *   request on an nng thread and only queues it. `threads` worker threads
 *   take requests off the queue, read the body themselves (into memory up
 *   to the route's max_body, or streamed to a temp file for uploads, so a
 *   debug file of hundreds of MB is never held in memory), match the route
 *   table, run the handler and complete nng's aio with the response.
 *   Queue: bounded (HTTP_QUEUE_MAX); a request that finds it full gets 503.
 *   Shutdown: srv_http_stop marks the front stopping (new requests get 503),
 *   joins the workers after they finish what they hold, answers what is
 *   still queued with 503, then stops nng's server.
 *   Locking: mu guards head/tail/queued/stopping.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "common/common.h"
#include "common/opts.h"
#include "server/http.h"

#define HTTP_QUEUE_MAX 1024
#define HTTP_IO_TIMEOUT_MS 60000
#define HTTP_CHUNK (1u << 20)
#define HTTP_PATH_MAX 2048
#define HTTP_TMPL_MAX 4096

struct job {
	nng_aio *aio;
	struct job *next;
};

struct srv_http {
	nng_http_server *server;
	nng_http_handler *handler;
	const struct srv_route *routes;
	void *app;
	char *tmpdir;
	int port;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail; /* guarded by mu */
	size_t queued;		 /* guarded by mu */
	int stopping;		 /* guarded by mu */

	pthread_t *threads;
	unsigned nthreads;
	int handler_added, started;
	srv_auth_fn auth; /* read-only */
	unsigned max_streams; /* streamed bodies at once; 0 = no limit */
	unsigned streams;     /* being received now; guarded by mu */
};

static void finish_status(nng_aio *aio, uint16_t status)
{
	nng_http_res *res;
	if (nng_http_res_alloc_error(&res, status) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

/* Runs on an nng thread: queue only, never block. */
static void http_cb(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	struct srv_http *s = nng_http_handler_get_data(h);
	struct job *j = malloc(sizeof *j);
	pthread_mutex_lock(&s->mu);
	if (!j || s->stopping || s->queued >= HTTP_QUEUE_MAX) {
		pthread_mutex_unlock(&s->mu);
		free(j);
		finish_status(aio, 503);
		return;
	}
	j->aio = aio;
	j->next = NULL;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->queued++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Percent-decode [s, s+n) into out (cap bytes); '+' is a space in queries. */
static int pct_decode(const char *s, size_t n, int plus, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n || (hi = fdo_hex_value((unsigned char)s[i + 1])) < 0 ||
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

const char *srv_req_header(struct srv_req *req, const char *name)
{
	return nng_http_req_get_header(req->priv, name);
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

/* Synchronous read of exactly len bytes of the request body. */
static int conn_read(nng_http_conn *conn, nng_aio *aio, void *buf, size_t len)
{
	nng_iov iov = {.iov_buf = buf, .iov_len = len};
	nng_aio_set_iov(aio, 1, &iov);
	nng_aio_set_timeout(aio, HTTP_IO_TIMEOUT_MS);
	nng_http_conn_read_all(conn, aio);
	nng_aio_wait(aio);
	return nng_aio_result(aio);
}

/* Read the body per the route's rules. Returns an HTTP status, 0 if ok. */
static int read_body(struct srv_http *s, nng_http_conn *conn, nng_aio *io,
		     const struct srv_route *r, struct srv_req *req,
		     char **mem, char *tmpl)
{
	const char *cl = nng_http_req_get_header(req->priv, "Content-Length");
	const char *te =
		nng_http_req_get_header(req->priv, "Transfer-Encoding");
	if (te)
		return 411; /* chunked bodies are not supported: need a length */
	uint64_t len = 0;
	if (cl && fdo_parse_uint(cl, &len) != FDO_OK)
		return 400;
	if (len == 0)
		return 0;
	if (len > r->max_body)
		return 413;
	if (!r->stream_body) {
		*mem = malloc(len + 1);
		if (!*mem)
			return 503;
		if (conn_read(conn, io, *mem, len) != 0)
			return -1;
		(*mem)[len] = 0;
		req->body = *mem;
		req->body_len = len;
		return 0;
	}
	snprintf(tmpl, HTTP_TMPL_MAX, "%s/upload-XXXXXX", s->tmpdir);
	int fd = mkstemp(tmpl);
	if (fd < 0) {
		fdo_error("http: cannot create %s: %s", tmpl, strerror(errno));
		return 507;
	}
	req->body_fd = fd;
	req->body_path = tmpl;
	char *chunk = malloc(HTTP_CHUNK);
	if (!chunk)
		return 503;
	uint64_t done = 0;
	int status = 0;
	while (done < len) {
		size_t n = len - done > HTTP_CHUNK ? HTTP_CHUNK : (size_t)(len - done);
		if (conn_read(conn, io, chunk, n) != 0) {
			status = -1;
			break;
		}
		for (size_t off = 0; off < n;) {
			ssize_t w = write(fd, chunk + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				fdo_error("http: writing upload to %s: %s", tmpl,
					  strerror(errno));
				status = errno == ENOSPC ? 507 : 500;
				break;
			}
			off += (size_t)w;
		}
		if (status)
			break;
		done += n;
	}
	free(chunk);
	if (!status && lseek(fd, 0, SEEK_SET) != 0)
		status = 500;
	req->body_size = done;
	return status;
}

/* The response's status, headers and content type on res. */
static void fill_res(nng_http_res *res, struct srv_resp *resp, int close_conn)
{
	nng_http_res_set_status(res, (uint16_t)resp->status);
	nng_http_res_set_header(res, "Content-Type",
				resp->content_type ? resp->content_type
						   : "application/json");
	if (close_conn)
		nng_http_res_set_header(res, "Connection", "close");
	char *h = resp->headers.len ? (char *)fdo_buf_cstr(&resp->headers) : NULL;
	while (h && *h) {
		char *nl = strchr(h, '\n'), *colon = strchr(h, ':');
		if (!nl || !colon || colon > nl)
			break;
		*nl = 0;
		*colon = 0;
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		nng_http_res_add_header(res, h, v);
		h = nl + 1;
	}
}

/*
 * Stream resp->body_fd: take the connection over from nng's server (which
 * would need the whole body in memory), write the head and then the file
 * in chunks, close. The hijacked request is ours to free.
 */
static void respond_file(nng_aio *aio, nng_aio *io, struct srv_resp *resp,
			 int head_only)
{
	nng_http_req *nreq = nng_aio_get_input(aio, 0);
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	nng_http_res *res = NULL;
	char *chunk = NULL;
	if (nng_http_hijack(conn) != 0) {
		nng_aio_finish(aio, NNG_ECLOSED);
		return;
	}
	/* The server forgets this connection once the aio completes. */
	nng_aio_finish(aio, 0);
	if (nng_http_res_alloc(&res) != 0)
		goto out;
	fill_res(res, resp, 1);
	char len[32];
	snprintf(len, sizeof len, "%llu", (unsigned long long)resp->body_size);
	nng_http_res_set_header(res, "Content-Length", len);
	nng_aio_set_timeout(io, HTTP_IO_TIMEOUT_MS);
	nng_http_conn_write_res(conn, res, io);
	nng_aio_wait(io);
	if (nng_aio_result(io) != 0 || head_only)
		goto out;
	if (!(chunk = malloc(HTTP_CHUNK)))
		goto out;
	for (uint64_t done = 0; done < resp->body_size;) {
		ssize_t n = pread(resp->body_fd, chunk, HTTP_CHUNK, (off_t)done);
		if (n <= 0)
			break; /* the client sees a short body and knows */
		nng_iov iov = {.iov_buf = chunk, .iov_len = (size_t)n};
		nng_aio_set_iov(io, 1, &iov);
		nng_aio_set_timeout(io, HTTP_IO_TIMEOUT_MS);
		nng_http_conn_write_all(conn, io);
		nng_aio_wait(io);
		if (nng_aio_result(io) != 0)
			break;
		done += (uint64_t)n;
	}
out:
	free(chunk);
	nng_http_res_free(res);
	nng_http_conn_close(conn);
	nng_http_req_free(nreq);
}

/* Turn our response into nng's and complete the aio. */
static void respond(nng_aio *aio, struct srv_resp *resp, int close_conn)
{
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	fill_res(res, resp, close_conn);
	if (resp->body.len &&
	    nng_http_res_copy_data(res, resp->body.data, resp->body.len) != 0) {
		nng_http_res_free(res);
		finish_status(aio, 503);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void handle(struct srv_http *s, nng_aio *aio, nng_aio *io)
{
	nng_http_req *nreq = nng_aio_get_input(aio, 0);
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	struct srv_req req = {.body_fd = -1, .priv = nreq};
	struct srv_resp resp = {.status = 200, .body_fd = -1};
	char path[HTTP_PATH_MAX], tmpl[HTTP_TMPL_MAX];
	char *mem = NULL;
	int close_conn = 0, streaming = 0;

	req.method = nng_http_req_get_method(nreq);
	const char *uri = nng_http_req_get_uri(nreq);
	const struct srv_route *found = NULL;
	int miss = srv_route_find(s->routes, req.method, uri, path, sizeof path,
				  &req, &found);
	if (miss) {
		close_conn = 1; /* an unread body may follow */
		if (miss == 400)
			srv_resp_error(&resp, 400, "malformed request path");
		else if (miss == 405)
			srv_resp_error(&resp, 405, "method %s not allowed on %s",
				       req.method, path);
		else
			srv_resp_error(&resp, 404, "no such resource: %s", path);
		goto out;
	}
	if (found->scope && s->auth) {
		int refuse = s->auth(s->app, &req, found->scope, &resp);
		if (refuse) {
			resp.status = refuse;
			close_conn = 1; /* the body stays unread */
			goto out;
		}
	}
	if (found->stream_body) {
		/* Uploads hold a worker while their body arrives: bound them,
		 * so reads keep being served beside slow uploads. */
		pthread_mutex_lock(&s->mu);
		unsigned limit = s->max_streams;
		if (!limit || s->streams < limit) {
			s->streams++;
			streaming = 1;
		}
		pthread_mutex_unlock(&s->mu);
		if (!streaming) {
			close_conn = 1;
			srv_resp_error(&resp, 503,
				       "%u uploads are being received (the "
				       "limit, --max-uploads); retry later",
				       limit);
			srv_resp_header(&resp, "Retry-After", "5");
			fdo_warn("http: %s %s refused: %u uploads in progress",
				 req.method, path, limit);
			goto out;
		}
	}
	int st = read_body(s, conn, io, found, &req, &mem, tmpl);
	if (st < 0) {
		/* The client went away or stalled: no answer can reach it. */
		fdo_warn("http: %s %s: request body not received", req.method,
			 uri);
		nng_aio_finish(aio, NNG_ECONNRESET);
		goto cleanup;
	}
	if (st) {
		close_conn = 1;
		if (st == 413)
			srv_resp_error(&resp, 413,
				       "request body larger than %llu bytes",
				       (unsigned long long)found->max_body);
		else if (st == 411)
			srv_resp_error(&resp, 411, "a Content-Length is required");
		else if (st == 507)
			srv_resp_error(&resp, 507, "no space to store the upload");
		else
			srv_resp_error(&resp, st, "cannot read the request body");
		goto out;
	}
	split_params(&req);
	found->fn(s->app, &req, &resp);
	if (resp.body_fd >= 0) {
		respond_file(aio, io, &resp, !strcmp(req.method, "HEAD"));
		close(resp.body_fd);
		goto cleanup;
	}
out:
	respond(aio, &resp, close_conn);
cleanup:
	if (streaming) {
		pthread_mutex_lock(&s->mu);
		s->streams--;
		pthread_mutex_unlock(&s->mu);
	}
	if (req.body_fd >= 0) {
		close(req.body_fd);
		if (unlink(tmpl) != 0 && errno != ENOENT)
			fdo_warn("http: cannot remove %s: %s", tmpl,
				 strerror(errno));
	}
	free(mem);
	fdo_buf_fini(&resp.body);
	fdo_buf_fini(&resp.headers);
}

static void *worker_main(void *arg)
{
	struct srv_http *s = arg;
	nng_aio *io;
	if (nng_aio_alloc(&io, NULL, NULL) != 0) {
		fdo_error("http: worker cannot allocate an aio");
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		struct job *j = s->head;
		s->head = j->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		pthread_mutex_unlock(&s->mu);
		handle(s, j->aio, io);
		free(j);
	}
	nng_aio_free(io);
	return NULL;
}

static int start(const char *url, const char *cert, const char *key,
		 const struct srv_route *routes, void *app, const char *tmpdir,
		 unsigned threads, srv_auth_fn auth, struct srv_http **out);

int srv_http_start(const char *url, const struct srv_route *routes, void *app,
		   const char *tmpdir, unsigned threads, srv_auth_fn auth,
		   struct srv_http **out)
{
	return start(url, NULL, NULL, routes, app, tmpdir, threads, auth, out);
}

int srv_http_start_tls(const char *url, const char *cert, const char *key,
		       const struct srv_route *routes, void *app,
		       const char *tmpdir, unsigned threads, srv_auth_fn auth,
		       struct srv_http **out)
{
	if (!cert || !key) {
		fdo_error("http: %s needs --tls-cert and --tls-key", url);
		return FDO_ETRANSPORT;
	}
	return start(url, cert, key, routes, app, tmpdir, threads, auth, out);
}

static int start(const char *url, const char *cert, const char *key,
		 const struct srv_route *routes, void *app, const char *tmpdir,
		 unsigned threads, srv_auth_fn auth, struct srv_http **out)
{
	struct srv_http *s = calloc(1, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	s->auth = auth;
	s->routes = routes;
	s->app = app;
	s->tmpdir = strdup(tmpdir);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	nng_url *u = NULL;
	int rv;
	if ((rv = nng_url_parse(&u, url)) != 0) {
		fdo_error("http: bad URL %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_http_server_hold(&s->server, u)) != 0) {
		fdo_error("http: cannot set up %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	if (cert) {
		char *c = fdo_read_small_file(cert, 1u << 20);
		char *k = fdo_read_small_file(key, 1u << 20);
		nng_tls_config *tls = NULL;
		rv = !c || !k ? NNG_ENOENT
			      : nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER);
		if (!rv)
			rv = nng_tls_config_own_cert(tls, c, k, NULL);
		if (!rv)
			rv = nng_http_server_set_tls(s->server, tls);
		if (tls)
			nng_tls_config_free(tls);
		free(c);
		free(k);
		if (rv) {
			fdo_error("http: certificate %s / key %s for %s: %s", cert,
				  key, url, nng_strerror(rv));
			goto fail;
		}
	}
	if ((rv = nng_http_handler_alloc(&s->handler, "", http_cb)) != 0 ||
	    (rv = nng_http_handler_set_method(s->handler, NULL)) != 0 ||
	    (rv = nng_http_handler_set_tree(s->handler)) != 0 ||
	    (rv = nng_http_handler_collect_body(s->handler, false, 0)) != 0 ||
	    (rv = nng_http_handler_set_data(s->handler, s, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(s->server, s->handler)) != 0) {
		fdo_error("http: cannot set up %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	s->handler_added = 1;
	s->threads = calloc(threads ? threads : 1, sizeof *s->threads);
	for (unsigned i = 0; i < (threads ? threads : 1); i++) {
		if (pthread_create(&s->threads[i], NULL, worker_main, s))
			break;
		s->nthreads++;
	}
	if ((rv = nng_http_server_start(s->server)) != 0) {
		fdo_error("http: cannot listen on %s: %s", url,
			  nng_strerror(rv));
		goto fail;
	}
	s->started = 1;
	nng_sockaddr sa;
	if (nng_http_server_get_addr(s->server, &sa) == 0) {
		/* nng keeps ports in network byte order. */
		const uint8_t *p = NULL;
		if (sa.s_family == NNG_AF_INET)
			p = (const uint8_t *)&sa.s_in.sa_port;
		else if (sa.s_family == NNG_AF_INET6)
			p = (const uint8_t *)&sa.s_in6.sa_port;
		if (p)
			s->port = p[0] << 8 | p[1];
	}
	nng_url_free(u);
	*out = s;
	return FDO_OK;
fail:
	if (u)
		nng_url_free(u);
	srv_http_stop(s);
	return FDO_ETRANSPORT;
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

void srv_http_stop(struct srv_http *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	/* Workers are gone: answer what is still queued. */
	while (s->head) {
		struct job *j = s->head;
		s->head = j->next;
		finish_status(j->aio, 503);
		free(j);
	}
	if (s->server) {
		if (s->started)
			nng_http_server_stop(s->server);
		if (s->handler && !s->handler_added)
			nng_http_handler_free(s->handler);
		nng_http_server_release(s->server);
	} else if (s->handler) {
		nng_http_handler_free(s->handler);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->threads);
	free(s->tmpdir);
	free(s);
}
