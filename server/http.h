/*
 * server/http.h — fdod's HTTP front: a route table served by
 * libmicrohttpd. The library is hidden here; handlers see only srv_req /
 * srv_resp.
 *
 * Handlers run on the HTTP worker threads, never on nng's own threads, so
 * they may block (LMDB reads, profile builds, fsync of an upload).
 */
#ifndef FDO_SERVER_HTTP_H
#define FDO_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SRV_MAX_PARAMS 4

struct srv_req {
	const char *method;
	const char *path;  /* percent-decoded path, without the query */
	const char *query; /* raw query string after '?', "" when none */
	const char *param[SRV_MAX_PARAMS]; /* "{}" path segments, in order */
	int nparam;
	const char *body; /* routes with max_body and !stream_body */
	size_t body_len;
	int body_fd;	       /* stream_body routes: the body in a temp file,
				   positioned at 0; -1 otherwise. Closed and
				   the file removed after the handler, unless
				   the handler renamed it away. */
	const char *body_path; /* that temp file's path */
	uint64_t body_size;
	const char *peer;    /* the client's address ("127.0.0.1"), for logs */
	const char *refusal; /* routes with a magic: the body did not start
				   with it (nothing of it was kept); the
				   handler answers 400 with this reason */
	const void *principal; /* set by the auth hook: the token that asked
				   (server/auth.h's struct srv_token), or NULL */
	void *priv;	       /* the front's request */
};

struct srv_resp {
	int status;		  /* default 200 */
	const char *content_type; /* default application/json */
	struct fdo_buf body;
	struct fdo_buf headers; /* "Name: value\n" lines */
	int body_fd;		/* >= 0: send this file instead of body
					   (streamed; closed after sending) */
	uint64_t body_size;	/* its length */
};

typedef void (*srv_handler)(void *app, struct srv_req *req,
			    struct srv_resp *resp);

struct srv_route {
	const char *method;  /* "GET" (also answers HEAD), "PUT", "POST" */
	const char *pattern; /* "/v1/profiles/{}/versions/{}" */
	srv_handler fn;
	uint64_t max_body; /* largest body accepted; 0 = none */
	int stream_body;   /* body to a temp file instead of memory */
	unsigned scope;	   /* what the caller must be allowed; 0 none */
	const char *magic; /* a body must start with these bytes, checked
				   as they arrive; else the rest is discarded
				   and the handler gets req->refusal */
	const char *magic_why;
};

/*
 * An authorization hook: may req act in scope? Returns 0, or the HTTP
 * status to refuse with (401, 403) after writing the reason into resp.
 * Called before the body is read.
 */
typedef int (*srv_auth_fn)(void *app, struct srv_req *req, unsigned scope,
			   struct srv_resp *resp);

struct srv_http;

/*
 * What one client may hold. Connections over max_connections, or over
 * max_per_peer from one address, are closed at once; a connection with no
 * byte for idle_timeout seconds is closed; a request's line and headers
 * must arrive within header_timeout seconds (of its first byte, or of the
 * previous answer plus idle_timeout), an in-memory body within
 * body_timeout of its headers; streamed bodies (uploads) only need to
 * keep moving (idle_timeout). Headers over 32 KiB are answered 431, a
 * request target over 2,048 bytes 414. In-memory bodies (routes without
 * stream_body) hold at most body_memory bytes at once in all, from the
 * headers until the handler returns; a request whose announced body does
 * not fit beside them gets 503 with Retry-After (a body alone always
 * fits).
 */
struct srv_http_limits {
	unsigned max_connections; /* default 256 */
	unsigned max_per_peer;	  /* default 32; 0 = no per-address cap */
	unsigned header_timeout;  /* seconds; default 10 */
	unsigned idle_timeout;	  /* seconds; default 30 */
	unsigned body_timeout;	  /* seconds; default 10 */
	uint64_t body_memory;	  /* bytes; default 64 MiB */
};
extern const struct srv_http_limits srv_http_limits_default;

