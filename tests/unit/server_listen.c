/*
 * Tests for server/listen.c: request/reply over tcp://, ipc:// and
 * tls+tcp:// on loopback with a real nng REQ client; a stop while a request
 * is being handled still delivers its reply; connection caps and the
 * authentication timeout against raw sockets from 127.0.0.2.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "common/common.h"
#include "server/listen.h"
#include "tests/unit/test.h"

static int slow_ms;

static void upper(void *app, const uint8_t *msg, size_t len, const char *peer,
		  struct fdo_buf *reply, int *authorized)
{
	*authorized = strcmp(peer, "127.0.0.1") == 0 || !strcmp(peer, "local");
	if (slow_ms)
		usleep((useconds_t)slow_ms * 1000);
	for (size_t i = 0; i < len; i++)
		fdo_buf_putc(reply,
			     (char)(msg[i] >= 'a' && msg[i] <= 'z' ? msg[i] - 32
								   : msg[i]));
	(*(int *)app)++;
}

/* One request over a fresh REQ socket; returns the reply in out. */
static int request(const char *url, nng_tls_config *tls, const char *text,
		   char *out, size_t cap)
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
	struct srv_listen_opts o = {
		.urls = urls, .nurls = 2, .max_msg = 1 << 20, .contexts = 4};
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
	struct srv_listen_opts o = {
		.urls = urls, .nurls = 1, .max_msg = 1 << 20, .contexts = 2};
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
	struct srv_listen_opts o = {
		.urls = urls, .nurls = 2, .max_msg = 1 << 20, .contexts = 1};
	struct srv_listen *l = NULL;
	CHECK(srv_listen_start(&o, upper, &count, &l) == FDO_ETRANSPORT);
	char *tls[] = {"tls+tcp://127.0.0.1:0"};
	struct srv_listen_opts o2 = {
		.urls = tls, .nurls = 1, .max_msg = 1 << 20, .contexts = 1};
	CHECK(srv_listen_start(&o2, upper, &count, &l) == FDO_ETRANSPORT);
}

TEST(tls_round_trip_with_self_signed_cert)
{
	char cmd[1024], cert[300], key[300];
	snprintf(cert, sizeof cert, "%s/cert.pem", test_tmpdir());
	snprintf(key, sizeof key, "%s/key.pem", test_tmpdir());
	snprintf(
		cmd, sizeof cmd,
		"openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
		"-subj /CN=localhost >/dev/null 2>&1",
		key, cert);
	REQUIRE(system(cmd) == 0);
	int count = 0;
	char *urls[] = {"tls+tcp://127.0.0.1:0"};
	struct srv_listen_opts o = {.urls = urls,
				    .nurls = 1,
				    .tls_cert = cert,
				    .tls_key = key,
				    .max_msg = 1 << 20,
				    .contexts = 2};
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

/* A raw TCP connection from 127.0.0.2 that does the SP handshake (as REQ)
 * and then sends half a message: 8-byte length of 1 MiB, 10 bytes. */
static int half_sender(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in src = {.sin_family = AF_INET};
	src.sin_addr.s_addr = htonl(0x7f000002);
	struct sockaddr_in dst = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port)};
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) ||
	    connect(fd, (struct sockaddr *)&dst, sizeof dst)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	static const unsigned char hello[] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
	unsigned char frame[18] = {0, 0, 0, 0, 0, 0x10, 0, 0, 0x80, 0, 0, 1};
	if (write(fd, hello, sizeof hello) != sizeof hello ||
	    write(fd, frame, sizeof frame) != sizeof frame) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Is fd closed by the peer (EOF or reset) within ms? Reads and drops what
 * the server sent (its handshake). */
static int closed_within(int fd, int ms)
{
	for (int waited = 0; waited <= ms; waited += 50) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) > 0) {
			char b[64];
			ssize_t n = read(fd, b, sizeof b);
			if (n <= 0)
				return 1;
		}
	}
	return 0;
}

/* Issue 21, finding 4: connections that never authenticate are capped per
 * address and closed after the authentication timeout; an agent from
 * another address is served throughout. */
TEST(unauthenticated_connections_are_capped_and_timed_out)
{
	int count = 0;
	char *urls[] = {"tcp://127.0.0.1:0"};
	struct srv_listen_opts o = {.urls = urls,
				    .nurls = 1,
				    .max_msg = 1 << 20,
				    .contexts = 2,
				    .max_unauth_per_peer = 2,
				    .auth_timeout = 1,
				    .idle_timeout = 60};
	struct srv_listen *l;
	REQUIRE(srv_listen_start(&o, upper, &count, &l) == FDO_OK);
	int port = srv_listen_port(l);
	int fds[6];
	for (int i = 0; i < 6; i++)
		fds[i] = half_sender(port);
	REQUIRE(fds[0] >= 0 && fds[5] >= 0);
	/* Beyond two from 127.0.0.2, connections are closed at once. */
	int refused = 0;
	for (int i = 0; i < 6; i++)
		refused += closed_within(fds[i], 300);
	CHECK_EQ_INT(refused, 4);
	char url[64], out[256];
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
	CHECK_EQ_INT(request(url, NULL, "agent", out, sizeof out), 0);
	CHECK_EQ_STR(out, "AGENT");
	/* The two half-sent messages are dropped after the timeout. */
	for (int i = 0; i < 6; i++)
		if (!closed_within(fds[i], 0))
			CHECK(closed_within(fds[i], 10000));
	struct srv_listen_stats st;
	srv_listen_stats(l, &st);
	CHECK_EQ_INT(st.refused, 4);
	CHECK_EQ_INT(st.reaped, 2);
	for (int i = 0; i < 6; i++)
		close(fds[i]);
	srv_listen_stop(l);
}
