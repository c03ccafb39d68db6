/*
 * cli/cmd_push.c — `fdoctl push [--url URL] FILE|-`: send one batch written
 * in the text form (schemas/README.md) to fdod and print its Ack.
 * A request that gets no answer is sent again with the same seq, which the
 * server counts once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/common.h"
#include "schemas/schemas.h"

#define PUSH_TIMEOUT_MS 30000

static void push_usage(FILE *out)
{
	fprintf(out,
		"usage: fdoctl push [--url URL] [--timeout MS] FILE|-\n\n"
		"Sends one SampleBatch written in fdod's text form (FILE, or - for\n"
		"stdin) to fdod and prints the Ack. URL defaults to $FDOD_URL, else\n"
		"%s. Exit status: 0 stored (or a duplicate already stored),\n"
		"1 refused or unreachable, 2 usage or parse error.\n",
		CLI_BATCH_DEFAULT_URL);
}

static int read_all(const char *path, struct fdo_buf *b)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "fdoctl push: %s: %s\n", path, strerror(errno));
		return FDO_EIO;
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fdo_buf_append(b, chunk, n);
	int err = ferror(f);
	if (f != stdin)
		fclose(f);
	if (err || b->oom) {
		fprintf(stderr, "fdoctl push: cannot read %s\n", path);
		return FDO_EIO;
	}
	return FDO_OK;
}

int cmd_push(int argc, char **argv)
{
	const char *url = NULL;
	const char *path = NULL;
	int timeout_ms = PUSH_TIMEOUT_MS;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			push_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--url") && i + 1 < argc) {
			url = argv[++i];
		} else if (!strncmp(argv[i], "--url=", 6)) {
			url = argv[i] + 6;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			timeout_ms = atoi(argv[++i]);
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "fdoctl push: unknown option %s\n",
				argv[i]);
			push_usage(stderr);
			return 2;
		} else if (!path) {
			path = argv[i];
		} else {
			push_usage(stderr);
			return 2;
		}
	}
	if (!path) {
		push_usage(stderr);
		return 2;
	}
	url = cli_batch_url(url);
	struct fdo_buf text;
	fdo_buf_init(&text);
	if (read_all(path, &text)) {
		fdo_buf_fini(&text);
		return 2;
	}
	Fdod__SampleBatch *batch = NULL;
	char err[512];
	int rc = wire_batch_parse_text(text.data ? text.data : "", text.len,
				       NULL, &batch, err, sizeof err);
	fdo_buf_fini(&text);
	if (rc) {
		fprintf(stderr, "fdoctl push: %s: %s\n", path, err);
		return 2;
	}
	struct cli_sender *snd = NULL;
	rc = cli_sender_open(url, timeout_ms, "fdoctl push", &snd);
	if (rc) {
		wire_batch_free(batch);
		return rc == FDO_EIO ? 2 : 1;
	}
	Fdod__Ack *ack = NULL;
	rc = cli_sender_send(snd, batch, &ack);
	cli_sender_close(snd);
	uint64_t seq = batch->seq;
	wire_batch_free(batch);
	if (rc) /* no Ack: 1; a batch that cannot be encoded: 2, as before */
		return rc == FDO_ETRANSPORT ? 1 : 2;
	printf("%s seq=%llu accepted=%llu unmapped=%llu frames_unmapped=%llu "
	       "branches=%llu duplicate=%s: %s\n",
	       ack->status ? fdo_errname((int)ack->status) : "ok",
	       (unsigned long long)seq,
	       (unsigned long long)ack->samples_accepted,
	       (unsigned long long)ack->samples_unmapped,
	       (unsigned long long)ack->frames_unmapped,
	       (unsigned long long)ack->branches_accepted,
	       ack->duplicate ? "yes" : "no", ack->message);
	int status = ack->status;
	wire_ack_free(ack);
	return status ? 1 : 0;
}