struct srv_http_opts {
	const char *url;	/* http://HOST:PORT or https://HOST:PORT */
	const char *cert, *key; /* PEM files, for https:// */
	const struct srv_route *routes;	      /* ends with a NULL pattern */
	void *app;			      /* passed to every handler */
	const char *tmpdir;		      /* receives streamed bodies */
	unsigned threads;		      /* worker threads */
	srv_auth_fn auth;		      /* NULL: none */
	const struct srv_http_limits *limits; /* NULL: the defaults */
};

/*
 * srv_http_open serves o->routes at o->url: o->auth (when set) checks every
 * route that has a scope, before its body is read. Returns FDO_OK or
 * FDO_ETRANSPORT (address in use, bad URL, unreadable certificate) with a
 * log line. Call from one thread; the server runs until srv_http_stop.
 */
int srv_http_open(const struct srv_http_opts *o, struct srv_http **out);

/* srv_http_start is srv_http_open with the default limits. */
int srv_http_start(const char *url, const struct srv_route *routes, void *app,
		   const char *tmpdir, unsigned threads, srv_auth_fn auth,
		   struct srv_http **out);

/*
 * srv_http_start_tls is srv_http_start for an https:// URL, serving with
 * the PEM certificate and key files given.
 */
int srv_http_start_tls(const char *url, const char *cert, const char *key,
		       const struct srv_route *routes, void *app,
		       const char *tmpdir, unsigned threads, srv_auth_fn auth,
		       struct srv_http **out);
/*
 * srv_http_port returns the bound TCP port (useful with port 0).
 */
int srv_http_port(struct srv_http *h);
/*
 * srv_http_limit_streams bounds the requests whose body is being streamed
 * to a file (routes with stream_body) at once; one more is answered 503
 * with Retry-After. 0 = no bound (the default). Any time, any thread.
 */
void srv_http_limit_streams(struct srv_http *h, unsigned n);

/* Figures for /metrics. Any thread. */
struct srv_http_stats {
	uint64_t connections;  /* open now */
	uint64_t queued;       /* requests waiting for a worker */
	uint64_t reaped;       /* closed for missing a header/body deadline */
	uint64_t body_bytes;   /* in-memory request bodies held now */
	uint64_t body_refused; /* requests refused: no room for the body */
};
void srv_http_stats(struct srv_http *h, struct srv_http_stats *st);

/*
 * srv_http_stop lets requests being handled finish, answers queued ones
 * with 503, closes the listener and frees everything. Blocks.
 */
void srv_http_stop(struct srv_http *h);

/*
 * srv_route_find matches a request against routes as the front does for
 * every request: the path part of uri (the raw request target, at most
 * 2,048 bytes with its query) is percent-decoded into path (capacity cap,
 * at most 2048 used), HEAD is
 * served by GET routes, "{}" matches one non-empty segment. On a match
 * *found is the route, req->param[0..nparam) point into path (each runs
 * to the next '/': the front cuts them after the auth hook ran) and
 * req->path, req->query are set. Returns 0, or the status to answer:
 * 400 (malformed or too long path), 404 (no route), 405 (only routes of
 * other methods). Pure; any thread.
 */
int srv_route_find(const struct srv_route *routes, const char *method,
		   const char *uri, char *path, size_t cap, struct srv_req *req,
		   const struct srv_route **found);

/* srv_req_header returns a request header's value or NULL. */
const char *srv_req_header(struct srv_req *req, const char *name);

/*
 * srv_query_get finds key in a query string and percent-decodes its value
 * into out (NUL-terminated). Returns FDO_OK, FDO_ENOT_FOUND, or FDO_ELIMIT
 * when the value does not fit.
 */
int srv_query_get(const char *query, const char *key, char *out, size_t outlen);

/* srv_resp_header adds a response header. */
void srv_resp_header(struct srv_resp *resp, const char *name, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));
/*
 * srv_resp_error sets status and a JSON body {"error": "<message>"}.
 */
void srv_resp_error(struct srv_resp *resp, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
