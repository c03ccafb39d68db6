/*
 * cli/http_client.c — fdoctl's HTTP client, on libcurl: one request per
 * call, the request body streamed from a file descriptor (a debug file of
 * hundreds of MB never sits in memory; a regular file goes with its
 * Content-Length, a pipe chunked), the answer's body read into a buffer.
 * libcurl brings https with the system's CA store, proxies from the
 * environment, and the timeouts. Synchronous; one thread (fdoctl runs one
 * subcommand per process).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "common/common.h"

#define CLI_HTTP_MAX_RESPONSE (1u << 30)
/* A transfer that moves no byte for this long fails, as a step of the
 * nng client did before. */
#define CLI_HTTP_STALL_SECONDS 300

const char *cli_http_base(const char *url)
{
	if (url && *url)
		return url;
	const char *env = getenv("FDOD_HTTP");
	return env && *env ? env : "http://127.0.0.1:7471";
}

/* What the callbacks share with cli_http_request. */
struct xfer {
	int fd;
	uint64_t size, sent; /* size: the Content-Length, or UINT64_MAX */
	int read_errno;	     /* reading the body failed (or it shrank: -1) */
	struct fdo_buf *out;
	int too_large, oom;
};

static size_t read_body(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	ssize_t got;
	do
		got = read(x->fd, buf, size * n);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		x->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	if (got == 0 && x->size != UINT64_MAX && x->sent < x->size) {
		x->read_errno = -1;
		return CURL_READFUNC_ABORT;
	}
	x->sent += (uint64_t)got;
	return (size_t)got;
}

static size_t write_answer(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (x->out->len + len > CLI_HTTP_MAX_RESPONSE) {
		x->too_large = 1;
		return 0;
	}
	fdo_buf_append(x->out, data, len);
	if (x->out->oom) {
		x->oom = 1;
		return 0;
	}
	return len;
}

/* The header lines being kept: the last answer's only (libcurl also
 * hands over a proxy's CONNECT answer, redirects' and trailers), up to
 * the first line that does not fit. */
struct header_keep {
	struct fdo_buf *b;
	int cut;
};

static size_t keep_header(char *data, size_t size, size_t n, void *arg)
{
	struct header_keep *k = arg;
	size_t len = size * n;
	if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
		fdo_buf_reset(k->b);
		k->cut = 0;
	}
	if (!k->cut && k->b->len + len <= CLI_HTTP_MAX_HEADERS)
		fdo_buf_append(k->b, data, len);
	else
		k->cut = 1;
	/* The blank line ends the answer's header: what follows before
	 * another status line is trailers. */
	if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n'))
		k->cut = 1;
	return len;
}

/* libcurl's global state, set up once and released at exit. */
static int global_init(void)
{
	static int done;
	if (done)
		return FDO_OK;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return FDO_ENOMEM;
	atexit(curl_global_cleanup);
	done = 1;
	return FDO_OK;
}

int cli_http_request(const struct cli_http *h, const char *method,
		     const char *path, int body_fd, int *status,
		     struct fdo_buf *out, char *err, size_t errlen)
{
	const char *base = cli_http_base(h->url);
	struct xfer x = {.fd = body_fd, .size = UINT64_MAX, .out = out};
	char token[512], auth[600], url[4096];
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL, *more;
	CURL *curl = NULL;
	int rc = FDO_ENOMEM;
	if (fdo_client_token(getenv("FDOD_TOKEN_FILE"), token, sizeof token)) {
		snprintf(err, errlen, "cannot read $FDOD_TOKEN_FILE");
		return FDO_EIO;
	}
	if (body_fd >= 0) {
		struct stat st;
		if (fstat(body_fd, &st)) {
			snprintf(err, errlen, "%s", strerror(errno));
			return FDO_EIO;
		}
		if (S_ISREG(st.st_mode))
			x.size = (uint64_t)st.st_size;
	}
	snprintf(url, sizeof url, "%s%s", base, path);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
	if (global_init() || !(curl = curl_easy_init()))
		goto nomem;
	if (token[0]) {
		if (!(more = curl_slist_append(headers, auth)))
			goto nomem;
		headers = more;
	}
	if (body_fd >= 0) {
		if (!(more = curl_slist_append(
			      headers,
			      "Content-Type: application/octet-stream")))
			goto nomem;
		headers = more;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
			 (long)h->connect_timeout);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)h->max_time);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
			 (long)CLI_HTTP_STALL_SECONDS);
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
			 (curl_off_t)CLI_HTTP_MAX_RESPONSE);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_answer);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
	struct header_keep hk = {h->headers, 0};
	if (h->headers) {
		curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, keep_header);
		curl_easy_setopt(curl, CURLOPT_HEADERDATA, &hk);
	}
	const char *ca = getenv("FDOD_CA_FILE");
	if (ca && *ca)
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
	if (body_fd >= 0) {
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L); /* a PUT */
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
		curl_easy_setopt(curl, CURLOPT_READDATA, &x);
		/* -1: unknown, sent chunked. */
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
				 x.size == UINT64_MAX ? (curl_off_t)-1
						      : (curl_off_t)x.size);
		if (strcmp(method, "PUT"))
			curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET")) {
		/* A POST, which says Content-Length: 0 even without a body. */
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
		if (strcmp(method, "POST"))
			curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	}
	CURLcode cc = curl_easy_perform(curl);
	if (cc == CURLE_OK) {
		long code = 0;
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
		*status = (int)code;
		rc = FDO_OK;
	} else if (x.oom) {
		goto nomem;
	} else if (x.read_errno) {
		snprintf(err, errlen, "reading the file: %s",
			 x.read_errno > 0 ? strerror(x.read_errno)
					  : "it shrank");
		rc = FDO_EIO;
	} else if (x.too_large || cc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "%s %s: answer too large (over %u bytes)",
			 method, url, CLI_HTTP_MAX_RESPONSE);
		rc = FDO_ETRANSPORT;
	} else {
		/* libcurl's detailed message, else the one of its code. */
		const char *why = cerr[0] ? cerr : curl_easy_strerror(cc);
		if (cc == CURLE_COULDNT_CONNECT ||
		    cc == CURLE_COULDNT_RESOLVE_HOST ||
		    cc == CURLE_COULDNT_RESOLVE_PROXY)
			snprintf(err, errlen, "cannot connect to %s: %s", base,
				 why);
		else
			snprintf(err, errlen, "%s %s: %s", method, url, why);
		rc = cc == CURLE_URL_MALFORMAT ||
				     cc == CURLE_UNSUPPORTED_PROTOCOL
			     ? FDO_EINVAL
			     : FDO_ETRANSPORT;
	}
	goto done;
nomem:
	snprintf(err, errlen, "out of memory");
	rc = FDO_ENOMEM;
done:
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return rc;
}
