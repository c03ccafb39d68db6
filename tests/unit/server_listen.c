/*
 * Tests for server/listen.c: request/reply over tcp://, ipc:// and
 * tls+tcp:// on loopback with a real nng REQ client; a stop while a request
 * is being handled still delivers its reply.
 */
#include <pthread.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "common/common.h"
#include "server/listen.h"
#include "tests/unit/test.h"

static int slow_ms;

static void upper(void *app, const uint8_t *msg, size_t len, struct fdo_buf *reply)
{
	if (slow_ms)
		usleep((useconds_t)slow_ms * 1000);
	for (size_t i = 0; i < len; i++)
		fdo_buf_putc(reply, (char)(msg[i] >= 'a' && msg[i] <= 'z' ? msg[i] - 32 : msg[i]));
	(*(int *)app)++;
}

/* One request over a fresh REQ socket; returns the reply in out. */
static int request(const char *url, nng_tls_config *tls, const char *text, char *out, size_t cap)
{
	nng_socket s;
	nng_dialer d;
	int rv;
	if ((rv = nng_req0_open(&s)) != 0)
		return rv;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
	if ((rv = nng_dialer_create(&d, s, url)) == 0) {
		if (tls)
			nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
		rv = nng_dialer_start(d, 0);
	}
	if (rv == 0)
		rv = nng_send(s, (void *)text, strlen(text), 0);
	if (rv == 0) {
		size_t n = cap - 1;
		rv = nng_recv(s, out, &n, 0);
		if (rv == 0)
			out[n] = 0;
	}
	nng_close(s);
	return rv;
}

TEST(tcp_and_ipc_round_trip)
{
	int count = 0;
	char ipc[300], tcp[64], out[256];
	snprintf(ipc, sizeof ipc, "ipc://%s/agents.sock", test_tmpdir());
	char *urls[] = {"tcp://127.0.0.1:0", ipc};
	struct srv_listen_opts o = {.urls = urls, .nurls = 2, .max_msg = 1 << 20, .contexts = 4};
	struct srv_listen *l;
	REQUIRE(srv_listen_start(&o, upper, &count, &l) == FDO_OK);
	snprintf(tcp, sizeof tcp, "tcp://127.0.0.1:%d", srv_listen_port(l));
	CHECK_EQ_INT(request(tcp, NULL, "hello", out, sizeof out), 0);
	CHECK_EQ_STR(out, "HELLO");
	CHECK_EQ_INT(request(ipc, NULL, "ipc ok", out, sizeof out), 0);
	CHECK_EQ_STR(out, "IPC OK");
	srv_listen_stop(l);
	CHECK_EQ_INT(count, 2);
}

struct slow_req {
	char url[64];
	int rv;
	char out[64];
};

static void *slow_client(void *arg)
{
	struct slow_req *r = arg;
	r->rv = request(r->url, NULL, "late", r->out, sizeof r->out);
	return NULL;
}

TEST(stop_delivers_reply_of_request_in_progress)
{
	int count = 0;
	char *urls[] = {"tcp://127.0.0.1:0"};
	struct srv_listen_opts o = {.urls = urls, .nurls = 1, .max_msg = 1 << 20, .contexts = 2};
	struct srv_listen *l;
	REQUIRE(srv_listen_start(&o, upper, &count, &l) == FDO_OK);
	struct slow_req r = {0};
	snprintf(r.url, sizeof r.url, "tcp://127.0.0.1:%d", srv_listen_port(l));
	slow_ms = 400;
	pthread_t t;
	pthread_create(&t, NULL, slow_client, &r);
	usleep(150 * 1000); /* the request is now in the handler */
	srv_listen_stop(l);
	pthread_join(t, NULL);
	slow_ms = 0;
	CHECK_EQ_INT(r.rv, 0);
	CHECK_EQ_STR(r.out, "LATE");
}

TEST(bad_addresses_fail_cleanly)
{
	int count = 0;
	char *urls[] = {"tcp://127.0.0.1:0", "nonsense://x"};
	struct srv_listen_opts o = {.urls = urls, .nurls = 2, .max_msg = 1 << 20, .contexts = 1};
	struct srv_listen *l = NULL;
	CHECK(srv_listen_start(&o, upper, &count, &l) == FDO_ETRANSPORT);
	char *tls[] = {"tls+tcp://127.0.0.1:0"};
	struct srv_listen_opts o2 = {.urls = tls, .nurls = 1, .max_msg = 1 << 20, .contexts = 1};
	CHECK(srv_listen_start(&o2, upper, &count, &l) == FDO_ETRANSPORT);
}

TEST(tls_round_trip_with_self_signed_cert)
{
	char cmd[1024], cert[300], key[300];
	snprintf(cert, sizeof cert, "%s/cert.pem", test_tmpdir());
	snprintf(key, sizeof key, "%s/key.pem", test_tmpdir());
	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
		 "-subj /CN=localhost >/dev/null 2>&1", key, cert);
	REQUIRE(system(cmd) == 0);
	int count = 0;
	char *urls[] = {"tls+tcp://127.0.0.1:0"};
	struct srv_listen_opts o = {.urls = urls, .nurls = 1, .tls_cert = cert, .tls_key = key,
				    .max_msg = 1 << 20, .contexts = 2};
	struct srv_listen *l;
	REQUIRE(srv_listen_start(&o, upper, &count, &l) == FDO_OK);
	nng_tls_config *tc;
	REQUIRE(nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT) == 0);
	nng_tls_config_ca_file(tc, cert);
	nng_tls_config_server_name(tc, "localhost");
	char url[64], out[64];
	snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", srv_listen_port(l));
	CHECK_EQ_INT(request(url, tc, "secret", out, sizeof out), 0);
	CHECK_EQ_STR(out, "SECRET");
	nng_tls_config_free(tc);
	srv_listen_stop(l);
}
