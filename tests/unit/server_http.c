/*
 * Tests for server/http.c: routing, path parameters, query decoding, bodies
 * in memory and streamed, limits, 404/405, on a real nng HTTP server on
 * loopback, with a raw-socket client.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "server/http.h"
#include "tests/unit/test.h"

static void h_echo(void *app, struct srv_req *req, struct srv_resp *resp)
{
	char v[64];
	int rc = srv_query_get(req->query, "labels", v, sizeof v);
	resp->content_type = "text/plain";
	fdo_buf_printf(&resp->body, "param=%s labels=%s rc=%d n=%d",
		       req->param[0], rc ? "-" : v, rc, req->nparam);
	srv_resp_header(resp, "X-Fdod-Test", "%d", 42);
	(*(int *)app)++;
}

static void h_two(void *app, struct srv_req *req, struct srv_resp *resp)
{
	fdo_buf_printf(&resp->body, "%s|%s", req->param[0], req->param[1]);
}

static void h_upload(void *app, struct srv_req *req, struct srv_resp *resp)
{
	uint32_t crc = 0;
	char buf[4096];
	ssize_t n;
	uint64_t total = 0;
	while ((n = read(req->body_fd, buf, sizeof buf)) > 0) {
		crc = fdo_crc32c(crc, buf, (size_t)n);
		total += (uint64_t)n;
	}
	resp->status = 201;
	fdo_buf_printf(&resp->body, "size=%llu crc=%08x",
		       (unsigned long long)total, crc);
}

static void h_small(void *app, struct srv_req *req, struct srv_resp *resp)
{
	fdo_buf_printf(&resp->body, "got=%.*s", (int)req->body_len, req->body);
}

static void h_big(void *app, struct srv_req *req, struct srv_resp *resp)
{
	fdo_buf_printf(&resp->body, "len=%zu", req->body_len);
}

static char file_path[512];
static void h_file(void *app, struct srv_req *req, struct srv_resp *resp)
{
	int fd = open(file_path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		srv_resp_error(resp, 404, "no file");
		return;
	}
	resp->content_type = "application/octet-stream";
	resp->body_fd = fd;
	resp->body_size = (uint64_t)st.st_size;
	srv_resp_header(resp, "X-Test-Size", "%lld", (long long)st.st_size);
}

static const struct srv_route routes[] = {
	{"GET", "/v1/file", h_file, 0, 0, 0, NULL, NULL},
	{"GET", "/v1/echo/{}", h_echo, 0, 0, 0, NULL, NULL},
	{"GET", "/v1/p/{}/versions/{}", h_two, 0, 0, 0, NULL, NULL},
	{"PUT", "/v1/upload", h_upload, 64u << 20, 1, 0, NULL, NULL},
	{"POST", "/v1/small", h_small, 16, 0, 0, NULL, NULL},
	{"POST", "/v1/big", h_big, 1u << 20, 0, 0, NULL, NULL},
	{NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

/* A connection to the server on port, or -1. */
static int conn_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read the answer until the server closes; its status. */
static int read_answer(int fd, char *out, size_t cap)
{
	size_t got = 0;
	ssize_t r;
	while (got + 1 < cap && (r = read(fd, out + got, cap - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = 0;
	close(fd);
	int status = 0;
	sscanf(out, "HTTP/1.1 %d", &status);
	return status;
}

/* Send raw bytes, read the whole answer (server closes: Connection: close). */
static int http_raw(int port, const char *head, const void *body, size_t blen,
		    char *out, size_t outcap)
{
	int fd = conn_open(port);
	if (fd < 0)
		return -1;
	if (send_all(fd, head, strlen(head))) {
		close(fd);
		return -1;
	}
	if (blen)
		(void)send_all(fd, body, blen); /* a refusal may close early */
	return read_answer(fd, out, outcap);
}

static struct srv_http *start(int *counter)
{
	struct srv_http *h = NULL;
	if (srv_http_start("http://127.0.0.1:0", routes, counter, test_tmpdir(),
			   2, NULL, &h))
		return NULL;
	return h;
}

TEST(routes_params_query_and_headers)
{
	int counter = 0;
	struct srv_http *h = start(&counter);
	REQUIRE(h);
	int port = srv_http_port(h);
	REQUIRE(port > 0);
	char out[8192];
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /v1/echo/web%20server?x=1&labels=mode%3Aserving%2Cb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, sizeof out),
		200);
	CHECK(strstr(out, "param=web server labels=mode:serving,b rc=0 n=1") !=
	      NULL);
	CHECK(strstr(out, "X-Fdod-Test: 42") != NULL);
	CHECK_EQ_INT(counter, 1);
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /v1/p/app/versions/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, sizeof out),
		200);
	CHECK(strstr(out, "app|abc") != NULL);
	srv_http_stop(h);
}

