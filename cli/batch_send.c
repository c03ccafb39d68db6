/*
 * cli/batch_send.c — how fdoctl sends SampleBatches to fdod (push,
 * import): one nng REQ socket, the API token, the encoding, and the
 * request that is sent again, unchanged (same seq), when no answer comes,
 * which fdod counts once. Blocking; one sender per thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "cli/cli.h"
#include "common/common.h"

#define SEND_TRIES 3

struct cli_sender {
	nng_socket sock;
	const char *url, *who;
	char token[512];
};

const char *cli_batch_url(const char *flag)
{
	if (flag && *flag)
		return flag;
	const char *env = getenv("FDOD_URL");
	return env && *env ? env : CLI_BATCH_DEFAULT_URL;
}

int cli_sender_open(const char *url, int timeout_ms, const char *who,
		    struct cli_sender **out)
{
	struct cli_sender *s = calloc(1, sizeof *s);
	if (!s)
		return FDO_ENOMEM;
	s->url = url;
	s->who = who;
	if (fdo_client_token(getenv("FDOD_TOKEN_FILE"), s->token,
			     sizeof s->token)) {
		free(s);
		return FDO_EIO;
	}
	int rv;
	if ((rv = nng_req0_open(&s->sock)) != 0) {
		fprintf(stderr, "%s: %s\n", who, nng_strerror(rv));
		free(s);
		return FDO_ETRANSPORT;
	}
	nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME, timeout_ms);
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, WIRE_ACK_MAX_BYTES);
	if ((rv = nng_dial(s->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, "%s: cannot dial %s: %s\n", who, url,
			nng_strerror(rv));
		nng_close(s->sock);
		free(s);
		return FDO_ETRANSPORT;
	}
	*out = s;
	return FDO_OK;
}

/* Send msg and wait for the reply; nng resends the request itself on
 * reconnect, and we retry whole on timeout. */
static int transact(struct cli_sender *s, const uint8_t *msg, size_t len,
		    Fdod__Ack **ack)
{
	int rv, rc = FDO_ETRANSPORT;
	for (int attempt = 1; attempt <= SEND_TRIES; attempt++) {
		if ((rv = nng_send(s->sock, (void *)msg, len, 0)) != 0) {
			fprintf(stderr, "%s: send to %s: %s\n", s->who, s->url,
				nng_strerror(rv));
			continue;
		}
		void *reply;
		size_t rlen;
		if ((rv = nng_recv(s->sock, &reply, &rlen, NNG_FLAG_ALLOC)) !=
		    0) {
			fprintf(stderr, "%s: no answer from %s (%s)%s\n",
				s->who, s->url, nng_strerror(rv),
				attempt < SEND_TRIES ? "; sending again" : "");
			continue;
		}
		rc = wire_ack_decode(reply, rlen, 0, ack);
		nng_free(reply, rlen);
		if (rc)
			fprintf(stderr, "%s: malformed Ack from %s\n", s->who,
				s->url);
		break;
	}
	return rc;
}

int cli_sender_send(struct cli_sender *s, Fdod__SampleBatch *batch,
		    Fdod__Ack **ack)
{
	/* The token rides in the encoding only; the batch stays the
	 * caller's, unchanged. */
	char *own = batch->auth_token;
	if (s->token[0])
		batch->auth_token = s->token;
	uint8_t *msg;
	size_t len;
	int rc = wire_batch_encode(batch, NULL, &msg, &len);
	batch->auth_token = own;
	if (rc) {
		fprintf(stderr, "%s: cannot encode batch seq %llu: %s\n",
			s->who, (unsigned long long)batch->seq,
			fdo_strerror(rc));
		return rc;
	}
	rc = transact(s, msg, len, ack);
	free(msg);
	return rc;
}

void cli_sender_close(struct cli_sender *s)
{
	if (!s)
		return;
	nng_close(s->sock);
	free(s);
}
