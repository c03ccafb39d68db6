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
	fdo_buf_printf(&resp->body, "param=%s labels=%s rc=%d n=%d", req->param[0],
		       rc ? "-" : v, rc, req->nparam);
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
	fdo_buf_printf(&resp->body, "size=%llu crc=%08x", (unsigned long long)total, crc);
}

static void h_small(void *app, struct srv_req *req, struct srv_resp *resp)
{
	fdo_buf_printf(&resp->body, "got=%.*s", (int)req->body_len, req->body);
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
	{NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

/* Send raw bytes, read the whole answer (server closes: Connection: close). */
static int http_raw(int port, const char *head, const void *body, size_t blen,
		    char *out, size_t outcap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	if (write(fd, head, strlen(head)) < 0)
		return -1;
	const char *b = body;
	while (blen) {
		ssize_t w = write(fd, b, blen);
		if (w <= 0)
			break;
		b += w;
		blen -= (size_t)w;
	}
	size_t got = 0;
	ssize_t r;
	while (got + 1 < outcap && (r = read(fd, out + got, outcap - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = 0;
	close(fd);
	int status = 0;
	sscanf(out, "HTTP/1.1 %d", &status);
	return status;
}

static struct srv_http *start(int *counter)
{
	struct srv_http *h = NULL;
	if (srv_http_start("http://127.0.0.1:0", routes, counter, test_tmpdir(), 2, NULL, &h))
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
	CHECK_EQ_INT(http_raw(port, "GET /v1/echo/web%20server?x=1&labels=mode%3Aserving%2Cb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, sizeof out), 200);
	CHECK(strstr(out, "param=web server labels=mode:serving,b rc=0 n=1") != NULL);
	CHECK(strstr(out, "X-Fdod-Test: 42") != NULL);
	CHECK_EQ_INT(counter, 1);
	CHECK_EQ_INT(http_raw(port, "GET /v1/p/app/versions/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, sizeof out), 200);
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
	CHECK_EQ_INT(http_raw(port, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, sizeof out), 404);
	CHECK(strstr(out, "\"error\"") != NULL);
	CHECK_EQ_INT(http_raw(port, "DELETE /v1/echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, sizeof out), 405);
	CHECK_EQ_INT(http_raw(port, "GET /v1/echo/a%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, sizeof out), 400);
	CHECK_EQ_INT(http_raw(port, "GET /v1/echo/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, sizeof out), 404);
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
	snprintf(head, sizeof head, "PUT /v1/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n", n);
	CHECK_EQ_INT(http_raw(srv_http_port(h), head, body, n, out, sizeof out), 201);
	snprintf(want, sizeof want, "size=%zu crc=%08x", n, fdo_crc32c(0, body, n));
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
	CHECK_EQ_INT(http_raw(port, "POST /v1/small HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\n", "hello", 5, out, sizeof out), 200);
	CHECK(strstr(out, "got=hello") != NULL);
	CHECK_EQ_INT(http_raw(port, "POST /v1/small HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 17\r\n\r\n", "0123456789abcdefg", 17, out, sizeof out), 413);
	CHECK_EQ_INT(http_raw(port, "POST /v1/small HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: x1\r\n\r\n", NULL, 0, out, sizeof out), 400);
	CHECK_EQ_INT(http_raw(port, "GET /v1/echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\n", "abc", 3, out, sizeof out), 413);
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
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
	const char *req = "PUT /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789";
	CHECK(write(fd, req, strlen(req)) > 0);
	close(fd);
	CHECK_EQ_INT(http_raw(port, "GET /v1/echo/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, sizeof out), 200);
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
	int rc = srv_http_start(url, routes, &counter, test_tmpdir(), 1, NULL, &h2);
	CHECK(rc == FDO_ETRANSPORT || rc == FDO_OK);
	if (rc == FDO_OK)
		srv_http_stop(h2);
	srv_http_stop(h);
	CHECK(srv_http_start("bogus://x", routes, &counter, test_tmpdir(), 1, NULL, &h2) == FDO_ETRANSPORT);
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
	CHECK_EQ_INT(http_raw(port, "GET /v1/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, cap), 200);
	char *body = strstr(out, "\r\n\r\n");
	REQUIRE(body);
	body += 4;
	CHECK(strstr(out, "X-Test-Size: 3145728") != NULL);
	CHECK(memcmp(body, data, n) == 0);
	CHECK_EQ_INT(http_raw(port, "HEAD /v1/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, cap), 200);
	body = strstr(out, "\r\n\r\n");
	REQUIRE(body);
	CHECK_EQ_INT(strlen(body + 4), 0);
	/* The server still answers after handing a connection over. */
	CHECK_EQ_INT(http_raw(port, "GET /v1/echo/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, out, cap), 200);
	free(out);
	free(data);
	srv_http_stop(h);
}