TEST(unknown_path_and_wrong_method)
{
	int counter = 0;
	struct srv_http *h = start(&counter);
	REQUIRE(h);
	char out[8192];
	int port = srv_http_port(h);
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, sizeof out),
		404);
	CHECK(strstr(out, "\"error\"") != NULL);
	CHECK_EQ_INT(
		http_raw(
			port,
			"DELETE /v1/echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, sizeof out),
		405);
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /v1/echo/a%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, sizeof out),
		400);
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /v1/echo/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, sizeof out),
		404);
	CHECK_EQ_INT(counter, 0);
	srv_http_stop(h);
}

TEST(streamed_upload_of_several_megabytes)
{
	int counter = 0;
	struct srv_http *h = start(&counter);
	REQUIRE(h);
	size_t n = 5u << 20;
	char *body = malloc(n);
	REQUIRE(body);
	for (size_t i = 0; i < n; i++)
		body[i] = (char)(i * 2654435761u >> 13);
	char head[256], out[8192], want[64];
	snprintf(
		head, sizeof head,
		"PUT /v1/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
		n);
	CHECK_EQ_INT(http_raw(srv_http_port(h), head, body, n, out, sizeof out),
		     201);
	snprintf(want, sizeof want, "size=%zu crc=%08x", n,
		 fdo_crc32c(0, body, n));
	CHECK(strstr(out, want) != NULL);
	free(body);
	srv_http_stop(h);
}

TEST(body_limits_and_missing_length)
{
	int counter = 0;
	struct srv_http *h = start(&counter);
	REQUIRE(h);
	char out[8192];
	int port = srv_http_port(h);
	CHECK_EQ_INT(
		http_raw(
			port,
			"POST /v1/small HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\n",
			"hello", 5, out, sizeof out),
		200);
	CHECK(strstr(out, "got=hello") != NULL);
	CHECK_EQ_INT(
		http_raw(
			port,
			"POST /v1/small HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 17\r\n\r\n",
			"0123456789abcdefg", 17, out, sizeof out),
		413);
	CHECK_EQ_INT(
		http_raw(
			port,
			"POST /v1/small HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: x1\r\n\r\n",
			NULL, 0, out, sizeof out),
		400);
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /v1/echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
			"abc", 3, out, sizeof out),
		413);
	srv_http_stop(h);
}

TEST(truncated_body_gets_no_answer_and_server_survives)
{
	int counter = 0;
	struct srv_http *h = start(&counter);
	REQUIRE(h);
	char out[8192];
	int port = srv_http_port(h);
	/* Promise 1000 bytes, send 10, close. */
	int fd = conn_open(port);
	REQUIRE(fd >= 0);
	const char *req =
		"PUT /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789";
	CHECK(write(fd, req, strlen(req)) > 0);
	close(fd);
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /v1/echo/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, sizeof out),
		200);
	srv_http_stop(h);
}

TEST(port_in_use_is_a_clear_error)
{
	int counter = 0;
	struct srv_http *h = start(&counter), *h2 = NULL;
	REQUIRE(h);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", srv_http_port(h));
	/* nng shares one server per address in a process; a second start on
	 * the same port must still fail cleanly, not crash. */
	int rc = srv_http_start(url, routes, &counter, test_tmpdir(), 1, NULL,
				&h2);
	CHECK(rc == FDO_ETRANSPORT || rc == FDO_OK);
	if (rc == FDO_OK)
		srv_http_stop(h2);
	srv_http_stop(h);
	CHECK(srv_http_start("bogus://x", routes, &counter, test_tmpdir(), 1,
			     NULL, &h2) == FDO_ETRANSPORT);
}

