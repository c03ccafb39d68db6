/*
 * bench/ingest/stub_rep.c — a stand-in for fdod's agent listener, for
 * checking the benchmark's plumbing only (bench/ingest/run.sh --stub); it
 * is never the measured target. It decodes each SampleBatch and answers an
 * Ack with status 0, the batch's seq and the sum of its counts, without
 * storing anything; an optional delay stands in for a commit.
 *
 * DESIGN
 *   One rep0 socket; --threads threads each own an nng context and loop
 *   receive, decode, (sleep), reply, so several batches are in flight as
 *   with fdod. Bounded in time: exits after --max-seconds, or when killed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "common/common.h"
#include "common/opts.h"
#include "schemas/schemas.h"

struct cfg {
	char *listen;
	uint64_t threads;
	uint64_t delay_ms;
	uint64_t max_seconds;
};

#define F(field) offsetof(struct cfg, field)
static const struct fdo_opt opts[] = {
	{"listen", FDO_OPT_STRING, F(listen), "tcp://127.0.0.1:7470", "URL",
	 "where to listen"},
	{"threads", FDO_OPT_UINT, F(threads), "8", "N",
	 "contexts answering concurrently"},
	{"delay-ms", FDO_OPT_UINT, F(delay_ms), "0", "MS",
	 "sleep before each Ack (a pretend commit)"},
	{"max-seconds", FDO_OPT_UINT, F(max_seconds), "300", "S",
	 "exit after this long"},
	{0},
};
#undef F

static struct cfg cfg;
static nng_socket sock;

static void *ctx_main(void *arg)
{
	nng_ctx ctx;
	nng_aio *aio;
	(void)arg;
	if (nng_ctx_open(&ctx, sock) || nng_aio_alloc(&aio, NULL, NULL)) {
		fprintf(stderr, "stub_rep: cannot open a context\n");
		exit(1);
	}
	for (;;) {
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio))
			break;
		nng_msg *m = nng_aio_get_msg(aio);
		Fdod__SampleBatch *b = NULL;
		Fdod__Ack ack;
		fdod__ack__init(&ack);
		ack.schema_version = WIRE_SCHEMA_VERSION;
		int e = wire_batch_decode(nng_msg_body(m), nng_msg_len(m), NULL,
					  &b);
		if (!e)
			e = wire_batch_validate(b, NULL, NULL, 0);
		ack.status = (uint32_t)e;
		if (b) {
			ack.seq = b->seq;
			for (size_t i = 0; !e && i < b->n_stacks; i++)
				ack.samples_accepted += b->stacks[i]->count;
		}
		wire_batch_free(b);
		if (cfg.delay_ms) {
			struct timespec ts = {(time_t)(cfg.delay_ms / 1000),
					      (long)(cfg.delay_ms % 1000) *
						      1000000L};
			nanosleep(&ts, NULL);
		}
		uint8_t *out;
		size_t len;
		nng_msg_clear(m);
		if (wire_ack_encode(&ack, &out, &len) ||
		    nng_msg_append(m, out, len)) {
			fprintf(stderr, "stub_rep: cannot build an Ack\n");
			exit(1);
		}
		free(out);
		nng_aio_set_msg(aio, m);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio))
			nng_msg_free(m);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char err[256];
	int optind, rv;
	if (fdo_opts_wants_help(argc, argv)) {
		printf("usage: stub_rep [options]\n\nA stand-in REP server "
		       "that acknowledges every valid batch (plumbing\n"
		       "checks of bench/ingest only).\n\n");
		fdo_opts_print_help(opts, stdout);
		return 0;
	}
	if (fdo_opts_defaults(opts, &cfg, err, sizeof err) ||
	    fdo_opts_parse_args(opts, &cfg, argc, argv, &optind, err,
				sizeof err)) {
		fprintf(stderr, "stub_rep: %s\n", err);
		return 2;
	}
	if ((rv = nng_rep0_open(&sock)) ||
	    (rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ,
				      wire_limits_default.max_message_bytes)) ||
	    (rv = nng_listen(sock, cfg.listen, NULL, 0))) {
		fprintf(stderr, "stub_rep: %s: %s\n", cfg.listen,
			nng_strerror(rv));
		return 1;
	}
	unsigned n = cfg.threads ? (unsigned)cfg.threads : 1;
	for (unsigned i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, ctx_main, NULL)) {
			fprintf(stderr, "stub_rep: cannot start a thread\n");
			return 1;
		}
		pthread_detach(t);
	}
	sleep((unsigned)cfg.max_seconds);
	nng_close(sock);
	fdo_opts_fini(opts, &cfg);
	return 0;
}