TEST(file_bodies_are_streamed_and_head_sends_none)
{
	int counter = 0;
	struct srv_http *h = start(&counter);
	REQUIRE(h);
	snprintf(file_path, sizeof file_path, "%s/big.bin", test_tmpdir());
	size_t n = 3u << 20;
	char *data = malloc(n);
	REQUIRE(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 2654435761u >> 11);
	FILE *f = fopen(file_path, "wb");
	REQUIRE(f && fwrite(data, 1, n, f) == n);
	fclose(f);
	size_t cap = n + 4096;
	char *out = malloc(cap);
	REQUIRE(out);
	int port = srv_http_port(h);
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /v1/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, cap),
		200);
	char *body = strstr(out, "\r\n\r\n");
	REQUIRE(body);
	body += 4;
	CHECK(strstr(out, "X-Test-Size: 3145728") != NULL);
	CHECK(memcmp(body, data, n) == 0);
	CHECK_EQ_INT(
		http_raw(
			port,
			"HEAD /v1/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, cap),
		200);
	body = strstr(out, "\r\n\r\n");
	REQUIRE(body);
	CHECK_EQ_INT(strlen(body + 4), 0);
	/* The server still answers after handing a connection over. */
	CHECK_EQ_INT(
		http_raw(
			port,
			"GET /v1/echo/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			NULL, 0, out, cap),
		200);
	free(out);
	free(data);
	srv_http_stop(h);
}

/* Wait (up to 10 s) until the bodies held reach at least n bytes. */
static uint64_t wait_held(struct srv_http *h, uint64_t n)
{
	struct srv_http_stats st;
	for (int i = 0; i < 1000; i++) {
		srv_http_stats(h, &st);
		if (st.body_bytes >= n)
			break;
		usleep(10000);
	}
	return st.body_bytes;
}

#define BIG_HEAD                                                               \
	"POST /v1/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"            \
	"Content-Length: 900000\r\n\r\n"

TEST(bodies_in_memory_share_a_budget)
{
	/* 1.5 MiB for bodies of 900 kB: one at a time; the others get 503
	 * before a byte of their body is read, until it is done. */
	struct srv_http_limits lim = srv_http_limits_default;
	lim.body_memory = 3u << 19;
	struct srv_http_opts o = {.url = "http://127.0.0.1:0",
				  .routes = routes,
				  .tmpdir = test_tmpdir(),
				  .threads = 2,
				  .limits = &lim};
	struct srv_http *h = NULL;
	REQUIRE(srv_http_open(&o, &h) == FDO_OK);
	int port = srv_http_port(h);
	size_t n = 900000;
	char *body = calloc(1, n), out[8192];
	REQUIRE(body);
	int a = conn_open(port);
	REQUIRE(a >= 0);
	CHECK(send_all(a, BIG_HEAD, strlen(BIG_HEAD)) == 0);
	CHECK(send_all(a, body, 1000) == 0); /* the rest later */
	CHECK_EQ_INT(wait_held(h, n + 1), n + 1);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(http_raw(port, BIG_HEAD, NULL, 0, out, sizeof out),
			     503);
		CHECK(strstr(out, "Retry-After: 1") != NULL);
		CHECK(strstr(out, "--http-body-memory") != NULL);
	}
	struct srv_http_stats st;
	srv_http_stats(h, &st);
	CHECK_EQ_INT(st.body_refused, 3);
	CHECK_EQ_INT(st.body_bytes, n + 1);
	/* Small bodies beside it still fit. */
	CHECK_EQ_INT(http_raw(port,
			      "POST /v1/small HTTP/1.1\r\nHost: x\r\n"
			      "Connection: close\r\nContent-Length: 5\r\n\r\n",
			      "hello", 5, out, sizeof out),
		     200);
	CHECK(send_all(a, body + 1000, n - 1000) == 0);
	CHECK_EQ_INT(read_answer(a, out, sizeof out), 200);
	CHECK(strstr(out, "len=900000") != NULL);
	/* Handled: its bytes are back, so the next one fits. */
	srv_http_stats(h, &st);
	CHECK_EQ_INT(st.body_bytes, 0);
	CHECK_EQ_INT(http_raw(port, BIG_HEAD, body, n, out, sizeof out), 200);
	srv_http_stop(h);
	/* A body larger than the whole budget still goes through alone. */
	lim.body_memory = 100000;
	REQUIRE(srv_http_open(&o, &h) == FDO_OK);
	CHECK_EQ_INT(http_raw(srv_http_port(h), BIG_HEAD, body, n, out,
			      sizeof out),
		     200);
	srv_http_stop(h);
	free(body);
}
